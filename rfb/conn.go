package rfb

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/shadow"
)

// Fence flags (rfbproto "ServerFence").
const (
	fenceBlockBefore = 1 << 0
	fenceBlockAfter  = 1 << 1
	fenceSyncNext    = 1 << 2
	fenceRequest     = 1 << 31
	fenceKnown       = fenceBlockBefore | fenceBlockAfter | fenceSyncNext
)

// encodingPrefs is what a viewer's SetEncodings asked for.
type encodingPrefs struct {
	preferred      int32 // EncRaw, EncZRLE or EncTight
	copyRect       bool
	cursor         bool
	desktopSize    bool
	extDesktopSize bool
	continuous     bool
	fence          bool
	extClipboard   bool
	h264           bool
	push           bool // EncAssistPush: updates without requests
	scaled         bool // EncAssistScaled: a relay that undoes it (scale.go)
	lossless       bool // EncAssistLossless: likewise (lossless.go)
	losslessFSE    bool // EncAssistLosslessFSE: likewise (lossless_fse.go)
	lastRect       bool // EncLastRect: updates of unknown length (preempt.go)
	quality        int  // Tight JPEG level 0..9, -1 for lossless
	compress       int  // 0..9, -1 for the encoder's default
}

func parseEncodings(list []int32) encodingPrefs {
	p := encodingPrefs{preferred: -1, quality: -1, compress: -1}
	for _, e := range list {
		switch {
		case e == EncRaw || e == EncZRLE || e == EncTight:
			if p.preferred < 0 {
				p.preferred = e
			}
		case e == EncCopyRect:
			p.copyRect = true
		case e == EncCursor:
			p.cursor = true
		case e == EncDesktopSize:
			p.desktopSize = true
		case e == EncExtendedDesktopSize:
			p.extDesktopSize = true
		case e == EncContinuousUpdates:
			p.continuous = true
		case e == EncFence:
			p.fence = true
		case e == EncExtendedClipboard:
			p.extClipboard = true
		case e == EncH264:
			p.h264 = true
		case e == EncAssistPush:
			p.push = true
		case e == EncAssistScaled:
			p.scaled = true
		case e == EncAssistLossless:
			p.lossless = true
		case e == EncAssistLosslessFSE:
			p.losslessFSE = true
		case e == EncLastRect:
			p.lastRect = true
		case e >= EncJPEGQuality0 && e <= EncJPEGQuality9:
			p.quality = int(e - EncJPEGQuality0)
		case e >= EncCompressLevel0 && e <= EncCompressLevel9:
			p.compress = int(e - EncCompressLevel0)
		}
	}
	if p.preferred < 0 {
		p.preferred = EncRaw
	}
	return p
}

// losslessEncoding is the private encoding refinement uses for this
// viewer, the newest it named (lossless_fse.go), or 0 for none.
func (p encodingPrefs) losslessEncoding() int32 {
	switch {
	case p.losslessFSE:
		return EncAssistLosslessFSE
	case p.lossless:
		return EncAssistLossless
	}
	return 0
}

// fence is a ServerFence to send.
type fence struct {
	flags uint32
	data  []byte
}

// conn is one viewer. The reader goroutine parses the viewer's messages
// and records what it asked for; the writer goroutine sends updates. They
// share the fields under mu.
type conn struct {
	srv *Server
	nc  net.Conn
	log *slog.Logger
	br  *bufio.Reader
	// wake tells the writer that the reader changed the shared state.
	wake chan struct{}

	mu         sync.Mutex
	pf         PixelFormat
	enc        encodingPrefs
	requested  bool             // an update request is outstanding
	continuous bool             // continuous updates are on
	sendEndCU  bool             // an EndOfContinuousUpdates is owed
	fences     []fence          // fences to send, in order
	sizeReply  *image.Rectangle // SetDesktopSize answer owed: Min.X = status
	// Extended Clipboard: what the reader owes the viewer.
	clipCapsOwed bool       // the viewer named the pseudo-encoding: send our caps
	clipAsked    uint32     // clipRequest and/or clipPeek the viewer sent
	clipFetch    bool       // the viewer announced text: request it
	viewerClip   clipCapsOf // what the viewer accepts
	pings        fencePacer // fences as acknowledgements (congestion.go)

	// paced is nc when it measures and paces its own path (adapt.go).
	paced pacedConn

	// Writer only.
	sub             *shadow.Subscriber
	scratch         *screen.Image
	size            image.Point // the viewer's framebuffer size
	buf             []byte
	raw             rectEncoder
	zrle            *zrleEncoder
	tight           *tightEncoder
	video           *videoTracker // H.264 regions; nil when none
	hadFence, hadCU bool
	stats           connStats
	ref             refiner
	qcap            qualityCap // adapt.go
	// Resolution adaptation (scale.go): the motion record, the half-size
	// picture and its compressor, and the pixel format last announced
	// to a relay (pfSent: one was).
	motion     *scaleMotion
	scaleSmall *screen.Image
	scaleJPEG  jpegCompressor
	sentPF     PixelFormat
	pfSent     bool
	// lossless makes refinement's EncAssistLossless or
	// EncAssistLosslessFSE rectangles.
	lossless *losslessEncoder
	// Small changes first (priority.go): budget is the most bytes of
	// changes the update being built may carry (0: no limit), cut tells
	// that it left some behind, bandFrom is the row the next one starts
	// its large areas at, frameBytes the bytes of the slices of the
	// frame so far.
	budget, bandFrom, frameBytes int
	// fullInval is the Subscriber's count of invalidations once the
	// last non-incremental request's was made (Subscriber.Invalidate).
	fullInval uint64
	// unsolicited: the update being built is pushed, not an answer to a
	// non-incremental request (flush; writer only).
	unsolicited bool
	// fullAsked: a non-incremental update request is pending, or no
	// update was sent yet (under mu).
	fullAsked bool
	cut       bool
	// heldBack are the areas the last update left for later, as taken
	// again (shadow.Pending.Held): no changes of the screen, neither for
	// the H.264 tracker (h264.go) nor for schedule. smallOnly: the last
	// update was cut after its small changes.
	heldBack  []image.Rectangle
	smallOnly bool
	// Preempting slices (preempt.go): preempt says the update being
	// built may wait for room between its large pieces and end early
	// for a small change; flushed is how much of buf is written already;
	// pieceEst is about what a large piece costs; done is the writer's
	// context's; readyTaken: the wait took the Subscriber's signal.
	preempt    bool
	flushed    int
	pieceEst   int
	done       <-chan struct{}
	readyTaken bool
	vclip      clipCapsOf // viewerClip as of this flush
	// offer is the desktop's text last announced to (or provided to) an
	// Extended Clipboard viewer, which it may request; nil if none.
	offer *offeredText
}

// offeredText is clipboard text and when the desktop's clipboard got it.
type offeredText struct {
	text string
	at   time.Time
}

// connStats counts what went to one viewer.
type connStats struct {
	updates, rects, bytes uint64
	refined               uint64 // bytes of lossless refinement
	scaled                uint64 // rectangles sent scaled (scale.go)
	preempted             uint64 // updates ended early for a small change (preempt.go)
}

func newConn(s *Server, nc net.Conn, log *slog.Logger) *conn {
	c := &conn{
		srv:  s,
		nc:   nc,
		log:  log,
		br:   bufio.NewReaderSize(nc, 16<<10),
		wake: make(chan struct{}, 1),
		pf:   NativeFormat,
		enc:  parseEncodings(nil),
		// A viewer's first picture is whole, pushed or asked for: a
		// snapshot tool (vncsnapshot) keeps the first update it reads.
		fullAsked: true,

		viewerClip: defaultClipCaps,
		qcap:       newQualityCap(),
	}
	c.paced, _ = nc.(pacedConn)
	return c
}

func (c *conn) serve(ctx context.Context) error {
	defer c.nc.Close()
	timeout := c.srv.HandshakeTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	c.nc.SetDeadline(time.Now().Add(timeout))
	// Close on ctx so that a blocked handshake read ends too.
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	defer stop()
	if err := c.handshake(); err != nil {
		return err
	}
	c.nc.SetDeadline(time.Time{})
	c.log.Info("viewer connected")

	c.sub = c.srv.Screen.Subscribe()
	defer c.sub.Close()
	defer c.ref.stop()
	defer func() {
		if c.tight != nil {
			c.tight.close()
		}
		if c.scaleJPEG != nil {
			c.scaleJPEG.close()
		}
		if c.lossless != nil {
			c.lossless.close()
		}
		c.videoClose()
	}()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		if err := c.writeLoop(ctx); err != nil {
			cancel(err)
			c.nc.Close()
		}
	}()
	rerr := c.readLoop()
	cancel(rerr)
	c.nc.Close()
	<-writerDone
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		if isClosedConn(err) {
			return nil
		}
		return err
	}
	return nil
}

// isClosedConn reports whether err is the ordinary end of a connection
// (io.ErrClosedPipe: a net.Pipe, or any stream closed on our side).
func isClosedConn(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func (c *conn) handshake() error {
	if _, err := c.nc.Write([]byte("RFB 003.008\n")); err != nil {
		return fmt.Errorf("rfb: write version: %w", err)
	}
	var v [12]byte
	if err := readFull(c.br, v[:], "client version"); err != nil {
		return err
	}
	minor, err := parseVersion(v[:])
	if err != nil {
		return err
	}
	switch {
	case minor < 7:
		// 3.3: the server picks the security type.
		if _, err := c.nc.Write([]byte{0, 0, 0, secNone}); err != nil {
			return fmt.Errorf("rfb: write security type: %w", err)
		}
	default:
		if _, err := c.nc.Write([]byte{1, secNone}); err != nil {
			return fmt.Errorf("rfb: write security types: %w", err)
		}
		t, err := c.br.ReadByte()
		if err != nil {
			return fmt.Errorf("rfb: read security choice: %w", err)
		}
		if t != secNone {
			if minor >= 8 {
				reason := "security type not offered"
				msg := binary.BigEndian.AppendUint32([]byte{0, 0, 0, 1}, uint32(len(reason)))
				c.nc.Write(append(msg, reason...))
			}
			return fmt.Errorf("%w: viewer chose security type %d, which was not offered", errProtocol, t)
		}
		if minor >= 8 {
			if _, err := c.nc.Write([]byte{0, 0, 0, 0}); err != nil {
				return fmt.Errorf("rfb: write security result: %w", err)
			}
		}
	}
	if _, err := c.br.ReadByte(); err != nil { // shared flag: every session is shared
		return fmt.Errorf("rfb: read client init: %w", err)
	}
	size := c.srv.Screen.Size()
	c.size = size
	name := c.srv.Name
	msg := make([]byte, 24, 24+len(name))
	binary.BigEndian.PutUint16(msg[0:], uint16(size.X))
	binary.BigEndian.PutUint16(msg[2:], uint16(size.Y))
	NativeFormat.marshal(msg[4:20])
	binary.BigEndian.PutUint32(msg[20:], uint32(len(name)))
	msg = append(msg, name...)
	if _, err := c.nc.Write(msg); err != nil {
		return fmt.Errorf("rfb: write server init: %w", err)
	}
	return nil
}

func (c *conn) readLoop() error {
	for {
		m, err := readClientMessage(c.br)
		if err != nil {
			return err
		}
		if err := c.handle(m); err != nil {
			return err
		}
	}
}

func (c *conn) handle(m clientMessage) error {
	switch m.typ {
	case msgSetPixelFormat:
		c.mu.Lock()
		c.pf = m.pf
		c.mu.Unlock()
	case msgSetEncodings:
		c.mu.Lock()
		c.enc = parseEncodings(m.encodings)
		// rfbproto: caps answer every SetEncodings that names it.
		c.clipCapsOwed = c.clipCapsOwed || c.enc.extClipboard
		c.mu.Unlock()
	case msgFramebufferUpdateRequest:
		c.mu.Lock()
		c.requested = true
		c.fullAsked = c.fullAsked || !m.incremental
		if !m.incremental {
			// Under c.mu, after fullAsked: the writer woken by the
			// invalidation must see the request, or it builds the area as
			// a pushed update in slices and then, owing the whole, sends
			// it all again (the screen twice on a slow link;
			// TestServerPushPaced read the slices as the answer).
			c.fullInval = c.sub.Invalidate(m.area)
		}
		c.mu.Unlock()
	case msgKeyEvent:
		if in := c.srv.Input; in != nil {
			if err := in.Key(m.keysym, m.down); err != nil {
				c.log.Debug("key event not delivered", "err", err)
			}
		}
		return nil
	case msgPointerEvent:
		if in := c.srv.Input; in != nil {
			if err := in.Pointer(m.x, m.y, m.buttons); err != nil {
				c.log.Debug("pointer event not delivered", "err", err)
			}
		}
		return nil
	case msgClientCutText:
		if m.ext != nil {
			if err := c.handleExtClip(*m.ext); err != nil {
				return err
			}
			break
		}
		if cb := c.srv.Clipboard; cb != nil {
			if err := cb.SetClipboard(m.text); err != nil {
				c.log.Warn("clipboard not set", "err", err)
			}
		}
		return nil
	case msgEnableContinuousUpdates:
		c.mu.Lock()
		c.continuous = m.enable
		if !m.enable {
			c.sendEndCU = true
		}
		c.mu.Unlock()
	case msgClientFence:
		c.mu.Lock()
		if m.fenceFlags&fenceRequest != 0 {
			c.fences = append(c.fences, fence{flags: m.fenceFlags & fenceKnown, data: m.fenceData})
		} else {
			c.pings.reply(m.fenceData, time.Now())
			c.fenceReply(m.fenceData)
		}
		c.mu.Unlock()
	case msgSetDesktopSize:
		// The shared desktop belongs to the novice: viewers may not
		// resize it. Status 1: "resize is administratively prohibited".
		c.mu.Lock()
		c.sizeReply = &image.Rectangle{Min: image.Pt(1, 0)}
		c.mu.Unlock()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// handleExtClip handles an Extended Clipboard message from the viewer.
// Only the reader writes c.enc, so it reads it without the lock.
func (c *conn) handleExtClip(m extClip) error {
	if !c.enc.extClipboard {
		return fmt.Errorf("%w: ClientCutText: extended clipboard message from a viewer that did not announce the extension", errProtocol)
	}
	switch m.action() {
	case clipCaps:
		c.mu.Lock()
		c.viewerClip = m.caps()
		c.mu.Unlock()
	case clipRequest:
		if m.flags&clipText != 0 {
			c.mu.Lock()
			c.clipAsked |= clipRequest
			c.mu.Unlock()
		}
	case clipPeek:
		c.mu.Lock()
		c.clipAsked |= clipPeek
		c.mu.Unlock()
	case clipNotify:
		if m.flags&clipText != 0 && c.srv.Clipboard != nil {
			c.mu.Lock()
			c.clipFetch = true
			c.mu.Unlock()
		}
	case clipProvide:
		text, ok, err := m.providedText(maxClipText)
		if err != nil {
			return fmt.Errorf("%w: ClientCutText: %w", errProtocol, err)
		}
		if cb := c.srv.Clipboard; ok && cb != nil {
			if err := cb.SetClipboard(text); err != nil {
				c.log.Warn("clipboard not set", "err", err)
			}
		}
	}
	return nil
}

func (c *conn) writeLoop(ctx context.Context) error {
	c.done = ctx.Done()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
		case <-c.sub.Ready():
		case <-c.ref.timerC():
		case <-c.room():
		}
		if err := c.flush(); err != nil {
			return err
		}
	}
}

// flush sends whatever the viewer is owed: fence replies, protocol
// announcements, and an update if one was requested and something
// changed.
func (c *conn) flush() error {
	c.mu.Lock()
	pf, enc := c.pf, c.enc
	// A viewer gets an update when it asked for one, or without asking
	// with continuous updates or (across a paced session stream) push.
	want := c.requested || c.continuous || enc.push && c.paced != nil
	// A non-incremental request is answered whole: the viewer (or an
	// assist join relaying to a new viewer of its own) takes that update
	// as the picture, so no slice of it may wait for a later one.
	c.unsolicited = (c.continuous || enc.push && c.paced != nil) && !c.fullAsked
	c.pings.setActive(enc.fence && c.continuous && c.paced == nil)
	// Produce an update only when the path has room: until then changes
	// coalesce in the Subscriber (adapt.go).
	want = want && (c.paced != nil && c.paced.HasRoom() || c.paced == nil && c.pings.room(time.Now()))
	c.preempt = c.unsolicited && enc.lastRect && c.paced != nil
	fences, sendEndCU, sizeReply := c.fences, c.sendEndCU, c.sizeReply
	c.fences, c.sendEndCU, c.sizeReply = nil, false, nil
	clipCaps, clipAsked, clipFetch := c.clipCapsOwed, c.clipAsked, c.clipFetch
	c.clipCapsOwed, c.clipAsked, c.clipFetch = false, 0, false
	c.vclip = c.viewerClip
	c.mu.Unlock()
	// A preemptible update starts only with room for its first large
	// piece, or for a small change (preempt.go).
	if want && c.preempt && !c.roomFor(0) && !c.sub.HasSmall(smallArea) {
		want = false
	}

	c.buf, c.flushed = c.buf[:0], 0
	// A relay parses the updates, in the format they were made in.
	if (enc.scaled || enc.lossless || enc.losslessFSE) && (!c.pfSent || c.sentPF != pf) {
		c.buf = appendAssistPixelFormat(c.buf, &pf)
		c.sentPF, c.pfSent = pf, true
	}
	// A viewer learns that the server speaks an extension from a first
	// message of it (rfbproto "ContinuousUpdates", "Fence").
	if enc.fence && !c.hadFence {
		c.hadFence = true
		c.buf = appendFence(c.buf, fence{flags: fenceRequest})
	}
	if enc.continuous && !c.hadCU {
		c.hadCU = true
		sendEndCU = true
	}
	for _, f := range fences {
		c.buf = appendFence(c.buf, f)
	}
	if sendEndCU {
		c.buf = append(c.buf, msgEndOfContinuousUpdates)
	}
	if clipCaps {
		c.buf = appendClipCaps(c.buf, msgServerCutText, maxClipText)
	}
	if clipFetch && c.vclip.actions&clipRequest != 0 {
		c.buf = appendClipAction(c.buf, msgServerCutText, clipRequest, clipText)
	}
	// Clipboard text goes out at once, not with the next update.
	if text, at, ok := c.sub.TakeClipboard(); ok {
		c.clipboardOut(clipChanged, text, at, &enc)
	}
	if clipAsked&clipPeek != 0 {
		c.clipboardOut(clipPeeked, "", time.Time{}, &enc)
	}
	if clipAsked&clipRequest != 0 {
		c.clipboardOut(clipRequested, "", time.Time{}, &enc)
	}
	if sizeReply != nil && enc.extDesktopSize {
		c.buf = append(c.buf, msgFramebufferUpdate, 0, 0, 1)
		c.buf = c.appendExtDesktopSize(c.buf, 1, sizeReply.Min.X)
	}
	sent := false
	c.budget, c.cut = 0, false
	if want {
		if est, ok := c.estimate(); ok {
			c.budget = updateBudget(c.unsolicited, est.Rate)
		}
		var err error
		start := len(c.buf)
		sent, err = c.appendUpdate(&pf, &enc)
		if err != nil {
			return err
		}
		if est, ok := c.estimate(); sent && ok {
			// The quality follows what a whole frame costs, all its
			// slices together.
			c.frameBytes += len(c.buf) - start
			if !c.cut {
				c.qcap.observe(c.frameBytes, est, time.Now())
				c.frameBytes = 0
			}
		}
	}
	if sent {
		// Clear the request before writing: the viewer's next request
		// may arrive as soon as the update is on the wire, and must not
		// be lost. Requests that arrived while this update was being
		// built are answered by it, except a non-incremental one that
		// came while it was built as a slice: the next update answers
		// that whole, and the screen is owed again in full, since this
		// one may have taken part of what the request invalidated.
		c.mu.Lock()
		owedWhole := c.unsolicited && c.fullAsked
		c.requested = false
		c.fullAsked = owedWhole
		c.mu.Unlock()
		if owedWhole {
			c.sub.Invalidate(image.Rectangle{Max: c.size})
		}
	}
	c.refineAfter(&enc, want)
	if len(c.buf) == 0 {
		return nil
	}
	// An update paced by fences ends with a ping, recorded before the
	// write: its reply may come back before Write returns.
	c.mu.Lock()
	pinged := false
	if sent {
		var f fence
		if f, pinged = c.pings.nextPing(); pinged {
			c.buf = appendFence(c.buf, f)
		}
	}
	now := time.Now()
	c.pings.wrote(len(c.buf), now, pinged)
	var inFlight, window int
	if c.pings.active {
		inFlight, window = c.pings.est.InFlight(), c.pings.est.Window(now)
	}
	c.mu.Unlock()
	if sent && c.srv.onUpdate != nil {
		c.srv.onUpdate(inFlight, window, len(c.buf))
	}
	if c.readyTaken {
		// A wait for room took the Subscriber's signal: look again.
		c.readyTaken = false
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return c.writeOut()
}

// writeOut writes what buf holds beyond what was written already.
func (c *conn) writeOut() error {
	if c.flushed == len(c.buf) {
		return nil
	}
	if _, err := c.nc.Write(c.buf[c.flushed:]); err != nil {
		return fmt.Errorf("rfb: write update: %w", err)
	}
	c.stats.bytes += uint64(len(c.buf) - c.flushed)
	c.flushed = len(c.buf)
	return nil
}

func appendFence(buf []byte, f fence) []byte {
	buf = append(buf, msgServerFence, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, f.flags)
	buf = append(buf, byte(len(f.data)))
	return append(buf, f.data...)
}

// appendExtDesktopSize appends an ExtendedDesktopSize rectangle for the
// viewer's current size: reason 0 (server change) or 1 (the viewer's own
// request), and a status (0 ok, 1 prohibited).
func (c *conn) appendExtDesktopSize(buf []byte, reason, status int) []byte {
	r := image.Rect(reason, status, reason+c.size.X, status+c.size.Y)
	buf = appendRectHeader(buf, r, EncExtendedDesktopSize)
	buf = append(buf, 1, 0, 0, 0) // one screen, padding
	buf = append(buf, 0, 0, 0, 0) // screen id
	buf = append(buf, 0, 0, 0, 0) // x, y
	buf = binary.BigEndian.AppendUint16(buf, uint16(c.size.X))
	buf = binary.BigEndian.AppendUint16(buf, uint16(c.size.Y))
	return append(buf, 0, 0, 0, 0) // flags
}

// appendUpdate collects what changed for this viewer and appends it as a
// FramebufferUpdate. It reports whether it appended one.
func (c *conn) appendUpdate(pf *PixelFormat, enc *encodingPrefs) (bool, error) {
	// Everything read from the screen for this update is read inside
	// Take, while capture waits: the pixels then match the changes
	// exactly, and a scroll captured meanwhile can't be applied twice.
	var copies []shadow.Copy
	var dirty []image.Rectangle
	size := c.size
	if c.srv.beforeTake != nil {
		c.srv.beforeTake(c)
	}
	p := c.sub.Take(func(p *shadow.Pending, cur *screen.Image) {
		if p.Resized && (enc.extDesktopSize || enc.desktopSize) {
			size = p.Size
		}
		c.readScratch(nil, cur)
		view := image.Rectangle{Max: size}.Intersect(cur.Rect)
		for _, cp := range p.Copies {
			dst := cp.Src.Add(cp.Dst.Sub(cp.Src.Min))
			if enc.copyRect && cp.Src.In(view) && dst.In(view) {
				copies = append(copies, cp)
				continue
			}
			dirty = append(dirty, dst.Intersect(view))
		}
		dirty = append(dirty, p.Dirty...)
		// Areas the last update left for later come last; they are
		// read afresh like the rest.
		fresh := len(dirty)
		dirty = append(dirty, p.Held...)
		for i, r := range dirty {
			dirty[i] = r.Intersect(view)
			c.scratch.CopyFrom(cur, dirty[i])
		}
		c.heldBack = append(c.heldBack[:0], dirty[fresh:]...)
		dirty = c.videoTake(enc, pf, cur, view, &copies, dirty)
	})
	if c.unsolicited {
		// A non-incremental request that came while this update was
		// being set up, its invalidation taken with the rest, is
		// answered by it, whole: no slices, so that it need not be sent
		// again (flush's owedWhole).
		c.mu.Lock()
		answered := c.fullAsked && p.Invalidations >= c.fullInval
		c.mu.Unlock()
		if answered {
			c.unsolicited, c.budget, c.preempt = false, 0, false
		}
	}
	if p.Clipboard {
		c.clipboardOut(clipChanged, p.Text, p.ClipboardAt, enc)
	}
	start := len(c.buf)
	c.buf = append(c.buf, msgFramebufferUpdate, 0, 0, 0)
	if c.preempt {
		// Its length is unknown until it ends (with LastRect): parts of
		// it may be written before.
		binary.BigEndian.PutUint16(c.buf[start+2:], 0xffff)
	}
	n := 0
	if size != c.size {
		c.size = size
		if enc.extDesktopSize {
			c.buf = c.appendExtDesktopSize(c.buf, 0, 0)
		} else {
			c.buf = appendRectHeader(c.buf, image.Rectangle{Max: c.size}, EncDesktopSize)
		}
		n++
	}
	// A viewer that can't resize keeps its size and sees the part of
	// the screen that fits.
	if p.CursorChanged && enc.cursor {
		if cur := c.srv.Screen.Cursor(); cur != nil && cur.Size.X > 0 && cur.Size.Y > 0 {
			c.buf = appendCursorRect(c.buf, cur, pf)
			n++
		}
	}
	for _, cp := range copies {
		dst := cp.Src.Add(cp.Dst.Sub(cp.Src.Min))
		c.buf = appendRectHeader(c.buf, dst, EncCopyRect)
		c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(cp.Src.Min.X))
		c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(cp.Src.Min.Y))
		n++
	}
	e := c.encoder(enc)
	n += c.appendVideo(e, pf)
	now := time.Now()
	c.scaleRecord(enc, dirty, now)
	scale := c.scaleLevel(enc, pf)
	small := len(dirty)
	if c.budget > 0 {
		dirty, small = schedule(dirty, c.heldBack, c.bandFrom)
	}
	smallOnly, preempted := false, false
	for i := 0; i < len(dirty); i++ {
		r := dirty[i]
		if r.Empty() {
			continue
		}
		if c.preempt && i >= small {
			// Each large piece waits for room on the path; a small
			// change made meanwhile ends the update (preempt.go).
			if f := c.srv.onPiece; f != nil {
				f(c, i)
			}
			stop, err := c.awaitRoom(n > 0, i > small || !c.smallOnly)
			if err != nil {
				return false, err
			}
			if stop {
				for _, r := range dirty[i:] {
					c.sub.Hold(r)
				}
				c.bandFrom, c.cut, preempted = r.Min.Y, true, true
				dirty = dirty[:i]
				var k int
				dirty, k = c.appendSmall(dirty, e, pf)
				n += k
				smallOnly = i <= small
				break
			}
		}
		before := len(c.buf)
		var k int
		// A large area that keeps changing, on a link too slow for it,
		// goes at half resolution (scale.go); pull-model updates are
		// not cut into small and large pieces, so size decides there.
		large := c.budget > 0 && i >= small || c.budget == 0 && r.Dx()*r.Dy() > smallArea
		if scale >= 0 && large && c.motion.moving(r, now) {
			// Bands below each other go as one picture (scaleBands).
			for i+1 < len(dirty) && scaleJoins(r, dirty[i+1]) && c.motion.moving(dirty[i+1], now) {
				i++
				r = r.Union(dirty[i])
			}
			c.buf, k = c.appendScaled(c.buf, r, scale, e, pf)
		} else {
			c.buf, k = e.encode(c.buf, c.scratch, r, pf)
		}
		n += k
		if i >= small {
			c.notePiece(len(c.buf) - before)
		}
		if c.budget == 0 || i+1 == len(dirty) {
			continue
		}
		// An update with small changes ends with them, so that they
		// reach the viewer without waiting for the slice of a large
		// area behind them; unless the last update did so too: at
		// least every other update carries a large piece, so small
		// changes cannot starve the rest. Otherwise large pieces go
		// until the update holds the budget.
		smallOnly = i+1 == small && !c.smallOnly
		if smallOnly || i >= small && len(c.buf)-start >= c.budget {
			// The rest waits for a later update (priority.go).
			for _, r := range dirty[i+1:] {
				c.sub.Hold(r)
			}
			c.bandFrom, c.cut = dirty[i+1].Min.Y, true
			dirty = dirty[:i+1]
			break
		}
	}
	c.smallOnly = smallOnly
	if !c.cut {
		c.bandFrom = 0
	}
	if preempted {
		c.stats.preempted++
	}
	n += c.refine(start, dirty, pf, enc)
	if n == 0 && c.flushed <= start {
		c.buf = c.buf[:start]
		return false, nil
	}
	switch {
	case c.preempt:
		if n >= 0xffff {
			return false, fmt.Errorf("rfb: update of %d rectangles is over the protocol's limit", n)
		}
		c.buf = appendRectHeader(c.buf, image.Rectangle{}, EncLastRect)
	case n > 0xffff:
		return false, fmt.Errorf("rfb: update of %d rectangles is over the protocol's limit", n)
	default:
		binary.BigEndian.PutUint16(c.buf[start+2:], uint16(n))
	}
	c.stats.updates++
	c.stats.rects += uint64(n)
	return true, nil
}

// readScratch copies the areas rs of cur, the screen as a Subscriber
// lends it, into c.scratch, which it first makes the size of cur.
func (c *conn) readScratch(rs []image.Rectangle, cur *screen.Image) {
	if c.scratch == nil || c.scratch.Rect != cur.Rect {
		c.scratch = screen.NewImage(cur.Rect)
	}
	for _, r := range rs {
		c.scratch.CopyFrom(cur, r)
	}
}

// encoder returns the viewer's preferred encoder, set to its levels.
func (c *conn) encoder(enc *encodingPrefs) rectEncoder {
	switch enc.preferred {
	case EncZRLE:
		if c.zrle == nil {
			c.zrle = newZRLEEncoder()
		}
		if enc.compress >= 0 {
			c.zrle.setCompression(enc.compress)
		}
		return c.zrle
	case EncTight:
		if c.tight == nil {
			c.tight = newTightEncoder()
		}
		if enc.compress >= 0 {
			c.tight.setCompression(enc.compress)
		}
		q := enc.quality
		if est, ok := c.estimate(); ok && q >= 0 {
			q = min(adaptQuality(q, est), c.qcap.level)
		}
		c.tight.setQuality(q)
		return c.tight
	default:
		if c.raw == nil {
			c.raw = newRawEncoder()
		}
		return c.raw
	}
}

// clipOut is why clipboardOut is called.
type clipOut uint8

const (
	clipChanged   clipOut = iota // the desktop's clipboard got new text
	clipRequested                // the viewer asked for the offered text
	clipPeeked                   // the viewer asked what is offered
)

// clipboardOut is the one place where the desktop's clipboard leaves for
// a viewer, as plain ServerCutText (Latin-1) or as an Extended Clipboard
// notify or provide. Server.ClipboardOut is asked, at the moment of
// writing, about the time the text appeared on the desktop; text it
// refuses is forgotten, so it is never sent later, whatever is allowed
// by then.
func (c *conn) clipboardOut(why clipOut, text string, at time.Time, enc *encodingPrefs) {
	if why == clipChanged {
		c.offer = &offeredText{text: text, at: at}
	}
	if c.offer == nil {
		if why == clipPeeked && c.vclip.actions&clipNotify != 0 {
			c.buf = appendClipAction(c.buf, msgServerCutText, clipNotify, 0)
		}
		return
	}
	text, at = c.offer.text, c.offer.at
	if c.srv.ClipboardOut == nil || !c.srv.ClipboardOut(at) {
		c.log.Debug("clipboard text not sent: not allowed")
		c.offer = nil
		if why == clipPeeked && c.vclip.actions&clipNotify != 0 {
			c.buf = appendClipAction(c.buf, msgServerCutText, clipNotify, 0)
		}
		return
	}
	if !enc.extClipboard {
		c.offer = nil // plain viewers cannot ask for it again
		if why == clipChanged {
			b := stringToLatin1(text)
			c.buf = append(c.buf, msgServerCutText, 0, 0, 0)
			c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(b)))
			c.buf = append(c.buf, b...)
		}
		return
	}
	vc := c.vclip
	if !vc.hasText {
		return
	}
	// The size the viewer compares with its limit: CRLF line ends and NUL.
	size := uint64(len(text) + strings.Count(text, "\n") + 1)
	var err error
	switch {
	case why == clipPeeked:
		if vc.actions&clipNotify != 0 {
			c.buf = appendClipAction(c.buf, msgServerCutText, clipNotify, clipText)
		}
	case why == clipRequested, vc.actions&clipProvide != 0 && size <= uint64(vc.textMax):
		if vc.actions&clipProvide != 0 {
			c.buf, err = appendClipProvide(c.buf, msgServerCutText, text)
		}
	case vc.actions&clipNotify != 0:
		c.buf = appendClipAction(c.buf, msgServerCutText, clipNotify, clipText)
	}
	if err != nil {
		c.log.Warn("clipboard text not sent", "err", err)
	}
}
