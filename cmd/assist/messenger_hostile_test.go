package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/identity"
)

// startHostileMessenger runs a messenger "server" in front of a real hub:
// it holds the same certificate (httptest servers share one), so clients'
// logins pass, and edit rewrites each message on its way (toServer says
// which way). It is the server that turns hostile.
func startHostileMessenger(t *testing.T, real *servedProc, edit func(toServer bool, m map[string]any)) *servedProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer client.CloseNow()
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		defer tr.CloseIdleConnections()
		up, _, err := websocket.Dial(ctx, strings.Replace(real.URL, "https", "wss", 1)+"/v1/messenger",
			&websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			return
		}
		defer up.CloseNow()
		pipe := func(from, to *websocket.Conn, toServer bool) {
			defer from.CloseNow()
			defer to.CloseNow()
			for {
				typ, b, err := from.Read(ctx)
				if err != nil {
					return
				}
				var m map[string]any
				if json.Unmarshal(b, &m) == nil {
					edit(toServer, m)
					b, _ = json.Marshal(m)
				}
				if to.Write(ctx, typ, b) != nil {
					return
				}
			}
		}
		var inner sync.WaitGroup
		inner.Go(func() { pipe(client, up, true) })
		inner.Go(func() { pipe(up, client, false) })
		inner.Wait()
	}))
	t.Cleanup(func() {
		cancel() // ends every relay: their reads and writes take ctx
		ts.Close()
	})
	return &servedProc{URL: ts.URL, Fingerprint: real.Fingerprint}
}

// TestMessengerCLIHostileServerSwapsPairingKey: a server that substitutes
// its own key for ada's in the pairing exchange gets no contact: bob's side
// refuses, and neither side pins anything.
func TestMessengerCLIHostileServerSwapsPairingKey(t *testing.T) {
	eveKey := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	real := startMessengerHub(t)
	srv := startHostileMessenger(t, real, func(toServer bool, m map[string]any) {
		if !toServer || m["type"] != "pair-relay" {
			return
		}
		// The relayed data is a base64url string of the pairing message.
		s, _ := m["data"].(string)
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return
		}
		var pm map[string]any
		if json.Unmarshal(raw, &pm) != nil || pm["step"] != "id" || pm["user"] != "ada" {
			return
		}
		pm["key"] = base64.RawURLEncoding.EncodeToString(eveKey)
		raw, _ = json.Marshal(pm)
		m["data"] = base64.RawURLEncoding.EncodeToString(raw)
	})
	ada, bob := newCLIUser(t, "ada"), newCLIUser(t, "bob")
	ada.login(t, srv)
	bob.login(t, srv)
	inv := ada.start(t, "contacts", "invite")
	code := inv.expect(`^contact code: (\S+)$`)[1]
	out, err := bob.try(t, "contacts", "add", code)
	if err == nil || !strings.Contains(out, "altered on the way") {
		t.Fatalf("bob added a contact whose key the server swapped: %v %q", err, out)
	}
	if err := inv.wait(); err == nil {
		t.Fatal("ada's invite succeeded although bob refused")
	}
	for _, u := range []*cliUser{ada, bob} {
		if c := u.config(t).Contacts; len(c) != 0 {
			t.Errorf("%s pinned %+v", u.name, c)
		}
		if out := u.run(t, "contacts"); out != "" {
			t.Errorf("%s's contacts on the server: %q", u.name, out)
		}
	}
}

// TestMessengerCLIHostileServerSwapsSessionKey: a server that names
// another device key for the peer of an accepted request gets no session:
// each side checks the key against its pins before deriving the password.
func TestMessengerCLIHostileServerSwapsSessionKey(t *testing.T) {
	eveKey := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	real := startMessengerHub(t)
	var swap sync.Mutex
	swapping := false
	srv := startHostileMessenger(t, real, func(toServer bool, m map[string]any) {
		swap.Lock()
		defer swap.Unlock()
		if toServer || !swapping || m["type"] != "accepted" {
			return
		}
		peer, _ := m["peer"].(map[string]any)
		dev, _ := peer["device"].(map[string]any)
		if dev != nil {
			dev["key"] = base64.RawURLEncoding.EncodeToString(eveKey)
		}
	})
	ada, bob := newCLIUser(t, "ada"), newCLIUser(t, "bob")
	ada.login(t, srv)
	bob.login(t, srv)
	pairCLI(t, ada, bob)
	if got := ada.config(t).Contacts["bob"].Keys; len(got) != 1 || got[0] == identity.EncodeKey(eveKey) {
		t.Fatalf("ada pinned %q", got)
	}
	swap.Lock()
	swapping = true
	swap.Unlock()

	reqs := bob.start(t, "requests")
	ask := ada.start(t, "ask", "bob")
	ask.expect(`^asked: bob$`)
	id := reqs.expect(`^request: (\S+) from ada$`)[1]
	reqs.send("accept " + id)
	ask.expect(`^accepted by bob$`)
	for _, p := range []*proc{ask, reqs} {
		if err := p.wait(); err == nil || !strings.Contains(p.stderr.String(), "not one you confirmed") {
			t.Errorf("%s: %v, stderr %q; want a refusal of the swapped key", p.name, err, p.stderr)
		}
	}
}
