package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/internal/natstest"
	"github.com/assist-project/assist/server"
)

// clusterNodes prepares what the nodes of one cluster share, as an
// operator would: one certificate (--cert, --key), one TURN secret
// (--turn-secret-file) and one audit key (copied into each --data).
// newData returns a fresh --data directory holding the audit key; args
// are the flags naming the rest.
func clusterNodes(t *testing.T) (newData func() string, args []string) {
	t.Helper()
	shared := t.TempDir()
	if _, err := server.LoadOrCreateCert(shared, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(shared, "turn-secret")
	if err := os.WriteFile(secret, []byte("cluster-test-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(shared, "audit.key")
	if _, err := audit.LoadOrCreateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	newData = func() string {
		d := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "audit.key"), key, 0o600); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return newData, []string{"--cert", filepath.Join(shared, server.CertFile), "--key", filepath.Join(shared, server.KeyFile),
		"--turn-secret-file", secret}
}

// TestServeBusSignalling: two `assist serve --bus` nodes: a novice
// registered on node a and an expert joining on node b are paired and
// relay both ways; both nodes are ready and label their metrics; a node
// with a certificate of its own is refused with what to do.
func TestServeBusSignalling(t *testing.T) {
	ns := natstest.Start(t)
	newData, shared := clusterNodes(t)
	a := startServe(t, newData(), append([]string{"--bus", ns.URL, "--node", "a"}, shared...)...)
	b := startServe(t, newData(), append([]string{"--bus", ns.URL, "--node", "b"}, shared...)...)
	if a.Fingerprint != b.Fingerprint {
		t.Fatalf("fingerprints %s and %s, want one", a.Fingerprint, b.Fingerprint)
	}
	for _, p := range []*servedProc{a, b} {
		if code, body, err := lab.GetPinned(p.URL+"/readyz", p.Fingerprint); code != 200 {
			t.Errorf("/readyz: %d %q %v", code, body, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(p *servedProc) *websocket.Conn {
		ws, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(p.URL, "https")+"/v1/signal",
			&websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: server.PinnedTLSConfig(p.Fingerprint)}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		return ws
	}
	send := func(ws *websocket.Conn, m string) {
		if err := ws.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(ws *websocket.Conn, want string) server.Message {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("want %s: %v", want, err)
		}
		m, err := server.ParseMessage(b)
		if err != nil || m.Type != want {
			t.Fatalf("got %s (%v), want %s", b, err, want)
		}
		return m
	}
	novice := dial(a)
	send(novice, `{"type":"register","id":"4242","expires":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`)
	expect(novice, server.TypeRegistered)
	expert := dial(b)
	send(expert, `{"type":"join","id":"4242"}`)
	e := expect(expert, server.TypePaired)
	expect(novice, server.TypePaired)
	send(expert, `{"type":"relay","data":{"to":"novice"},"session":"`+e.Session+`"}`)
	if m := expect(novice, server.TypeRelay); string(m.Data) != `{"to":"novice"}` {
		t.Errorf("the novice got %s", m.Data)
	}
	send(novice, `{"type":"relay","data":{"to":"expert"}}`)
	if m := expect(expert, server.TypeRelay); string(m.Data) != `{"to":"expert"}` {
		t.Errorf("the expert got %s", m.Data)
	}
	_, metrics, _ := lab.GetPinned(a.URL+"/metrics", a.Fingerprint)
	if !strings.Contains(metrics, `assist_signal_remote_clients{node="a"} 1`) {
		t.Errorf("node a's /metrics does not count b's expert:\n%.3000s", metrics)
	}

	// Without NATS neither node is ready; both recover by themselves.
	ns.Stop()
	waitReady := func(p *servedProc, want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body, _ := lab.GetPinned(p.URL+"/readyz", p.Fingerprint)
			if code == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz: %d %q, want %d", code, body, want)
			}
			time.Sleep(100 * time.Millisecond) // nats.go reports its state; nothing announces it to us
		}
	}
	waitReady(a, 503)
	waitReady(b, 503)
	ns.Restart(t)
	waitReady(a, 200)
	waitReady(b, 200)

	// A node with a certificate of its own would break every client's pin.
	code, _, stderr := runAssist(t, "serve", "--listen", "127.0.0.1:0", "--data", newData(), "--turn-listen", "off", "--turns-listen", "off",
		"--bus", ns.URL, "--node", "c", "--turn-secret-file", shared[5])
	if code != 1 || !strings.Contains(stderr, "give every node the same --cert and --key") {
		t.Errorf("a node with another certificate: exit %d, stderr:\n%s", code, stderr)
	}
}
