package passkey

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/web"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/assist-project/assist/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.M(m)) }

// fakeAccounts is the messenger's accounts as the Service sees them.
type fakeAccounts struct {
	mu      sync.Mutex
	display map[string]string
	// devices: key (as a string) -> {user, confirmed}
	devices map[string]fakeDevice
}

type fakeDevice struct {
	user, name string
	confirmed  bool
}

func newFakeAccounts() *fakeAccounts {
	return &fakeAccounts{display: map[string]string{}, devices: map[string]fakeDevice{}}
}

func (a *fakeAccounts) Exists(_ context.Context, user string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.display[user]
	return ok, nil
}

func (a *fakeAccounts) Create(_ context.Context, user, display string, key ed25519.PublicKey, device string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.display[user]; ok {
		return ErrTaken
	}
	if _, ok := a.devices[string(key)]; ok {
		return ErrKeyInUse
	}
	a.display[user] = display
	a.devices[string(key)] = fakeDevice{user: user, name: device, confirmed: true}
	return nil
}

func (a *fakeAccounts) AddDevice(_ context.Context, user string, key ed25519.PublicKey, device string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if d, ok := a.devices[string(key)]; ok {
		if d.user != user {
			return false, ErrKeyInUse
		}
		return false, nil
	}
	a.devices[string(key)] = fakeDevice{user: user, name: device}
	return true, nil
}

func (a *fakeAccounts) Display(_ context.Context, user string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.display[user], nil
}

func (a *fakeAccounts) device(key ed25519.PublicKey) (fakeDevice, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, ok := a.devices[string(key)]
	return d, ok
}

type testServer struct {
	svc      *Service
	accounts *fakeAccounts
	store    *SQLiteStore
	url      string // https://localhost:PORT
	srv      *httptest.Server
	clock    *fakeClock
}

type fakeClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// startServer serves the Service and the web app's scripts over HTTPS on
// loopback; browsers reach it as https://localhost:PORT (passkeys refuse IP
// addresses).
func startServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{accounts: newFakeAccounts(), clock: &fakeClock{}}
	store, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "passkeys.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ts.store = store
	mux := http.NewServeMux()
	ts.srv = httptest.NewUnstartedServer(mux)
	ts.srv.StartTLS()
	t.Cleanup(ts.srv.Close)
	_, port, _ := strings.Cut(strings.TrimPrefix(ts.srv.URL, "https://"), ":")
	ts.url = "https://localhost:" + port
	fp := sha256.Sum256(ts.srv.Certificate().Raw)
	ts.svc, err = New(Config{RPID: "localhost", Origins: []string{ts.url}, Fingerprint: fp,
		Accounts: ts.accounts, Store: store, Now: ts.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/v1/webauthn/", ts.svc)
	mux.HandleFunc("/blank.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>passkey test</title>")
	})
	mux.Handle("/", http.FileServerFS(web.Expert()))
	return ts
}

// post sends a request as the page would (or, with another origin, as a
// foreign page would).
func (ts *testServer) post(t *testing.T, path, origin string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, ts.srv.URL+"/v1/webauthn/"+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	res, err := ts.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey, string) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv, base64.RawURLEncoding.EncodeToString(pub)
}

func TestNewRefusesIPAddress(t *testing.T) {
	for _, rp := range []string{"127.0.0.1", "::1"} {
		_, err := New(Config{RPID: rp, Origins: []string{"https://" + rp}, Accounts: newFakeAccounts(), Store: &SQLiteStore{}})
		if err == nil || !strings.Contains(err.Error(), "host name") {
			t.Errorf("New with RPID %s: %v, want a refusal naming host names", rp, err)
		}
	}
}

// TestCeremonyRules: foreign origins, malformed requests, unknown and
// reused ceremonies, expiry, the per-address limit. No browser needed.
func TestCeremonyRules(t *testing.T) {
	ts := startServer(t)
	_, _, key := newKey(t)
	begin := map[string]any{"user": "alice", "display": "Alice A", "key": key, "device": "Firefox on Linux"}

	t.Run("foreign origin", func(t *testing.T) {
		for _, origin := range []string{"", "https://evil.example", "http" + strings.TrimPrefix(ts.url, "https")} {
			if code, out := ts.post(t, "register/begin", origin, begin); code != http.StatusForbidden || out["error"] != "origin" {
				t.Errorf("origin %q: %d %v, want 403 origin", origin, code, out)
			}
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for name, body := range map[string]any{
			"bad user":      map[string]any{"user": "Alice!", "display": "A", "key": key, "device": "d"},
			"long user":     map[string]any{"user": strings.Repeat("a", 33), "display": "A", "key": key, "device": "d"},
			"no display":    map[string]any{"user": "alice", "display": "", "key": key, "device": "d"},
			"control chars": map[string]any{"user": "alice", "display": "A\x1b[31m", "key": key, "device": "d"},
			"short key":     map[string]any{"user": "alice", "display": "A", "key": "AAAA", "device": "d"},
			"unknown field": map[string]any{"user": "alice", "display": "A", "key": key, "device": "d", "admin": true},
		} {
			if code, out := ts.post(t, "register/begin", ts.url, body); code != http.StatusBadRequest {
				t.Errorf("%s: %d %v, want 400", name, code, out)
			}
		}
	})
	t.Run("taken", func(t *testing.T) {
		ts.accounts.Create(t.Context(), "bob", "Bob", make(ed25519.PublicKey, 32), "cli")
		code, out := ts.post(t, "register/begin", ts.url, map[string]any{"user": "bob", "display": "Bob", "key": key, "device": "d"})
		if code != http.StatusConflict || out["error"] != "taken" || !strings.Contains(out["message"].(string), "Sign in") {
			t.Errorf("taken name: %d %v", code, out)
		}
	})
	t.Run("once", func(t *testing.T) {
		code, out := ts.post(t, "register/begin", ts.url, begin)
		if code != http.StatusOK {
			t.Fatalf("begin: %d %v", code, out)
		}
		id := out["ceremony"].(string)
		pk := out["publicKey"].(map[string]any)
		if rp := pk["rp"].(map[string]any); rp["id"] != "localhost" {
			t.Errorf("relying party %v, want localhost", rp)
		}
		finish := map[string]any{"ceremony": id, "credential": map[string]any{}, "sig": ""}
		if code, out := ts.post(t, "register/finish", ts.url, finish); code != http.StatusBadRequest || out["error"] != "device" {
			t.Errorf("finish without a device signature: %d %v", code, out)
		}
		if code, out := ts.post(t, "register/finish", ts.url, finish); code != http.StatusBadRequest || out["error"] != "expired" {
			t.Errorf("the same ceremony again: %d %v, want expired", code, out)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		_, out := ts.post(t, "login/begin", ts.url, map[string]any{"key": key, "device": "d"})
		ts.clock.advance(CeremonyTTL + time.Second)
		if ts.svc.Live() != 1 {
			t.Errorf("%d live ceremonies, want 1", ts.svc.Live())
		}
		if code, out := ts.post(t, "login/finish", ts.url, map[string]any{"ceremony": out["ceremony"], "credential": map[string]any{}, "sig": ""}); code != http.StatusBadRequest || out["error"] != "expired" {
			t.Errorf("finish after %v: %d %v, want expired", CeremonyTTL, code, out)
		}
		if ts.svc.Live() != 0 {
			t.Errorf("%d live ceremonies after expiry, want 0", ts.svc.Live())
		}
	})
	t.Run("wrong kind", func(t *testing.T) {
		_, out := ts.post(t, "login/begin", ts.url, map[string]any{"key": key, "device": "d"})
		if code, out := ts.post(t, "register/finish", ts.url, map[string]any{"ceremony": out["ceremony"], "credential": map[string]any{}, "sig": ""}); code != http.StatusBadRequest || out["error"] != "expired" {
			t.Errorf("a sign-in finished as a registration: %d %v", code, out)
		}
	})
	t.Run("per address", func(t *testing.T) {
		ts.clock.advance(CeremonyTTL + time.Second)
		for i := range MaxCeremoniesPerAddress {
			if code, out := ts.post(t, "login/begin", ts.url, map[string]any{"key": key, "device": "d"}); code != http.StatusOK {
				t.Fatalf("begin %d: %d %v", i, code, out)
			}
		}
		if code, out := ts.post(t, "login/begin", ts.url, map[string]any{"key": key, "device": "d"}); code != http.StatusTooManyRequests {
			t.Errorf("begin %d: %d %v, want 429", MaxCeremoniesPerAddress+1, code, out)
		}
		ts.clock.advance(CeremonyTTL + time.Second)
		if code, out := ts.post(t, "login/begin", ts.url, map[string]any{"key": key, "device": "d"}); code != http.StatusOK {
			t.Errorf("begin after the others expired: %d %v", code, out)
		}
	})
	t.Run("creations per address", func(t *testing.T) {
		ts.clock.advance(CeremonyTTL + time.Second)
		begin := func(i int) int {
			_, _, key := newKey(t)
			code, _ := ts.post(t, "register/begin", ts.url, map[string]any{"user": fmt.Sprintf("new%d", i), "display": "N", "key": key, "device": "d"})
			return code
		}
		// The earlier subtests began registrations too (alice, once).
		ts.clock.advance(CreateBurst * CreateEvery)
		for i := range CreateBurst {
			if code := begin(i); code != http.StatusOK {
				t.Fatalf("registration %d: %d", i, code)
			}
		}
		if code := begin(99); code != http.StatusTooManyRequests {
			t.Errorf("registration %d from one address: %d, want 429", CreateBurst+1, code)
		}
		ts.clock.advance(CreateEvery)
		if code := begin(100); code != http.StatusOK {
			t.Errorf("registration after %v: %d", CreateEvery, code)
		}
	})
	t.Run("server", func(t *testing.T) {
		res, err := ts.srv.Client().Get(ts.srv.URL + "/v1/webauthn/server")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]string
		json.NewDecoder(res.Body).Decode(&out)
		want := sha256.Sum256(ts.srv.Certificate().Raw)
		if out["fingerprint"] != fmt.Sprintf("sha256:%x", want) {
			t.Errorf("fingerprint %q, want the certificate's", out["fingerprint"])
		}
	})
}

// TestPasskeysInChromium: register and sign in with Chromium's virtual
// authenticator, through web/expert/passkey.js.
func TestPasskeysInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	ts := startServer(t)
	sum := sha256.Sum256(ts.srv.Certificate().RawSubjectPublicKeyInfo)
	ctx := lab.StartChromium(t, 800, 600, chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(sum[:])))
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.url+"/blank.html")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}}); err != nil {
		t.Fatal(err)
	}
	// run calls passkey.js's fn with args, the device key signing with
	// priv (or, with wrong set, with another key), and returns the result
	// or the error as {code, message}.
	run := func(t *testing.T, fn string, args map[string]any, priv ed25519.PrivateKey) map[string]any {
		t.Helper()
		seed := base64.RawURLEncoding.EncodeToString(priv.Seed())
		a, _ := json.Marshal(args)
		// The page signs with WebCrypto here; the web app signs in Go.
		expr := fmt.Sprintf(`(async () => {
			const m = await import('/passkey.js');
			const seed = m.fromB64(%q);
			const pkcs8 = new Uint8Array([0x30,0x2e,0x02,0x01,0x00,0x30,0x05,0x06,0x03,0x2b,0x65,0x70,0x04,0x22,0x04,0x20, ...seed]);
			const k = await crypto.subtle.importKey('pkcs8', pkcs8, {name: 'Ed25519'}, false, ['sign']);
			const sign = async (challenge) => {
				const ctx = new TextEncoder().encode('assist/1 passkey device\0');
				const msg = new Uint8Array([...ctx, ...challenge]);
				const sig = new Uint8Array(await crypto.subtle.sign('Ed25519', k, msg));
				return btoa(String.fromCharCode(...sig)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
			};
			try {
				return await m.%s({...%s, sign});
			} catch (e) {
				return {code: e.code || e.name, message: e.message};
			}
		})()`, seed, fn, a)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := chromedp.Run(cctx, chromedp.Evaluate[map[string]any](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		return out
	}

	pub1, priv1, key1 := newKey(t)
	out := run(t, "register", map[string]any{"user": "alice", "display": "Alice Example", "key": key1, "device": "Chromium"}, priv1)
	if out["user"] != "alice" || out["confirmed"] != true {
		t.Fatalf("register: %v", out)
	}
	if d, ok := ts.accounts.device(pub1); !ok || d.user != "alice" || !d.confirmed || d.name != "Chromium" {
		t.Errorf("after registering, the first browser is %+v (found %v), want alice's confirmed device", d, ok)
	}

	t.Run("name taken", func(t *testing.T) {
		_, priv, key := newKey(t)
		out := run(t, "register", map[string]any{"user": "alice", "display": "Mallory", "key": key, "device": "x"}, priv)
		if out["code"] != "taken" {
			t.Errorf("registering alice again: %v, want taken", out)
		}
	})

	t.Run("new browser", func(t *testing.T) {
		pub2, priv2, key2 := newKey(t)
		out := run(t, "signIn", map[string]any{"key": key2, "device": "Laptop"}, priv2)
		if out["user"] != "alice" || out["display"] != "Alice Example" || out["confirmed"] != false {
			t.Fatalf("sign in on a new browser: %v, want alice, not confirmed", out)
		}
		if d, ok := ts.accounts.device(pub2); !ok || d.user != "alice" || d.confirmed {
			t.Errorf("the new browser is %+v (found %v), want alice's unconfirmed device", d, ok)
		}
		// Signing in again changes nothing.
		if out := run(t, "signIn", map[string]any{"key": key2, "device": "Laptop"}, priv2); out["user"] != "alice" || out["confirmed"] != true {
			t.Errorf("signing in again: %v", out)
		}
	})

	t.Run("first browser signs in", func(t *testing.T) {
		if out := run(t, "signIn", map[string]any{"key": key1, "device": "Chromium"}, priv1); out["user"] != "alice" || out["confirmed"] != true {
			t.Errorf("sign in with the first browser: %v", out)
		}
	})

	t.Run("key not held", func(t *testing.T) {
		// The browser names a key (someone else's) but cannot sign with it.
		_, other, _ := newKey(t)
		pub3, _, key3 := newKey(t)
		out := run(t, "signIn", map[string]any{"key": key3, "device": "x"}, other)
		if out["code"] != "device" {
			t.Errorf("sign in naming a key not held: %v, want device", out)
		}
		if _, ok := ts.accounts.device(pub3); ok {
			t.Error("a key whose holder did not sign was added to the account")
		}
	})

	t.Run("another origin's passkey", func(t *testing.T) {
		// The same authenticator, the server's own address: the browser
		// refuses to use a passkey of localhost at 127.0.0.1.
		if err := chromedp.Do(ctx, chromedp.Navigate(ts.srv.URL+"/blank.html")); err != nil {
			t.Fatal(err)
		}
		_, priv, key := newKey(t)
		out := run(t, "signIn", map[string]any{"key": key, "device": "x"}, priv)
		if out["code"] != "origin" {
			t.Errorf("sign in from %s: %v, want origin", ts.srv.URL, out)
		}
	})
}

var endpoints = []string{"register/begin", "register/finish", "login/begin", "login/finish"}

// FuzzRequests: any body to any endpoint gets an answer, never a panic, and
// never a ceremony finished or an account touched.
func FuzzRequests(f *testing.F) {
	_, _, key := newKey(f)
	for _, seed := range []string{
		`{"user":"alice","display":"A","key":"` + key + `","device":"d"}`,
		`{"key":"` + key + `","device":"d"}`,
		`{"ceremony":"x","credential":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{}},"sig":""}`,
		`{"ceremony":"x","credential":null,"sig":null}`,
		`{}`, `[]`, `null`, `{"user":"a"}{"user":"b"}`, "\x00", `{"display":"\u0000"}`,
	} {
		for i := range endpoints {
			f.Add(uint8(i), []byte(seed))
		}
	}
	accounts := newFakeAccounts()
	store, err := OpenSQLite(context.Background(), filepath.Join(f.TempDir(), "p.sqlite"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	svc, err := New(Config{RPID: "localhost", Origins: []string{"https://localhost:1"}, Accounts: accounts, Store: store})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := endpoints[int(which)%len(endpoints)]
		r := httptest.NewRequest(http.MethodPost, "/v1/webauthn/"+path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Origin", "https://localhost:1")
		w := httptest.NewRecorder()
		svc.ServeHTTP(w, r)
		if strings.HasSuffix(path, "finish") && w.Code == http.StatusOK {
			t.Errorf("%s %q finished a ceremony", path, body)
		}
		if w.Code >= 500 {
			t.Errorf("%s %q: %d %s", path, body, w.Code, w.Body)
		}
		// Begun ceremonies are bounded by the per-address limit.
		if n := svc.Live(); n > MaxCeremoniesPerAddress {
			t.Errorf("%d live ceremonies", n)
		}
	})
}

// TestInternalAnswers: a store failure because the database cannot be
// reached (PostgreSQL restarting) answers 503 "unavailable" saying so,
// any other failure 500 "internal".
func TestInternalAnswers(t *testing.T) {
	s := &Service{cfg: Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	refused := fmt.Errorf("passkey store: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{refused, http.StatusServiceUnavailable, "unavailable"},
		{errors.New("passkey store: a damaged row"), http.StatusInternalServerError, "internal"},
	} {
		w := httptest.NewRecorder()
		s.internal(w, "login", tc.err)
		var out map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		if w.Code != tc.status || out["error"] != tc.code {
			t.Errorf("%v: %d %v, want %d %s", tc.err, w.Code, out, tc.status, tc.code)
		}
		if tc.code == "unavailable" && !strings.Contains(out["message"], "cannot reach its database") {
			t.Errorf("message %q, want it to say the database cannot be reached", out["message"])
		}
	}
}
