package webview

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeBackend records the page's requests. OpenDisplay hands out one end
// of a net.Pipe and passes the other end on displays.
type fakeBackend struct {
	displays  chan net.Conn
	controls  chan struct{}
	chats     chan string
	leaves    chan string   // Leave's reasons, if not nil
	givebacks chan struct{} // GiveBackControl's calls, if not nil
	err       error         // returned by every method when set
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		displays: make(chan net.Conn, 8),
		controls: make(chan struct{}, 8),
		chats:    make(chan string, 8),
	}
}

func (b *fakeBackend) OpenDisplay(ctx context.Context) (net.Conn, error) {
	if b.err != nil {
		return nil, b.err
	}
	page, test := net.Pipe()
	b.displays <- test
	return page, nil
}

func (b *fakeBackend) RequestClipboard(ctx context.Context) error { return b.err }

func (b *fakeBackend) GiveBackControl(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	if b.givebacks != nil {
		b.givebacks <- struct{}{}
	}
	return nil
}

func (b *fakeBackend) Leave(reason string) {
	if b.leaves != nil {
		b.leaves <- reason
	}
}

func (b *fakeBackend) RequestControl(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	b.controls <- struct{}{}
	return nil
}

func (b *fakeBackend) SendChat(ctx context.Context, text string) error {
	if b.err != nil {
		return b.err
	}
	b.chats <- text
	return nil
}

// testServer is a Server serving on loopback for one test.
type testServer struct {
	*Server
	url    string // the page's URL
	origin string // the page's origin
	stop   func() // stops Serve and waits for it
}

func startServer(t *testing.T, b Backend, opts Options) *testServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	pageURL := s.URL(ln)
	u, err := url.Parse(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, url: pageURL, origin: "http://" + u.Host}
	var stopped bool
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after its context was cancelled")
		}
	}
	t.Cleanup(ts.stop)
	return ts
}

// dial opens one of the page's WebSockets ("events" or "rfb") with the
// given Origin header ("" sends none).
func (ts *testServer) dial(t *testing.T, path, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.url, "http")+path, &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		c.SetReadLimit(1 << 20)
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// events opens the page's events WebSocket from its own origin.
func (ts *testServer) events(t *testing.T) *websocket.Conn {
	t.Helper()
	c, _, err := ts.dial(t, "events", ts.origin)
	if err != nil {
		t.Fatalf("dial events: %v", err)
	}
	return c
}

var errBackend = errors.New("the novice is gone")
