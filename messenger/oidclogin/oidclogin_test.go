package oidclogin_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"go.uber.org/goleak"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/oidclogin"
	"github.com/assist-project/assist/messenger/passkey"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is a real OpenID provider (zitadel/oidc's example OP, in memory, on
// loopback) and an Assist server (the messenger and /v1/oidc/) with the
// organisation acme: alice is its helper, linked to the provider's
// subject id1; bob is a member linked to id2; pc1 is its machine.
type rig struct {
	issuer, origin, fp string
	srv, op            *httptest.Server
	store              *hub.SQLiteStore
	svc                *oidclogin.Service
	// tamperToken, when set, rewrites the ID token the provider returns.
	tamperToken atomic.Pointer[func(string) string]
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The Assist server first: the provider needs its callback URL.
	mux := http.NewServeMux()
	r.srv = httptest.NewUnstartedServer(mux)
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	r.origin = r.srv.URL
	sum := sha256.Sum256(r.srv.Certificate().Raw)
	r.fp = messenger.FormatFingerprint(sum)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.issuer = "http://" + ln.Addr().String()
	st := storage.NewStorage(storage.NewUserStore(r.issuer))
	storage.RegisterClients(storage.WebClient("assist-web", "s3cret", r.origin+"/v1/oidc/callback"))
	router := exampleop.SetupServer(r.issuer, st, nil, false)
	r.op = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tamper := r.tamperToken.Load()
		if req.URL.Path != "/oauth/token" || tamper == nil {
			router.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("token response: %v", err)
		}
		if s, ok := body["id_token"].(string); ok {
			body["id_token"] = (*tamper)(s)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	}))
	r.op.Listener.Close()
	r.op.Listener = ln
	r.op.Start()
	t.Cleanup(r.op.Close)

	r.store, err = hub.OpenSQLite(ctx, filepath.Join(t.TempDir(), "messenger.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.store.Close() })
	h, err := hub.New(hub.Config{Store: r.store, Fingerprint: sum, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.store.CreateOrg(ctx, hub.Org{Name: "acme", Display: "ACME", Policy: hub.DefaultPolicy(), Created: now}))
	for _, u := range []string{"alice", "bob"} {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		must(r.store.CreateAccount(ctx, hub.Account{User: u, Display: u, Created: now}, hub.Device{ID: u + "dev0000000", User: u, Key: pub, Name: "laptop", Created: now}))
	}
	must(r.store.SetRole(ctx, "acme", "alice", messenger.OrgHelper))
	must(r.store.SetRole(ctx, "acme", "bob", messenger.OrgMember))
	must(r.store.SetOIDC(ctx, "acme", hub.OIDC{Issuer: r.issuer, ClientID: "assist-web", SecretFile: secret, Claim: "preferred_username"}))
	must(r.store.LinkOIDC(ctx, "acme", r.issuer, "id1", "alice"))
	must(r.store.LinkOIDC(ctx, "acme", r.issuer, "id2", "bob"))
	must(r.store.AddToken(ctx, "acme", hub.TokenHash("tok"), 1, now.Add(time.Hour), now))
	pc, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := r.store.Enrol(ctx, hub.TokenHash("tok"), hub.Account{User: "pc1", Display: "carol", Created: now},
		hub.Device{ID: "pc1dev000000", User: "pc1", Key: pc, Name: "front desk", Created: now}, now); err != nil {
		t.Fatal(err)
	}

	r.svc, err = oidclogin.New(oidclogin.Config{Origin: r.origin, Orgs: r.store, Accounts: passkey.HubAccounts{Store: r.store}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/v1/messenger", h)
	mux.Handle("/v1/oidc/", r.svc)
	return r
}

// browser is a browser: a cookie jar and its own device key.
type browser struct {
	c    *http.Client
	key  ed25519.PrivateKey
	stop func(*http.Request) bool
}

func (r *rig) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	b := &browser{key: k}
	tr := r.srv.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	b.c = &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		// Stop at the callback (the test goes on from there) and at
		// the page the provider sends the browser back to.
		if req.URL.Path == "/v1/oidc/callback" || req.URL.Path == "/" || (b.stop != nil && b.stop(req)) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

func (b *browser) pub() string {
	return base64.RawURLEncoding.EncodeToString(b.key.Public().(ed25519.PublicKey))
}

// begin runs POST begin and signs the challenge: the start URL.
func (r *rig) begin(t *testing.T, b *browser) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"org": "acme", "key": b.pub(), "device": "Chromium on Linux"})
	req, _ := http.NewRequest(http.MethodPost, r.origin+"/v1/oidc/begin", bytes.NewReader(body))
	req.Header.Set("Origin", r.origin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ State, Challenge, Message string }
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("begin: %s %s", resp.Status, out.Message)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == oidclogin.CookieName && (!ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode) {
			t.Errorf("cookie %+v: want Secure, HttpOnly, SameSite=Lax", ck)
		}
	}
	ch, _ := base64.RawURLEncoding.DecodeString(out.Challenge)
	sig := ed25519.Sign(b.key, append([]byte(passkey.DeviceSigContext), ch...))
	return r.origin + "/v1/oidc/start?state=" + url.QueryEscape(out.State) + "&sig=" + base64.RawURLEncoding.EncodeToString(sig)
}

// login follows start to the provider's login form and signs in there as
// username: it returns the callback URL the provider sends back.
func (r *rig) login(t *testing.T, b *browser, start, username string) string {
	t.Helper()
	resp := get(t, b.c, start)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/login/username" {
		t.Fatalf("start: %s at %s", resp.Status, resp.Request.URL)
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	resp, err := b.c.PostForm(r.issuer+"/login/username", url.Values{"username": {username}, "password": {"verysecure"}, "id": {id}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, r.origin+"/v1/oidc/callback?") {
		t.Fatalf("after the provider's login: %s, Location %q", resp.Status, loc)
	}
	return loc
}

func get(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

func text(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestSignIn: a helper whose company account an admin linked signs in;
// the browser's key is then a device of alice's account, and with it the
// messenger lists acme's machines.
func TestSignIn(t *testing.T) {
	r := newRig(t)
	b := r.browser(t)
	cb := r.login(t, b, r.begin(t, b), "test-user@127.0.0.1")
	resp := get(t, b.c, cb)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/#signed-in=alice&confirmed=0" {
		t.Fatalf("callback: %s, Location %q: %s", resp.Status, resp.Header.Get("Location"), text(resp))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, w, err := messenger.Dial(ctx, r.origin, r.fp, b.key, messenger.LoginOptions{})
	if err != nil {
		t.Fatalf("the messenger with the signed-in key: %v", err)
	}
	defer c.Close()
	if w.User != "alice" {
		t.Errorf("logged in as %q, want alice", w.User)
	}
	ms, err := c.Machines(ctx)
	if err != nil || len(ms) != 1 || ms[0].User != "pc1" || ms[0].Org != "acme" {
		t.Errorf("machines: %+v, %v; want pc1 of acme", ms, err)
	}
	// The callback is good once.
	if resp := get(t, b.c, cb); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the callback again: %s, want 400", resp.Status)
	}
	if n := r.svc.Live(); n != 0 {
		t.Errorf("%d sign-ins kept after finishing", n)
	}
}

// TestSignInRefused: every way a sign-in must fail, with what the person
// reads; none adds the browser's key to any account.
func TestSignInRefused(t *testing.T) {
	r := newRig(t)
	flipSig := func(tok string) string {
		// A different signature: the last character of the JWS changes.
		if tok[len(tok)-2] == 'A' {
			return tok[:len(tok)-2] + "B" + tok[len(tok)-1:]
		}
		return tok[:len(tok)-2] + "A" + tok[len(tok)-1:]
	}
	otherClaims := func(tok string) string {
		// Another payload under the same signature (sub changed to id1).
		p := strings.Split(tok, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(p[1])
		raw = bytes.Replace(raw, []byte(`"id2"`), []byte(`"id1"`), 1)
		p[1] = base64.RawURLEncoding.EncodeToString(raw)
		return strings.Join(p, ".")
	}
	for _, tc := range []struct {
		name, user string
		// edit changes the flow: it gets the browser, the start URL and
		// returns the callback URL to load, and the browser to load it in.
		edit func(t *testing.T, b *browser, start string) (*browser, string)
		want string
		code int
	}{
		{name: "unknown subject", user: "test-user2", code: http.StatusForbidden, want: "not linked",
			edit: func(t *testing.T, b *browser, start string) (*browser, string) {
				if err := r.store.LinkOIDC(context.Background(), "acme", r.issuer, "id2", ""); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.store.LinkOIDC(context.Background(), "acme", r.issuer, "id2", "bob") })
				return b, r.login(t, b, start, "test-user2")
			}},
		{name: "linked but only a member", code: http.StatusForbidden, want: "not a helper or admin of acme",
			edit: func(t *testing.T, b *browser, start string) (*browser, string) {
				return b, r.login(t, b, start, "test-user2")
			}},
		{name: "tampered state", code: http.StatusBadRequest, want: "expired",
			edit: func(t *testing.T, b *browser, start string) (*browser, string) {
				cb, _ := url.Parse(r.login(t, b, start, "test-user@127.0.0.1"))
				q := cb.Query()
				q.Set("state", q.Get("state")+"x")
				cb.RawQuery = q.Encode()
				return b, cb.String()
			}},
		{name: "callback in another browser", code: http.StatusBadRequest, want: "another browser",
			edit: func(t *testing.T, b *browser, start string) (*browser, string) {
				// The other browser has begun a sign-in of its own: it
				// has a cookie, just not this sign-in's.
				o := r.browser(t)
				r.begin(t, o)
				return o, r.login(t, b, start, "test-user@127.0.0.1")
			}},
		{name: "start in another browser", code: http.StatusBadRequest, want: "another browser",
			edit: func(t *testing.T, b *browser, start string) (*browser, string) {
				o := r.browser(t)
				r.begin(t, o)
				return o, start
			}},
		{name: "tampered nonce", code: http.StatusForbidden, want: "belongs to another sign-in",
			edit: func(t *testing.T, b *browser, start string) (*browser, string) {
				// Stop on the way to the provider and change the nonce
				// there, as an attacker replaying another sign-in would.
				b.stop = func(req *http.Request) bool { return req.URL.Path == "/auth" }
				resp := get(t, b.c, start)
				b.stop = nil
				auth, _ := url.Parse(resp.Header.Get("Location"))
				q := auth.Query()
				if q.Get("nonce") == "" || q.Get("code_challenge_method") != "S256" || q.Get("state") == "" {
					t.Errorf("authorization request without nonce, PKCE S256 or state: %s", auth)
				}
				q.Set("nonce", "attacker")
				auth.RawQuery = q.Encode()
				return b, r.login(t, b, auth.String(), "test-user@127.0.0.1")
			}},
		{name: "ID token with a wrong signature", code: http.StatusForbidden, want: "did not verify",
			edit: func(t *testing.T, b *browser, start string) (*browser, string) {
				r.tamperToken.Store(&flipSig)
				t.Cleanup(func() { r.tamperToken.Store(nil) })
				return b, r.login(t, b, start, "test-user@127.0.0.1")
			}},
		{name: "ID token with other claims", code: http.StatusForbidden, want: "did not verify",
			edit: func(t *testing.T, b *browser, start string) (*browser, string) {
				r.tamperToken.Store(&otherClaims)
				t.Cleanup(func() { r.tamperToken.Store(nil) })
				return b, r.login(t, b, start, "test-user2")
			}},
		{name: "tampered code", code: http.StatusForbidden, want: "did not confirm",
			edit: func(t *testing.T, b *browser, start string) (*browser, string) {
				cb, _ := url.Parse(r.login(t, b, start, "test-user@127.0.0.1"))
				q := cb.Query()
				q.Set("code", q.Get("code")+"x")
				cb.RawQuery = q.Encode()
				return b, cb.String()
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := r.browser(t)
			start := r.begin(t, b)
			in, cb := tc.edit(t, b, start)
			resp := get(t, in.c, cb)
			body := text(resp)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("got %s %q, want %d and %q", resp.Status, body, tc.code, tc.want)
			}
			if _, err := r.store.DeviceByKey(context.Background(), b.key.Public().(ed25519.PublicKey)); !errors.Is(err, hub.ErrNotFound) {
				t.Errorf("the refused browser's key is a device: %v", err)
			}
		})
	}
}

// TestBeginRefused: begin only from the page, for an organisation that
// signs in with OpenID Connect.
func TestBeginRefused(t *testing.T) {
	r := newRig(t)
	b := r.browser(t)
	for _, tc := range []struct {
		name, origin, org string
		code              int
	}{
		{"another site", "https://evil.example", "acme", http.StatusForbidden},
		{"no Origin", "", "acme", http.StatusForbidden},
		{"no provider", r.origin, "other", http.StatusNotFound},
		{"bad org id", r.origin, "ACME!", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"org": tc.org, "key": b.pub(), "device": "x"})
			req, _ := http.NewRequest(http.MethodPost, r.origin+"/v1/oidc/begin", bytes.NewReader(body))
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := b.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("%s, want %d", resp.Status, tc.code)
			}
		})
	}
	if n := r.svc.Live(); n != 0 {
		t.Errorf("%d sign-ins kept after refused begins", n)
	}
	// One address holds at most MaxCeremoniesPerAddress sign-ins.
	for range oidclogin.MaxCeremoniesPerAddress {
		r.begin(t, b)
	}
	body, _ := json.Marshal(map[string]string{"org": "acme", "key": b.pub(), "device": "x"})
	req, _ := http.NewRequest(http.MethodPost, r.origin+"/v1/oidc/begin", bytes.NewReader(body))
	req.Header.Set("Origin", r.origin)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("begin %d from one address: %s, want 429", oidclogin.MaxCeremoniesPerAddress+1, resp.Status)
	}
}

// noOrgs is an organisations' store with no OpenID provider at all.
type noOrgs struct{}

func (noOrgs) OIDC(context.Context, string) (hub.OIDC, error) { return hub.OIDC{}, hub.ErrNotFound }
func (noOrgs) OIDCUser(context.Context, string, string, string) (string, error) {
	return "", hub.ErrNotFound
}
func (noOrgs) Roles(context.Context, string) (map[string]string, error) { return nil, nil }

// FuzzRequests: whatever a client sends to /v1/oidc/ (method, path, query,
// body, cookie), the server answers without failing itself, and keeps no
// sign-in it did not begin.
func FuzzRequests(f *testing.F) {
	f.Add("POST", "begin", "", `{"org":"acme","key":"`+strings.Repeat("A", 43)+`","device":"x"}`, "")
	f.Add("GET", "start", "state=x&sig=y", "", "c")
	f.Add("GET", "callback", "state=x&code=y&error=access_denied&error_description=%3Cb%3E", "", "c")
	f.Add("GET", "callback", "state=&code=", "", "")
	f.Add("POST", "begin", "", `{"org":"acme","key":1}`, "")
	f.Add("POST", "begin", "", `{"org":"acme"}{}`, "")
	svc, err := oidclogin.New(oidclogin.Config{Origin: "https://localhost", Orgs: noOrgs{}, Accounts: passkey.HubAccounts{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, query, body, cookie string) {
		req, err := http.NewRequest(method, "https://localhost/v1/oidc/"+url.PathEscape(path)+"?"+query, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Origin", "https://localhost")
		req.Header.Set("Cookie", oidclogin.CookieName+"="+url.QueryEscape(cookie))
		w := httptest.NewRecorder()
		svc.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Errorf("%s %s?%s: %d %s", method, path, query, w.Code, w.Body)
		}
		if n := svc.Live(); n != 0 {
			t.Errorf("%d sign-ins kept", n)
		}
	})
}

// TestSignInCreatesAccount: an admin named a helper and linked their
// subject before the account existed; the first sign-in creates it, with
// this browser as its first (confirmed) device.
func TestSignInCreatesAccount(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if err := r.store.SetRole(ctx, "acme", "hal", messenger.OrgHelper); err != nil {
		t.Fatal(err)
	}
	if err := r.store.LinkOIDC(ctx, "acme", r.issuer, "id1", "hal"); err != nil {
		t.Fatal(err)
	}
	b := r.browser(t)
	resp := get(t, b.c, r.login(t, b, r.begin(t, b), "test-user@127.0.0.1"))
	if loc := resp.Header.Get("Location"); loc != "/#signed-in=hal&confirmed=1" {
		t.Fatalf("callback: %s, Location %q: %s", resp.Status, loc, text(resp))
	}
	d, err := r.store.DeviceByKey(ctx, b.key.Public().(ed25519.PublicKey))
	if err != nil || d.User != "hal" || d.Name != "Chromium on Linux" {
		t.Errorf("the browser's device: %+v, %v", d, err)
	}
}
