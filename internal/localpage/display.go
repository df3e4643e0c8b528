package localpage

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// ServeDisplay bridges a page's noVNC to an RFB stream: it upgrades the
// request (as Accept does, with t) to a binary WebSocket, opens the stream
// and copies both ways until either end ends or the request's context is
// done. When open fails, the WebSocket closes with "cannot show " + what
// and the reason, and ServeDisplay returns open's error for the caller to
// log; it returns nil otherwise, also when it refused the request.
func ServeDisplay(t *Tracker, w http.ResponseWriter, r *http.Request, what string, open func(context.Context) (net.Conn, error), log *slog.Logger) error {
	c, ok := Accept(t, w, r, &websocket.AcceptOptions{
		Subprotocols: []string{"binary"},
		// The RFB encodings are compressed already, and deflate
		// would add latency to every update.
		CompressionMode: websocket.CompressionDisabled,
	}, log)
	if !ok {
		return nil
	}
	defer t.Done()
	ctx := r.Context()
	display, err := open(ctx)
	if err != nil {
		// A close reason fits in a control frame: 123 bytes.
		c.Close(websocket.StatusTryAgainLater, Truncate("cannot show "+what+": "+err.Error(), 123))
		return err
	}
	log.Info("page connected to the display")
	pipe(ctx, websocket.NetConn(ctx, c, websocket.MessageBinary), display)
	log.Info("page disconnected from the display")
	return nil
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
