package noviceapp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/novicepage"
	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

// TestMain fails the run if Run leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// page is the app's page served on loopback, and one tab of it.
type page struct {
	srv *novicepage.Server
	ws  *websocket.Conn
}

func startPage(t *testing.T) *page {
	t.Helper()
	srv, err := novicepage.New(novicepage.Options{App: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(srv.URL(ln))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	h := http.Header{"Origin": {"http://" + u.Host}}
	ws, _, err := websocket.Dial(dctx, "ws://"+u.Host+u.Path+"events", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial the page: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &page{srv: srv, ws: ws}
}

func (p *page) send(t *testing.T, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// waitApp reads statuses until the app's part satisfies ok.
func (p *page) waitApp(t *testing.T, what string, ok func(novicepage.App) bool) novicepage.App {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := p.ws.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		var m struct {
			Type   string             `json:"type"`
			Status *novicepage.Status `json:"status"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Type == "status" && m.Status.App != nil && ok(*m.Status.App) {
			return *m.Status.App
		}
	}
}

// TestRunGetHelp: Get help runs the caller's invitation through the
// server, with the page busy meanwhile; when the server cannot be reached
// before the invitation is made, a direct one follows and the page says
// why; when the invitation is over the page offers Get help again; Run
// returns when its context ends, leaving nothing running.
func TestRunGetHelp(t *testing.T) {
	p := startPage(t)
	type call struct{ server, fingerprint string }
	calls := make(chan call, 4)
	release := make(chan error)
	cfg := Config{
		Page: p.srv, Stdout: io.Discard, Server: "https://assist.example:8443", Fingerprint: "sha256:ab",
		Invite: func(ctx context.Context, stdin *os.File, server, fingerprint string, ready func()) error {
			if stdin == nil {
				t.Error("Invite got no stand-in for the terminal")
			}
			calls <- call{server, fingerprint}
			if server != "" {
				return errors.New("dial: connection refused") // before ready
			}
			ready()
			return <-release
		},
		Idle:        func(a novicepage.Action) { a.Reply("idle") },
		DialTimeout: time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	p.waitApp(t, "the idle app", func(a novicepage.App) bool { return !a.Busy && a.Account == "" })
	p.send(t, `{"type":"get_help"}`)
	if c := <-calls; c != (call{"https://assist.example:8443", "sha256:ab"}) {
		t.Errorf("the first invitation went to %+v, want the server", c)
	}
	if c := <-calls; c != (call{}) {
		t.Errorf("after the server failed, the invitation went to %+v, want a direct one", c)
	}
	p.waitApp(t, "busy, with why it is direct", func(a novicepage.App) bool {
		return a.Busy && strings.Contains(a.Last, "Could not reach https://assist.example:8443")
	})
	release <- errors.New("the invitation expired at 3:04PM without anyone joining")
	a := p.waitApp(t, "idle again", func(a novicepage.App) bool { return !a.Busy })
	if want := "Your invitation is over: The invitation expired at 3:04PM without anyone joining."; a.Last != want {
		t.Errorf("the page says %q, want %q", a.Last, want)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestSentence(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"the server is down":    "The server is down.",
		" already a sentence. ": "Already a sentence.",
	} {
		if got := Sentence(in); got != want {
			t.Errorf("Sentence(%q) = %q, want %q", in, got, want)
		}
	}
}
