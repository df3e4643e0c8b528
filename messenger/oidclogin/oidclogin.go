// Package oidclogin signs an organisation's helpers and admins in to the
// web app with the organisation's OpenID Connect provider, served by
// `assist serve` under /v1/oidc/.
//
// It ends as passkey sign-in does (package messenger/passkey): the
// browser's own Ed25519 device key becomes a device of the account, one
// that no other device has certified yet, and the browser then logs in to
// the messenger with that key. There is no session cookie and no second
// session system.
//
// The flow (authorization code with PKCE S256, state and nonce):
//
//  1. POST begin {"org","key","device"} from the page (Origin checked):
//     the server keeps a ceremony (org, device key, PKCE verifier, nonce,
//     a challenge) under a random state and sets the cookie
//     __Host-assist-oidc (Secure, HttpOnly, SameSite=Lax, Path=/) to a
//     random binding; it answers {"state","challenge"}.
//  2. GET start?state=S&sig=SIG: the device key's signature over the
//     challenge (passkey.DeviceSigContext || challenge) and the cookie are
//     checked; the browser is sent to the provider.
//  3. GET callback?code&state: the ceremony is taken (once), the cookie
//     checked again, the code exchanged with the verifier, the ID token
//     verified (signature by the provider's JWKS from discovery, issuer,
//     audience, expiry) and its nonce compared. The subject (issuer+sub)
//     must be linked by an admin (`assist org link`) to an account that is
//     a helper or admin of the organisation: no claim ever grants a role.
//     The device key is added to that account and the browser is sent to
//     "/#signed-in=USER&confirmed=0" (1 when the key was already a device).
//
// The cookie binds all three steps to the browser that began: a sign-in
// begun elsewhere (with another browser's key) cannot be finished in a
// victim's browser, and a callback forged cross-site finds no ceremony for
// that browser.
package oidclogin

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/assist-project/assist/internal/sqldb"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/ceremonies"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/passkey"
)

// Limits on the sign-ins a server keeps in memory.
const (
	// CeremonyTTL is how long a begun sign-in may take, the provider's
	// login page included.
	CeremonyTTL = 10 * time.Minute
	// MaxCeremonies bounds the live sign-ins of all clients.
	MaxCeremonies = 1024
	// MaxCeremoniesPerAddress bounds those of one client address (an
	// IPv4 address or an IPv6 /64), so one client cannot use them all.
	MaxCeremoniesPerAddress = 8
	// CookieName is the cookie binding a sign-in to its browser.
	CookieName = "__Host-assist-oidc"
	maxBody    = 16 << 10
)

// Orgs is what sign-in needs from the organisations' store.
type Orgs interface {
	OIDC(ctx context.Context, org string) (hub.OIDC, error)
	OIDCUser(ctx context.Context, org, issuer, subject string) (string, error)
	Roles(ctx context.Context, user string) (map[string]string, error)
}

// Config configures a Service.
type Config struct {
	// Origin is the page's origin (https://HOST:PORT); the callback is
	// Origin + "/v1/oidc/callback", registered at the provider.
	Origin   string
	Orgs     Orgs
	Accounts passkey.Accounts
	// HTTPClient reaches the providers; nil is http.DefaultClient.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
}

// Service serves /v1/oidc/begin, start and callback.
type Service struct {
	cfg Config

	ceremonies *ceremonies.Table[*ceremony] // by state

	mu        sync.Mutex                // guards providers and each ceremony's started
	providers map[string]*oidc.Provider // by issuer, once discovered
}

type ceremony struct {
	org, device     string
	key             ed25519.PublicKey
	challenge       []byte
	verifier, nonce string
	binding         [32]byte // SHA-256 of the cookie's value
	started         bool
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Orgs == nil || cfg.Accounts == nil || cfg.Origin == "" {
		return nil, errors.New("oidclogin: Config needs Origin, Orgs and Accounts")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	limits := ceremonies.Limits{TTL: CeremonyTTL, Max: MaxCeremonies, PerAddress: MaxCeremoniesPerAddress}
	return &Service{cfg: cfg, ceremonies: ceremonies.New[*ceremony](limits, cfg.Now), providers: map[string]*oidc.Provider{}}, nil
}

// ServeHTTP implements http.Handler for paths under /v1/oidc/.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	switch strings.TrimPrefix(r.URL.Path, "/v1/oidc/") {
	case "begin":
		if r.Method != http.MethodPost {
			passkey.Fail(w, http.StatusMethodNotAllowed, "method", "use POST")
			return
		}
		s.begin(w, r)
	case "start":
		if r.Method != http.MethodGet {
			page(w, http.StatusMethodNotAllowed, "Use GET.")
			return
		}
		s.start(w, r)
	case "callback":
		if r.Method != http.MethodGet {
			page(w, http.StatusMethodNotAllowed, "Use GET.")
			return
		}
		s.callback(w, r)
	default:
		passkey.Fail(w, http.StatusNotFound, "not-found", "no such endpoint")
	}
}

// begin: {"org","key","device"} -> {"state","challenge"}, and the cookie.
func (s *Service) begin(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Origin"), s.cfg.Origin) {
		passkey.Fail(w, http.StatusForbidden, "origin", "open this page at "+s.cfg.Origin)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		passkey.Fail(w, http.StatusRequestEntityTooLarge, "malformed", "the request is too large")
		return
	}
	var req struct {
		Org    string `json:"org"`
		Key    string `json:"key"`
		Device string `json:"device"`
	}
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		passkey.Fail(w, http.StatusBadRequest, "malformed", "bad request: "+err.Error())
		return
	}
	k, err := base64.RawURLEncoding.DecodeString(req.Key)
	if err != nil || len(k) != ed25519.PublicKeySize {
		passkey.Fail(w, http.StatusBadRequest, "invalid", "This browser's device key is malformed. Reload the page.")
		return
	}
	if !messenger.ValidText(req.Device, 64) {
		passkey.Fail(w, http.StatusBadRequest, "invalid", "The device name must be 1 to 64 printable characters.")
		return
	}
	if !messenger.ValidUser(req.Org) {
		passkey.Fail(w, http.StatusBadRequest, "invalid", "An organisation id has 1 to 32 of a-z 0-9 . _ -: ask your admin for yours.")
		return
	}
	cfg, err := s.cfg.Orgs.OIDC(r.Context(), req.Org)
	if errors.Is(err, hub.ErrNotFound) {
		passkey.Fail(w, http.StatusNotFound, "no-oidc", "The organisation "+req.Org+" does not sign in with a company account on this server. Check its id with your admin, or sign in with a passkey.")
		return
	} else if err != nil {
		s.internal(w, "begin", err)
		return
	}
	if _, err := s.provider(r.Context(), cfg.Issuer); err != nil {
		s.cfg.Logger.Warn("oidc: discovery failed", "org", req.Org, "issuer", cfg.Issuer, "err", err)
		passkey.Fail(w, http.StatusBadGateway, "provider", "Your organisation's sign-in service cannot be reached. Try again in a minute, or tell your admin.")
		return
	}
	c := &ceremony{org: req.Org, device: req.Device, key: k, challenge: random(32),
		verifier: oauth2.GenerateVerifier(), nonce: b64(random(16))}
	cookie := b64(random(32))
	c.binding = sha256.Sum256([]byte(cookie))
	state, ok := s.ceremonies.Add(r.RemoteAddr, c)
	if !ok {
		passkey.Fail(w, http.StatusTooManyRequests, "too-many", "Too many sign-ins are under way. Wait a few minutes, then try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: cookie, Path: "/", MaxAge: int(CeremonyTTL / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	passkey.Reply(w, map[string]string{"state": state, "challenge": b64(c.challenge)})
}

// start checks the device key's signature and sends the browser to the
// provider.
func (s *Service) start(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := s.ceremony(r, q.Get("state"), false)
	if c == nil {
		page(w, http.StatusBadRequest, "This sign-in expired or was begun in another browser. Go back to the page and sign in again.")
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(q.Get("sig"))
	if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(c.key, append([]byte(passkey.DeviceSigContext), c.challenge...), sig) {
		s.drop(q.Get("state"))
		page(w, http.StatusBadRequest, "This browser's device key did not sign the request. Go back to the page, reload it and sign in again.")
		return
	}
	cfg, p, err := s.orgProvider(r.Context(), c.org)
	if err != nil {
		s.drop(q.Get("state"))
		s.cfg.Logger.Warn("oidc: provider", "org", c.org, "err", err)
		page(w, http.StatusBadGateway, "Your organisation's sign-in service cannot be reached. Try again in a minute, or tell your admin.")
		return
	}
	s.mu.Lock()
	c.started = true
	s.mu.Unlock()
	oc := s.oauth(cfg, p, "")
	http.Redirect(w, r, oc.AuthCodeURL(q.Get("state"), oidc.Nonce(c.nonce), oauth2.S256ChallengeOption(c.verifier)), http.StatusSeeOther)
}

// callback finishes the sign-in.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	c := s.ceremony(r, state, true)
	// The cookie has done its work whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if c == nil || !c.started {
		page(w, http.StatusBadRequest, "This sign-in expired, was already used, or was begun in another browser. Go back to the page and sign in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.cfg.Logger.Info("oidc: the provider refused", "org", c.org, "error", e)
		// The provider's words, if they are short plain text: anyone can
		// put words in this address.
		why := e
		if d := q.Get("error_description"); messenger.ValidText(d, 200) {
			why += ": " + d
		}
		if !messenger.ValidText(why, 260) {
			why = "an error"
		}
		page(w, http.StatusForbidden, "Your organisation's sign-in service refused ("+why+"). Go back to the page and sign in again, or ask your admin.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	cfg, p, err := s.orgProvider(ctx, c.org)
	if err != nil {
		s.cfg.Logger.Warn("oidc: provider", "org", c.org, "err", err)
		page(w, http.StatusBadGateway, "Your organisation's sign-in service cannot be reached. Try again in a minute, or tell your admin.")
		return
	}
	secret, err := os.ReadFile(cfg.SecretFile)
	if err != nil {
		s.cfg.Logger.Error("oidc: client secret", "org", c.org, "err", err)
		page(w, http.StatusInternalServerError, "The server cannot read its client secret for "+c.org+". Tell the server's operator (assist org oidc).")
		return
	}
	oc := s.oauth(cfg, p, strings.TrimSpace(string(secret)))
	tok, err := oc.Exchange(oidc.ClientContext(ctx, s.cfg.HTTPClient), q.Get("code"), oauth2.VerifierOption(c.verifier))
	if err != nil {
		s.cfg.Logger.Info("oidc: code exchange refused", "org", c.org, "err", err)
		page(w, http.StatusForbidden, "Your organisation's sign-in service did not confirm this sign-in. Go back to the page and sign in again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: s.cfg.Now}).Verify(oidc.ClientContext(ctx, s.cfg.HTTPClient), raw)
	if err != nil {
		s.cfg.Logger.Info("oidc: ID token refused", "org", c.org, "err", err)
		page(w, http.StatusForbidden, "The sign-in service's answer did not verify. Go back to the page and sign in again; if it happens again, tell your admin.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(c.nonce)) != 1 {
		s.cfg.Logger.Info("oidc: ID token with another nonce", "org", c.org)
		page(w, http.StatusForbidden, "The sign-in service's answer belongs to another sign-in. Go back to the page and sign in again.")
		return
	}
	name := idt.Subject
	if cfg.Claim != "" && cfg.Claim != "sub" {
		var claims map[string]any
		if idt.Claims(&claims) == nil {
			if v, ok := claims[cfg.Claim].(string); ok && messenger.ValidText(v, 128) {
				name = v
			}
		}
	}
	user, err := s.cfg.Orgs.OIDCUser(ctx, c.org, idt.Issuer, idt.Subject)
	if errors.Is(err, hub.ErrNotFound) {
		s.cfg.Logger.Info("oidc: unknown subject", "org", c.org, "subject", idt.Subject)
		page(w, http.StatusForbidden, fmt.Sprintf("Your company account %s is not linked to an Assist account of %s. Ask your admin to run: assist org link %s ACCOUNT --subject %s",
			name, c.org, c.org, idt.Subject))
		return
	} else if err != nil {
		s.internalPage(w, "link", err)
		return
	}
	roles, err := s.cfg.Orgs.Roles(ctx, user)
	if err != nil {
		s.internalPage(w, "roles", err)
		return
	}
	if role := roles[c.org]; role != messenger.OrgAdmin && role != messenger.OrgHelper {
		s.cfg.Logger.Info("oidc: not a helper", "org", c.org, "user", user)
		page(w, http.StatusForbidden, fmt.Sprintf("Your company account %s is linked to %s, who is not a helper or admin of %s. Ask your admin to run: assist org add %s %s --role helper",
			name, user, c.org, c.org, user))
		return
	}
	shown := display(idt)
	if shown == "" {
		shown = user
	}
	added, err := s.addDevice(ctx, user, shown, c)
	if errors.Is(err, passkey.ErrKeyInUse) {
		page(w, http.StatusConflict, "This browser is signed in to another account. Sign out there first, then sign in again.")
		return
	} else if err != nil {
		s.internalPage(w, "add the device", err)
		return
	}
	s.cfg.Logger.Info("oidc: signed in", "org", c.org, "user", user, "new_device", added)
	confirmed := "1"
	if added {
		confirmed = "0"
	}
	http.Redirect(w, r, "/#signed-in="+url.QueryEscape(user)+"&confirmed="+confirmed, http.StatusSeeOther)
}

// addDevice makes c's key a device of user. An admin may name a helper
// (and link their subject) before the account exists: the first company
// sign-in then creates it, with this browser as its first device.
func (s *Service) addDevice(ctx context.Context, user, display string, c *ceremony) (bool, error) {
	ok, err := s.cfg.Accounts.Exists(ctx, user)
	if err != nil {
		return false, err
	}
	if ok {
		return s.cfg.Accounts.AddDevice(ctx, user, c.key, c.device)
	}
	err = s.cfg.Accounts.Create(ctx, user, display, c.key, c.device)
	if errors.Is(err, passkey.ErrTaken) {
		// Created a moment ago by another sign-in.
		return s.cfg.Accounts.AddDevice(ctx, user, c.key, c.device)
	}
	return false, err
}

// display is the name a new account shows: the ID token's name claim,
// if it is plain text, else the account's name.
func display(idt *oidc.IDToken) string {
	var claims struct {
		Name string `json:"name"`
	}
	if idt.Claims(&claims) == nil && messenger.ValidText(claims.Name, 64) {
		return claims.Name
	}
	return ""
}

// ceremony returns the ceremony of state if this browser's cookie began
// it (taking it when take is set), or nil.
func (s *Service) ceremony(r *http.Request, state string, take bool) *ceremony {
	ck, err := r.Cookie(CookieName)
	if err != nil || state == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(ck.Value))
	c, _ := s.ceremonies.Get(state, func(c *ceremony) bool {
		return subtle.ConstantTimeCompare(sum[:], c.binding[:]) == 1
	}, take)
	return c
}

func (s *Service) drop(state string) { s.ceremonies.Delete(state) }

// Live returns the number of ceremonies kept (tests).
func (s *Service) Live() int { return s.ceremonies.Len() }

// provider discovers issuer's provider once (its keys are fetched, and
// refreshed, by go-oidc's remote key set).
func (s *Service) provider(ctx context.Context, issuer string) (*oidc.Provider, error) {
	s.mu.Lock()
	p := s.providers[issuer]
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// go-oidc fetches the keys later with its own background context
	// and this client, so the request's context only bounds discovery.
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.cfg.HTTPClient), issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discover %s: %w", issuer, err)
	}
	s.mu.Lock()
	s.providers[issuer] = p
	s.mu.Unlock()
	return p, nil
}

func (s *Service) orgProvider(ctx context.Context, org string) (hub.OIDC, *oidc.Provider, error) {
	cfg, err := s.cfg.Orgs.OIDC(ctx, org)
	if err != nil {
		return hub.OIDC{}, nil, err
	}
	p, err := s.provider(ctx, cfg.Issuer)
	return cfg, p, err
}

func (s *Service) oauth(cfg hub.OIDC, p *oidc.Provider, secret string) *oauth2.Config {
	return &oauth2.Config{ClientID: cfg.ClientID, ClientSecret: secret, Endpoint: p.Endpoint(),
		RedirectURL: s.cfg.Origin + "/v1/oidc/callback", Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
}

func (s *Service) internal(w http.ResponseWriter, what string, err error) {
	if sqldb.IsUnavailable(err) {
		s.cfg.Logger.Warn("oidc: "+what+": the database cannot be reached", "err", err)
		passkey.Fail(w, http.StatusServiceUnavailable, "unavailable", passkey.StoreAwayMessage)
		return
	}
	s.cfg.Logger.Error("oidc: "+what, "err", err)
	passkey.Fail(w, http.StatusInternalServerError, "internal", "The server failed. Try again in a minute.")
}

func (s *Service) internalPage(w http.ResponseWriter, what string, err error) {
	if sqldb.IsUnavailable(err) {
		s.cfg.Logger.Warn("oidc: "+what+": the database cannot be reached", "err", err)
		page(w, http.StatusServiceUnavailable, passkey.StoreAwayMessage)
		return
	}
	s.cfg.Logger.Error("oidc: "+what, "err", err)
	page(w, http.StatusInternalServerError, "The server failed. Try again in a minute.")
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

var pageTmpl = template.Must(template.New("p").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Assist: sign-in refused</title>
<link rel="stylesheet" href="/session/session.css"><link rel="stylesheet" href="/expert.css"></head>
<body><header class="bar"><h1>Assist</h1></header>
<div class="home"><section class="card"><h2>Sign-in refused</h2><p id="message">{{.}}</p>
<p><a href="/">Back to Assist</a></p></section></div></body></html>
`))

// page answers a browser's navigation with a plain page saying msg (the
// callback and start are navigations, not fetches).
func page(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The app's own stylesheets only: no script, nothing from elsewhere.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'")
	w.WriteHeader(status)
	if err := pageTmpl.Execute(w, msg); err != nil {
		slog.Debug("oidc: write page", "err", err)
	}
}
