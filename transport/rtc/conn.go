package rtc

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/webrtc/v4"

	"github.com/assist-project/assist/pake"
)

// Sizes of data-channel messages. A data channel carries messages, not
// bytes: Conn cuts writes into messages of at most maxChunk bytes and glues
// received messages back into a byte stream. 16 KiB is the size every
// WebRTC implementation (browsers included) has always accepted; we accept
// up to maxMessage from a peer that sends more.
const (
	maxChunk   = 16 << 10
	maxMessage = 64 << 10
)

// Conn is an authenticated, encrypted connection between an expert and a
// novice over one WebRTC data channel (reliable, ordered). Read and Write
// carry the application's bytes as a stream, like TCP; it is safe for one
// reader and one writer at a time, like any net.Conn.
type Conn struct {
	pc *webrtc.PeerConnection
	dc datachannel.ReadWriteCloserDeadliner

	// rbuf holds the rest of the last message read; rmsg is its backing
	// array, reused for every message.
	rmsg []byte
	rbuf []byte

	peerName string
	// remoteHosts are the peer's host candidates, as signalled.
	remoteHosts *hostSet

	// cfgMu makes SetConfiguration and GetStats take turns: pion reads
	// its configuration in GetStats without a lock, and SetICEServers
	// changes it while Path may be reading the statistics.
	cfgMu sync.Mutex
	keyMu sync.Mutex
	res   *pake.Result

	// setup is the signalling that set the connection up; rs, once the
	// handshake is over, keeps it (or its successors) for ICE restarts.
	setup *setup
	rsMu  sync.Mutex
	rs    *resumer

	// turn dials TCP and TLS TURN servers; serversChanged is set by
	// SetICEServers until the next restart offer has used them.
	turn           *turnDialer
	serversChanged atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

var _ net.Conn = (*Conn)(nil)

func newConn(pc *webrtc.PeerConnection, dc datachannel.ReadWriteCloserDeadliner) *Conn {
	return &Conn{pc: pc, dc: dc, rmsg: make([]byte, maxMessage)}
}

// Read reads application data from the peer. It returns io.EOF once the
// peer has closed the channel.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if len(c.rbuf) == 0 {
		if len(b) >= maxMessage {
			// Large reads take the message directly, without a copy.
			return c.readMessage(b)
		}
		n, err := c.readMessage(c.rmsg)
		if err != nil {
			return 0, err
		}
		c.rbuf = c.rmsg[:n]
	}
	n := copy(b, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

// readMessage reads the next non-empty message into b.
func (c *Conn) readMessage(b []byte) (int, error) {
	for {
		n, err := c.dc.Read(b)
		if err != nil {
			if errors.Is(err, io.ErrShortBuffer) {
				// The peer sent a message larger than it may: the stream
				// cannot be resynchronised.
				c.Close()
			}
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Write writes application data to the peer. It blocks while the data
// channel's send queue is full, so a slow path slows the writer down
// instead of buffering without bound.
func (c *Conn) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n := min(len(b), maxChunk)
		if _, err := c.dc.Write(b[:n]); err != nil {
			return written, err
		}
		written += n
		b = b[n:]
	}
	return written, nil
}

// flushTimeout bounds how long a failed handshake waits for its last
// message to be acknowledged before closing.
const flushTimeout = time.Second

// flush waits until the peer has acknowledged everything written, the
// timeout passes or ctx ends.
func (c *Conn) flush(ctx context.Context, timeout time.Duration) {
	ba, ok := c.dc.(interface{ BufferedAmount() uint64 })
	if !ok {
		return
	}
	deadline := time.Now().Add(timeout)
	for ba.BufferedAmount() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// Close closes the data channel and the peer connection. Calling it more
// than once is harmless.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.rsMu.Lock()
		rs := c.rs
		c.rsMu.Unlock()
		if rs != nil {
			rs.shutdown()
		}
		if c.setup != nil {
			c.setup.stop()
		}
		// A pending read deadline holds a pion goroutine until it passes.
		c.dc.SetReadDeadline(time.Time{})
		dcErr := c.dc.Close()
		// GracefulClose waits for pion's goroutines, so nothing of this
		// connection outlives Close.
		pcErr := c.pc.GracefulClose()
		c.closeErr = errors.Join(dcErr, pcErr)
	})
	return c.closeErr
}

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	return errors.Join(c.dc.SetReadDeadline(t), c.dc.SetWriteDeadline(t))
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.dc.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.dc.SetWriteDeadline(t) }

// LocalAddr returns the address of the local candidate of the selected ICE
// candidate pair (for a relayed candidate, the relay's address).
func (c *Conn) LocalAddr() net.Addr {
	if p := c.selectedPair(); p != nil {
		return candidateAddr(p.Local)
	}
	return Addr{Net: "webrtc"}
}

// RemoteAddr returns the address of the remote candidate of the selected
// ICE candidate pair.
func (c *Conn) RemoteAddr() net.Addr {
	if p := c.selectedPair(); p != nil {
		return candidateAddr(p.Remote)
	}
	return Addr{Net: "webrtc"}
}

// PeerName is, on the novice side, the display name the expert gave (valid
// UTF-8 without control characters, at most MaxName bytes; possibly empty).
// It is the expert's claim, not a proven identity. On the expert side it is
// "".
func (c *Conn) PeerName() string { return c.peerName }

// SessionKey derives an n-byte key for the purpose named by label from the
// PAKE's session key; both ends get the same bytes for the same label. It
// panics if n is not between 1 and 255*64, a programming error.
func (c *Conn) SessionKey(label string, n int) []byte {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	return c.res.SessionKey("assist/1 webrtc: "+label, n)
}

// Addr is the address of an ICE candidate.
type Addr struct {
	// Net is "udp" or "tcp" (the candidate's transport), or "webrtc" when
	// no candidate pair is selected.
	Net string
	// Host and Port are the candidate's address.
	Host string
	Port int
}

// Network returns Net.
func (a Addr) Network() string { return a.Net }

// String returns host:port, or "" when unknown.
func (a Addr) String() string {
	if a.Host == "" {
		return ""
	}
	return net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
}

func candidateAddr(c *webrtc.ICECandidate) net.Addr {
	if c == nil {
		return Addr{Net: "webrtc"}
	}
	return Addr{Net: c.Protocol.String(), Host: c.Address, Port: int(c.Port)}
}
