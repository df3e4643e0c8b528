package main

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
)

// startMessengerHub runs the messenger hub in this process on a loopback
// HTTPS server with a self-signed certificate, as assist serve mounts it,
// for the CLI tests. It returns what they need of a server: URL and
// fingerprint.
func startMessengerHub(t *testing.T) *servedProc {
	t.Helper()
	store, err := hub.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "messenger.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	// The hub needs the certificate's fingerprint, which exists once the
	// server started: the mux (safe for concurrent use) gets it after.
	mux := http.NewServeMux()
	ts := httptest.NewUnstartedServer(mux)
	ts.StartTLS()
	fp := sha256.Sum256(ts.Certificate().Raw)
	h, err := hub.New(hub.Config{Store: store, Fingerprint: fp,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/v1/messenger", h)
	t.Cleanup(func() {
		h.Close()
		ts.Close()
		store.Close()
	})
	return &servedProc{URL: ts.URL, Fingerprint: messenger.FormatFingerprint(fp)}
}
