package rfb

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"sync/atomic"

	"github.com/assist-project/assist/screen"
)

// ToViewer copies the server's messages to the viewer. With a Relay from
// NewRelay or NewRelayOffering it parses them, copying every byte as it is except that it
// drops the server's msgAssistPixelFormat messages and turns each
// EncAssistScaled, EncAssistLossless or EncAssistLosslessFSE rectangle into a Raw one of the
// same area, in the pixel format the server last announced: the viewer
// never sees a private encoding, except those it decodes itself (PassingScaled). It knows the length of everything this package's server
// sends (Raw, CopyRect, Tight, ZRLE, Open H.264, the cursor and desktop
// size pseudo-encodings, fences, clipboard, bell); anything else ends the
// relay with an error, since the stream is then out of step. It returns
// nil when the server closes the stream.
func (rl *Relay) ToViewer(viewer io.Writer, server io.Reader) error {
	if len(rl.private) == 0 {
		if _, err := io.Copy(viewer, server); err != nil && !isClosedConn(err) {
			return fmt.Errorf("rfb: relay to the viewer: %w", err)
		}
		return nil
	}
	t := &relayUpdates{
		vw:         viewerWriter{viewer},
		pf:         NativeFormat,
		rewritten:  &rl.rewritten,
		passed:     &rl.passed,
		passScaled: rl.passScaled,
	}
	t.bw = bufio.NewWriterSize(t.vw, 64<<10)
	t.br = bufio.NewReaderSize(flushFirst{server, t.bw}, 64<<10)
	err := t.handshake(rl)
	if err == nil {
		err = t.messages()
	}
	if ferr := t.bw.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	rl.changed = t.changed
	switch {
	case err == nil, errors.Is(err, errRelayDone), isClosedConn(err):
		return nil
	case errors.Is(err, errRelayWrite):
		return err
	}
	return fmt.Errorf("rfb: relay: the novice's server sent what the relay cannot read: %w", err)
}

var (
	// errRelayDone: the server refused the viewer; what it said was
	// copied.
	errRelayDone = errors.New("rfb: relay: handshake refused")
	// errRelayWrite wraps a failed write to the viewer.
	errRelayWrite = errors.New("rfb: relay to the viewer")
)

// relayUpdates is the parsing state of ToViewer.
type relayUpdates struct {
	br       *bufio.Reader
	bw       *bufio.Writer
	vw       io.Writer   // the viewer, unbuffered
	pf       PixelFormat // of the updates that follow
	size     image.Point // the framebuffer's
	hdr      [24]byte
	dec      scaledDecoder
	lossless losslessDecoder
	big      *screen.Image // a private rectangle at full size
	out      []byte        // its Raw pixels
	// changed counts the messages dropped and rectangles rewritten.
	changed int
	// rewritten is the Relay's count of private rectangles made Raw.
	rewritten *atomic.Int64
	// passed is the Relay's count of private rectangles copied as they
	// are; passScaled, whether scaled ones are.
	passed     *atomic.Int64
	passScaled bool
	// announced: the server has announced a pixel format, so it speaks
	// the private encodings. One that sends an update first (a novice of an
	// older version) never scales, and its updates may be in a format
	// the relay cannot know: the rest is copied as it is.
	announced bool
}

// copyN copies n bytes as they are.
func (t *relayUpdates) copyN(n int64) error {
	// Through the reader's buffer, not io.CopyN: that would have bw read
	// into its own buffer (bufio.Writer.ReadFrom), and a refill of br
	// flushes bw under that read (flushFirst).
	for n > 0 {
		if t.br.Buffered() == 0 {
			if _, err := t.br.Peek(1); err != nil {
				if errors.Is(err, io.EOF) {
					return io.ErrUnexpectedEOF
				}
				return err
			}
		}
		b, _ := t.br.Peek(int(min(n, int64(t.br.Buffered()))))
		if _, err := t.bw.Write(b); err != nil {
			return err
		}
		t.br.Discard(len(b))
		n -= int64(len(b))
	}
	return nil
}

// flushFirst reads the server's stream for the relay's bufio.Reader,
// which reads it only once it has used up what it holds: whatever the
// relay has written for the viewer by then goes to the viewer first. A
// small change must not wait in the relay's buffer for the rest of the
// update after it to come across the wide link: it did, in the middle of
// a video picture's payload, for 1.8 ms at the median and 7 ms at p90 at
// 20 Mbit/s (TestRelayFlushesBeforeWaiting). In the handshake the server
// waits for the viewer's answer to what it sent.
type flushFirst struct {
	r  io.Reader
	bw *bufio.Writer
}

func (f flushFirst) Read(p []byte) (int, error) {
	if f.bw.Buffered() > 0 {
		if err := f.bw.Flush(); err != nil {
			return 0, err
		}
	}
	return f.r.Read(p)
}

// read reads len(b) bytes into b and copies them on.
func (t *relayUpdates) read(b []byte, what string) error {
	if err := readFull(t.br, b, what); err != nil {
		return err
	}
	return t.write(b)
}

func (t *relayUpdates) write(b []byte) error {
	_, err := t.bw.Write(b)
	return err
}

// viewerWriter marks the errors of writes to the viewer.
type viewerWriter struct{ w io.Writer }

func (v viewerWriter) Write(p []byte) (int, error) {
	n, err := v.w.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", errRelayWrite, err)
	}
	return n, err
}

// handshake copies the server's side of the handshake, reading the
// framebuffer's size from ServerInit. The messages that follow depend on
// the version the viewer chose.
func (t *relayUpdates) handshake(rl *Relay) error {
	if err := t.read(t.hdr[:12], "server version"); err != nil {
		return err
	}
	if err := t.bw.Flush(); err != nil {
		return err
	}
	<-rl.ver
	if rl.minor < 0 {
		return errRelayDone // the viewer went before saying its version
	}
	if rl.minor < 7 {
		if err := t.read(t.hdr[:4], "security type"); err != nil {
			return err
		}
		if binary.BigEndian.Uint32(t.hdr[:4]) == secInvalid {
			return t.reason()
		}
	} else {
		if err := t.read(t.hdr[:1], "security types"); err != nil {
			return err
		}
		n := int(t.hdr[0])
		if n == 0 {
			return t.reason()
		}
		if err := t.copyN(int64(n)); err != nil {
			return err
		}
	}
	if rl.minor >= 8 {
		if err := t.bw.Flush(); err != nil {
			return err
		}
		if err := t.read(t.hdr[:4], "security result"); err != nil {
			return err
		}
		if binary.BigEndian.Uint32(t.hdr[:4]) != 0 {
			return t.reason()
		}
	}
	if err := t.read(t.hdr[:24], "ServerInit"); err != nil {
		return err
	}
	t.size = image.Pt(int(binary.BigEndian.Uint16(t.hdr[0:])), int(binary.BigEndian.Uint16(t.hdr[2:])))
	t.pf = unmarshalPixelFormat(t.hdr[4:20])
	if err := t.copyN(int64(binary.BigEndian.Uint32(t.hdr[20:]))); err != nil {
		return err
	}
	return t.bw.Flush()
}

// reason copies a failure reason and ends the relay.
func (t *relayUpdates) reason() error {
	if err := t.read(t.hdr[:4], "reason length"); err != nil {
		return err
	}
	if err := t.copyN(int64(binary.BigEndian.Uint32(t.hdr[:4]))); err != nil {
		return err
	}
	return errRelayDone
}

// messages relays server messages until the stream ends.
func (t *relayUpdates) messages() error {
	for {
		// (What has come goes on before the relay waits for more:
		// flushFirst.)
		typ, err := t.br.ReadByte()
		if err != nil {
			return err
		}
		if typ == msgAssistPixelFormat {
			if err := readFull(t.br, t.hdr[:19], "pixel format"); err != nil {
				return err
			}
			pf := unmarshalPixelFormat(t.hdr[3:19])
			if err := pf.Validate(); err != nil {
				return err
			}
			t.pf = pf
			t.announced = true
			t.changed++
			continue
		}
		if typ == msgFramebufferUpdate && !t.announced {
			if err := t.write([]byte{typ}); err != nil {
				return err
			}
			if err := t.bw.Flush(); err != nil {
				return err
			}
			_, err := io.Copy(t.vw, t.br)
			return err
		}
		if err := t.write([]byte{typ}); err != nil {
			return err
		}
		switch typ {
		case msgFramebufferUpdate:
			err = t.update()
		case msgSetColourMapEntries:
			if err = t.read(t.hdr[:5], "SetColourMapEntries"); err == nil {
				err = t.copyN(6 * int64(binary.BigEndian.Uint16(t.hdr[3:])))
			}
		case msgBell, msgEndOfContinuousUpdates:
		case msgServerCutText:
			if err = t.read(t.hdr[:7], "ServerCutText"); err == nil {
				n := int64(int32(binary.BigEndian.Uint32(t.hdr[3:])))
				if n < 0 { // Extended Clipboard
					n = -n
				}
				err = t.copyN(n)
			}
		case msgServerFence:
			if err = t.read(t.hdr[:8], "ServerFence"); err == nil {
				err = t.copyN(int64(t.hdr[7]))
			}
		default:
			return fmt.Errorf("%w: unknown message type %d", errProtocol, typ)
		}
		if err != nil {
			return err
		}
	}
}

// update relays the rest of a FramebufferUpdate.
func (t *relayUpdates) update() error {
	if err := t.read(t.hdr[:3], "FramebufferUpdate header"); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(t.hdr[1:3]))
	for i := 0; i < n; i++ {
		var h [12]byte
		if err := readFull(t.br, h[:], "rectangle header"); err != nil {
			return err
		}
		r := readRect(h[:8])
		enc := int32(binary.BigEndian.Uint32(h[8:]))
		if enc == EncAssistScaled && t.passScaled {
			if err := t.passScaledRect(h, r); err != nil {
				return fmt.Errorf("rectangle %v: %w", r, err)
			}
			continue
		}
		if enc == EncAssistScaled || enc == EncAssistLossless || enc == EncAssistLosslessFSE {
			if err := t.private(r, enc); err != nil {
				return fmt.Errorf("rectangle %v: %w", r, err)
			}
			continue
		}
		if err := t.write(h[:]); err != nil {
			return err
		}
		if enc == EncLastRect {
			return nil
		}
		if err := t.payload(r, enc); err != nil {
			return fmt.Errorf("rectangle %v encoding %d: %w", r, enc, err)
		}
	}
	return nil
}

// payload copies the payload of a rectangle of encoding enc.
func (t *relayUpdates) payload(r image.Rectangle, enc int32) error {
	bpp := int64(t.pf.bytesPerPixel())
	w, h := int64(r.Dx()), int64(r.Dy())
	switch enc {
	case EncRaw:
		return t.copyN(w * h * bpp)
	case EncCopyRect:
		return t.copyN(4)
	case EncTight:
		return t.tight(r)
	case EncZRLE:
		if err := t.read(t.hdr[:4], "ZRLE length"); err != nil {
			return err
		}
		return t.copyN(int64(binary.BigEndian.Uint32(t.hdr[:4])))
	case EncH264:
		if err := t.read(t.hdr[:8], "H.264 header"); err != nil {
			return err
		}
		return t.copyN(int64(binary.BigEndian.Uint32(t.hdr[:4])))
	case EncCursor:
		return t.copyN(w*h*bpp + (w+7)/8*h)
	case EncDesktopSize:
		t.size = r.Size()
		return nil
	case EncExtendedDesktopSize:
		if err := t.read(t.hdr[:4], "screen count"); err != nil {
			return err
		}
		// Reason 1 (a viewer's request) with a status: no size change.
		if r.Min.X != 1 || r.Min.Y == 0 {
			t.size = r.Size()
		}
		return t.copyN(16 * int64(t.hdr[0]))
	default:
		return fmt.Errorf("%w: an encoding the relay does not know", errProtocol)
	}
}

// tight copies a Tight rectangle: its lengths are in the clear, so no
// zlib stream needs decoding.
func (t *relayUpdates) tight(r image.Rectangle) error {
	if err := t.read(t.hdr[:1], "tight compression-control"); err != nil {
		return err
	}
	ctl := t.hdr[0]
	pix := int64(tightPixelSize(&t.pf))
	switch kind := ctl >> 4; {
	case kind == tightCtlFill>>4:
		return t.copyN(pix)
	case kind == tightCtlJPEG>>4:
		n, err := t.compact()
		if err != nil {
			return err
		}
		return t.copyN(n)
	case kind&0x8 != 0:
		return fmt.Errorf("%w: tight: unknown compression type %#x", errProtocol, kind)
	}
	filter := byte(tightFilterCopy)
	if ctl&tightCtlExplicitFilter != 0 {
		if err := t.read(t.hdr[:1], "tight filter-id"); err != nil {
			return err
		}
		filter = t.hdr[0]
	}
	rowSize := int64(r.Dx()) * pix
	switch filter {
	case tightFilterCopy, tightFilterGradient:
	case tightFilterPalette:
		if err := t.read(t.hdr[:1], "tight palette size"); err != nil {
			return err
		}
		colours := int64(t.hdr[0]) + 1
		if err := t.copyN(colours * pix); err != nil {
			return err
		}
		rowSize = int64(r.Dx())
		if colours <= 2 {
			rowSize = (int64(r.Dx()) + 7) / 8
		}
	default:
		return fmt.Errorf("%w: tight: unknown filter %d", errProtocol, filter)
	}
	size := rowSize * int64(r.Dy())
	if size < tightMinToCompress {
		return t.copyN(size)
	}
	n, err := t.compact()
	if err != nil {
		return err
	}
	return t.copyN(n)
}

// compact reads and copies a Tight compact length.
func (t *relayUpdates) compact() (int64, error) {
	var n int64
	for i := 0; i < 3; i++ {
		if err := t.read(t.hdr[:1], "tight length"); err != nil {
			return 0, err
		}
		b := t.hdr[0]
		if i == 2 {
			return n | int64(b)<<14, nil
		}
		n |= int64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			break
		}
	}
	return n, nil
}

// passScaledRect copies an EncAssistScaled rectangle, its header h
// already read, to the viewer as it is, once its lengths are checked as
// private's decoding would check them: what the viewer gets is framed
// as it expects, whatever the server sent.
func (t *relayUpdates) passScaledRect(h [12]byte, r image.Rectangle) error {
	if err := t.privateArea(r); err != nil {
		return err
	}
	sw, sh, err := t.dec.readPayload(t.br, r)
	if err != nil {
		return err
	}
	// The picture must be the size its header says: a page's browser
	// decodes whatever size the JFIF stream declares before scaling it
	// to the area.
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(t.dec.jpeg))
	if err != nil {
		return fmt.Errorf("rfb: scaled picture: %w", err)
	}
	if cfg.Width != sw || cfg.Height != sh {
		return fmt.Errorf("rfb: scaled picture is %dx%d, its header says %dx%d", cfg.Width, cfg.Height, sw, sh)
	}
	for _, b := range [][]byte{h[:], t.dec.hdr[:], t.dec.jpeg} {
		if err := t.write(b); err != nil {
			return err
		}
	}
	t.passed.Add(1)
	return nil
}

// privateArea checks that a private rectangle lies in the framebuffer
// and is no larger than a receiver accepts.
func (t *relayUpdates) privateArea(r image.Rectangle) error {
	if !r.In(image.Rectangle{Max: t.size}) || r.Empty() {
		return fmt.Errorf("%w: private rectangle outside the %dx%d framebuffer", errProtocol, t.size.X, t.size.Y)
	}
	if r.Dx()*r.Dy() > scaleMaxPixels {
		return fmt.Errorf("%w: private rectangle of %dx%d is over the limit of %d pixels", errProtocol, r.Dx(), r.Dy(), scaleMaxPixels)
	}
	return nil
}

// private turns a rectangle of a private encoding (EncAssistScaled,
// EncAssistLossless or EncAssistLosslessFSE) into a Raw one of the same
// area.
func (t *relayUpdates) private(r image.Rectangle, enc int32) error {
	if err := t.privateArea(r); err != nil {
		return err
	}
	full := image.Rectangle{Max: r.Size()}
	if t.big == nil || t.big.Rect.Dx() < r.Dx() || t.big.Rect.Dy() < r.Dy() {
		t.big = screen.NewImage(image.Rectangle{Max: image.Pt(max(r.Dx(), 64), max(r.Dy(), 64))})
	}
	if enc == EncAssistLossless || enc == EncAssistLosslessFSE {
		if err := t.lossless.decode(t.br, enc, r, t.big, full); err != nil {
			return err
		}
	} else {
		if err := t.dec.read(t.br, r); err != nil {
			return err
		}
		upscale(t.big, full, t.dec.small)
	}
	t.changed++
	t.rewritten.Add(1)
	t.out = appendRectHeader(t.out[:0], r, EncRaw)
	t.out = appendPixels(t.out, t.big, full, &t.pf)
	return t.write(t.out)
}
