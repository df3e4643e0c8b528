package relay

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// connTracker remembers the TCP connections accepted by the TURN
// listeners: closing a listener does not close what it accepted, and pion
// would otherwise keep serving those connections after Close.
type connTracker struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newConnTracker() *connTracker {
	return &connTracker{conns: make(map[net.Conn]struct{})}
}

// add registers c; it reports false (and closes c) once the tracker is closed.
func (t *connTracker) add(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *connTracker) remove(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// closeAll closes every tracked connection and refuses new ones.
func (t *connTracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = nil
	t.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// boundedListener bounds the TCP side of the server: at most max
// connections at once (extra ones are closed on accept, so a flood cannot
// exhaust file descriptors) and each connection is closed after idle
// without receiving a byte (so silent clients cannot hold slots forever).
type boundedListener struct {
	net.Listener
	tracker *connTracker
	sem     chan struct{}
	idle    time.Duration
}

// Accept implements net.Listener.
func (l *boundedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
		default:
			_ = c.Close() // over the limit: shed load rather than queue it
			continue
		}
		bc := &idleConn{Conn: c, idle: l.idle, release: func() { <-l.sem }, tracker: l.tracker}
		if !l.tracker.add(bc) {
			<-l.sem
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(l.idle))
		return bc, nil
	}
}

// idleConn extends its read deadline on every read.
type idleConn struct {
	net.Conn
	idle    time.Duration
	once    sync.Once
	release func()
	tracker *connTracker
}

func (c *idleConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	}
	return n, err
}

func (c *idleConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.release()
		c.tracker.remove(c)
	})
	return err
}

// tlsHandshakeTimeout bounds the TLS handshake of a client connection.
const tlsHandshakeTimeout = 10 * time.Second

// tlsListener terminates TLS for the TURN server. Pion would do the
// handshake itself for a *tls.Conn, but it leaks the connection when the
// handshake fails; tlsConn hides the type and handshakes on first read, so
// that a failure surfaces as a read error on which pion closes the
// connection.
type tlsListener struct {
	net.Listener
	config *tls.Config
}

// Accept implements net.Listener.
func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tls.Server(c, l.config)}, nil
}

// tlsConn is a server-side TLS connection that handshakes, with a
// timeout, on its first read.
type tlsConn struct {
	*tls.Conn
	once         sync.Once
	handshakeErr error
}

func (c *tlsConn) Read(p []byte) (int, error) {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
		defer cancel()
		if err := c.Conn.HandshakeContext(ctx); err != nil {
			c.handshakeErr = fmt.Errorf("relay: tls handshake with %s: %w", c.RemoteAddr(), err)
		}
	})
	if c.handshakeErr != nil {
		return 0, c.handshakeErr
	}
	return c.Conn.Read(p)
}
