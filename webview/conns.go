package webview

import (
	"net/http"

	"github.com/assist-project/assist/internal/localpage"
	"github.com/coder/websocket"
)

// accept checks the origin, registers the handler with t and upgrades the
// connection. On false it has answered the request and the caller must
// return; on true the caller must call t.done.
func (s *Server) accept(t *localpage.Tracker, w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) (*websocket.Conn, bool) {
	return localpage.Accept(t, w, r, opts, s.log)
}

// closeReason fits a close reason into a control frame (123 bytes).
func closeReason(s string) string { return truncate(s, 123) }
