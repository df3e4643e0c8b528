package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/server"
)

// Issue 9's "done when", end to end with real processes: one `assist
// serve`, three people each with their own ASSIST_CONFIG_DIR, the CLI's
// messenger commands, and the session an accepted request starts shown on
// the novice's real Xvfb desktop. Nobody types a password.

// expectAll reads p's lines until each pattern matched a line of its own,
// in any order (a command that prints one line per contact).
func (p *proc) expectAll(patterns ...string) {
	p.t.Helper()
	left := make([]*regexp.Regexp, len(patterns))
	for i, pat := range patterns {
		left[i] = regexp.MustCompile(pat)
	}
	timeout := time.After(lineTimeout)
	var seen []string
	for len(left) > 0 {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("%s ended before printing %q; printed %q; stderr: %s", p.name, left, seen, p.stderr)
			}
			seen = append(seen, l)
			for i, re := range left {
				if re.MatchString(l) {
					left = append(left[:i], left[i+1:]...)
					break
				}
			}
		case <-timeout:
			p.t.Fatalf("%s: no lines %q in %v; printed %q; stderr: %s", p.name, left, lineTimeout, seen, p.stderr)
		}
	}
}

// presenceWithin is the bound on presence delivery.
const presenceWithin = time.Second

// sidPattern matches a messenger session id, which no log may hold.
var sidPattern = regexp.MustCompile(`r-[a-z2-7]{26}`)

// TestMessengerEndToEnd: nora (the novice), eddie and carl log in to one
// assist serve and become each other's contacts by code; presence reaches
// a contact within a second; nora asks carl, who declines, then eddie, who
// accepts; the session starts by itself (no code, no password typed), nora
// is asked as always, and eddie's viewer shows her desktop pixel-exactly,
// while nora is "busy" to her contacts. A server that swaps a key is in
// TestMessengerEndToEndHostile.
func TestMessengerEndToEnd(t *testing.T) {
	e2e(t)
	d := newDesktop(t)
	srv := startServe(t, t.TempDir())
	nora, eddie, carl := newCLIUser(t, "nora"), newCLIUser(t, "eddie"), newCLIUser(t, "carl")
	display := map[*cliUser]string{nora: "Nora Novice", eddie: "Eddie Expert", carl: "Carl Contact"}
	for _, u := range []*cliUser{nora, eddie, carl} {
		u.login(t, srv, "--display-name", display[u])
	}
	pairCLI(t, nora, eddie)
	pairCLI(t, nora, carl)
	pairCLI(t, eddie, carl)
	if out := nora.run(t, "contacts"); out != "carl offline\neddie offline\n" && out != "eddie offline\ncarl offline\n" {
		t.Fatalf("nora's contacts: %q", out)
	}

	// Presence: carl watches; each of the others coming online (their
	// requests listeners) reaches him within a second.
	watch := carl.start(t, "contacts", "--watch")
	watch.expectAll(`^presence: nora offline$`, `^presence: eddie offline$`)
	online := func(u *cliUser) *proc {
		t.Helper()
		start := time.Now()
		p := u.start(t, "requests", "--no-browser", "--no-page", "--display", d.Display)
		watch.expect(`^presence: ` + u.name + ` online$`)
		// From the command's start, so the bound covers its login too.
		if took := time.Since(start); took > presenceWithin {
			t.Errorf("carl saw %s online %v after %s started, want within %v", u.name, took, u.name, presenceWithin)
		} else {
			t.Logf("carl saw %s online %v after %s started", u.name, took, u.name)
		}
		return p
	}
	eddieReqs := online(eddie)
	carlReqs := carl.start(t, "requests", "--no-browser")
	noraIdle := online(nora)
	noraIdle.kill()
	start := time.Now()
	watch.expect(`^presence: nora offline$`)
	if took := time.Since(start); took > presenceWithin {
		t.Errorf("carl saw nora offline %v after her command ended, want within %v", took, presenceWithin)
	}

	// nora asks carl, who declines.
	ask := nora.start(t, "ask", "carl", "--display", d.Display, "--no-page")
	ask.expect(`^asked: carl$`)
	id := carlReqs.expect(`^request: (\S+) from nora$`)[1]
	carlReqs.send("decline " + id)
	ask.expect(`^declined by carl$`)
	if err := ask.wait(); err != nil {
		t.Fatalf("ask after a decline: %v; stderr: %s", err, ask.stderr)
	}

	// nora asks eddie, who accepts: the session starts over today's paths.
	ask = nora.start(t, "ask", "eddie", "--display", d.Display, "--no-page")
	ask.expect(`^asked: eddie$`)
	id = eddieReqs.expect(`^request: (\S+) from nora$`)[1]
	eddieReqs.send("accept " + id)
	ask.expect(`^accepted by eddie$`)
	eddieReqs.expect(`^connected to Nora Novice via the rendezvous server \(\S+\)$`)
	eddieReqs.expect(`^path: \S+$`)
	rfbAddr := eddieReqs.expect(`^rfb on (127\.0\.0\.1:\d+)$`)[1]
	eddieReqs.expect(`^browser viewer: http://127\.0\.0\.1:\d+/`)
	// The novice's consent, asked exactly as for an invitation, of the
	// expert she knows by name.
	ask.expect(`^Eddie Expert connected from \S+ through the Assist server$`)
	ask.expect(`^Eddie Expert wants to see your screen\. Allow\? \[y/N\]$`)
	ask.send("y")
	eddieReqs.expect(`^state: viewing`)
	watch.expect(`^presence: nora busy$`)
	lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)
	d.Append(t, 3) // and it follows the desktop
	lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)

	// nora ends the session: both sides say so, and her ask is done.
	ask.send("q")
	eddieReqs.expect(`^state: ended`)
	if err := ask.wait(); err != nil {
		t.Errorf("ask after the session: %v; stderr: %s", err, ask.stderr)
	}
	watch.expect(`^presence: nora offline$`)

	// The session's id is a capability: no log line holds it.
	for name, logs := range map[string]string{"assist serve": srv.stderr.String(), "nora": ask.stderr.String(),
		"eddie": eddieReqs.stderr.String()} {
		if sid := sidPattern.FindString(logs); sid != "" {
			t.Errorf("%s logged the session id %s", name, sid)
		}
	}
}

// hostileServe is a rendezvous server that turned hostile: a proxy in front
// of a real assist serve with the same certificate (so the clients' pins and
// logins pass, as they would for a hostile operator), which passes the
// signalling through and hands every messenger message from the server to
// a client to edit.
func startHostileServe(t *testing.T, data string, real *servedProc, edit func(m map[string]any)) *servedProc {
	t.Helper()
	cert, err := server.LoadOrCreateCert(data)
	if err != nil {
		t.Fatal(err)
	}
	if server.CertFingerprint(cert) != real.Fingerprint {
		t.Fatal("the proxy's certificate is not the server's")
	}
	upURL, _ := url.Parse(real.URL)
	upTLS := server.PinnedTLSConfig(real.Fingerprint)
	rp := httputil.NewSingleHostReverseProxy(upURL)
	rp.Transport = &http.Transport{TLSClientConfig: upTLS}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/messenger" {
			rp.ServeHTTP(w, r) // /v1/signal (WebSocket upgrades too), /v1/ice
			return
		}
		client, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer client.CloseNow()
		up, _, err := websocket.Dial(ctx, "wss://"+upURL.Host+"/v1/messenger",
			&websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: upTLS}}})
		if err != nil {
			return
		}
		defer up.CloseNow()
		up.SetReadLimit(1 << 20)
		client.SetReadLimit(1 << 20)
		pipe := func(from, to *websocket.Conn, toClient bool) {
			defer from.CloseNow()
			defer to.CloseNow()
			for {
				typ, b, err := from.Read(ctx)
				if err != nil {
					return
				}
				var m map[string]any
				if toClient && json.Unmarshal(b, &m) == nil {
					edit(m)
					b, _ = json.Marshal(m)
				}
				if to.Write(ctx, typ, b) != nil {
					return
				}
			}
		}
		var inner sync.WaitGroup
		inner.Go(func() { pipe(client, up, false) })
		inner.Go(func() { pipe(up, client, true) })
		inner.Wait()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	wg.Go(func() { _ = hs.ServeTLS(ln, "", "") })
	t.Cleanup(func() {
		cancel()
		hs.Close()
		wg.Wait()
	})
	return &servedProc{URL: "https://" + ln.Addr().String(), Fingerprint: real.Fingerprint}
}

// TestMessengerEndToEndHostile: the server's operator turns hostile and
// puts its own key in place of a person's. In the pairing (the key each
// side sends, MAC'd under the PAKE on the code) it gets no contact on either
// side; in an accepted request (the peer's device key) it gets no session:
// neither side connects, nothing of the desktop is shown. The same proxy
// passing everything honestly gets both, so the refusals are the swaps'.
func TestMessengerEndToEndHostile(t *testing.T) {
	e2e(t)
	d := newDesktop(t)
	data := t.TempDir()
	real := startServe(t, data)
	eve := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	eveB64 := base64.RawURLEncoding.EncodeToString(eve)
	var mode atomic.Value // "", "pairing" or "session"
	mode.Store("")
	var swapped atomic.Int32
	srv := startHostileServe(t, data, real, func(m map[string]any) {
		switch {
		case mode.Load() == "pairing" && m["type"] == "pair-relay":
			// The pairing message is JSON, base64url in "data"; the key
			// it carries is the sender's.
			s, _ := m["data"].(string)
			raw, err := base64.RawURLEncoding.DecodeString(s)
			if err != nil {
				return
			}
			var pm map[string]any
			if json.Unmarshal(raw, &pm) != nil || pm["key"] == nil {
				return
			}
			pm["key"] = eveB64
			raw, _ = json.Marshal(pm)
			m["data"] = base64.RawURLEncoding.EncodeToString(raw)
			swapped.Add(1)
		case mode.Load() == "session" && m["type"] == "accepted":
			peer, _ := m["peer"].(map[string]any)
			if dev, _ := peer["device"].(map[string]any); dev != nil {
				dev["key"] = eveB64
				swapped.Add(1)
			}
		}
	})
	nora, eddie := newCLIUser(t, "nora"), newCLIUser(t, "eddie")
	nora.login(t, srv, "--display-name", "Nora Novice")
	eddie.login(t, srv, "--display-name", "Eddie Expert")

	// A swapped key in the pairing: no contact, on either side.
	mode.Store("pairing")
	inv := nora.start(t, "contacts", "invite")
	code := inv.expect(`^contact code: (\S+)$`)[1]
	if out, err := eddie.try(t, "contacts", "add", code); err == nil {
		t.Fatalf("eddie added a contact whose key the server swapped: %q", out)
	}
	if err := inv.wait(); err == nil {
		t.Error("nora's invite succeeded although the key was swapped")
	}
	if swapped.Load() == 0 {
		t.Fatal("the hostile server swapped nothing: the pairing's format changed, the test must follow")
	}
	for _, u := range []*cliUser{nora, eddie} {
		if c := u.config(t).Contacts; len(c) != 0 {
			t.Errorf("%s pinned %+v", u.name, c)
		}
		if out := u.run(t, "contacts"); out != "" {
			t.Errorf("%s's contacts: %q", u.name, out)
		}
	}

	// Honest: the contact is made.
	mode.Store("")
	pairCLI(t, nora, eddie)

	// A swapped key in "accepted": no session.
	mode.Store("session")
	swapped.Store(0)
	reqs := eddie.start(t, "requests", "--no-browser")
	ask := nora.start(t, "ask", "eddie", "--display", d.Display, "--no-page")
	ask.expect(`^asked: eddie$`)
	id := reqs.expect(`^request: (\S+) from nora$`)[1]
	reqs.send("accept " + id)
	ask.expect(`^accepted by eddie$`)
	if err := ask.wait(); err == nil {
		t.Error("nora's ask succeeded although the server swapped eddie's key")
	}
	reqs.kill()
	if swapped.Load() == 0 {
		t.Fatal("the hostile server swapped nothing in accepted")
	}
	out := strings.Join([]string{ask.stderr.String(), reqs.stderr.String()}, "\n")
	for _, p := range []string{"connected from", "wants to see your screen"} {
		if strings.Contains(out, p) {
			t.Errorf("a session started with a swapped key (%q):\n%s", p, out)
		}
	}

	// The same proxy, honest again: the session runs through it.
	mode.Store("")
	reqs = eddie.start(t, "requests", "--no-browser")
	ask = nora.start(t, "ask", "eddie", "--display", d.Display, "--no-page")
	ask.expect(`^asked: eddie$`)
	id = reqs.expect(`^request: (\S+) from nora$`)[1]
	reqs.send("accept " + id)
	rfbAddr := reqs.expect(`^rfb on (127\.0\.0\.1:\d+)$`)[1]
	ask.expect(`^Eddie Expert wants to see your screen\. Allow\? \[y/N\]$`)
	ask.send("y")
	reqs.expect(`^state: viewing`)
	lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)
}
