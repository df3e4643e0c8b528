package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/server"
	"github.com/coder/websocket"
)

// TestServeMessenger: `assist serve` serves the messenger at /v1/messenger
// on its pinned certificate, keeps accounts in --data across a restart,
// and applies --max-conns-per-address to messenger connections.
func TestServeMessenger(t *testing.T) {
	data := t.TempDir()
	srv := startServe(t, data, "--max-conns-per-address", "2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, w, err := messenger.Dial(ctx, srv.URL, srv.Fingerprint, key, messenger.LoginOptions{User: "alice"})
	if err != nil {
		t.Fatalf("login: %v; stderr: %s", err, srv.stderr)
	}
	if !w.Created || w.User != "alice" {
		t.Errorf("welcome %+v", w)
	}
	if fi, err := os.Stat(filepath.Join(data, "messenger.sqlite")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("messenger.sqlite: %v, %v", fi, err)
	}
	// A second connection is allowed, a third from the same address not.
	c2, _, err := messenger.Dial(ctx, srv.URL, srv.Fingerprint, key, messenger.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: server.PinnedTLSConfig(srv.Fingerprint)}
	defer tr.CloseIdleConnections()
	_, resp, err := websocket.Dial(ctx, "wss"+srv.URL[len("https"):]+"/v1/messenger", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("third connection: %v, %v; want HTTP 429", resp, err)
	}
	c.Close()
	// SIGTERM with a messenger connection open: the server closes it
	// ("going away") and exits 0.
	srv.stop(t)
	select {
	case <-c2.Done():
		if websocket.CloseStatus(c2.Err()) != websocket.StatusGoingAway {
			t.Errorf("open connection at shutdown ended with %v, want 1001", c2.Err())
		}
	case <-time.After(20 * time.Second):
		t.Error("the messenger connection outlived the server")
	}
	c2.Close()

	srv = startServe(t, data)
	c, w, err = messenger.Dial(ctx, srv.URL, srv.Fingerprint, key, messenger.LoginOptions{})
	if err != nil {
		t.Fatalf("login after a restart: %v", err)
	}
	defer c.Close()
	if w.Created || w.User != "alice" {
		t.Errorf("welcome after a restart %+v", w)
	}
}
