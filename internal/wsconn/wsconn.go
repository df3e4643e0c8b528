// Package wsconn runs the writing half of a server's WebSocket
// connection, as the signalling server and the messenger both do.
//
// One goroutine (Run) owns every write. Senders never block: a client too
// slow to take its messages is disconnected rather than holding up the
// server. Pings find peers that went away. Closing first sends what is
// queued, then runs the close handshake, and ends the reader's read if
// the peer never answers it.
package wsconn

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// WriteTimeout bounds one write, one ping and the close handshake.
const WriteTimeout = 10 * time.Second

// Conn is one server-side WebSocket connection's writer.
type Conn struct {
	ws   *websocket.Conn
	log  *slog.Logger
	name string // "signal", "messenger": the prefix of its log messages

	out  chan []byte
	done chan struct{} // closed by Close: Run flushes and closes

	closeOnce sync.Once
	code      websocket.StatusCode // set before done is closed
	reason    string

	readCtx    context.Context
	cancelRead context.CancelFunc
}

// New returns the writer of ws, queueing up to queue messages. name
// prefixes its log messages.
func New(ws *websocket.Conn, queue int, log *slog.Logger, name string) *Conn {
	c := &Conn{ws: ws, log: log, name: name, out: make(chan []byte, queue), done: make(chan struct{})}
	c.readCtx, c.cancelRead = context.WithCancel(context.Background())
	return c
}

// ReadContext is the context the connection's reader reads with: it ends
// WriteTimeout after Close if the close handshake did not end the read,
// or at CancelRead.
func (c *Conn) ReadContext() context.Context { return c.readCtx }

// CancelRead ends the reader's read now. The owner calls it when its
// reader returns.
func (c *Conn) CancelRead() { c.cancelRead() }

// Done is closed once Close has been called.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close makes Run send what is queued, then close the connection with
// this status (StatusAbnormalClosure: at once, without a handshake). Only
// the first call counts.
func (c *Conn) Close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.code, c.reason = code, reason
		close(c.done)
		// The close handshake normally ends the reader's read; if the
		// peer does not answer, this does. A timer rather than a
		// goroutine per connection waiting for done: goroutines are a
		// good part of what an idle connection costs.
		time.AfterFunc(WriteTimeout, c.cancelRead)
	})
}

// Send queues a message without blocking. A client too slow to take it is
// disconnected. After Close, Send drops msg.
func (c *Conn) Send(msg []byte) {
	// Checked first: with room in the queue, the select below would
	// choose at random between queueing and dropping.
	select {
	case <-c.done:
		return
	default:
	}
	select {
	case <-c.done:
	case c.out <- msg:
	default:
		c.log.Warn(c.name + ": client too slow, disconnecting")
		c.Close(websocket.StatusPolicyViolation, "too slow: messages piled up")
	}
}

// Run writes until the connection is closed, pinging every ping. Each
// time timer fires it calls onTimer (the owner's deadlines); timer may be
// nil. Run returns once the connection is closed.
func (c *Conn) Run(ping time.Duration, timer <-chan time.Time, onTimer func()) {
	pinger := time.NewTicker(ping)
	defer pinger.Stop()
	for {
		select {
		case msg := <-c.out:
			if !c.write(msg) {
				return
			}
		case <-timer:
			onTimer()
		case <-pinger.C:
			ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				c.log.Debug(c.name+": ping", "err", err)
				c.Close(websocket.StatusGoingAway, "no answer to ping")
				c.ws.CloseNow()
				return
			}
		case <-c.done:
			c.flush()
			return
		}
	}
}

// flush sends what is still queued, then closes.
func (c *Conn) flush() {
	for {
		select {
		case msg := <-c.out:
			if !c.write(msg) {
				return
			}
			continue
		default:
		}
		break
	}
	if c.code == websocket.StatusAbnormalClosure {
		c.ws.CloseNow()
		return
	}
	// Waits (bounded by the library) for the client's answer.
	c.ws.Close(c.code, c.reason)
}

// write sends one message; on failure it closes the connection at once
// and reports false.
func (c *Conn) write(msg []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
		c.log.Debug(c.name+": write", "err", err)
		c.Close(websocket.StatusAbnormalClosure, "")
		c.ws.CloseNow()
		return false
	}
	return true
}
