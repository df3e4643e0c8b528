package transport

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer for concurrent slog handlers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNoSecretsInLogs runs every kind of attempt with both ends logging at
// debug level, in text and JSON, and looks for the passwords (the right one
// and the wrong guess) in any form.
func TestNoSecretsInLogs(t *testing.T) {
	var text, js lockedBuffer
	sink := newLogSink()
	handler := slog.NewMultiHandler(
		slog.NewTextHandler(&text, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(&js, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug}),
	)
	logger := slog.New(handler)
	l, _ := newTestListener(t, ListenerConfig{Logger: logger})
	addrs := []string{closedPort(t), l.Addr().String()}
	const guess = "wrong-guess-9876"

	cfg := dialConfig(guess)
	cfg.Logger = logger
	Dial(t.Context(), addrs, cfg)
	sink.waitOutcome(t, outcomeWrongPassword)

	cfg.Password = testPassword
	accepted := acceptAsync(t, l)
	c := mustDial(t, addrs, cfg)
	if r := <-accepted; r.err != nil {
		t.Fatal(r.err)
	}
	sink.waitOutcome(t, outcomeAuthenticated)
	Dial(t.Context(), addrs, cfg) // busy
	sink.waitOutcome(t, outcomeBusy)
	c.Close()

	for name, out := range map[string]string{"text": text.String(), "json": js.String()} {
		for _, secret := range []string{testPassword, guess} {
			for _, form := range []string{secret, hex.EncodeToString([]byte(secret)), strings.ToUpper(secret)} {
				if strings.Contains(out, form) {
					t.Errorf("%s log contains a password (%q):\n%s", name, form, out)
				}
			}
		}
		if !strings.Contains(out, outcomeWrongPassword) || !strings.Contains(out, outcomeAuthenticated) {
			t.Errorf("%s log lacks the attempts' outcomes:\n%s", name, out)
		}
	}

	// Every novice attempt line names the remote address, the outcome and
	// the attempts left.
	for line := range strings.Lines(js.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("bad log line %q: %v", line, err)
		}
		if rec["msg"] != "transport: handshake attempt" {
			continue
		}
		for _, key := range []string{"remote", "outcome", "attempts_left"} {
			if _, ok := rec[key]; !ok {
				t.Errorf("attempt line lacks %q: %s", key, line)
			}
		}
	}
}
