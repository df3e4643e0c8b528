// Package dcconn turns a message channel with a send-queue gauge (a
// browser's RTCDataChannel, in the expert's web app) into a net.Conn, so
// the handshake (package transport/rtc/auth) and the session's multiplexer
// (package session) run over it unchanged.
//
// A data channel carries messages, not bytes: Write cuts the stream into
// messages of at most MaxChunk bytes, the size every WebRTC implementation
// accepts, and Read glues received messages back together. The channel's
// owner feeds the Conn from its event handlers (Deliver, Drained, Closed),
// none of which blocks: in a browser they run on the JavaScript event loop,
// which Go code must never hold up.
//
// Sending has back-pressure: while more than HighWater bytes wait in the
// channel's send queue, Write blocks until the owner reports the queue
// drained (RTCDataChannel's bufferedamountlow event), so a slow path slows
// the writer instead of filling the browser's memory. Receiving cannot push
// back (a data channel has no flow control the page can drive), so Conn
// buffers up to MaxReceiveQueue bytes and fails the connection past that;
// the session's multiplexer grants its peer much less credit than that.
package dcconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Limits.
const (
	// MaxChunk is the largest message Write sends.
	MaxChunk = 16 << 10
	// HighWater is the send-queue size above which Write waits.
	HighWater = 1 << 20
	// LowWater is the send-queue size at which the owner should call
	// Drained (RTCDataChannel.bufferedAmountLowThreshold).
	LowWater = 256 << 10
	// MaxReceiveQueue bounds the bytes received and not yet read.
	MaxReceiveQueue = 16 << 20
)

// Channel is the message channel under a Conn.
type Channel interface {
	// Send queues one message, a copy of p. It must not block.
	Send(p []byte) error
	// BufferedAmount is the number of bytes queued by Send and not yet
	// handed to the network.
	BufferedAmount() int
	// Close starts closing the channel. Its owner calls Conn.Closed
	// when the channel has closed.
	Close()
}

// ErrTooMuchData is the read error after the peer sent more than
// MaxReceiveQueue bytes that were not read.
var ErrTooMuchData = errors.New("dcconn: the peer sent more data than the receive queue holds")

// Conn is a net.Conn over a Channel. It is safe for one reader and one
// writer at a time, like any net.Conn, and for the owner's calls at any
// time.
type Conn struct {
	ch Channel

	mu        sync.Mutex
	queue     [][]byte // received messages not yet read
	queued    int      // bytes in queue
	rbuf      []byte   // the rest of the message being read
	peerErr   error    // why the channel closed: io.EOF when orderly
	closed    bool     // Close was called
	readable  chan struct{}
	writable  chan struct{}
	done      chan struct{} // closed by Close
	rDeadline deadline
	wDeadline deadline
}

var _ net.Conn = (*Conn)(nil)

// New returns a Conn over ch, which must be open.
func New(ch Channel) *Conn {
	return &Conn{
		ch:        ch,
		readable:  make(chan struct{}, 1),
		writable:  make(chan struct{}, 1),
		done:      make(chan struct{}),
		rDeadline: makeDeadline(),
		wDeadline: makeDeadline(),
	}
}

// wake makes a pending or the next wait on c return.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Deliver hands the Conn one received message; the Conn keeps p. The
// channel's owner calls it for each message, in order.
func (c *Conn) Deliver(p []byte) {
	if len(p) == 0 {
		return
	}
	c.mu.Lock()
	if c.closed || c.peerErr != nil {
		c.mu.Unlock()
		return
	}
	// The message being read (rbuf) counts too: without it the bound
	// was MaxReceiveQueue plus one message (found by FuzzConn).
	if c.queued+len(c.rbuf)+len(p) > MaxReceiveQueue {
		c.peerErr = ErrTooMuchData
		c.queue, c.queued, c.rbuf = nil, 0, nil
		c.mu.Unlock()
		wake(c.readable)
		wake(c.writable)
		c.ch.Close()
		return
	}
	c.queue = append(c.queue, p)
	c.queued += len(p)
	c.mu.Unlock()
	wake(c.readable)
}

// Drained tells the Conn that the channel's send queue went down to
// LowWater or less.
func (c *Conn) Drained() { wake(c.writable) }

// Closed tells the Conn that the channel has closed: err is nil when it
// closed in order (Read then returns io.EOF once the received data is
// read), or why it failed.
func (c *Conn) Closed(err error) {
	if err == nil {
		err = io.EOF
	}
	c.mu.Lock()
	if c.peerErr == nil {
		c.peerErr = err
	}
	c.mu.Unlock()
	wake(c.readable)
	wake(c.writable)
}

// Read reads the peer's bytes.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		if len(c.rbuf) == 0 && len(c.queue) > 0 {
			c.rbuf = c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.queued -= len(c.rbuf)
		}
		if len(c.rbuf) > 0 {
			n := copy(b, c.rbuf)
			c.rbuf = c.rbuf[n:]
			c.mu.Unlock()
			return n, nil
		}
		err := c.peerErr
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if c.rDeadline.expired() {
			return 0, os.ErrDeadlineExceeded
		}
		select {
		case <-c.readable:
		case <-c.done:
		case <-c.rDeadline.wait():
		}
	}
}

// Write sends b as messages of at most MaxChunk bytes, waiting while the
// channel's send queue holds more than HighWater bytes.
func (c *Conn) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		c.mu.Lock()
		closed, err := c.closed, c.peerErr
		c.mu.Unlock()
		switch {
		case closed:
			return written, net.ErrClosed
		case err == io.EOF:
			return written, io.ErrClosedPipe
		case err != nil:
			return written, err
		case c.wDeadline.expired():
			return written, os.ErrDeadlineExceeded
		}
		if c.ch.BufferedAmount() > HighWater {
			select {
			case <-c.writable:
			case <-c.done:
			case <-c.wDeadline.wait():
			}
			continue
		}
		n := min(len(b), MaxChunk)
		if err := c.ch.Send(b[:n]); err != nil {
			return written, err
		}
		written += n
		b = b[n:]
	}
	return written, nil
}

// Close closes the channel. Pending and later reads and writes fail with
// net.ErrClosed. Calling it more than once is harmless.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.queue, c.queued, c.rbuf = nil, 0, nil
	close(c.done)
	c.mu.Unlock()
	c.rDeadline.set(time.Time{})
	c.wDeadline.set(time.Time{})
	c.ch.Close()
	return nil
}

// Addr is the address of both ends: a data channel has none the page can
// see.
type Addr struct{}

// Network returns "webrtc".
func (Addr) Network() string { return "webrtc" }

// String returns "data-channel".
func (Addr) String() string { return "data-channel" }

// LocalAddr returns Addr{}.
func (c *Conn) LocalAddr() net.Addr { return Addr{} }

// RemoteAddr returns Addr{}.
func (c *Conn) RemoteAddr() net.Addr { return Addr{} }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rDeadline.set(t)
	c.wDeadline.set(t)
	return nil
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wDeadline.set(t)
	return nil
}
