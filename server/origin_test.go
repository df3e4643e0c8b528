package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestSignalCrossSite: a page of another site cannot open a signalling
// connection in its visitor's browser (cross-site WebSocket hijacking);
// the server's own page and programs (no Origin) can.
func TestSignalCrossSite(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	defer ts.stop()
	u := "wss" + strings.TrimPrefix(ts.URL, "https") + "/v1/signal"
	for _, tc := range []struct {
		name, origin string
		ok           bool
	}{
		{"a program (no Origin)", "", true},
		{"the server's own page", ts.URL, true},
		{"another site", "https://evil.example", false},
		{"another port of the same host", "https://127.0.0.1:1", false},
		{"null origin", "null", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: ts.client, HTTPHeader: h})
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				ws.CloseNow()
				return
			}
			if err == nil {
				ws.CloseNow()
				t.Fatal("a cross-site page opened a signalling connection")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("refused with %v, want HTTP 403", resp)
			}
		})
	}
}
