package wsconn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve starts a WebSocket server whose handler gives each connection's
// writer to use, runs it, and returns its URL. The handler returns once
// Run does.
func serve(t *testing.T, queue int, use func(c *Conn) (timer <-chan time.Time, onTimer func())) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		c := New(ws, queue, slog.New(slog.DiscardHandler), "test")
		defer c.CancelRead()
		timer, onTimer := use(c)
		// A reader, as the servers run one: it answers the client's
		// close handshake.
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			for {
				if _, _, err := ws.Read(c.ReadContext()); err != nil {
					return
				}
			}
		}()
		c.Run(time.Hour, timer, onTimer)
		c.CancelRead()
		<-readDone
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

// readAll reads messages until the connection closes and returns them
// with the close status and reason.
func readAll(t *testing.T, ws *websocket.Conn) (msgs []string, code websocket.StatusCode, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return msgs, ce.Code, ce.Reason
			}
			if errors.Is(err, io.EOF) || websocket.CloseStatus(err) == -1 {
				return msgs, -1, ""
			}
			t.Fatal(err)
		}
		msgs = append(msgs, string(b))
	}
}

// TestCloseFlushesQueue: what was queued before Close arrives, in order,
// and then the close status the owner chose.
func TestCloseFlushesQueue(t *testing.T) {
	url := serve(t, 8, func(c *Conn) (<-chan time.Time, func()) {
		c.Send([]byte("one"))
		c.Send([]byte("two"))
		c.Close(websocket.StatusPolicyViolation, "goodbye")
		c.Send([]byte("after close"))
		c.Close(websocket.StatusNormalClosure, "second close ignored")
		return nil, nil
	})
	msgs, code, reason := readAll(t, dial(t, url))
	if strings.Join(msgs, ",") != "one,two" || code != websocket.StatusPolicyViolation || reason != "goodbye" {
		t.Fatalf("got %q, close %v %q; want [one two], close 1008 goodbye", msgs, code, reason)
	}
}

// TestTooSlow: a client whose queue is full is disconnected with a reason,
// and the sender was never blocked.
func TestTooSlow(t *testing.T) {
	url := serve(t, 1, func(c *Conn) (<-chan time.Time, func()) {
		// Run has not started, so nothing drains the queue.
		c.Send([]byte("fits"))
		c.Send([]byte("does not fit"))
		select {
		case <-c.Done():
		default:
			t.Error("a full queue did not close the connection")
		}
		return nil, nil
	})
	msgs, code, reason := readAll(t, dial(t, url))
	if strings.Join(msgs, ",") != "fits" || code != websocket.StatusPolicyViolation || !strings.Contains(reason, "too slow") {
		t.Fatalf("got %q, close %v %q; want [fits], close 1008 too slow", msgs, code, reason)
	}
}

// TestTimer: the owner's deadline runs on the writer's goroutine, and may
// close the connection.
func TestTimer(t *testing.T) {
	url := serve(t, 4, func(c *Conn) (<-chan time.Time, func()) {
		timer := make(chan time.Time, 1)
		timer <- time.Now()
		return timer, func() {
			c.Send([]byte("deadline"))
			c.Close(websocket.StatusPolicyViolation, "log in within 1s")
		}
	})
	msgs, code, reason := readAll(t, dial(t, url))
	if strings.Join(msgs, ",") != "deadline" || code != websocket.StatusPolicyViolation || reason != "log in within 1s" {
		t.Fatalf("got %q, close %v %q", msgs, code, reason)
	}
}

// TestAbnormalClose: StatusAbnormalClosure drops the connection without a
// close handshake.
func TestAbnormalClose(t *testing.T) {
	url := serve(t, 4, func(c *Conn) (<-chan time.Time, func()) {
		c.Close(websocket.StatusAbnormalClosure, "")
		return nil, nil
	})
	if _, code, _ := readAll(t, dial(t, url)); code != -1 {
		t.Fatalf("close status %v, want none (the connection dropped)", code)
	}
}

// TestPeerGone: a peer that is gone makes Run return (its write fails)
// instead of writing into nothing forever.
func TestPeerGone(t *testing.T) {
	ran := make(chan *Conn, 1)
	url := serve(t, 4, func(c *Conn) (<-chan time.Time, func()) {
		ran <- c
		return nil, nil
	})
	ws := dial(t, url)
	c := <-ran
	ws.CloseNow()
	// Writes to a closed peer fail within a few tries.
	for i := 0; ; i++ {
		select {
		case <-c.Done():
			return
		case <-time.After(10 * time.Millisecond):
			if i > 1000 {
				t.Fatal("the writer never noticed that the peer was gone")
			}
			c.Send([]byte("anyone there?"))
		}
	}
}
