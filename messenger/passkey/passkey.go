package passkey

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/assist-project/assist/internal/ratelimit"
	"github.com/assist-project/assist/internal/sqldb"
	"github.com/assist-project/assist/messenger/ceremonies"
)

// Limits on the ceremonies a server keeps in memory.
const (
	// CeremonyTTL is how long a begun ceremony may be finished: enough
	// for a person to touch a security key or unlock a phone.
	CeremonyTTL = 2 * time.Minute
	// MaxCeremonies bounds the live ceremonies of all clients.
	MaxCeremonies = 1024
	// MaxCeremoniesPerAddress bounds those of one client address (an
	// IPv4 address or an IPv6 /64).
	MaxCeremoniesPerAddress = 8
	// maxBody bounds a request's body: a credential is a few kilobytes.
	maxBody = 64 << 10
	// Accounts created per address: CreateBurst at once, then one per
	// CreateEvery (as the messenger limits creations by device key).
	CreateBurst = 3
	CreateEvery = 2 * time.Minute
)

// DeviceSigContext starts the message a device key signs to take part in a
// ceremony: DeviceSigContext || the challenge's raw bytes.
const DeviceSigContext = "assist/1 passkey device\x00"

// Errors of Accounts.
var (
	// ErrTaken: the account name belongs to somebody else.
	ErrTaken = errors.New("passkey: the name is taken")
	// ErrKeyInUse: the device key is a device of another account.
	ErrKeyInUse = errors.New("passkey: the device key belongs to another account")
)

// Accounts is what signing in needs from the messenger's accounts (package
// messenger/hub implements it over its store).
type Accounts interface {
	// Exists reports whether the account user exists.
	Exists(ctx context.Context, user string) (bool, error)
	// Create makes the account user with display name display and key as
	// its first device, named device. ErrTaken if user exists,
	// ErrKeyInUse if key is any account's device.
	Create(ctx context.Context, user, display string, key ed25519.PublicKey, device string) error
	// AddDevice adds key, named device, to user's account as a device that
	// no other device has certified yet. A key that is already one of
	// user's devices is left as it is (added false); ErrKeyInUse if it is
	// another account's.
	AddDevice(ctx context.Context, user string, key ed25519.PublicKey, device string) (added bool, err error)
	// Display returns user's display name.
	Display(ctx context.Context, user string) (string, error)
}

// Config configures a Service.
type Config struct {
	// RPID is the relying party: the server's host name as browsers
	// reach it (never an IP address: browsers refuse those).
	RPID string
	// Origins are the origins the page is served from, e.g.
	// https://assist.example.org:8443.
	Origins []string
	// Fingerprint is the SHA-256 of the server's TLS certificate, which
	// the page needs for the messenger's login signature (the browser
	// does not show pages the certificate). GET server sends it as
	// "sha256:HEX".
	Fingerprint [32]byte
	Accounts    Accounts
	Store       Store
	Logger      *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Service serves /v1/webauthn/...: GET server, POST register/begin,
// register/finish, login/begin, login/finish. All bodies are JSON.
type Service struct {
	cfg Config
	wa  *webauthn.WebAuthn

	ceremonies *ceremonies.Table[*ceremony]

	mu        sync.Mutex
	creations map[netip.Prefix]time.Time // per address: when its bucket is full again
}

type ceremonyKind int

const (
	registering ceremonyKind = iota + 1
	signingIn
)

// ceremony is a begun registration or sign-in, kept until it is finished
// (once) or expires.
type ceremony struct {
	kind    ceremonyKind
	session webauthn.SessionData
	// What the browser asked for at the beginning.
	user, display, device string
	key                   ed25519.PublicKey
	handle                []byte
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Accounts == nil || cfg.Store == nil {
		return nil, errors.New("passkey: Config needs Accounts and Store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if _, err := netip.ParseAddr(cfg.RPID); err == nil {
		return nil, fmt.Errorf("passkey: the relying party %s is an IP address, which browsers refuse for passkeys: serve under a host name (--public-url https://HOST:PORT)", cfg.RPID)
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          cfg.RPID,
		RPDisplayName: "Assist",
		RPOrigins:     cfg.Origins,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementRequired,
			UserVerification: protocol.VerificationPreferred,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	limits := ceremonies.Limits{TTL: CeremonyTTL, Max: MaxCeremonies, PerAddress: MaxCeremoniesPerAddress}
	return &Service{cfg: cfg, wa: wa, ceremonies: ceremonies.New[*ceremony](limits, cfg.Now), creations: map[netip.Prefix]time.Time{}}, nil
}

// ServeHTTP implements http.Handler for paths under /v1/webauthn/.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	name := strings.TrimPrefix(r.URL.Path, "/v1/webauthn/")
	if name == "server" {
		if r.Method != http.MethodGet {
			Fail(w, http.StatusMethodNotAllowed, "method", "use GET")
			return
		}
		Reply(w, map[string]string{"fingerprint": "sha256:" + hex.EncodeToString(s.cfg.Fingerprint[:]), "rpId": s.cfg.RPID})
		return
	}
	handlers := map[string]func(http.ResponseWriter, *http.Request, []byte){
		"register/begin":  s.registerBegin,
		"register/finish": s.registerFinish,
		"login/begin":     s.loginBegin,
		"login/finish":    s.loginFinish,
	}
	handle, ok := handlers[name]
	if !ok {
		Fail(w, http.StatusNotFound, "not-found", "no such endpoint")
		return
	}
	if r.Method != http.MethodPost {
		Fail(w, http.StatusMethodNotAllowed, "method", "use POST")
		return
	}
	// Only the page itself may start or finish a ceremony; the browser
	// also binds the credential to its origin, which finishing checks.
	if !s.originOK(r.Header.Get("Origin")) {
		Fail(w, http.StatusForbidden, "origin", "open this page at "+strings.Join(s.cfg.Origins, " or "))
		return
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != "application/json" {
		Fail(w, http.StatusUnsupportedMediaType, "malformed", "send JSON")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		Fail(w, http.StatusRequestEntityTooLarge, "malformed", "the request is too large")
		return
	}
	handle(w, r, body)
}

func (s *Service) originOK(origin string) bool {
	for _, o := range s.cfg.Origins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// registerBegin: {"user","display","key","device"} -> {"ceremony","publicKey"}.
func (s *Service) registerBegin(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		User    string `json:"user"`
		Display string `json:"display"`
		Key     string `json:"key"`
		Device  string `json:"device"`
	}
	if err := decode(body, &req); err != nil {
		Fail(w, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	key, msg := checkDevice(req.Key, req.Device)
	if msg == "" {
		msg = checkUser(req.User)
	}
	if msg == "" {
		msg = checkDisplay(req.Display)
	}
	if msg != "" {
		Fail(w, http.StatusBadRequest, "invalid", msg)
		return
	}
	taken, err := s.cfg.Accounts.Exists(r.Context(), req.User)
	if err != nil {
		s.internal(w, "register: look up the name", err)
		return
	}
	if taken {
		Fail(w, http.StatusConflict, "taken", fmt.Sprintf("The name %s is taken. If it is yours, choose Sign in instead; otherwise pick another name.", req.User))
		return
	}
	if !s.mayCreate(ratelimit.Key(ratelimit.RemoteAddr(r.RemoteAddr))) {
		Fail(w, http.StatusTooManyRequests, "too-many", "Too many accounts were created from your network. Wait a few minutes, then try again.")
		return
	}
	handle := make([]byte, 32)
	rand.Read(handle)
	u := &account{name: req.User, display: req.Display, handle: handle}
	creation, session, err := s.wa.BeginRegistration(u)
	if err != nil {
		s.internal(w, "register: begin", err)
		return
	}
	c := &ceremony{kind: registering, session: *session, user: req.User, display: req.Display, device: req.Device, key: key, handle: handle}
	s.begin(w, r, c, creation.Response)
}

// registerFinish: {"ceremony","credential","sig"} -> {"user","display","confirmed":true}.
func (s *Service) registerFinish(w http.ResponseWriter, r *http.Request, body []byte) {
	c, cred, ok := s.finish(w, r, body, registering)
	if !ok {
		return
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(cred)
	if err != nil {
		Fail(w, http.StatusBadRequest, "passkey", "The passkey's answer could not be read: "+errText(err))
		return
	}
	u := &account{name: c.user, display: c.display, handle: c.handle}
	credential, err := s.wa.CreateCredential(u, c.session, parsed)
	if err != nil {
		s.cfg.Logger.Info("passkey: registration refused", "user", c.user, "err", errText(err))
		Fail(w, http.StatusBadRequest, "passkey", "The passkey was not accepted: "+errText(err))
		return
	}
	ctx := r.Context()
	if err := s.cfg.Accounts.Create(ctx, c.user, c.display, c.key, c.device); err != nil {
		switch {
		case errors.Is(err, ErrTaken):
			Fail(w, http.StatusConflict, "taken", fmt.Sprintf("The name %s was taken a moment ago. Pick another name.", c.user))
		case errors.Is(err, ErrKeyInUse):
			Fail(w, http.StatusConflict, "key-in-use", "This browser already belongs to an account. Sign in instead.")
		default:
			s.internal(w, "register: create the account", err)
		}
		return
	}
	if err := s.cfg.Store.Add(ctx, c.user, c.handle, *credential); err != nil {
		s.internal(w, "register: save the passkey", err)
		return
	}
	s.cfg.Logger.Info("passkey: account created", "user", c.user)
	Reply(w, map[string]any{"user": c.user, "display": c.display, "confirmed": true})
}

// loginBegin: {"key","device"} -> {"ceremony","publicKey"}. The passkey
// itself says whose account it is (a discoverable credential).
func (s *Service) loginBegin(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Key    string `json:"key"`
		Device string `json:"device"`
	}
	if err := decode(body, &req); err != nil {
		Fail(w, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	key, msg := checkDevice(req.Key, req.Device)
	if msg != "" {
		Fail(w, http.StatusBadRequest, "invalid", msg)
		return
	}
	assertion, session, err := s.wa.BeginDiscoverableLogin()
	if err != nil {
		s.internal(w, "sign in: begin", err)
		return
	}
	c := &ceremony{kind: signingIn, session: *session, device: req.Device, key: key}
	s.begin(w, r, c, assertion.Response)
}

// loginFinish: {"ceremony","credential","sig"} -> {"user","display","confirmed"}.
// confirmed is false when this browser was added to the account now, as a
// device still to be confirmed by another device.
func (s *Service) loginFinish(w http.ResponseWriter, r *http.Request, body []byte) {
	c, cred, ok := s.finish(w, r, body, signingIn)
	if !ok {
		return
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(cred)
	if err != nil {
		Fail(w, http.StatusBadRequest, "passkey", "The passkey's answer could not be read: "+errText(err))
		return
	}
	ctx := r.Context()
	var name string
	var handle []byte
	lookup := func(rawID, userHandle []byte) (webauthn.User, error) {
		user, creds, err := s.cfg.Store.User(ctx, userHandle)
		if err != nil {
			return nil, err
		}
		name, handle = user, userHandle
		return &account{name: user, handle: userHandle, creds: creds}, nil
	}
	_, credential, err := s.wa.ValidatePasskeyLogin(lookup, c.session, parsed)
	if err != nil {
		s.cfg.Logger.Info("passkey: sign-in refused", "err", errText(err))
		if errors.Is(err, ErrNotFound) {
			Fail(w, http.StatusUnauthorized, "unknown-passkey", "This server does not know that passkey. Choose another one, or create an account.")
			return
		}
		Fail(w, http.StatusUnauthorized, "passkey", "The passkey was not accepted: "+errText(err))
		return
	}
	if err := s.cfg.Store.Update(ctx, handle, *credential); err != nil {
		s.internal(w, "sign in: save the passkey", err)
		return
	}
	added, err := s.cfg.Accounts.AddDevice(ctx, name, c.key, c.device)
	if err != nil {
		if errors.Is(err, ErrKeyInUse) {
			Fail(w, http.StatusConflict, "key-in-use", "This browser is signed in to another account. Sign out there first.")
			return
		}
		s.internal(w, "sign in: add the device", err)
		return
	}
	display, err := s.cfg.Accounts.Display(ctx, name)
	if err != nil {
		s.internal(w, "sign in: display name", err)
		return
	}
	s.cfg.Logger.Info("passkey: signed in", "user", name, "new_device", added)
	Reply(w, map[string]any{"user": name, "display": display, "confirmed": !added})
}

// begin keeps c and sends the options for navigator.credentials.
func (s *Service) begin(w http.ResponseWriter, r *http.Request, c *ceremony, options any) {
	id, ok := s.ceremonies.Add(r.RemoteAddr, c)
	if !ok {
		Fail(w, http.StatusTooManyRequests, "too-many", "Too many sign-ins are under way. Wait two minutes, then try again.")
		return
	}
	Reply(w, map[string]any{"ceremony": id, "publicKey": options})
}

// finish takes the ceremony a finishing request names (at most once) and
// checks the device key's signature over its challenge.
func (s *Service) finish(w http.ResponseWriter, _ *http.Request, body []byte, kind ceremonyKind) (*ceremony, json.RawMessage, bool) {
	var req struct {
		Ceremony   string          `json:"ceremony"`
		Credential json.RawMessage `json:"credential"`
		Sig        string          `json:"sig"`
	}
	if err := decode(body, &req); err != nil {
		Fail(w, http.StatusBadRequest, "malformed", err.Error())
		return nil, nil, false
	}
	c, ok := s.ceremonies.Get(req.Ceremony, nil, true)
	if !ok || c.kind != kind {
		Fail(w, http.StatusBadRequest, "expired", "That took too long, or the page was reloaded. Try again.")
		return nil, nil, false
	}
	challenge, err := base64.RawURLEncoding.DecodeString(c.session.Challenge)
	sig, err2 := base64.RawURLEncoding.DecodeString(req.Sig)
	if err != nil || err2 != nil || len(sig) != ed25519.SignatureSize ||
		!ed25519.Verify(c.key, append([]byte(DeviceSigContext), challenge...), sig) {
		Fail(w, http.StatusBadRequest, "device", "This browser's device key did not sign the request. Reload the page and try again.")
		return nil, nil, false
	}
	return c, req.Credential, true
}

// mayCreate takes a token of addr's creation bucket (CreateBurst tokens,
// one back every CreateEvery). A bucket is kept as the time it is full
// again, so a full one is simply forgotten.
func (s *Service) mayCreate(addr netip.Prefix) bool {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	full := s.creations[addr]
	if full.Before(now) {
		full = now
	}
	// Tokens missing now: (full-now)/CreateEvery, rounded up.
	if full.Sub(now) > time.Duration(CreateBurst-1)*CreateEvery {
		return false
	}
	s.creations[addr] = full.Add(CreateEvery)
	for a, t := range s.creations {
		if !t.After(now) {
			delete(s.creations, a)
		}
	}
	return true
}

// Live returns the number of ceremonies kept (tests).
func (s *Service) Live() int { return s.ceremonies.Len() }

// StoreAwayMessage is the answer while the server cannot reach its
// database (PostgreSQL restarting): code "unavailable", HTTP 503.
const StoreAwayMessage = "The server cannot reach its database. Try again in a minute."

func (s *Service) internal(w http.ResponseWriter, what string, err error) {
	if sqldb.IsUnavailable(err) {
		s.cfg.Logger.Warn("passkey: "+what+": the database cannot be reached", "err", err)
		Fail(w, http.StatusServiceUnavailable, "unavailable", StoreAwayMessage)
		return
	}
	s.cfg.Logger.Error("passkey: "+what, "err", err)
	Fail(w, http.StatusInternalServerError, "internal", "The server failed. Try again in a minute.")
}

// account is an account as go-webauthn sees it.
type account struct {
	name, display string
	handle        []byte
	creds         []webauthn.Credential
}

func (a *account) WebAuthnID() []byte { return a.handle }
func (a *account) WebAuthnName() string {
	return a.name
}
func (a *account) WebAuthnDisplayName() string {
	if a.display == "" {
		return a.name
	}
	return a.display
}
func (a *account) WebAuthnCredentials() []webauthn.Credential { return a.creds }

// decode parses a request strictly: one JSON object, no unknown members.
func decode(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("bad request: %w", err)
	}
	if d.More() {
		return errors.New("bad request: more than one JSON value")
	}
	return nil
}

var userName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// checkUser returns what is wrong with an account name, or "".
func checkUser(u string) string {
	if !userName.MatchString(u) {
		return "A name has 1 to 32 lowercase letters, digits, dots, dashes or underscores, and starts with a letter or digit."
	}
	return ""
}

// checkDisplay returns what is wrong with a display name, or "".
func checkDisplay(d string) string {
	if !printable(d, 64) {
		return "Your full name must be 1 to 64 printable characters."
	}
	return ""
}

// checkDevice parses a device key and checks its name.
func checkDevice(key, device string) (ed25519.PublicKey, string) {
	k, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, "This browser's device key is malformed. Reload the page."
	}
	if !printable(device, 64) {
		return nil, "The device name must be 1 to 64 printable characters."
	}
	return ed25519.PublicKey(k), ""
}

func printable(s string, max int) bool {
	n := utf8.RuneCountInString(s)
	if n < 1 || n > max || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// errText is a go-webauthn error with its details, in one line.
func errText(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return pe.Details + " (" + pe.DevInfo + ")"
	}
	if errors.As(err, &pe) && pe.Details != "" {
		return pe.Details
	}
	return err.Error()
}

// Reply answers a sign-in request (this package's, or oidclogin's) with v
// as JSON.
func Reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("passkey: write reply", "err", err)
	}
}

// Fail refuses a sign-in request (this package's, or oidclogin's) with
// {"error":CODE,"message":TEXT}, as the web app reads it; TEXT is for
// people.
func Fail(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "message": message})
}
