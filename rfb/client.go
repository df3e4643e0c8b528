package rfb

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/assist-project/assist/screen"
)

// Server-to-client message types, as reported in Message.Type.
const (
	ServerFramebufferUpdate      = msgFramebufferUpdate
	ServerSetColourMapEntries    = msgSetColourMapEntries
	ServerBell                   = msgBell
	ServerCutText                = msgServerCutText
	ServerEndOfContinuousUpdates = msgEndOfContinuousUpdates
	ServerFence                  = msgServerFence
)

// Limits on what a server may make the client allocate. The client is a
// test tool, but it is also pointed at servers we do not control (and at
// a fuzzer), so no length field may ask for unbounded memory.
const (
	clientMaxName       = 1 << 20  // bytes of the desktop name and of failure reasons
	clientMaxCutText    = 16 << 20 // bytes of ServerCutText
	clientMaxFence      = 64       // the Fence extension caps payloads at 64 bytes
	clientMaxPixels     = 1 << 26  // framebuffer area: 8192x8192, 256 MiB
	clientMaxCursorSide = 1024     // width or height of a cursor shape
)

// ClientConfig says how a Client sets up its connection.
type ClientConfig struct {
	// Shared asks the server to keep other viewers connected.
	Shared bool
	// PixelFormat is sent with SetPixelFormat; nil keeps the server's.
	PixelFormat *PixelFormat
	// Encodings is sent with SetEncodings, in order of preference; when
	// empty no SetEncodings is sent and the server falls back to Raw.
	// With EncExtendedClipboard in it, the client speaks the Extended
	// Clipboard extension (UTF-8 text) once the server announces it: it
	// answers the server's caps with its own, requests text the server
	// notifies, and answers the server's requests and peeks.
	Encodings []int32
	// ClipboardNotifyOnly announces a limit of 0 bytes of unsolicited
	// text in the client's Extended Clipboard caps, as noVNC does, so
	// the server must notify and wait for a request.
	ClipboardNotifyOnly bool
}

// Message is one server-to-client message as ReadMessage saw it.
type Message struct {
	Type uint8
	// Rects lists a FramebufferUpdate's rectangles, pseudo-encodings
	// included but not the LastRect marker. Each Rect is the header as
	// sent: for Cursor its Min is the hotspot, for ExtendedDesktopSize
	// Min.X and Min.Y carry the reason and status.
	Rects []RectInfo
	// Text is a ServerCutText's text, decoded from Latin-1, or the text
	// of an Extended Clipboard provide (ClipboardFlags has
	// ClipboardProvide).
	Text string
	// ClipboardFlags are an Extended Clipboard message's flags (zero for
	// plain cut text): the action (Clipboard* constants) and formats.
	ClipboardFlags uint32
	// FenceFlags and FencePayload are a ServerFence's contents.
	FenceFlags   uint32
	FencePayload []byte
	// Bytes counts the bytes of this message on the wire.
	Bytes int
}

// RectInfo is one rectangle of a FramebufferUpdate.
type RectInfo struct {
	Rect     image.Rectangle
	Encoding int32
}

// Client is a small RFB viewer without a display: it decodes what a
// server sends into an in-memory framebuffer. It exists to test and
// benchmark servers (ours and reference ones), so it speaks only the
// None security type and the encodings the package can decode.
//
// ReadMessage must be called from one goroutine at a time; the methods
// that send (RequestUpdate, KeyEvent, ...) may be called from others
// concurrently with it.
type Client struct {
	conn  net.Conn
	r     *countingReader
	name  string
	pf    PixelFormat // the format pixels arrive in
	fb    *screen.Image
	cur   *screen.Cursor
	hdr   [16]byte // scratch for fixed-size fields
	limit int      // maximum framebuffer area in pixels
	err   error    // sticky: the first error of ReadMessage

	// screens is the layout from the last ExtendedDesktopSize.
	screens []screenLayout

	raw, zrle, tight rectDecoder // created on first use
	h264             *h264Decoder
	scaled           scaledDecoder
	lossless         losslessDecoder

	extClip    bool // the client announced the Extended Clipboard
	notifyOnly bool // ClientConfig.ClipboardNotifyOnly

	wmu  sync.Mutex // guards everything below, and writes to conn
	wbuf []byte
	size image.Point // mirrors fb's size for senders on other goroutines
	// serverClip is what the server's Extended Clipboard caps accept;
	// nil until they arrive.
	serverClip *clipCapsOf
	// paste is text CutText notified and the server may request.
	paste *string
}

// Extended Clipboard actions, as reported in Message.ClipboardFlags.
const (
	ClipboardText    = clipText
	ClipboardCaps    = clipCaps
	ClipboardRequest = clipRequest
	ClipboardPeek    = clipPeek
	ClipboardNotify  = clipNotify
	ClipboardProvide = clipProvide
)

// screenLayout is one screen of an ExtendedDesktopSize rectangle.
type screenLayout struct {
	id    uint32
	rect  image.Rectangle
	flags uint32
}

// NewClient runs the RFB handshake on conn as a viewer: it answers the
// server's protocol version (3.3, 3.7 or 3.8; Apple's 3.889 as 3.8),
// chooses the None security type, exchanges ClientInit and ServerInit,
// and sends SetPixelFormat and SetEncodings as cfg asks. On error the
// caller still owns conn.
func NewClient(conn net.Conn, cfg ClientConfig) (*Client, error) {
	return newClient(conn, cfg, clientMaxPixels)
}

// newClient is NewClient with a bound on the framebuffer's area, so the
// fuzz test can keep allocations small.
func newClient(conn net.Conn, cfg ClientConfig, maxPixels int) (*Client, error) {
	c := &Client{
		conn:  conn,
		r:     &countingReader{br: bufio.NewReaderSize(conn, 64<<10)},
		limit: maxPixels,
		h264:  newH264Decoder(),

		notifyOnly: cfg.ClipboardNotifyOnly,
	}
	for _, e := range cfg.Encodings {
		c.extClip = c.extClip || e == EncExtendedClipboard
	}
	minor, err := c.negotiateVersion()
	if err != nil {
		return nil, err
	}
	if err := c.negotiateSecurity(minor); err != nil {
		return nil, err
	}
	if err := c.initialise(cfg.Shared); err != nil {
		return nil, err
	}
	if cfg.PixelFormat != nil {
		if err := c.setPixelFormat(*cfg.PixelFormat); err != nil {
			return nil, err
		}
	} else if err := c.pf.Validate(); err != nil {
		// Colour maps are not decoded; only SetPixelFormat avoids them.
		return nil, fmt.Errorf("rfb: client: cannot decode the server's pixel format (%w); set ClientConfig.PixelFormat", err)
	}
	if len(cfg.Encodings) > 0 {
		if err := c.setEncodings(cfg.Encodings); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// negotiateVersion reads the server's ProtocolVersion and answers with
// the highest version we speak that is not above it. It returns the
// minor version chosen: 3, 7 or 8.
func (c *Client) negotiateVersion() (int, error) {
	var b [12]byte
	if err := readFull(c.r, b[:], "server protocol version"); err != nil {
		return 0, err
	}
	major, minor, ok := parseServerVersion(b[:])
	if !ok {
		return 0, fmt.Errorf("rfb: client: server protocol version %q is not \"RFB xxx.yyy\\n\"", b[:])
	}
	var ours int
	switch {
	case major < 3:
		return 0, fmt.Errorf("rfb: client: server speaks RFB %d.%d; we need 3.3 or later", major, minor)
	case major > 3 || minor >= 8: // 3.889 (Apple) is a 3.8 with extra security types
		ours = 8
	case minor == 7:
		ours = 7
	default: // 3.3, and the 3.4/3.5/3.6 some servers announce, behave as 3.3
		ours = 3
	}
	if err := c.write(fmt.Appendf(nil, "RFB 003.%03d\n", ours)); err != nil {
		return 0, fmt.Errorf("rfb: client: send protocol version: %w", err)
	}
	return ours, nil
}

// parseServerVersion parses "RFB xxx.yyy\n".
func parseServerVersion(b []byte) (major, minor int, ok bool) {
	if len(b) != 12 || string(b[:4]) != "RFB " || b[7] != '.' || b[11] != '\n' {
		return 0, 0, false
	}
	num := func(d []byte) (int, bool) {
		n := 0
		for _, c := range d {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	major, ok1 := num(b[4:7])
	minor, ok2 := num(b[8:11])
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	return major, minor, true
}

// negotiateSecurity settles on the None security type.
func (c *Client) negotiateSecurity(minor int) error {
	if minor == 3 {
		// 3.3: the server decides alone.
		if err := readFull(c.r, c.hdr[:4], "security type"); err != nil {
			return err
		}
		switch t := binary.BigEndian.Uint32(c.hdr[:4]); t {
		case secNone:
			return nil
		case secInvalid:
			return c.failure("server refused the connection")
		default:
			return fmt.Errorf("rfb: client: server requires authentication (security type %d); assist's test client only speaks None", t)
		}
	}
	if err := readFull(c.r, c.hdr[:1], "number of security types"); err != nil {
		return err
	}
	n := int(c.hdr[0])
	if n == 0 {
		return c.failure("server refused the connection")
	}
	types := make([]byte, n)
	if err := readFull(c.r, types, "security types"); err != nil {
		return err
	}
	found := false
	for _, t := range types {
		found = found || t == secNone
	}
	if !found {
		list := make([]int, n)
		for i, t := range types {
			list[i] = int(t)
		}
		return fmt.Errorf("rfb: client: server requires authentication (security types %v); assist's test client only speaks None", list)
	}
	if err := c.write([]byte{secNone}); err != nil {
		return fmt.Errorf("rfb: client: send security type: %w", err)
	}
	if minor == 7 {
		return nil // 3.7 sends no SecurityResult for None
	}
	if err := readFull(c.r, c.hdr[:4], "security result"); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(c.hdr[:4]) != 0 {
		return c.failure("security handshake failed")
	}
	return nil
}

// failure reads the reason string a server sends when it gives up during
// the handshake and returns it as an error.
func (c *Client) failure(what string) error {
	reason, err := c.readString(clientMaxName, "failure reason")
	if err != nil {
		return fmt.Errorf("rfb: client: %s, and its reason could not be read: %w", what, err)
	}
	return fmt.Errorf("rfb: client: %s: %q", what, reason)
}

// readString reads a u32 length and that many bytes, refusing lengths
// above max before allocating.
func (c *Client) readString(max int, what string) (string, error) {
	if err := readFull(c.r, c.hdr[:4], what+" length"); err != nil {
		return "", err
	}
	n := binary.BigEndian.Uint32(c.hdr[:4])
	if n > uint32(max) {
		return "", fmt.Errorf("rfb: client: %s of %d bytes is over the limit of %d", what, n, max)
	}
	b := make([]byte, n)
	if err := readFull(c.r, b, what); err != nil {
		return "", err
	}
	return string(b), nil
}

// initialise sends ClientInit and reads ServerInit.
func (c *Client) initialise(shared bool) error {
	if err := c.write([]byte{boolByte(shared)}); err != nil {
		return fmt.Errorf("rfb: client: send ClientInit: %w", err)
	}
	var b [20]byte
	if err := readFull(c.r, b[:], "ServerInit"); err != nil {
		return err
	}
	w, h := int(binary.BigEndian.Uint16(b[0:])), int(binary.BigEndian.Uint16(b[2:]))
	c.pf = unmarshalPixelFormat(b[4:])
	name, err := c.readString(clientMaxName, "desktop name")
	if err != nil {
		return err
	}
	c.name = name
	return c.resize(w, h)
}

// setPixelFormat sends SetPixelFormat; pixels arrive in pf from then on.
func (c *Client) setPixelFormat(pf PixelFormat) error {
	if err := pf.Validate(); err != nil {
		return fmt.Errorf("rfb: client: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], msgSetPixelFormat, 0, 0, 0)
	b = append(b, make([]byte, 16)...)
	pf.marshal(b[4:])
	if err := c.send(b, "SetPixelFormat"); err != nil {
		return err
	}
	c.pf = pf
	return nil
}

// setEncodings sends SetEncodings.
func (c *Client) setEncodings(encs []int32) error {
	if len(encs) > 0xffff {
		return fmt.Errorf("rfb: client: %d encodings do not fit SetEncodings", len(encs))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.send(appendSetEncodings(c.wbuf[:0], encs), "SetEncodings")
}

// Name is the desktop name from ServerInit.
func (c *Client) Name() string { return c.name }

// Size is the framebuffer's current size. Unlike Framebuffer, it may be
// called from any goroutine.
func (c *Client) Size() image.Point {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.size
}

// Framebuffer is the decoded framebuffer in the native BGRX layout. The
// client owns it: ReadMessage changes its pixels, and replaces it when
// the server resizes the desktop.
func (c *Client) Framebuffer() *screen.Image { return c.fb }

// Cursor is the last cursor shape the server sent, or nil.
func (c *Client) Cursor() *screen.Cursor { return c.cur }

// Close closes the connection and frees the H.264 decoders.
func (c *Client) Close() error {
	c.h264.close()
	return c.conn.Close()
}

// resize replaces the framebuffer with one of w x h pixels, keeping the
// pixels of the area the two share.
func (c *Client) resize(w, h int) error {
	if w*h > c.limit {
		return fmt.Errorf("rfb: client: framebuffer of %dx%d is over the limit of %d pixels", w, h, c.limit)
	}
	if c.fb != nil && c.fb.Rect.Dx() == w && c.fb.Rect.Dy() == h {
		return nil
	}
	fb := screen.NewImage(image.Rect(0, 0, w, h))
	if c.fb != nil {
		fb.CopyFrom(c.fb, fb.Rect.Intersect(c.fb.Rect))
	}
	c.fb = fb
	c.wmu.Lock()
	c.size = image.Pt(w, h)
	c.wmu.Unlock()
	return nil
}

// countingReader counts the bytes taken from a bufio.Reader, so that
// ReadMessage can report each message's size on the wire. It implements
// io.ByteReader so that decompressors reading from it do not add a
// buffer of their own that would read past the rectangle.
type countingReader struct {
	br *bufio.Reader
	n  int
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.br.Read(p)
	r.n += n
	return n, err
}

func (r *countingReader) ReadByte() (byte, error) {
	b, err := r.br.ReadByte()
	if err == nil {
		r.n++
	}
	return b, err
}

// write sends b under the writer lock.
func (c *Client) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(b)
	return err
}

// ReadMessage reads one server message. A FramebufferUpdate is drawn into
// Framebuffer (and Cursor) before ReadMessage returns. After an error the
// stream is out of step, so every later call returns the same error.
func (c *Client) ReadMessage() (Message, error) {
	if c.err != nil {
		return Message{}, c.err
	}
	c.r.n = 0
	t, err := c.r.ReadByte()
	if err != nil {
		c.err = fmt.Errorf("rfb: client: read message type: %w", err)
		return Message{}, c.err
	}
	m := Message{Type: t}
	switch t {
	case msgFramebufferUpdate:
		err = c.readUpdate(&m)
	case msgSetColourMapEntries:
		err = c.readColourMap()
	case msgBell, msgEndOfContinuousUpdates:
	case msgServerCutText:
		err = c.readCutText(&m)
	case msgServerFence:
		m.FenceFlags, m.FencePayload, err = c.readFence()
	case msgAssistPixelFormat:
		// Sent because the client named EncAssistScaled or a lossless
		// private encoding: the format
		// is the one the client set, which it knows.
		err = readFull(c.r, c.hdr[:3], "pixel format padding")
		if err == nil {
			err = readFull(c.r, c.hdr[:16], "pixel format")
		}
	default:
		err = fmt.Errorf("rfb: client: unknown server message type %d", t)
	}
	m.Bytes = c.r.n
	if err != nil {
		c.err = err
	}
	return m, err
}

// readUpdate reads the rest of a FramebufferUpdate and draws it.
func (c *Client) readUpdate(m *Message) error {
	if err := readFull(c.r, c.hdr[:3], "FramebufferUpdate header"); err != nil {
		return err
	}
	// 0xffff announces an unknown count ended by a LastRect rectangle;
	// reading at most that many bounds the loop either way.
	n := int(binary.BigEndian.Uint16(c.hdr[1:3]))
	for i := 0; i < n; i++ {
		if err := readFull(c.r, c.hdr[:12], "rectangle header"); err != nil {
			return err
		}
		r := readRect(c.hdr[:8])
		enc := int32(binary.BigEndian.Uint32(c.hdr[8:12]))
		if enc == EncLastRect {
			break
		}
		m.Rects = append(m.Rects, RectInfo{Rect: r, Encoding: enc})
		if err := c.readPayload(r, enc); err != nil {
			return fmt.Errorf("rfb: client: rectangle %d %v encoding %d: %w", i, r, enc, err)
		}
	}
	return nil
}

// readPayload reads and applies the payload of one rectangle.
func (c *Client) readPayload(r image.Rectangle, enc int32) error {
	switch enc {
	case EncRaw, EncCopyRect, EncZRLE, EncTight, EncH264, EncAssistScaled, EncAssistLossless, EncAssistLosslessFSE:
		if r.Max.X > c.fb.Rect.Max.X || r.Max.Y > c.fb.Rect.Max.Y {
			return fmt.Errorf("rectangle is outside the %dx%d framebuffer", c.fb.Rect.Dx(), c.fb.Rect.Dy())
		}
	}
	switch enc {
	case EncRaw:
		if c.raw == nil {
			c.raw = newRawDecoder()
		}
		return c.raw.decode(c.r, c.fb, r, &c.pf)
	case EncZRLE:
		if c.zrle == nil {
			c.zrle = newZRLEDecoder()
		}
		return c.zrle.decode(c.r, c.fb, r, &c.pf)
	case EncTight:
		if c.tight == nil {
			c.tight = newTightDecoder()
		}
		return c.tight.decode(c.r, c.fb, r, &c.pf)
	case EncH264:
		return c.h264.decode(c.r, c.fb, r, &c.pf)
	case EncAssistScaled, EncAssistLossless, EncAssistLosslessFSE:
		// All draw 8-bit channels, as JPEG does.
		var err error
		if enc == EncAssistScaled {
			err = c.scaled.decode(c.r, r, c.fb, r)
		} else {
			err = c.lossless.decode(c.r, enc, r, c.fb, r)
		}
		if err != nil {
			return err
		}
		if !tightIs888(&c.pf) {
			jpegQuantize(c.fb, r, &c.pf)
		}
		return nil
	case EncCopyRect:
		if err := readFull(c.r, c.hdr[:4], "CopyRect source"); err != nil {
			return err
		}
		src := image.Pt(int(binary.BigEndian.Uint16(c.hdr[0:])), int(binary.BigEndian.Uint16(c.hdr[2:])))
		if s := r.Add(src.Sub(r.Min)); s.Max.X > c.fb.Rect.Max.X || s.Max.Y > c.fb.Rect.Max.Y {
			return fmt.Errorf("CopyRect source %v is outside the %dx%d framebuffer", s, c.fb.Rect.Dx(), c.fb.Rect.Dy())
		}
		copyWithin(c.fb, r, src)
		return nil
	case EncCursor:
		if r.Dx() > clientMaxCursorSide || r.Dy() > clientMaxCursorSide {
			return fmt.Errorf("cursor of %dx%d is over the limit of %d pixels a side", r.Dx(), r.Dy(), clientMaxCursorSide)
		}
		cur, err := decodeCursor(c.r, r, &c.pf)
		if err != nil {
			return err
		}
		c.cur = cur
		return nil
	case EncDesktopSize:
		return c.resize(r.Dx(), r.Dy())
	case EncExtendedDesktopSize:
		if err := c.readScreens(); err != nil {
			return err
		}
		return c.resize(r.Dx(), r.Dy())
	default:
		return fmt.Errorf("encoding %d is not supported", enc)
	}
}

// readScreens reads the screen layout of an ExtendedDesktopSize
// rectangle.
func (c *Client) readScreens() error {
	if err := readFull(c.r, c.hdr[:4], "number of screens"); err != nil {
		return err
	}
	n := int(c.hdr[0])
	screens := make([]screenLayout, n)
	for i := range screens {
		if err := readFull(c.r, c.hdr[:16], "screen"); err != nil {
			return err
		}
		screens[i] = screenLayout{
			id:    binary.BigEndian.Uint32(c.hdr[0:]),
			rect:  readRect(c.hdr[4:12]),
			flags: binary.BigEndian.Uint32(c.hdr[12:]),
		}
	}
	c.screens = screens
	return nil
}

// copyWithin copies the pixels at src, the size of dst, to dst within
// fb. Source and destination may overlap.
func copyWithin(fb *screen.Image, dst image.Rectangle, src image.Point) {
	n := 4 * dst.Dx()
	if n == 0 {
		return
	}
	h := dst.Dy()
	copyRow := func(i int) {
		d := fb.PixOffset(dst.Min.X, dst.Min.Y+i)
		s := fb.PixOffset(src.X, src.Y+i)
		copy(fb.Pix[d:d+n], fb.Pix[s:s+n]) // copy is memmove: rows may overlap
	}
	if src.Y < dst.Min.Y {
		// Moving down: go bottom-up so no source row is overwritten
		// before it is read.
		for i := h - 1; i >= 0; i-- {
			copyRow(i)
		}
		return
	}
	for i := 0; i < h; i++ {
		copyRow(i)
	}
}

// readColourMap reads and drops a SetColourMapEntries: the client only
// asks for true colour, so a colour map has nothing to apply to.
func (c *Client) readColourMap() error {
	if err := readFull(c.r, c.hdr[:5], "SetColourMapEntries header"); err != nil {
		return err
	}
	n := int64(binary.BigEndian.Uint16(c.hdr[3:5]))
	if _, err := io.CopyN(io.Discard, c.r, 6*n); err != nil {
		return fmt.Errorf("rfb: read SetColourMapEntries colours: %w", err)
	}
	return nil
}

// readCutText reads a ServerCutText: Latin-1 text, or an Extended
// Clipboard message if the client announced the extension.
func (c *Client) readCutText(m *Message) error {
	if err := readFull(c.r, c.hdr[:3], "ServerCutText padding"); err != nil {
		return err
	}
	if err := readFull(c.r, c.hdr[:4], "ServerCutText length"); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(c.hdr[:4])
	if c.extClip && int32(n) < 0 {
		return c.readExtClip(m, -int64(int32(n)))
	}
	if n > clientMaxCutText {
		return fmt.Errorf("rfb: client: ServerCutText of %d bytes is over the limit of %d", n, clientMaxCutText)
	}
	b := make([]byte, n)
	if err := readFull(c.r, b, "ServerCutText"); err != nil {
		return err
	}
	m.Text = latin1ToString(b)
	return nil
}

// readExtClip reads an Extended Clipboard message of n bytes and answers
// it as rfbproto asks.
func (c *Client) readExtClip(m *Message, n int64) error {
	if n > maxExtClip {
		return fmt.Errorf("rfb: client: extended clipboard message of %d bytes is over the limit of %d", n, maxExtClip)
	}
	b := make([]byte, n)
	if err := readFull(c.r, b, "ServerCutText extended clipboard"); err != nil {
		return err
	}
	x, err := parseExtClip(b)
	if err != nil {
		return fmt.Errorf("rfb: client: %w", err)
	}
	m.ClipboardFlags = x.flags
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch x.action() {
	case clipCaps:
		caps := x.caps()
		c.serverClip = &caps
		var max uint32 = clientMaxCutText
		if c.notifyOnly {
			max = 0
		}
		return c.send(appendClipCaps(c.wbuf[:0], msgClientCutText, max), "extended clipboard caps")
	case clipNotify:
		if x.flags&clipText != 0 && c.serverAccepts(clipRequest) {
			return c.send(appendClipAction(c.wbuf[:0], msgClientCutText, clipRequest, clipText), "extended clipboard request")
		}
	case clipRequest:
		if c.paste != nil && x.flags&clipText != 0 && c.serverAccepts(clipProvide) {
			b, err := appendClipProvide(c.wbuf[:0], msgClientCutText, *c.paste)
			if err != nil {
				return fmt.Errorf("rfb: client: %w", err)
			}
			return c.send(b, "extended clipboard provide")
		}
	case clipPeek:
		if c.serverAccepts(clipNotify) {
			var f uint32
			if c.paste != nil {
				f = clipText
			}
			return c.send(appendClipAction(c.wbuf[:0], msgClientCutText, clipNotify, f), "extended clipboard notify")
		}
	case clipProvide:
		text, ok, err := x.providedText(clientMaxCutText)
		if err != nil {
			return fmt.Errorf("rfb: client: %w", err)
		}
		if ok {
			m.Text = text
		}
	}
	return nil
}

// serverAccepts reports whether the server's caps take action; before
// caps arrive, rfbproto's defaults apply. Called with wmu held.
func (c *Client) serverAccepts(action uint32) bool {
	caps := defaultClipCaps
	if c.serverClip != nil {
		caps = *c.serverClip
	}
	return caps.actions&action != 0
}

// readFence reads a ServerFence.
func (c *Client) readFence() (uint32, []byte, error) {
	if err := readFull(c.r, c.hdr[:8], "ServerFence header"); err != nil {
		return 0, nil, err
	}
	flags := binary.BigEndian.Uint32(c.hdr[3:7])
	n := int(c.hdr[7])
	if n > clientMaxFence {
		return 0, nil, fmt.Errorf("rfb: client: ServerFence payload of %d bytes is over the limit of %d", n, clientMaxFence)
	}
	payload := make([]byte, n)
	if err := readFull(c.r, payload, "ServerFence payload"); err != nil {
		return 0, nil, err
	}
	return flags, payload, nil
}

// RequestUpdate sends FramebufferUpdateRequest for r, or for the whole
// framebuffer when r is empty.
func (c *Client) RequestUpdate(incremental bool, r image.Rectangle) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := c.appendArea(append(c.wbuf[:0], msgFramebufferUpdateRequest, boolByte(incremental)), r)
	if err != nil {
		return err
	}
	return c.send(b, "FramebufferUpdateRequest")
}

// EnableContinuousUpdates sends EnableContinuousUpdates for r, or for the
// whole framebuffer when r is empty. Only servers that announced the
// extension (an EndOfContinuousUpdates message) accept it.
func (c *Client) EnableContinuousUpdates(on bool, r image.Rectangle) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := c.appendArea(append(c.wbuf[:0], msgEnableContinuousUpdates, boolByte(on)), r)
	if err != nil {
		return err
	}
	return c.send(b, "EnableContinuousUpdates")
}

// appendArea appends r as x, y, width, height; an empty r stands for the
// whole framebuffer. The caller holds wmu.
func (c *Client) appendArea(b []byte, r image.Rectangle) ([]byte, error) {
	if r.Empty() {
		r = image.Rectangle{Max: c.size}
	}
	if r.Min.X < 0 || r.Min.Y < 0 || r.Max.X > 0xffff || r.Max.Y > 0xffff {
		return nil, fmt.Errorf("rfb: client: area %v does not fit the protocol's 16-bit coordinates", r)
	}
	return append(b,
		byte(r.Min.X>>8), byte(r.Min.X), byte(r.Min.Y>>8), byte(r.Min.Y),
		byte(r.Dx()>>8), byte(r.Dx()), byte(r.Dy()>>8), byte(r.Dy())), nil
}

// KeyEvent sends a key press (down) or release of an X keysym.
func (c *Client) KeyEvent(keysym uint32, down bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], msgKeyEvent, boolByte(down), 0, 0)
	return c.send(binary.BigEndian.AppendUint32(b, keysym), "KeyEvent")
}

// PointerEvent sends the pointer's position and button mask (bit 0 is
// the left button). Coordinates are clamped to what the protocol holds.
func (c *Client) PointerEvent(x, y int, buttons uint8) error {
	x, y = min(max(x, 0), 0xffff), min(max(y, 0), 0xffff)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], msgPointerEvent, buttons, byte(x>>8), byte(x), byte(y>>8), byte(y))
	return c.send(b, "PointerEvent")
}

// CutText sends the viewer's clipboard text. Once the server announced
// the Extended Clipboard (and the client asked for it), the text goes as
// UTF-8: provided at once if the server takes that much unsolicited
// text, else notified for the server to request. Otherwise it goes as
// ClientCutText in Latin-1, with characters outside it sent as '?'.
func (c *Client) CutText(text string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if sc := c.serverClip; sc != nil && sc.hasText {
		c.paste = &text
		size := uint64(len(text) + strings.Count(text, "\n") + 1)
		if sc.actions&clipProvide != 0 && size <= uint64(sc.textMax) {
			b, err := appendClipProvide(c.wbuf[:0], msgClientCutText, text)
			if err != nil {
				return fmt.Errorf("rfb: client: %w", err)
			}
			return c.send(b, "extended clipboard provide")
		}
		if sc.actions&clipNotify != 0 {
			return c.send(appendClipAction(c.wbuf[:0], msgClientCutText, clipNotify, clipText), "extended clipboard notify")
		}
	}
	t := stringToLatin1(text)
	if uint64(len(t)) > 0xffffffff {
		return fmt.Errorf("rfb: client: cut text of %d bytes does not fit ClientCutText", len(t))
	}
	b := append(c.wbuf[:0], msgClientCutText, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(t)))
	return c.send(append(b, t...), "ClientCutText")
}

// Fence sends ClientFence. Only servers that announced the extension (a
// ServerFence message) accept it.
func (c *Client) Fence(flags uint32, payload []byte) error {
	if len(payload) > clientMaxFence {
		return fmt.Errorf("rfb: client: fence payload of %d bytes is over the limit of %d", len(payload), clientMaxFence)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], msgClientFence, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, flags)
	b = append(b, byte(len(payload)))
	return c.send(append(b, payload...), "ClientFence")
}

// send writes b, which the caller built in wbuf under wmu, and keeps the
// grown buffer for the next message.
func (c *Client) send(b []byte, what string) error {
	c.wbuf = b
	if len(c.wbuf) > 64<<10 {
		c.wbuf = nil // do not keep a large cut text's buffer alive
	}
	if _, err := c.conn.Write(b); err != nil {
		return fmt.Errorf("rfb: client: send %s: %w", what, err)
	}
	return nil
}
