package webview

import (
	"net/http"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// tracker counts one Serve call's WebSocket handlers so Serve can wait for
// them: http.Server forgets connections once they are hijacked.
type tracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// add registers a handler; it is false once Serve is shutting down.
func (t *tracker) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tracker) done() { t.wg.Done() }

// closeAndWait refuses new handlers and waits for the running ones.
func (t *tracker) closeAndWait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}

// sameOrigin reports whether a WebSocket handshake comes from the page
// itself. Browsers always send Origin on WebSocket handshakes, so a
// missing one is not the page either. The Host was checked to be loopback
// before, and the secret in the path already keeps other sites out; this
// also stops a page of another loopback origin that learnt the URL.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	return origin != "" && strings.EqualFold(origin, "http://"+r.Host)
}

// accept checks the origin, registers the handler with t and upgrades the
// connection. On false it has answered the request and the caller must
// return; on true the caller must call t.done.
func (s *Server) accept(t *tracker, w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) (*websocket.Conn, bool) {
	if !sameOrigin(r) {
		s.log.Warn("refused a WebSocket from another origin", "origin", truncate(r.Header.Get("Origin"), 100))
		http.Error(w, "forbidden", http.StatusForbidden)
		return nil, false
	}
	if !t.add() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return nil, false
	}
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		// Accept has answered with the reason.
		s.log.Debug("WebSocket handshake failed", "err", err)
		t.done()
		return nil, false
	}
	return c, true
}

// closeReason fits a close reason into a control frame (123 bytes).
func closeReason(s string) string { return truncate(s, 123) }
