package localpage

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestGuardHandler: the route sees only requests with the right Host and
// secret, with the path after the secret; every answer, 404s included,
// carries the security headers.
func TestGuardHandler(t *testing.T) {
	g, err := NewGuard()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	h := g.Handler(new(Tracker), func(_ *Tracker, w http.ResponseWriter, r *http.Request, rest string) {
		got = append(got, rest)
		w.WriteHeader(http.StatusNoContent)
	})
	for _, tt := range []struct {
		host, path string
		status     int
	}{
		{"127.0.0.1:8080", "/s/" + g.Secret() + "/", http.StatusNoContent},
		{"localhost:8080", "/s/" + g.Secret() + "/novnc/core/rfb.js", http.StatusNoContent},
		{"evil.example:8080", "/s/" + g.Secret() + "/", http.StatusNotFound},
		{"127.0.0.1:8080", "/s/wrong/", http.StatusNotFound},
		{"127.0.0.1:8080", "/", http.StatusNotFound},
	} {
		req := httptest.NewRequest("GET", "http://"+tt.host+tt.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tt.status {
			t.Errorf("%s%s: %d, want %d", tt.host, tt.path, w.Code, tt.status)
		}
		if w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s%s: no security headers: %v", tt.host, tt.path, w.Header())
		}
	}
	if want := []string{"", "novnc/core/rfb.js"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("the route saw %q, want %q", got, want)
	}
}

// TestServeDisplay: the page's WebSocket carries the display stream both
// ways; a display that cannot be opened closes the WebSocket with the
// reason and returns the error; another origin is refused.
func TestServeDisplay(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	openErr := errors.New("the novice left")
	results := make(chan error, 4)
	var t0 Tracker
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		open := func(context.Context) (net.Conn, error) {
			a, b := net.Pipe()
			// The display echoes what it reads.
			go func() {
				defer a.Close()
				_, _ = io.Copy(a, a)
			}()
			return b, nil
		}
		if r.URL.Path == "/fail" {
			open = func(context.Context) (net.Conn, error) { return nil, openErr }
		}
		results <- ServeDisplay(&t0, w, r, "the desktop", open, log)
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	origin := http.Header{"Origin": {srv.URL}}

	c, _, err := websocket.Dial(ctx, url+"/ok", &websocket.DialOptions{HTTPHeader: origin, Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte("RFB 003.008\n")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "RFB 003.008\n" {
		t.Fatalf("echo: %q %v", b, err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	if err := <-results; err != nil {
		t.Errorf("ServeDisplay after the page left: %v", err)
	}

	c, _, err = websocket.Dial(ctx, url+"/fail", &websocket.DialOptions{HTTPHeader: origin})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusTryAgainLater || !strings.Contains(err.Error(), "cannot show the desktop: the novice left") {
		t.Errorf("a display that cannot be opened: %v", err)
	}
	if err := <-results; !errors.Is(err, openErr) {
		t.Errorf("ServeDisplay = %v, want the open error", err)
	}

	_, resp, err := websocket.Dial(ctx, url+"/ok", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("another origin: %v %v", resp, err)
	}
	if err := <-results; err != nil {
		t.Errorf("ServeDisplay for another origin = %v, want nil", err)
	}
	t0.closeAndWait()
}
