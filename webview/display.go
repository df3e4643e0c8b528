package webview

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/assist-project/assist/internal/localpage"
	"github.com/coder/websocket"
)

// serveRFB bridges the page's noVNC to a new Backend.OpenDisplay stream.
func (s *Server) serveRFB(t *localpage.Tracker, w http.ResponseWriter, r *http.Request) {
	c, ok := s.accept(t, w, r, &websocket.AcceptOptions{
		Subprotocols: []string{"binary"},
		// The RFB encodings are compressed already, and deflate
		// would add latency to every update.
		CompressionMode: websocket.CompressionDisabled,
	})
	if !ok {
		return
	}
	defer t.Done()
	ctx := r.Context()
	display, err := s.backend.OpenDisplay(ctx)
	if err != nil {
		s.log.Warn("cannot open the novice's display for the page", "err", err)
		c.Close(websocket.StatusTryAgainLater, closeReason("cannot show the desktop: "+err.Error()))
		return
	}
	s.log.Info("page connected to the display")
	pipe(ctx, websocket.NetConn(ctx, c, websocket.MessageBinary), display)
	s.log.Info("page disconnected from the display")
}

// pipe copies a to b and b to a until either side ends or ctx is done,
// then closes both and waits for the copies.
func pipe(ctx context.Context, a, b net.Conn) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer closeBoth()
		_, _ = io.Copy(a, b)
	})
	wg.Go(func() {
		defer closeBoth()
		_, _ = io.Copy(b, a)
	})
	wg.Wait()
}
