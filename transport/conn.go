package transport

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/assist-project/assist/pake"
)

// Conn is an authenticated, encrypted connection between an expert and a
// novice: the TLS connection after a successful handshake. Reads and writes
// carry the application's bytes; it is safe for one reader and one writer at
// a time, like any net.Conn.
type Conn struct {
	tc       *tls.Conn
	peerName string
	path     string

	keyMu sync.Mutex
	res   *pake.Result

	closeOnce sync.Once
	closeErr  error
	// onClose, on the novice side, frees the invitation for the next expert.
	onClose func()
}

var _ net.Conn = (*Conn)(nil)

func newConn(tc *tls.Conn, res *pake.Result, peerName, path string, onClose func()) *Conn {
	return &Conn{tc: tc, res: res, peerName: peerName, path: path, onClose: onClose}
}

// Read reads application data from the peer.
func (c *Conn) Read(b []byte) (int, error) { return c.tc.Read(b) }

// Write writes application data to the peer.
func (c *Conn) Write(b []byte) (int, error) { return c.tc.Write(b) }

// Close closes the connection. On the novice side it also lets the
// invitation accept another expert. Calling it more than once is harmless.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.tc.Close()
		if c.onClose != nil {
			c.onClose()
		}
	})
	return c.closeErr
}

// CloseWrite sends a TLS close_notify: the peer reads io.EOF, and may still
// send to us.
func (c *Conn) CloseWrite() error { return c.tc.CloseWrite() }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.tc.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.tc.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.tc.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.tc.SetWriteDeadline(t) }

// PeerName is, on the novice side, the display name the expert gave (valid
// UTF-8 without control characters, at most MaxName bytes; possibly empty).
// The name is the expert's claim: the PAKE proves the expert knows the
// password, not who they are. On the expert side it is "".
func (c *Conn) PeerName() string { return c.peerName }

// Path says how the connection was made: "direct " followed by the address
// dialed (expert side) or the expert's address (novice side).
func (c *Conn) Path() string { return c.path }

// SessionKey derives an n-byte key for the purpose named by label from the
// PAKE's session key; both ends get the same bytes for the same label.
// Different labels give independent keys. It panics if n is not between 1
// and 255*64, a programming error.
func (c *Conn) SessionKey(label string, n int) []byte {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	return c.res.SessionKey("assist/1 direct: "+label, n)
}
