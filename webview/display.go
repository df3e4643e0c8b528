package webview

import (
	"net/http"

	"github.com/assist-project/assist/internal/localpage"
)

// serveRFB bridges the page's noVNC to a new Backend.OpenDisplay stream.
func (s *Server) serveRFB(t *localpage.Tracker, w http.ResponseWriter, r *http.Request) {
	if err := localpage.ServeDisplay(t, w, r, "the desktop", s.backend.OpenDisplay, s.log); err != nil {
		s.log.Warn("cannot open the novice's display for the page", "err", err)
	}
}
