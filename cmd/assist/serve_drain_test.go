package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/turn/v5"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/server/relay"
)

// TestServeDrain: settings come from --config (the command line winning),
// /metrics names the node, and SIGTERM drains: /readyz turns 503 at once
// while /healthz stays 200, and after --drain-grace the connected clients
// are closed with "going away", on which they connect again; then the
// server exits 0.
func TestServeDrain(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "serve.conf")
	if err := os.WriteFile(conf, []byte("# a node\nnode = from-file\ndrain-grace = 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, filepath.Join(dir, "data"), "--config", conf, "--node", "n9")
	if code, body, err := lab.GetPinned(p.URL+"/readyz", p.Fingerprint); err != nil || code != 200 || body != "ok\n" {
		t.Fatalf("/readyz: %d %q %v", code, body, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(p.URL, "https")+"/v1/signal",
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: server.PinnedTLSConfig(p.Fingerprint)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	reg := `{"type":"register","id":"drained","expires":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`
	if err := ws.Write(ctx, websocket.MessageText, []byte(reg)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || !strings.Contains(string(b), `"registered"`) {
		t.Fatalf("register: %s %v", b, err)
	}
	_, metrics, err := lab.GetPinned(p.URL+"/metrics", p.Fingerprint)
	if err != nil || !strings.Contains(metrics, `assist_signal_connections{node="n9",role="novice"} 1`) {
		t.Errorf("/metrics does not count the novice on node n9 (%v):\n%.2000s", err, metrics)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The grace (2 s, from the file) leaves time to see both answers.
	deadline := time.Now().Add(time.Second)
	for {
		code, body, _ := lab.GetPinned(p.URL+"/readyz", p.Fingerprint)
		if code == 503 && body == "draining\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz 1 s after SIGTERM: %d %q, want 503 draining", code, body)
		}
		time.Sleep(20 * time.Millisecond) // the signal arrives asynchronously
	}
	if code, _, err := lab.GetPinned(p.URL+"/healthz", p.Fingerprint); code != 200 {
		t.Errorf("/healthz while draining: %d %v, want 200", code, err)
	}
	_, _, err = ws.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Errorf("the novice's connection ended with %v, want status 1001 going away", err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("assist serve after SIGTERM: %v; stderr: %s", err, p.stderr)
		}
		p.done <- err
	case <-time.After(20 * time.Second):
		t.Errorf("assist serve still running 20 s after SIGTERM; stderr: %s", p.stderr)
	}
}

// TestServeConfigErrors: a bad --config file is refused with its line.
func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "serve.conf")
	if err := os.WriteFile(conf, []byte("listen = 127.0.0.1:0\nlisen = x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runAssist(t, "serve", "--data", filepath.Join(dir, "data"), "--config", conf)
	if code != 1 || !strings.Contains(stderr, conf+":2: unknown setting \"lisen\"") {
		t.Errorf("assist serve with a misspelt setting: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runAssist(t, "serve", "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--node", "a.b")
	if code != 1 || !strings.Contains(stderr, "--node") {
		t.Errorf("assist serve --node a.b: exit %d, stderr %q", code, stderr)
	}
}

// TestServeDrainRelayed: on SIGTERM with --drain-timeout, a node waits for
// the sessions its TURN server relays, and exits at the bound when one
// outlives it.
func TestServeDrainRelayed(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "turn-secret")
	if err := os.WriteFile(secretFile, []byte("drain-test-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, filepath.Join(dir, "data"), "--turn-secret-file", secretFile, "--drain-timeout", "1s")
	var addr string
	for _, u := range p.ICE {
		if rest, ok := strings.CutPrefix(u, "turn:"); ok && strings.HasSuffix(rest, "?transport=udp") {
			addr = strings.TrimSuffix(rest, "?transport=udp")
		}
	}
	if addr == "" {
		t.Fatalf("no TURN over UDP in %q", p.ICE)
	}
	user, pass := relay.Credentials([]byte("drain-test-secret"), "drain-session", time.Hour, time.Now())
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: pc,
		Username: user, Password: pass, Realm: "assist"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	alloc, err := c.Allocate()
	if err != nil {
		t.Fatalf("TURN allocation: %v", err)
	}
	defer alloc.Close()

	p.stop(t)
	if !strings.Contains(p.stderr.String(), "relayed sessions still running; ending them") || !strings.Contains(p.stderr.String(), "count=1") {
		t.Errorf("assist serve did not wait for the relayed session; stderr:\n%s", p.stderr)
	}
}
