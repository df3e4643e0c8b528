package dcconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// fakeChannel is one end of an in-memory data channel with a send queue
// that drains into the peer only while the peer's receive queue is below
// window, the way SCTP's receive window holds a sender back.
type fakeChannel struct {
	window int

	mu       sync.Mutex
	own      *Conn
	peer     *fakeChannel
	out      [][]byte
	buffered int
	closing  bool
	sent     []int // sizes of the messages sent, for the test
	kick     chan struct{}
	stopped  chan struct{}
}

func newFakeChannel(window int) *fakeChannel {
	return &fakeChannel{window: window, kick: make(chan struct{}, 1), stopped: make(chan struct{})}
}

func (f *fakeChannel) Send(p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return errors.New("fake: channel closing")
	}
	f.out = append(f.out, bytes.Clone(p))
	f.buffered += len(p)
	f.sent = append(f.sent, len(p))
	wake(f.kick)
	return nil
}

func (f *fakeChannel) BufferedAmount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buffered
}

func (f *fakeChannel) Close() {
	f.mu.Lock()
	f.closing = true
	f.mu.Unlock()
	wake(f.kick)
}

// pump moves queued messages to the peer until the channel is closed and
// drained, then tells both ends it closed.
func (f *fakeChannel) pump() {
	defer close(f.stopped)
	for {
		f.mu.Lock()
		if len(f.out) == 0 && f.closing {
			f.mu.Unlock()
			f.own.Closed(nil)
			f.peer.own.Closed(nil)
			return
		}
		if len(f.out) > 0 && f.peer.own.receiveQueued() < f.window {
			p := f.out[0]
			f.out = f.out[1:]
			before := f.buffered
			f.buffered -= len(p)
			after := f.buffered
			f.mu.Unlock()
			f.peer.own.Deliver(p)
			if before > LowWater && after <= LowWater {
				f.own.Drained()
			}
			continue
		}
		f.mu.Unlock()
		select {
		case <-f.kick:
		case <-time.After(time.Millisecond):
		}
	}
}

// receiveQueued is the bytes received and not read.
func (c *Conn) receiveQueued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued + len(c.rbuf)
}

// fakePair returns two Conns joined by fake channels. stop closes both
// and waits for the pumps.
func fakePair(window int) (a, b *Conn, ca, cb *fakeChannel, stop func()) {
	ca, cb = newFakeChannel(window), newFakeChannel(window)
	ca.peer, cb.peer = cb, ca
	a, b = New(ca), New(cb)
	ca.own, cb.own = a, b
	go ca.pump()
	go cb.pump()
	stop = func() {
		a.Close()
		b.Close()
		<-ca.stopped
		<-cb.stopped
	}
	return a, b, ca, cb, stop
}

func TestConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b, _, _, stop := fakePair(256 << 10)
		return a, b, stop, nil
	})
}

// TestChunks: writes leave as messages of at most MaxChunk bytes and
// arrive as the same byte stream.
func TestChunks(t *testing.T) {
	a, b, ca, _, stop := fakePair(1 << 20)
	defer stop()
	data := make([]byte, 3*MaxChunk+5)
	for i := range data {
		data[i] = byte(i * 7)
	}
	go a.Write(data)
	got := make([]byte, len(data))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("the stream arrived changed")
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	want := []int{MaxChunk, MaxChunk, MaxChunk, 5}
	if len(ca.sent) != len(want) {
		t.Fatalf("sent messages of %v bytes, want %v", ca.sent, want)
	}
	for i := range want {
		if ca.sent[i] != want[i] {
			t.Fatalf("sent messages of %v bytes, want %v", ca.sent, want)
		}
	}
}

// TestBackpressure: a peer that does not read holds the writer back at
// about HighWater bytes in the send queue, and reading releases it.
func TestBackpressure(t *testing.T) {
	a, b, ca, _, stop := fakePair(64 << 10)
	defer stop()
	const total = 4 << 20
	wrote := make(chan error, 1)
	go func() {
		_, err := a.Write(make([]byte, total))
		wrote <- err
	}()
	// Wait until the writer is stuck: the queue stops growing.
	var last int
	for {
		time.Sleep(20 * time.Millisecond)
		n := ca.BufferedAmount()
		if n == last && n > 0 {
			break
		}
		last = n
	}
	if last > HighWater+MaxChunk {
		t.Errorf("send queue grew to %d bytes, want at most %d", last, HighWater+MaxChunk)
	}
	select {
	case err := <-wrote:
		t.Fatalf("Write returned (%v) while the peer read nothing", err)
	default:
	}
	if _, err := io.CopyN(io.Discard, b, total); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// TestReceiveLimit: a peer that sends past MaxReceiveQueue unread bytes
// breaks the connection instead of filling memory.
func TestReceiveLimit(t *testing.T) {
	ch := newFakeChannel(0)
	c := New(ch)
	for range MaxReceiveQueue / MaxChunk {
		c.Deliver(make([]byte, MaxChunk))
	}
	c.Deliver([]byte{1})
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrTooMuchData) {
		t.Errorf("Read: %v, want ErrTooMuchData", err)
	}
	if !ch.closing {
		t.Error("the channel was not closed")
	}
}

// TestPeerClose: what was received before the channel closed is still
// read, then io.EOF; a failed channel gives its error; writes fail.
func TestPeerClose(t *testing.T) {
	ch := newFakeChannel(0)
	c := New(ch)
	c.Deliver([]byte("last words"))
	c.Closed(nil)
	got, err := io.ReadAll(c)
	if string(got) != "last words" || err != nil {
		t.Errorf("ReadAll: %q, %v", got, err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Error("Write after the peer closed: no error")
	}

	boom := errors.New("sctp failure")
	c2 := New(newFakeChannel(0))
	c2.Closed(boom)
	if _, err := c2.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Errorf("Read: %v, want %v", err, boom)
	}
	// A message arriving after the close is dropped.
	c2.Deliver([]byte("late"))
	if _, err := c2.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Errorf("Read: %v, want %v", err, boom)
	}
}

// TestReceiveLimitCountsPartlyRead: the message being read counts
// against MaxReceiveQueue too, so the bytes received and not read never
// exceed it (the bound was MaxReceiveQueue plus one message).
func TestReceiveLimitCountsPartlyRead(t *testing.T) {
	ch := newFakeChannel(0)
	c := New(ch)
	c.Deliver(make([]byte, MaxReceiveQueue/2+1))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	c.Deliver(make([]byte, MaxReceiveQueue/2+1)) // MaxReceiveQueue+1 unread
	// The deadline ends ReadAll if the data was (wrongly) accepted.
	c.SetReadDeadline(time.Unix(1, 0))
	if _, err := io.ReadAll(c); !errors.Is(err, ErrTooMuchData) {
		t.Errorf("ReadAll: %v, want ErrTooMuchData", err)
	}
}
