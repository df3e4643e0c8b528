package rfb

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/shadow"
)

// Server shares one screen with any number of viewers. Each viewer has
// its own reader and writer, and only takes the screen's lock to copy the
// pixels it is about to encode, so a slow viewer never holds up the
// others or the capture.
type Server struct {
	// Screen is the desktop being shared; its Run loop is the caller's.
	Screen *shadow.Screen
	// Input receives viewers' key and pointer events. Nil drops them
	// all (view only). The novice's consent gate wraps the real
	// injector here; nothing else reaches it.
	Input screen.Injector
	// Clipboard receives viewers' cut text. Nil drops it.
	Clipboard screen.Clipboard
	// ClipboardOut decides whether the desktop's clipboard text, which
	// appeared on the desktop at the given time, may go to the viewers.
	// It is asked for every message that carries or announces the text
	// (plain or Extended Clipboard), when that message is written; text
	// it refuses is dropped for good. Nil sends nothing: the desktop's
	// clipboard leaves only when the caller says so.
	ClipboardOut func(changed time.Time) bool
	// Name is the desktop name sent to viewers.
	Name string
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// HandshakeTimeout bounds the time a viewer may take from connect to
	// ClientInit; zero means 30 seconds.
	HandshakeTimeout time.Duration

	// onRefine, when set (by tests), sees each area sent as refinement;
	// refineDelay, when set, replaces the constant of that name.
	onRefine    func(image.Rectangle)
	refineDelay time.Duration

	// onUpdate, if set, is called before each write that carries an
	// update, with the fence pacer's bytes in flight (this write included)
	// and window, both zero when fences do not pace; tests count with it.
	onUpdate func(inFlight, window, n int)
	// beforeTake, if set (by tests), is called by the writer as it
	// starts building an update, before it takes the changes.
	beforeTake func(c *conn)
	// onAwaitRoom, if set (by tests), is called each time a pushed
	// update waits for room on the path between its pieces (preempt.go).
	onAwaitRoom func()
	// onPiece, if set (by tests), is called before each large piece of
	// a pushed update that may be preempted, with its index.
	onPiece func(c *conn, i int)

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup
}

// Serve accepts viewers on l until ctx is done or l fails, then closes
// every connection and waits for their goroutines. It closes l.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer s.wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("rfb: accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.ServeConn(ctx, c)
		}()
	}
}

// ServeConn serves one viewer on c until the viewer leaves, breaks the
// protocol, or ctx is done. It closes c. The reason the connection ended
// is logged and returned; a viewer that simply disconnects returns nil.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	log := s.logger().With("viewer", c.RemoteAddr().String())
	vc := newConn(s, c, log)
	s.track(vc, true)
	defer s.track(vc, false)
	err := vc.serve(ctx)
	switch {
	case err == nil || ctx.Err() != nil:
		log.Info("viewer disconnected")
		return nil
	case errors.Is(err, errProtocol):
		log.Warn("viewer disconnected: protocol violation", "reason", err)
	default:
		log.Info("viewer disconnected", "reason", err)
	}
	return err
}

// Viewers returns the number of connected viewers.
func (s *Server) Viewers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) track(c *conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	if add {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}
