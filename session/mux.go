package session

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// The mux carries the session's three fixed channels, and the byte
// streams the expert opens (one RFB session per local viewer), over one
// authenticated connection with a framing of its own:
//
//	frame = channel id (1 byte) | payload length (3 bytes, big-endian) | payload
//
// Ids 1 to 4 are the fixed channels, 16 to 255 the dynamic streams; the
// rest are invalid. Why not yamux, HTTP/2 or QUIC streams: both ends are
// ours, streams are opened by one side only and need no names, and the
// transport (TCP+TLS, or a WebRTC data channel) already gives ordering,
// integrity and backpressure. What is left to solve is small: a busy
// display must never hold up control and chat, nor another display. Two
// rules do it:
//
//   - Priority on the way out. One writer goroutine builds each batch from
//     the mux's own frames first, then every pending control and chat
//     message, then at most one chunk (16 KiB) of one byte stream (the
//     display channel and the dynamic streams take turns). A control
//     message therefore waits for at most one batch, never for a whole
//     screen update.
//   - Credit on the way in. Each channel has a receive window (default
//     256 KiB): the sender may only have that many unread bytes
//     outstanding per channel and is given more as the application reads
//     (window updates). The demultiplexer therefore never blocks: a
//     viewer that stops reading the display stalls the display alone,
//     while control messages keep arriving. The simpler alternative,
//     blocking the demultiplexer on a full buffer, would let a stalled
//     display hold back "control taken back" or "session ended", which is
//     exactly what must get through.
//
// Channel 0 carries the mux's own frames, 6 bytes each: kind (1 byte),
// channel id (1 byte), value (4 bytes, big-endian). Kind 1 grants
// value more bytes of credit on the channel; kind 2 (value 0) says the
// sender closed the channel; kind 3 (value 0, reserved) opens stream id.
// Every channel starts with 64 KiB of credit in each direction; a
// receiver with a bigger window grants the rest in its first frames, so
// no negotiation is needed and two muxes with different options still
// interoperate.
//
// Dynamic streams. Exactly one side, the opener (the expert), opens them.
// The open is an explicit frame rather than implied by the first data
// frame because the side that accepts the stream speaks first in RFB
// (the server's ProtocolVersion): it must learn of the stream before any
// byte flows. The opener queues the open, then its window update, then
// data, all in wire order, so the acceptor always knows a stream before
// any other frame for it. Credit is per stream as for the fixed channels,
// with one twist: the acceptor grants the rest of its window only when
// the application accepts the stream, so a stream nobody has accepted yet
// holds at most 64 KiB. At most AcceptBacklog streams wait to be
// accepted; the acceptor resets any further one at once (it closes its
// end: the opener reads EOF and its writes fail with ErrPeerClosed) rather
// than failing the whole session over one viewer too many. At most
// MaxStreams streams are open at once; an opener never exceeds it, so an
// open beyond it is a protocol error.
//
// Closing and reusing ids needs no acknowledgement: each side sends its
// close exactly once and nothing for that id after it. A side that has
// sent its close and received the peer's therefore knows that no frame
// for the id is in flight either way, and frees the id. The opener can
// only reuse an id it freed, so its next open follows its close on the
// wire; and it freed the id only after receiving the acceptor's close, so
// by the time the acceptor reads the new open it has freed the id too.

// The session's channels.
const (
	ChannelDisplay byte = 1 // the RFB stream; a byte stream
	ChannelControl byte = 2 // consent and session state; one message per frame
	ChannelChat    byte = 3 // chat; one message per frame
	// ChannelFiles carries file transfers both ways (package
	// filetransfer); a byte stream. It starts with the initial 64 KiB of
	// credit only and grants the rest of its window when it is first used
	// (a byte written or received), so a peer that predates it never
	// sees a frame for it unless a file is sent.
	ChannelFiles byte = 4
)

// Dynamic streams.
const (
	// FirstStream is the lowest id of a dynamic stream; ids FirstStream
	// to 255 are streams, opened with Open and accepted with Accept.
	FirstStream = 16
	// MaxStreams is how many dynamic streams may be open at once, on
	// both sides; a stream counts until both sides have closed it.
	MaxStreams = 64
	// AcceptBacklog is how many opened streams may wait for Accept;
	// the acceptor resets any further stream.
	AcceptBacklog = 16
)

const (
	channelMux    byte = 0
	lastChannel        = ChannelFiles
	frameHeader        = 4
	muxFrameLen        = 6
	muxWindow     byte = 1
	muxClose      byte = 2
	muxOpen       byte = 3
	displayChunk       = 16 << 10
	initialWindow      = 64 << 10
	maxCredit          = 1 << 30
)

// Frame and window limits.
const (
	// MaxFrameLimit is the largest payload the frame header can express.
	MaxFrameLimit = 1<<24 - 1
	// DefaultMaxFrame is the largest payload a Mux accepts by default.
	DefaultMaxFrame = 64 << 10
	// MaxMessage is the largest control or chat message; one message is
	// one frame, so every Mux accepts frames at least this large.
	MaxMessage = 32 << 10
	// DefaultWindow is the default per-channel receive window.
	DefaultWindow = 256 << 10
	// MaxWindow bounds the per-channel receive window.
	MaxWindow = 16 << 20
)

// ErrProtocol is wrapped by the error a Mux fails with when the peer
// breaks the framing; the connection is then closed.
var ErrProtocol = errors.New("mux protocol error")

// ErrPeerClosed is returned by writes on a channel the peer closed.
var ErrPeerClosed = errors.New("session: mux: channel closed by peer")

// ErrTooManyStreams is wrapped by the error Open returns when MaxStreams
// streams are open.
var ErrTooManyStreams = errors.New("session: mux: too many open streams")

// MuxOptions tune a Mux; the zero value gives the defaults.
type MuxOptions struct {
	// MaxFrame is the largest frame payload accepted from the peer;
	// larger frames are a protocol error. Zero means DefaultMaxFrame;
	// values are clamped to [MaxMessage, MaxFrameLimit].
	MaxFrame int
	// Window is the per-channel receive window: how many unread bytes
	// the peer may have outstanding on each channel. Zero means
	// DefaultWindow; values are clamped to [64 KiB, MaxWindow].
	Window int
	// Opener makes this side the one that opens dynamic streams (Open);
	// the other side accepts them (Accept). Exactly one side of a
	// connection sets it: the expert.
	Opener bool
}

// Mux carries the display, control and chat channels, and dynamic byte
// streams, over one connection. It owns two goroutines: one reads and
// demultiplexes, one writes. Both stop when the connection fails, the
// peer breaks the protocol, or Close is called.
type Mux struct {
	rwc      io.ReadWriteCloser
	maxFrame int
	window   int
	opener   bool
	local    net.Addr
	remote   net.Addr
	accepts  chan *Channel // opened streams waiting for Accept

	mu       sync.Mutex
	wake     sync.Cond     // the writer waits on it for work
	chans    [256]*Channel // by id; nil for ids not in use
	live     []*Channel    // the channels in chans, fixed ones first
	streams  int           // dynamic streams in live
	nextID   int           // where Open starts looking for a free id
	turn     int           // index in live of the next byte stream to send
	err      error         // why the mux stopped; nil while it runs
	batchGen uint64
	doneGen  uint64
	// busy is when a foreground stream last filled its window, and
	// busyBDP its path's bandwidth-delay product then: a background
	// stream yields to it (pace.go).
	busy    time.Time
	busyBDP float64

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// NewMux starts multiplexing over rwc and takes ownership of it.
func NewMux(rwc io.ReadWriteCloser, opts MuxOptions) *Mux {
	m := &Mux{rwc: rwc, maxFrame: opts.MaxFrame, window: opts.Window, opener: opts.Opener,
		accepts: make(chan *Channel, AcceptBacklog), nextID: FirstStream, done: make(chan struct{})}
	if m.maxFrame == 0 {
		m.maxFrame = DefaultMaxFrame
	}
	m.maxFrame = min(max(m.maxFrame, MaxMessage), MaxFrameLimit)
	if m.window == 0 {
		m.window = DefaultWindow
	}
	m.window = min(max(m.window, initialWindow), MaxWindow)
	m.local, m.remote = muxAddr{}, muxAddr{}
	if c, ok := rwc.(net.Conn); ok {
		m.local, m.remote = c.LocalAddr(), c.RemoteAddr()
	}
	m.wake.L = &m.mu
	for id := ChannelDisplay; id <= lastChannel; id++ {
		message := id == ChannelControl || id == ChannelChat
		if id == ChannelFiles {
			ch := m.addChannelLocked(id, false, 0)
			ch.lazy = m.window - initialWindow
			ch.background = true
			continue
		}
		m.addChannelLocked(id, message, m.window-initialWindow)
	}
	m.wg.Add(2)
	go m.readLoop()
	go m.writeLoop()
	return m
}

// addChannelLocked creates and registers channel id. It starts with the
// initial credit both ways, and grants the peer grant bytes more in the
// next batch.
func (m *Mux) addChannelLocked(id byte, message bool, grant int) *Channel {
	ch := &Channel{m: m, id: id, message: message,
		rwin: initialWindow + grant, owed: grant, swin: initialWindow}
	if !message {
		ch.pace = newPacer()
	}
	ch.rcond.L = &m.mu
	ch.wcond.L = &m.mu
	m.chans[id] = ch
	m.live = append(m.live, ch)
	if id >= FirstStream {
		m.streams++
	}
	return ch
}

// releaseLocked frees the ids of the streams both sides have closed
// (see the package comment for why that is enough).
func (m *Mux) releaseLocked() {
	live := m.live[:0]
	for _, ch := range m.live {
		if ch.id >= FirstStream && ch.closed && ch.peerClosed && !ch.finOwed && !ch.openOwed {
			m.chans[ch.id] = nil
			m.streams--
			ch.rcond.Broadcast()
			ch.wcond.Broadcast()
			continue
		}
		live = append(live, ch)
	}
	clear(m.live[len(live):])
	m.live = live
}

// Channel returns channel id (ChannelDisplay, ChannelControl,
// ChannelChat or ChannelFiles), or nil for any other id, dynamic streams included. The
// same *Channel is returned every time.
func (m *Mux) Channel(id byte) *Channel {
	if id == channelMux || id > lastChannel {
		return nil
	}
	return m.chans[id]
}

// Open opens a new dynamic stream, a byte stream like ChannelDisplay, and
// tells the peer, whose Accept returns it. Only the side with
// MuxOptions.Opener may open streams. Open does not wait for the peer:
// the stream may be written at once (the first 64 KiB go out before the
// peer accepts it, the rest as its application reads). If the peer
// refuses the stream because AcceptBacklog streams are already waiting,
// Reads return io.EOF and Writes fail with ErrPeerClosed. Open fails,
// with an error wrapping ErrTooManyStreams, when MaxStreams streams are
// open: a stream stays open until both sides have closed it, so Close
// every stream, even one the peer closed first.
func (m *Mux) Open(ctx context.Context) (*Channel, error) {
	if !m.opener {
		return nil, errors.New("session: mux: open: only the opening side (MuxOptions.Opener) opens streams")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("session: mux: open: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, fmt.Errorf("session: mux: open: %w", m.err)
	}
	if m.streams >= MaxStreams {
		return nil, fmt.Errorf("%w: %d streams are open or not yet closed by both sides", ErrTooManyStreams, m.streams)
	}
	// MaxStreams is well below the number of ids, so a free one exists.
	// Ids are taken in turn rather than lowest first, so that an id is
	// reused as late as possible, which makes traces easier to read.
	id := m.nextID
	for m.chans[id] != nil {
		if id++; id > 255 {
			id = FirstStream
		}
	}
	if m.nextID = id + 1; m.nextID > 255 {
		m.nextID = FirstStream
	}
	ch := m.addChannelLocked(byte(id), false, m.window-initialWindow)
	ch.openOwed = true
	m.wake.Signal()
	return ch, nil
}

// Accept returns the next stream the peer opened, waiting for one until
// ctx is done or the mux stops (the error then wraps ctx.Err() or Err()).
// Only the side without MuxOptions.Opener accepts streams. The peer may
// send at most 64 KiB on a stream before it is accepted; Accept grants
// the rest of the window.
func (m *Mux) Accept(ctx context.Context) (*Channel, error) {
	if m.opener {
		return nil, errors.New("session: mux: accept: the opening side (MuxOptions.Opener) accepts no streams")
	}
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("session: mux: accept: %w", ctx.Err())
	case <-m.done:
		return nil, fmt.Errorf("session: mux: accept: %w", m.Err())
	case ch := <-m.accepts:
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.err != nil {
			return nil, fmt.Errorf("session: mux: accept: %w", m.err)
		}
		if grant := m.window - initialWindow; grant > 0 {
			ch.rwin += grant
			ch.owed += grant
			m.wake.Signal()
		}
		return ch, nil
	}
}

// Done is closed when the mux stops.
func (m *Mux) Done() <-chan struct{} { return m.done }

// Err returns why the mux stopped: io.EOF when the peer closed the
// connection cleanly, an error wrapping ErrProtocol, the connection's
// error, or net.ErrClosed after Close. It is nil while the mux runs.
func (m *Mux) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Close closes the connection at once and waits for the mux's
// goroutines. Blocked and later Writes fail with net.ErrClosed; Reads
// return what had already arrived, then net.ErrClosed.
// Data still queued is not sent: to end a session gracefully, send the
// last message and let the peer close. The connection's Close must
// unblock its pending Read and Write (true of net.Conn and tls.Conn).
func (m *Mux) Close() error {
	m.fail(net.ErrClosed)
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ch := range m.live {
		ch.stopTimersLocked()
	}
	return m.closeErr
}

// fail stops the mux with err (the first error wins) and closes the
// connection, which unblocks both goroutines.
func (m *Mux) fail(err error) {
	m.mu.Lock()
	if m.err == nil {
		m.err = err
		close(m.done)
		m.wake.Broadcast()
		for _, ch := range m.live {
			ch.rcond.Broadcast()
			ch.wcond.Broadcast()
		}
	}
	m.mu.Unlock()
	m.closeOnce.Do(func() { m.closeErr = m.rwc.Close() })
}

func protocolError(format string, args ...any) error {
	return fmt.Errorf("session: mux: %s: %w", fmt.Sprintf(format, args...), ErrProtocol)
}

// readFrame reads one frame from r into buf (grown as needed), rejecting
// invalid channel ids and payloads that are empty or longer than limit
// before reading them. Whether a stream id is open is for deliver to
// say.
func readFrame(r io.Reader, hdr *[frameHeader]byte, buf []byte, limit int) (id byte, payload []byte, err error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, buf, err
	}
	id = hdr[0]
	n := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
	if id > lastChannel && id < FirstStream {
		return id, buf, protocolError("unknown channel %d", id)
	}
	if n == 0 {
		return id, buf, protocolError("empty frame on channel %d", id)
	}
	if n > limit {
		return id, buf, protocolError("frame of %d bytes on channel %d exceeds %d", n, id, limit)
	}
	if id == channelMux && n != muxFrameLen {
		return id, buf, protocolError("mux frame of %d bytes", n)
	}
	if cap(buf) < n {
		buf = make([]byte, n, max(n, min(limit, 64<<10)))
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return id, buf, fmt.Errorf("session: mux: frame on channel %d: %w", id, err)
	}
	return id, buf, nil
}

func appendFrameHeader(b []byte, id byte, n int) []byte {
	return append(b, id, byte(n>>16), byte(n>>8), byte(n))
}

func (m *Mux) readLoop() {
	defer m.wg.Done()
	br := bufio.NewReaderSize(m.rwc, 64<<10)
	var hdr [frameHeader]byte
	var buf []byte
	for {
		id, payload, err := readFrame(br, &hdr, buf, m.maxFrame)
		buf = payload
		if err == nil {
			err = m.deliver(id, payload)
		}
		if err != nil {
			if err != io.EOF && !errors.Is(err, ErrProtocol) {
				err = fmt.Errorf("session: mux: read: %w", err)
			}
			m.fail(err)
			return
		}
	}
}

// deliver hands one frame to its channel. It never blocks: credit bounds
// what each channel can hold.
func (m *Mux) deliver(id byte, p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id == channelMux {
		return m.deliverMux(p)
	}
	ch := m.chans[id]
	switch {
	case ch == nil:
		return protocolError("data for stream %d, which is not open", id)
	case ch.closed:
		return nil // the peer has not yet seen our close
	case ch.peerClosed:
		return protocolError("data on channel %d after its close", id)
	case ch.message && len(p) > MaxMessage:
		return protocolError("message of %d bytes on channel %d", len(p), id)
	case len(p) > ch.rwin:
		return protocolError("%d bytes on channel %d with %d bytes of credit", len(p), id, ch.rwin)
	}
	ch.rwin -= len(p)
	ch.grantLazyLocked()
	if ch.r == len(ch.buf) {
		ch.buf, ch.r = ch.buf[:0], 0
	} else if ch.r > 0 && len(ch.buf)+len(p) > cap(ch.buf) {
		ch.buf = ch.buf[:copy(ch.buf, ch.buf[ch.r:])]
		ch.r = 0
	}
	ch.buf = append(ch.buf, p...)
	if ch.message {
		ch.lens = append(ch.lens, len(p))
	}
	ch.received += uint64(len(p))
	ch.rcond.Broadcast()
	return nil
}

func (m *Mux) deliverMux(p []byte) error {
	kind, id, v := p[0], p[1], binary.BigEndian.Uint32(p[2:])
	if id == channelMux || id > lastChannel && id < FirstStream {
		return protocolError("mux frame for channel %d", id)
	}
	if kind == muxOpen {
		return m.peerOpenedLocked(id, v)
	}
	ch := m.chans[id]
	if ch == nil {
		return protocolError("mux frame of kind %d for stream %d, which is not open", kind, id)
	}
	switch kind {
	case muxWindow:
		if v == 0 || int64(ch.swin)+int64(v) > maxCredit {
			return protocolError("window update of %d on channel %d with %d bytes of credit", v, id, ch.swin)
		}
		ch.swin += int(v)
		if ch.pace != nil {
			ch.pace.granted(int(v), ch.swin, ch.sent, time.Now())
		}
		m.wake.Signal()
	case muxClose:
		if v != 0 || ch.peerClosed {
			return protocolError("bad close of channel %d", id)
		}
		ch.peerClosed = true
		ch.rcond.Broadcast()
		ch.wcond.Broadcast()
		if ch.closed && !ch.finOwed {
			m.releaseLocked()
		}
	default:
		return protocolError("unknown mux frame kind %d", kind)
	}
	return nil
}

// peerOpenedLocked registers stream id, which the peer opened, and queues
// it for Accept, or resets it when the backlog is full.
func (m *Mux) peerOpenedLocked(id byte, v uint32) error {
	switch {
	case m.opener:
		return protocolError("stream %d opened by the accepting side", id)
	case id < FirstStream:
		return protocolError("open of fixed channel %d", id)
	case v != 0:
		return protocolError("open of stream %d with value %d", id, v)
	case m.chans[id] != nil:
		return protocolError("open of stream %d, which is in use", id)
	case m.streams >= MaxStreams:
		return protocolError("open of stream %d with %d streams open", id, m.streams)
	}
	ch := m.addChannelLocked(id, false, 0)
	select {
	case m.accepts <- ch:
	default:
		ch.closed, ch.finOwed = true, true
		m.wake.Signal()
	}
	return nil
}

func (m *Mux) writeLoop() {
	defer m.wg.Done()
	bw := make([]byte, 0, 2*displayChunk+2*(MaxMessage+frameHeader))
	m.mu.Lock()
	for {
		for m.err == nil && !m.hasWorkLocked() {
			m.wake.Wait()
		}
		if m.err != nil {
			m.mu.Unlock()
			return
		}
		m.batchGen++
		bw = m.fillLocked(bw[:0], m.batchGen)
		m.mu.Unlock()
		_, err := m.rwc.Write(bw)
		if err != nil {
			m.fail(fmt.Errorf("session: mux: write: %w", err))
			return
		}
		m.mu.Lock()
		m.doneGen = m.batchGen
		for _, ch := range m.live {
			ch.wcond.Broadcast()
		}
	}
}

func (m *Mux) hasWorkLocked() bool {
	for _, ch := range m.live {
		if ch.openOwed || ch.finOwed {
			return true
		}
		if ch.closed {
			continue
		}
		if ch.owed > 0 || ch.sendableLocked() > 0 {
			return true
		}
	}
	return false
}

// fillLocked builds one batch: the mux's frames, then control and chat
// messages, then at most one chunk of one byte stream, taken in turn.
// Each channel's open, window update and close go out in that order, and
// nothing for a channel follows its close.
func (m *Mux) fillLocked(b []byte, gen uint64) []byte {
	release := false
	for _, ch := range m.live {
		if ch.openOwed {
			b = appendMuxFrame(b, muxOpen, ch.id, 0)
			ch.openOwed = false
		}
		if ch.owed > 0 && !ch.closed {
			b = appendMuxFrame(b, muxWindow, ch.id, uint32(ch.owed))
			ch.owed = 0
		}
		if ch.finOwed {
			b = appendMuxFrame(b, muxClose, ch.id, 0)
			ch.finOwed = false
			release = release || ch.peerClosed
		}
	}
	b = m.appendDataLocked(b, m.chans[ChannelControl], gen)
	b = m.appendDataLocked(b, m.chans[ChannelChat], gen)
	for i, n := 0, len(m.live); i < n; i++ {
		ch := m.live[(m.turn+i)%n]
		if !ch.message && ch.sendableLocked() > 0 {
			b = m.appendDataLocked(b, ch, gen)
			m.turn = (m.turn + i + 1) % n
			break
		}
	}
	if release {
		m.releaseLocked()
	}
	return b
}

// appendDataLocked moves what ch may send now into a frame.
func (m *Mux) appendDataLocked(b []byte, ch *Channel, gen uint64) []byte {
	n := ch.sendableLocked()
	if n == 0 {
		return b
	}
	b = appendFrameHeader(b, ch.id, n)
	b = append(b, ch.pending[:n]...)
	ch.pending = ch.pending[n:]
	ch.swin -= n
	ch.sent += uint64(n)
	if ch.pace != nil {
		now := time.Now()
		ch.pace.sent(n, now, len(ch.pending) == 0)
		if !ch.background {
			m.noteForegroundLocked(ch.pace, now)
		}
	}
	ch.gen = gen
	ch.wcond.Broadcast()
	return b
}

func appendMuxFrame(b []byte, kind, id byte, v uint32) []byte {
	b = appendFrameHeader(b, channelMux, muxFrameLen)
	return binary.BigEndian.AppendUint32(append(b, kind, id), v)
}

// Channel is one of a Mux's channels or dynamic streams. It implements
// net.Conn, so the RFB server and client run over the display channel
// and streams unchanged. On the display channel and on streams Read and
// Write are a byte stream. On the control and chat channels each Write
// is one message (at most MaxMessage bytes) and a Read never returns
// bytes of two messages; ReadMessage returns one whole message.
//
// Read and Write may be called concurrently; concurrent Writes are
// serialized, each one's bytes contiguous. Deadlines apply to both; a
// Write that times out may have sent part of its bytes (the returned n).
type Channel struct {
	m       *Mux
	id      byte
	message bool

	// Guarded by m.mu. Receiving:
	buf        []byte
	r          int
	lens       []int // message channels: bytes left in each queued message
	rwin       int   // bytes the peer may still send
	unread     int   // bytes read since the last window update
	owed       int   // credit to grant in the next batch
	received   uint64
	rcond      sync.Cond
	rdeadline  time.Time
	rtimer     *time.Timer
	peerClosed bool
	// lazy is credit granted only once the channel is first used
	// (ChannelFiles).
	lazy int
	// pace keeps a byte stream's bytes in flight near its path's
	// bandwidth-delay product (pace.go); nil on message channels.
	pace *pacer
	// background says the stream yields to the others (ChannelFiles):
	// while one of them fills its window, this one keeps little in
	// flight (pace.go).
	background bool

	// Sending:
	writing   bool
	pending   []byte
	swin      int    // bytes we may still send
	gen       uint64 // batch holding our last bytes
	sent      uint64
	wcond     sync.Cond
	wdeadline time.Time
	wtimer    *time.Timer
	closed    bool
	finOwed   bool
	openOwed  bool // a stream we opened and have not yet announced
}

var _ net.Conn = (*Channel)(nil)

// ID is the channel's id: ChannelDisplay, ChannelControl, ChannelChat,
// or a stream's id, FirstStream or above. A stream's id is reused once
// both sides have closed it.
func (ch *Channel) ID() byte { return ch.id }

// grantLazyLocked grants the credit held back until first use.
func (ch *Channel) grantLazyLocked() {
	if ch.lazy > 0 {
		ch.rwin += ch.lazy
		ch.owed += ch.lazy
		ch.lazy = 0
		ch.m.wake.Signal()
	}
}

// sendableLocked is how many pending bytes may go into the next frame.
func (ch *Channel) sendableLocked() int {
	if ch.closed || ch.peerClosed || len(ch.pending) == 0 {
		return 0
	}
	if ch.message {
		if ch.swin < len(ch.pending) {
			return 0
		}
		return len(ch.pending)
	}
	n := min(len(ch.pending), ch.swin, displayChunk)
	if ch.pace != nil {
		now := time.Now()
		n = min(n, ch.pace.allowance(now), ch.pace.chunk(now))
		if ch.background {
			n = min(n, ch.m.backgroundAllowanceLocked(ch.pace, now))
		}
	}
	return n
}

func expired(t time.Time) bool { return !t.IsZero() && !time.Now().Before(t) }

// readErrLocked says why a Read cannot wait for more data, or nil.
func (ch *Channel) readErrLocked() error {
	switch {
	case ch.closed:
		return fmt.Errorf("session: mux: read on closed channel %d: %w", ch.id, net.ErrClosed)
	case ch.r < len(ch.buf):
		return nil
	case ch.peerClosed:
		return io.EOF
	case ch.m.err == io.EOF:
		return io.EOF
	case ch.m.err != nil:
		return ch.m.err
	case expired(ch.rdeadline):
		return os.ErrDeadlineExceeded
	}
	return nil
}

// Read reads from the channel.
func (ch *Channel) Read(p []byte) (int, error) {
	m := ch.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ch.waitReadableLocked(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	avail := ch.buf[ch.r:]
	if ch.message {
		avail = avail[:ch.lens[0]]
	}
	n := copy(p, avail)
	ch.consumeLocked(n)
	return n, nil
}

// ReadMessage returns the rest of the next message on a control or chat
// channel, in a new slice.
func (ch *Channel) ReadMessage() ([]byte, error) {
	if !ch.message {
		return nil, fmt.Errorf("session: mux: channel %d carries a stream, not messages", ch.id)
	}
	m := ch.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ch.waitReadableLocked(); err != nil {
		return nil, err
	}
	n := ch.lens[0]
	msg := append([]byte(nil), ch.buf[ch.r:ch.r+n]...)
	ch.consumeLocked(n)
	return msg, nil
}

func (ch *Channel) waitReadableLocked() error {
	for ch.closed || ch.r == len(ch.buf) {
		if err := ch.readErrLocked(); err != nil {
			return err
		}
		ch.rcond.Wait()
	}
	return nil
}

// consumeLocked drops n read bytes and returns credit to the peer: on a
// message channel once half the window has been read, so window updates
// stay rare; on a byte stream at once, because the peer's pacing measures
// its path by the credit coming back (pace.go).
func (ch *Channel) consumeLocked(n int) {
	ch.r += n
	if ch.message {
		if ch.lens[0] -= n; ch.lens[0] == 0 {
			ch.lens = ch.lens[1:]
			if len(ch.lens) == 0 {
				ch.lens = ch.lens[:0:0]
			}
		}
	}
	if ch.r == len(ch.buf) {
		ch.buf, ch.r = ch.buf[:0], 0
	}
	ch.unread += n
	if ch.unread >= ch.m.window/2 || !ch.message && ch.unread > 0 {
		ch.owed += ch.unread
		ch.rwin += ch.unread
		ch.unread = 0
		ch.m.wake.Signal()
	}
}

// Write sends p on the channel. It returns once p has been written to the
// connection (or the deadline passed): a message written before Close
// returned is on the wire.
func (ch *Channel) Write(p []byte) (int, error) {
	if ch.message && len(p) > MaxMessage {
		return 0, fmt.Errorf("session: mux: message of %d bytes on channel %d exceeds %d", len(p), ch.id, MaxMessage)
	}
	m := ch.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for ch.writing {
		if err := ch.writeErrLocked(); err != nil {
			return 0, err
		}
		ch.wcond.Wait()
	}
	if err := ch.writeErrLocked(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	ch.writing = true
	ch.pending = p
	ch.grantLazyLocked()
	if testHookEnqueue != nil {
		testHookEnqueue(ch)
	}
	m.wake.Signal()
	// Until every byte is in a batch, anything may stop the Write; after
	// that it only waits for the batch to reach the connection, which
	// only a failed connection or the deadline can interrupt (the peer
	// closing the channel meanwhile does not undo a complete write).
	var err error
	for {
		if len(ch.pending) > 0 {
			err = ch.writeErrLocked()
		} else if m.doneGen >= ch.gen {
			break
		} else if m.err != nil {
			err = fmt.Errorf("session: mux: write on channel %d: %w", ch.id, m.err)
		} else if expired(ch.wdeadline) {
			err = os.ErrDeadlineExceeded
		}
		if err != nil {
			break
		}
		ch.wcond.Wait()
	}
	n := len(p) - len(ch.pending)
	ch.pending = nil
	ch.writing = false
	ch.wcond.Broadcast()
	return n, err
}

// WriteMessage sends one message on a control or chat channel.
func (ch *Channel) WriteMessage(p []byte) error {
	if !ch.message {
		return fmt.Errorf("session: mux: channel %d carries a stream, not messages", ch.id)
	}
	_, err := ch.Write(p)
	return err
}

func (ch *Channel) writeErrLocked() error {
	switch {
	case ch.closed:
		return fmt.Errorf("session: mux: write on closed channel %d: %w", ch.id, net.ErrClosed)
	case ch.m.err != nil:
		return fmt.Errorf("session: mux: write on channel %d: %w", ch.id, ch.m.err)
	case ch.peerClosed:
		return ErrPeerClosed
	case expired(ch.wdeadline):
		return os.ErrDeadlineExceeded
	}
	return nil
}

// Close closes this channel alone and tells the peer, whose Reads then
// return io.EOF once they have drained what arrived, and whose Writes
// fail with ErrPeerClosed. Blocked Reads and Writes here return
// net.ErrClosed. The channel cannot be reopened. A stream's id is freed
// once the peer has closed its end too.
func (ch *Channel) Close() error {
	m := ch.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch.closed {
		return fmt.Errorf("session: mux: channel %d: %w", ch.id, net.ErrClosed)
	}
	ch.closed = true
	ch.finOwed = m.err == nil
	ch.buf, ch.r, ch.lens = nil, 0, nil
	ch.stopTimersLocked()
	ch.rcond.Broadcast()
	ch.wcond.Broadcast()
	m.wake.Signal()
	return nil
}

func (ch *Channel) stopTimersLocked() {
	if ch.rtimer != nil {
		ch.rtimer.Stop()
	}
	if ch.wtimer != nil {
		ch.wtimer.Stop()
	}
}

// LocalAddr is the connection's local address if it is a net.Conn.
func (ch *Channel) LocalAddr() net.Addr { return ch.m.local }

// RemoteAddr is the connection's remote address if it is a net.Conn.
func (ch *Channel) RemoteAddr() net.Addr { return ch.m.remote }

// SetDeadline sets both the read and the write deadline.
func (ch *Channel) SetDeadline(t time.Time) error {
	ch.SetReadDeadline(t)
	return ch.SetWriteDeadline(t)
}

// SetReadDeadline makes blocked and later Reads fail with
// os.ErrDeadlineExceeded once t has passed; zero means no deadline.
func (ch *Channel) SetReadDeadline(t time.Time) error {
	ch.m.mu.Lock()
	defer ch.m.mu.Unlock()
	ch.rdeadline = t
	ch.rtimer = ch.armLocked(ch.rtimer, t, &ch.rcond)
	return nil
}

// SetWriteDeadline makes blocked and later Writes fail with
// os.ErrDeadlineExceeded once t has passed; zero means no deadline.
func (ch *Channel) SetWriteDeadline(t time.Time) error {
	ch.m.mu.Lock()
	defer ch.m.mu.Unlock()
	ch.wdeadline = t
	ch.wtimer = ch.armLocked(ch.wtimer, t, &ch.wcond)
	return nil
}

func (ch *Channel) armLocked(old *time.Timer, t time.Time, c *sync.Cond) *time.Timer {
	if old != nil {
		old.Stop()
	}
	if t.IsZero() || ch.closed {
		// A closed channel's Reads and Writes fail at once; a timer
		// would only outlive it.
		return nil
	}
	c.Broadcast() // waiters re-check: the deadline may already be past
	return time.AfterFunc(time.Until(t), func() {
		ch.m.mu.Lock()
		c.Broadcast()
		ch.m.mu.Unlock()
	})
}

// testHookEnqueue, if set, runs with the mux locked when a Write queues
// its bytes; tests use it to see the exact order of events.
var testHookEnqueue func(*Channel)

// muxAddr stands in for the address of a connection that has none.
type muxAddr struct{}

func (muxAddr) Network() string { return "assist-mux" }
func (muxAddr) String() string  { return "assist-mux" }
