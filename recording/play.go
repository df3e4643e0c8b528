package recording

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"net"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/screen"
)

// Player plays a recording: rfb.Client's decoders turn the recorded
// stream into a picture, which Capturer offers to a shadow.Screen and so
// to a normal rfb.Server, at the recorded pace.
type Player struct {
	hdr    Header
	feed   *feedConn
	client *rfb.Client
	canvas *canvas
}

// ErrIdentity is wrapped by Open's error when the identity does not open
// the recording.
var ErrIdentity = errors.New("this key cannot open the recording")

// Open decrypts r with ids and reads the recording's start.
func Open(r io.Reader, ids ...age.Identity) (*Player, error) {
	dec, err := age.Decrypt(r, ids...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, fmt.Errorf("recording: %w (it was encrypted to another audit key)", ErrIdentity)
		}
		return nil, fmt.Errorf("recording: not a recording, or damaged: %w", err)
	}
	return openPlain(dec)
}

// openPlain reads a decrypted recording's start. Its bytes come from the
// novice's machine, so they are parsed as untrusted (FuzzOpenPlain).
func openPlain(dec io.Reader) (*Player, error) {
	br := bufio.NewReaderSize(dec, 64<<10)
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != Magic {
		return nil, errors.New("recording: not an assist recording")
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("recording: header: %w", err)
	}
	p := &Player{feed: &feedConn{r: br, clock: newClock(), done: make(chan struct{})}}
	if err := json.Unmarshal(line, &p.hdr); err != nil {
		return nil, fmt.Errorf("recording: header: %w", err)
	}
	// The recorded handshake comes at once, whatever times it claims;
	// the client answers into the void.
	p.feed.now = true
	c, err := rfb.NewClient(p.feed, config)
	p.feed.now = false
	if err != nil {
		return nil, fmt.Errorf("recording: the recorded stream: %w", err)
	}
	p.client = c
	p.canvas = newCanvas(c.Framebuffer())
	// The first picture too comes at once, whatever its time: a player
	// paused or sought to the start shows it, not a black screen.
	p.feed.now = true
	m, err := c.ReadMessage()
	p.feed.now = false
	switch {
	case err == nil && m.Type == rfb.ServerFramebufferUpdate:
		p.canvas.update(c, m.Rects)
	case err == nil:
	case errors.Is(err, io.EOF) && p.feed.atEnd():
		// A recording without a picture.
	default:
		return nil, fmt.Errorf("recording: the first picture: %w", err)
	}
	return p, nil
}

// Header is the recording's header.
func (p *Player) Header() Header { return p.hdr }

// Capturer is the played picture, for shadow.New.
func (p *Player) Capturer() screen.Capturer { return p.canvas }

// Run plays the recording to its end (nil) or until ctx is done or the
// recording turns out damaged.
func (p *Player) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, p.feed.close)
	defer stop()
	for {
		m, err := p.client.ReadMessage()
		if err != nil {
			if errors.Is(err, io.EOF) && p.feed.atEnd() {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("recording: damaged after %s: %w", p.Position().Round(time.Millisecond), err)
		}
		if m.Type == rfb.ServerFramebufferUpdate {
			p.canvas.update(p.client, m.Rects)
		}
	}
}

// Position is how far playback has come.
func (p *Player) Position() time.Duration { return p.feed.clock.pos() }

// Pause stops the clock; Resume starts it again.
func (p *Player) Pause()  { p.feed.clock.pause(true) }
func (p *Player) Resume() { p.feed.clock.pause(false) }

// Skip moves playback forward by d: what lies between is decoded at once.
func (p *Player) Skip(d time.Duration) { p.feed.clock.skip(d) }

// clock is playback time: it runs, pauses and jumps forward.
type clock struct {
	mu      sync.Mutex
	base    time.Duration // position when last started or paused
	since   time.Time     // when last started; zero while paused
	changed chan struct{} // closed and replaced on every change
}

func newClock() *clock {
	return &clock{since: time.Now(), changed: make(chan struct{})}
}

func (c *clock) pos() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.posLocked()
}

func (c *clock) posLocked() time.Duration {
	if c.since.IsZero() {
		return c.base
	}
	return c.base + time.Since(c.since)
}

func (c *clock) pause(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base = c.posLocked()
	if on {
		c.since = time.Time{}
	} else if c.since.IsZero() {
		c.since = time.Now()
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *clock) skip(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base = c.posLocked() + d
	if !c.since.IsZero() {
		c.since = time.Now()
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// wait returns once the clock reaches at, or done is closed (false).
func (c *clock) wait(at time.Duration, done <-chan struct{}) bool {
	for {
		c.mu.Lock()
		now, running, changed := c.posLocked(), !c.since.IsZero(), c.changed
		c.mu.Unlock()
		if now >= at {
			return true
		}
		var t *time.Timer
		var tick <-chan time.Time
		if running {
			t = time.NewTimer(at - now)
			tick = t.C
		}
		select {
		case <-tick:
		case <-changed:
		case <-done:
			return false
		}
		if t != nil {
			t.Stop()
		}
	}
}

// feedConn is the recorded server, as a connection: reads return the
// recorded bytes when their time comes; writes go nowhere.
type feedConn struct {
	r     *bufio.Reader
	clock *clock
	left  int // bytes of the current frame not yet read
	end   bool
	now   bool // do not wait for the frames' times
	done  chan struct{}
	once  sync.Once
}

func (f *feedConn) Read(p []byte) (int, error) {
	for f.left == 0 {
		var h [8]byte
		if _, err := io.ReadFull(f.r, h[:]); err != nil {
			if err == io.EOF {
				f.end = true
				return 0, io.EOF
			}
			return 0, fmt.Errorf("recording: frame: %w", err)
		}
		at := time.Duration(binary.BigEndian.Uint32(h[:4])) * time.Millisecond
		n := binary.BigEndian.Uint32(h[4:])
		if n > MaxFrame {
			return 0, fmt.Errorf("recording: a frame of %d bytes", n)
		}
		if !f.now && !f.clock.wait(at, f.done) {
			return 0, net.ErrClosed
		}
		f.left = int(n)
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= n
	if err == io.EOF && f.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (f *feedConn) atEnd() bool { return f.end }
func (f *feedConn) close()      { f.once.Do(func() { close(f.done) }) }

func (f *feedConn) Write(p []byte) (int, error)      { return len(p), nil }
func (f *feedConn) Close() error                     { f.close(); return nil }
func (f *feedConn) LocalAddr() net.Addr              { return playAddr{} }
func (f *feedConn) RemoteAddr() net.Addr             { return playAddr{} }
func (f *feedConn) SetDeadline(time.Time) error      { return nil }
func (f *feedConn) SetReadDeadline(time.Time) error  { return nil }
func (f *feedConn) SetWriteDeadline(time.Time) error { return nil }
func (playAddr) Network() string                     { return "recording" }
func (playAddr) String() string                      { return "recording" }

type playAddr struct{}

// canvas is the played picture as a screen.Capturer.
type canvas struct {
	mu      sync.Mutex
	img     *screen.Image
	cursor  *screen.Cursor
	damage  []image.Rectangle
	resized bool
	curNew  bool
	wake    chan struct{}
}

func newCanvas(fb *screen.Image) *canvas {
	img := screen.NewImage(fb.Rect)
	img.CopyFrom(fb, fb.Rect)
	return &canvas{img: img, wake: make(chan struct{}, 1),
		cursor: &screen.Cursor{Pix: []uint32{0}, Size: image.Pt(1, 1)}}
}

// update copies what a decoded update changed out of the decoder's
// framebuffer.
func (c *canvas) update(cl *rfb.Client, rects []rfb.RectInfo) {
	fb := cl.Framebuffer()
	c.mu.Lock()
	if fb.Rect != c.img.Rect {
		c.img = screen.NewImage(fb.Rect)
		c.img.CopyFrom(fb, fb.Rect)
		c.resized, c.damage = true, nil
	}
	for _, r := range rects {
		switch {
		case r.Encoding == rfb.EncCursor:
			if cur := cl.Cursor(); cur != nil {
				cp := *cur
				cp.Pix = append([]uint32(nil), cur.Pix...)
				c.cursor, c.curNew = &cp, true
			}
		case r.Encoding >= 0 && !c.resized:
			rr := r.Rect.Intersect(c.img.Rect)
			c.img.CopyFrom(fb, rr)
			c.damage = append(c.damage, rr)
		}
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *canvas) Size() image.Point {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.img.Rect.Size()
}

func (c *canvas) Next(ctx context.Context) (screen.Change, error) {
	for {
		c.mu.Lock()
		ch := screen.Change{Damage: c.damage, Resized: c.resized, Size: c.img.Rect.Size(), CursorChanged: c.curNew}
		c.damage, c.resized, c.curNew = nil, false, false
		c.mu.Unlock()
		if ch.Resized || len(ch.Damage) > 0 || ch.CursorChanged {
			return ch, nil
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return screen.Change{}, ctx.Err()
		}
	}
}

func (c *canvas) Grab(dst *screen.Image, r image.Rectangle) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !r.In(c.img.Rect) {
		// The picture was resized since; the next Change says so.
		r = r.Intersect(c.img.Rect)
	}
	dst.CopyFrom(c.img, r)
	return nil
}

func (c *canvas) Cursor() (*screen.Cursor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cursor, nil
}

func (c *canvas) Close() error { return nil }

// Length reads a whole recording, without decoding its pictures, and
// returns the time of its last frame: for a player's seek bar.
func Length(r io.Reader, ids ...age.Identity) (time.Duration, error) {
	dec, err := age.Decrypt(r, ids...)
	if err != nil {
		return 0, fmt.Errorf("recording: %w", err)
	}
	return plainLength(dec)
}

// plainLength is Length of a decrypted recording, parsed as untrusted.
func plainLength(dec io.Reader) (time.Duration, error) {
	br := bufio.NewReaderSize(dec, 64<<10)
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != Magic {
		return 0, errors.New("recording: not an assist recording")
	}
	if _, err := br.ReadSlice('\n'); err != nil {
		return 0, fmt.Errorf("recording: header: %w", err)
	}
	var last time.Duration
	for {
		var h [8]byte
		if _, err := io.ReadFull(br, h[:]); err == io.EOF {
			return last, nil
		} else if err != nil {
			return 0, fmt.Errorf("recording: frame: %w", err)
		}
		last = max(last, time.Duration(binary.BigEndian.Uint32(h[:4]))*time.Millisecond)
		n := binary.BigEndian.Uint32(h[4:])
		if n > MaxFrame {
			return 0, fmt.Errorf("recording: a frame of %d bytes", n)
		}
		if _, err := br.Discard(int(n)); err != nil {
			return 0, fmt.Errorf("recording: frame: %w", err)
		}
	}
}
