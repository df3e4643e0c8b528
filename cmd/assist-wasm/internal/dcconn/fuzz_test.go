package dcconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// scriptChannel is a Channel whose send queue the fuzz program sets by
// hand: it records every message sent, reports the BufferedAmount it is
// told, and can fail a Send.
type scriptChannel struct {
	mu       sync.Mutex
	sent     bytes.Buffer // every message sent, concatenated
	sizes    []int        // the size of each message sent
	buffered int
	failIn   int // the Send after failIn more succeeds fails; -1 never
	closes   int
}

var errSendFailed = errors.New("script: send failed")

func (s *scriptChannel) Send(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failIn == 0 {
		s.failIn = -1
		return errSendFailed
	}
	if s.failIn > 0 {
		s.failIn--
	}
	s.sent.Write(p)
	s.sizes = append(s.sizes, len(p))
	return nil
}

func (s *scriptChannel) BufferedAmount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buffered
}

func (s *scriptChannel) setBuffered(n int) {
	s.mu.Lock()
	s.buffered = n
	s.mu.Unlock()
}

func (s *scriptChannel) Close() {
	s.mu.Lock()
	s.closes++
	s.mu.Unlock()
}

// connModel is what a Conn should hold, kept the simple way: the
// messages received and not read, as slices, the first one partly read.
type connModel struct {
	queue   [][]byte
	off     int // bytes of queue[0] already read
	unread  int // bytes received and not read
	peerErr error
	closed  bool
	closes  int      // calls of Channel.Close expected
	written [][]byte // the bytes Write must have sent since the last check
}

// take removes the next len(b) unread bytes of the stream and reports
// whether they are b's.
func (m *connModel) take(b []byte) bool {
	m.unread -= len(b)
	same := true
	for len(b) > 0 {
		k := min(len(b), len(m.queue[0])-m.off)
		same = same && bytes.Equal(b[:k], m.queue[0][m.off:m.off+k])
		b = b[k:]
		m.off += k
		if m.off == len(m.queue[0]) {
			m.queue, m.off = m.queue[1:], 0
		}
	}
	return same
}

func (m *connModel) deliver(p []byte) {
	switch {
	case len(p) == 0 || m.closed || m.peerErr != nil:
	case m.unread+len(p) > MaxReceiveQueue:
		m.peerErr = ErrTooMuchData
		m.queue, m.off, m.unread = nil, 0, 0
		m.closes++
	default:
		m.queue = append(m.queue, p)
		m.unread += len(p)
	}
}

// writeErr is the error a Write of a non-empty buffer must fail with
// before sending anything, or nil.
func (m *connModel) writeErr() error {
	switch {
	case m.closed:
		return net.ErrClosed
	case m.peerErr == io.EOF:
		return io.ErrClosedPipe
	default:
		return m.peerErr
	}
}

// pattern is the data the fuzz program delivers and writes: a long
// sequence without short periods, so that bytes read out of order or
// twice do not compare equal by chance.
var pattern = func() []byte {
	b := make([]byte, MaxReceiveQueue+1<<20)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

// within runs f on a goroutine and fails the test if it has not returned
// after a generous bound, which only a Conn that never wakes a blocked
// Read or Write would hit. c.Close releases it then.
func within(t *testing.T, c *Conn, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.Close()
		<-done
		t.Fatalf("%s: still blocked after 10 s", what)
	}
}

// Fuzz program operations: each is two bytes, the first one's low three
// bits the operation and its high five bits (x) an extra argument, the
// second byte (a) the main argument.
const (
	opDeliver      = iota // a bytes of pattern (x picks where)
	opDeliverLarge        // (a%32+1) * 512 KiB in one message, up to MaxReceiveQueue
	opRead                // Read with the deadline passed, into a buffer of a+1 or (a+1)*256 bytes
	opWrite               // Write a*600+x bytes, the send queue low; x == 31 makes a Send fail
	opWriteFull           // Write with the send queue over HighWater: odd x waits for Drained, even x has its deadline passed
	opPeerClosed          // Closed(nil), or Closed(an error) for odd x
	opClose               // Close
	opReadBlocked         // Read with no deadline; when nothing is queued, a message of a+1 bytes arrives meanwhile
)

// FuzzConn runs programs of the channel's events (messages delivered,
// send queue full and drained, the channel closing) and the Conn's calls
// (Read, Write, Close) against a model of the framing: the bytes read are
// the messages delivered, in order, each exactly once; every message sent
// is at most MaxChunk bytes and together they are the bytes written; more
// than MaxReceiveQueue unread bytes break the connection and close the
// channel; a full send queue holds Write back until Drained; and each
// error is the one the documentation promises.
func FuzzConn(f *testing.F) {
	prog := func(ops ...byte) []byte { return ops }
	f.Add(prog(opDeliver, 10, opRead, 3, opRead, 255))
	f.Add(prog(opDeliver|5<<3, 200, opDeliver, 1, opRead, 255, opReadBlocked, 9, opReadBlocked, 0))
	f.Add(prog(opWrite, 100, opWrite|7<<3, 0, opWriteFull|1<<3, 40, opWriteFull, 1))
	f.Add(prog(opWrite|31<<3, 90, opWrite, 1))
	f.Add(prog(opDeliverLarge, 31, opDeliver, 1, opRead, 0, opDeliver, 1, opRead, 0))
	f.Add(prog(opDeliverLarge, 30, opRead, 0, opDeliverLarge, 0, opDeliver, 1, opRead, 0))
	f.Add(prog(opDeliver, 5, opPeerClosed, 0, opRead, 255, opRead, 255, opWrite, 1))
	f.Add(prog(opDeliver, 5, opPeerClosed|1<<3, 0, opRead, 255, opRead, 255, opWrite, 1))
	f.Add(prog(opDeliver, 5, opClose, 0, opRead, 1, opWrite, 1, opDeliver, 1, opClose, 0))
	readBuf := make([]byte, 256*256)
	f.Fuzz(func(t *testing.T, program []byte) {
		ch := &scriptChannel{failIn: -1}
		c := New(ch)
		defer c.Close()
		var m connModel
		pos := 0 // where the next piece of pattern starts
		// next returns the next n bytes of pattern, after skipping skip.
		next := func(skip, n int) []byte {
			pos += skip
			if pos+n > len(pattern) {
				pos = 0
			}
			p := pattern[pos : pos+n]
			pos += n
			return p
		}
		boom := errors.New("sctp failure")
		// 256 operations are plenty to reach every state; longer
		// programs would only make one run slow.
		program = program[:min(len(program), 512)]
		for ; len(program) >= 2; program = program[2:] {
			op, x, a := program[0]&7, int(program[0]>>3), int(program[1])
			switch op {
			case opDeliver, opDeliverLarge:
				n := a
				if op == opDeliverLarge {
					n = (a%32 + 1) * 512 << 10
				}
				p := next(x*4099, n)
				c.Deliver(p)
				m.deliver(p)

			case opRead, opReadBlocked:
				size := a + 1
				if op == opRead && x >= 24 {
					size *= 256
				}
				buf := readBuf[:size]
				var (
					n   int
					err error
				)
				if op == opRead {
					c.SetReadDeadline(time.Unix(1, 0))
					n, err = c.Read(buf)
				} else {
					c.SetReadDeadline(time.Time{})
					blocks := !m.closed && m.unread == 0 && m.peerErr == nil
					within(t, c, "Read", func() {
						if blocks {
							// Delivered while Read waits (or just
							// before): it must wake up for it.
							p := next(0, a+1)
							m.deliver(p)
							var wg sync.WaitGroup
							defer wg.Wait()
							wg.Go(func() { c.Deliver(p) })
						}
						n, err = c.Read(buf)
					})
				}
				switch {
				case m.closed:
					if n != 0 || !errors.Is(err, net.ErrClosed) {
						t.Fatalf("Read after Close: %d, %v; want net.ErrClosed", n, err)
					}
				case m.unread > 0:
					if err != nil || n < 1 || n > min(size, m.unread) {
						t.Fatalf("Read of %d bytes with %d unread: %d, %v", size, m.unread, n, err)
					}
					if !m.take(buf[:n]) {
						t.Fatalf("Read %d bytes that are not the next ones of the stream", n)
					}
				case m.peerErr != nil:
					if n != 0 || !errors.Is(err, m.peerErr) {
						t.Fatalf("Read after the channel closed: %d, %v; want %v", n, err, m.peerErr)
					}
				default:
					if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("Read with nothing received and the deadline passed: %d, %v", n, err)
					}
				}

			case opWrite, opWriteFull:
				size := a*600 + x
				if op == opWriteFull {
					size = a*97 + 1
				}
				if op == opWrite && x == 31 {
					ch.mu.Lock()
					ch.failIn = a % 3
					ch.mu.Unlock()
				}
				data := next(0, size)
				waitDrained := op == opWriteFull && x&1 == 1
				if op == opWriteFull {
					ch.setBuffered(HighWater + 1)
				} else {
					ch.setBuffered(0)
				}
				if op == opWriteFull && !waitDrained {
					c.SetWriteDeadline(time.Unix(1, 0))
				} else {
					c.SetWriteDeadline(time.Time{})
				}
				ch.mu.Lock()
				failIn := ch.failIn
				ch.mu.Unlock()
				var (
					n   int
					err error
				)
				within(t, c, "Write", func() {
					if waitDrained {
						var wg sync.WaitGroup
						defer wg.Wait()
						wg.Go(func() {
							ch.setBuffered(LowWater)
							c.Drained()
						})
					}
					n, err = c.Write(data)
				})
				wantErr := m.writeErr()
				switch {
				case size == 0:
					if n != 0 || err != nil {
						t.Fatalf("Write of nothing: %d, %v", n, err)
					}
				case wantErr != nil:
					if n != 0 || !errors.Is(err, wantErr) {
						t.Fatalf("Write: %d, %v; want %v", n, err, wantErr)
					}
				case op == opWriteFull && !waitDrained:
					if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("Write with a full send queue and the deadline passed: %d, %v", n, err)
					}
				case failIn >= 0 && failIn*MaxChunk < size:
					if n != failIn*MaxChunk || !errors.Is(err, errSendFailed) {
						t.Fatalf("Write whose Send %d fails: %d, %v", failIn, n, err)
					}
					m.written = append(m.written, data[:n])
				default:
					if n != size || err != nil {
						t.Fatalf("Write of %d bytes: %d, %v", size, n, err)
					}
					m.written = append(m.written, data)
				}

			case opPeerClosed:
				var err error
				if x&1 == 1 {
					err = boom
				}
				c.Closed(err)
				if m.peerErr == nil {
					m.peerErr = io.EOF
					if err != nil {
						m.peerErr = err
					}
				}

			case opClose:
				if err := c.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if !m.closed {
					m.closed = true
					m.queue, m.off, m.unread = nil, 0, 0
					m.closes++
				}
			}
			// Check what was sent since the last operation, then
			// forget it, so that a long program stays linear.
			ch.mu.Lock()
			closes, sent, sizes := ch.closes, bytes.Clone(ch.sent.Bytes()), slices.Clone(ch.sizes)
			ch.sent.Reset()
			ch.sizes = ch.sizes[:0]
			ch.mu.Unlock()
			if closes != m.closes {
				t.Fatalf("the channel was closed %d times, want %d", closes, m.closes)
			}
			for _, w := range m.written {
				if !bytes.HasPrefix(sent, w) {
					t.Fatalf("the messages sent are not the bytes written")
				}
				sent = sent[len(w):]
			}
			if len(sent) != 0 {
				t.Fatalf("the messages sent hold %d bytes more than written", len(sent))
			}
			for _, s := range sizes {
				if s < 1 || s > MaxChunk {
					t.Fatalf("a message of %d bytes was sent", s)
				}
			}
			m.written = m.written[:0]
		}
	})
}
