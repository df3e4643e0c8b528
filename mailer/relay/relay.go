// Package relay is the rendezvous server's e-mail relay: `assist serve`
// configured with a mail server sends invitations by e-mail for the
// messenger's logged-in users, so that a novice needs no mail settings of
// their own (POST /v1/mail).
//
// Who may send: a device the messenger knows, proving it holds its key by
// an Ed25519 signature over the request, the time and the server's
// certificate fingerprint (so a request made for another server, or
// replayed, fails). What is sent: only the message Compose writes for the
// attached invitation, which must be an unexpired invitation through this
// very server; no text of the sender's own, so the relay cannot carry
// spam or another server's address. How often: per account and per client
// address, token buckets (default 10 an hour after a burst of 5, and 30
// an hour per address after 10).
//
// The trade-off, for the operator and the user: the server sees the
// invitation file (the novice's name, addresses and expiry) and the
// recipient's address, which it otherwise never learns. The file holds no
// password, so the server gains no way in; it still could not pass the
// PAKE.
package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/mailer"
)

// Path is where the relay listens on the server.
const Path = "/v1/mail"

// MaxRequest bounds a request body: an invitation file is at most
// invitation.MaxFileSize, in base64, plus a few fields.
const MaxRequest = invitation.MaxFileSize*4/3 + 4096

// MaxSkew is how far a request's time may be from the server's.
const MaxSkew = 2 * time.Minute

// sigContext starts every signed request.
const sigContext = "assist/1 mail\x00"

// Request is the body of POST /v1/mail.
type Request struct {
	// Key is the device's Ed25519 public key, base64url without padding.
	Key string `json:"key"`
	// Time is when the request was made, in Unix seconds.
	Time int64 `json:"time"`
	// To is the recipient's address.
	To string `json:"to"`
	// Invitation is the invitation file, base64url without padding.
	Invitation string `json:"invitation"`
	// Sig is Ed25519(device key, SignedBytes(...)), base64url.
	Sig string `json:"sig"`
}

// Answer is the server's reply: {"sent":true}, or an error code and words
// for the user.
type Answer struct {
	Sent    bool   `json:"sent,omitempty"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
}

// SignedBytes is what a device signs: the context, the server's
// certificate fingerprint (SHA-256 of its leaf certificate), the time, the
// recipient and the SHA-256 of the invitation file.
func SignedBytes(fingerprint [32]byte, t int64, to string, file []byte) []byte {
	h := sha256.Sum256(file)
	b := make([]byte, 0, len(sigContext)+32+8+len(to)+1+32)
	b = append(b, sigContext...)
	b = append(b, fingerprint[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(t))
	b = append(b, to...)
	b = append(b, 0)
	return append(b, h[:]...)
}

// Config configures a Relay. SMTP, Devices and Fingerprint are required.
type Config struct {
	// SMTP is the server's mail account; its From is the sender of every
	// message, with the novice's name as the display name.
	SMTP *mailer.SMTP
	// Devices returns the account of the messenger device with this
	// public key, or an error if there is none.
	Devices func(ctx context.Context, key []byte) (user string, err error)
	// Fingerprint is the SHA-256 of the server's TLS leaf certificate.
	Fingerprint [32]byte
	// PerHour and Burst limit each account's messages; defaults 10 and 5.
	PerHour, Burst int
	// PerAddressHour and AddressBurst limit each client address (IPv4,
	// or IPv6 /64), counting every request, even refused ones; defaults
	// 30 and 10.
	PerAddressHour, AddressBurst int
	// SendTimeout bounds one message's delivery; default 60 s.
	SendTimeout time.Duration
	Logger      *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Relay is the http.Handler of POST /v1/mail.
type Relay struct {
	cfg    Config
	mu     sync.Mutex
	users  limiter
	addrs  limiter
	seen   map[[32]byte]time.Time // signatures of recent requests: no replay
	sendMu sync.Mutex             // one delivery at a time: the mail server is the slow part
}

// New checks cfg and returns a Relay.
func New(cfg Config) (*Relay, error) {
	if cfg.SMTP == nil || cfg.Devices == nil {
		return nil, errors.New("relay: SMTP and Devices are required")
	}
	if err := cfg.SMTP.Check(); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	if cfg.PerHour <= 0 {
		cfg.PerHour = 10
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 5
	}
	if cfg.PerAddressHour <= 0 {
		cfg.PerAddressHour = 30
	}
	if cfg.AddressBurst <= 0 {
		cfg.AddressBurst = 10
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Relay{
		cfg:   cfg,
		users: limiter{rate: float64(cfg.PerHour) / 3600, burst: float64(cfg.Burst), b: map[string]*bucket{}},
		addrs: limiter{rate: float64(cfg.PerAddressHour) / 3600, burst: float64(cfg.AddressBurst), b: map[string]*bucket{}},
		seen:  map[[32]byte]time.Time{},
	}, nil
}

// fail answers with an error code and words for the user.
func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Answer{Error: code, Message: msg})
}

func (rl *Relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		fail(w, http.StatusMethodNotAllowed, "malformed", "use POST")
		return
	}
	now := rl.cfg.Now()
	addr := addrKey(r.RemoteAddr)
	// Before any work: an address that floods spends nothing but this.
	if wait := rl.take(&rl.addrs, addr, now); wait > 0 {
		retry(w, wait)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		fail(w, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	req, key, sig, file, err := parse(body)
	if err != nil {
		fail(w, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	if d := now.Sub(time.Unix(req.Time, 0)); d > MaxSkew || d < -MaxSkew {
		fail(w, http.StatusUnauthorized, "unauthorized", "this computer's clock is off by more than 2 minutes: set the date and time, then try again")
		return
	}
	if !ed25519.Verify(key, SignedBytes(rl.cfg.Fingerprint, req.Time, req.To, file), sig) {
		fail(w, http.StatusUnauthorized, "unauthorized", "the request's signature is wrong (made for another server?): run assist login again")
		return
	}
	user, err := rl.cfg.Devices(r.Context(), key)
	if err != nil {
		fail(w, http.StatusUnauthorized, "unauthorized", "this device is not logged in to the server: run assist login first")
		return
	}
	if !rl.fresh(sig, now) {
		fail(w, http.StatusConflict, "replayed", "this request was already made")
		return
	}
	if wait := rl.take(&rl.users, user, now); wait > 0 {
		retry(w, wait)
		return
	}
	to, err := mailer.ParseAddress(req.To)
	if err != nil || to != req.To {
		fail(w, http.StatusBadRequest, "invalid", "the recipient is not a bare e-mail address")
		return
	}
	inv, err := invitation.Parse(file)
	if err != nil {
		fail(w, http.StatusBadRequest, "invalid", "the invitation is damaged")
		return
	}
	if err := inv.Validate(now); err != nil {
		fail(w, http.StatusBadRequest, "invalid", "the invitation has expired or is not valid yet: make a new one")
		return
	}
	if !sameHost(inv.Server, r.Host) {
		fail(w, http.StatusBadRequest, "invalid", "the invitation is not for this server: this server sends only its own invitations")
		return
	}
	l, err := mailer.Compose(inv, mailer.Options{})
	if err != nil {
		fail(w, http.StatusBadRequest, "invalid", "the invitation cannot be written as an e-mail")
		return
	}
	l.Name = inv.Name + " (via Assist)"
	rl.sendMu.Lock()
	ctx, cancel := context.WithTimeout(r.Context(), rl.cfg.SendTimeout)
	err = rl.cfg.SMTP.Send(ctx, to, l)
	cancel()
	rl.sendMu.Unlock()
	domain := to[strings.LastIndexByte(to, '@')+1:]
	if err != nil {
		// The operator's mail settings are the operator's business: the
		// user reads only that it failed.
		rl.cfg.Logger.Warn("mail relay: sending failed", "user", user, "to_domain", domain, "err", err)
		fail(w, http.StatusBadGateway, "internal", "the server could not send the e-mail; try again later, or send it yourself")
		return
	}
	// The recipient's domain only: addresses are personal data.
	rl.cfg.Logger.Info("mail relay: invitation sent", "user", user, "to_domain", domain)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Answer{Sent: true})
}

func retry(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	fail(w, http.StatusTooManyRequests, "too-many", fmt.Sprintf("too many e-mails: try again in %d minutes, or send this one yourself", int(wait.Minutes())+1))
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxRequest)); err != nil {
		return nil, fmt.Errorf("the request is over %d bytes or broken", MaxRequest)
	}
	return buf.Bytes(), nil
}

// parse decodes a request strictly.
func parse(body []byte) (req Request, key ed25519.PublicKey, sig, file []byte, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err = dec.Decode(&req); err != nil {
		return req, nil, nil, nil, errors.New("not a mail request")
	}
	if dec.More() {
		return req, nil, nil, nil, errors.New("data after the request")
	}
	b64 := base64.RawURLEncoding.Strict()
	k, err := b64.DecodeString(req.Key)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return req, nil, nil, nil, errors.New("key is not a base64url Ed25519 public key")
	}
	if sig, err = b64.DecodeString(req.Sig); err != nil || len(sig) != ed25519.SignatureSize {
		return req, nil, nil, nil, errors.New("sig is not a base64url Ed25519 signature")
	}
	if file, err = b64.DecodeString(req.Invitation); err != nil || len(file) == 0 || len(file) > invitation.MaxFileSize {
		return req, nil, nil, nil, errors.New("invitation is not a base64url invitation file")
	}
	if len(req.To) > 254 {
		return req, nil, nil, nil, errors.New("to is too long for an address")
	}
	return req, ed25519.PublicKey(k), sig, file, nil
}

// fresh records sig and reports whether it is new; old ones are dropped
// once past the skew window, when no request could still carry them.
func (rl *Relay) fresh(sig []byte, now time.Time) bool {
	h := sha256.Sum256(sig)
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for k, t := range rl.seen {
		if now.Sub(t) > 2*MaxSkew {
			delete(rl.seen, k)
		}
	}
	if _, ok := rl.seen[h]; ok {
		return false
	}
	rl.seen[h] = now
	return true
}

func (rl *Relay) take(l *limiter, key string, now time.Time) time.Duration {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return l.take(key, now)
}

// sameHost reports whether the invitation's server URL names the host the
// request came to.
func sameHost(server, host string) bool {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(withPort(u.Host), withPort(host))
}

func withPort(h string) string {
	if _, _, err := net.SplitHostPort(h); err == nil {
		return h
	}
	return net.JoinHostPort(strings.Trim(h, "[]"), "443")
}

// addrKey groups a client address as the server's other limits do: an
// IPv4 address, or an IPv6 /64.
func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() != nil {
		return ip.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String()
}

// limiter is a token bucket per key; full buckets are forgotten.
type limiter struct {
	rate, burst float64
	b           map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// take spends a token for key, or returns how long until one is back.
func (l *limiter) take(key string, now time.Time) time.Duration {
	if len(l.b) > 10000 {
		for k, b := range l.b {
			if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
				delete(l.b, k)
			}
		}
	}
	b, ok := l.b[key]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.b[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	b.tokens--
	return 0
}
