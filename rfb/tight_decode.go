package rfb

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"image"
	"io"

	"github.com/assist-project/assist/screen"
)

// Tight decoding, client side. Everything read is untrusted: sizes come
// from the rectangle, never from the data, and the pixel data is decoded
// a batch of rows at a time so memory stays bounded whatever the
// rectangle claims.

const (
	// tightBatch is how many bytes of filtered pixel data are decoded at
	// once (at least one row).
	tightBatch = 64 << 10
	// tightMaxLeftover is the most compressed data a rectangle may leave
	// unread in its zlib stream: an encoder's flush marker is a few
	// bytes, so more means a broken or hostile peer.
	tightMaxLeftover = 1 << 10
)

type tightDecoder struct {
	streams [4]tightInflater
	small   [tightMinToCompress]byte
	jpeg    []byte
	data    []byte // a batch of filtered pixel data
	pal     [256][4]byte
	// Gradient filter state: the previous and current row's components.
	prev, cur [3 * tightMaxWidth]uint16
}

// tightInflater is the client end of one zlib stream. The compressed
// bytes of each rectangle are appended to feed; the zlib reader consumes
// them and keeps its state (window, position) from rectangle to
// rectangle.
type tightInflater struct {
	feed    tightFeed
	zr      io.ReadCloser
	started bool
	broken  error
}

// tightFeed is a byte queue that the zlib reader reads from. It reports
// io.EOF when empty, which only happens when a rectangle's compressed
// data does not hold the pixels its size needs.
type tightFeed struct {
	b   []byte
	off int
}

func (f *tightFeed) Read(p []byte) (int, error) {
	if f.off >= len(f.b) {
		return 0, io.EOF
	}
	n := copy(p, f.b[f.off:])
	f.off += n
	return n, nil
}

// ReadByte makes tightFeed a flate.Reader, so zlib reads it directly,
// without a bufio.Reader that would read ahead into the next rectangle.
func (f *tightFeed) ReadByte() (byte, error) {
	if f.off >= len(f.b) {
		return 0, io.EOF
	}
	c := f.b[f.off]
	f.off++
	return c, nil
}

// add appends n bytes from r, after dropping what was consumed.
func (f *tightFeed) add(r io.Reader, n int) error {
	left := copy(f.b, f.b[f.off:])
	f.b, f.off = f.b[:left], 0
	var err error
	f.b, err = appendRead(r, f.b, n, "tight zlib data")
	return err
}

// reset starts the stream anew, as the reset bits of a rectangle ask.
func (s *tightInflater) reset() {
	s.feed.b, s.feed.off = s.feed.b[:0], 0
	s.started, s.broken = false, nil
}

// reader returns the decompressor, starting it (reading the zlib header)
// on the first rectangle after a reset.
func (s *tightInflater) reader() (io.Reader, error) {
	if s.broken != nil {
		return nil, s.broken
	}
	if !s.started {
		var err error
		if s.zr == nil {
			s.zr, err = zlib.NewReader(&s.feed)
		} else {
			err = s.zr.(zlib.Resetter).Reset(&s.feed, nil)
		}
		if err != nil {
			s.broken = fmt.Errorf("zlib header: %w", err)
			return nil, s.broken
		}
		s.started = true
	}
	return s.zr, nil
}

// newTightDecoder returns a Tight decoder for one connection.
func newTightDecoder() rectDecoder { return &tightDecoder{} }

// decode implements rectDecoder.
func (d *tightDecoder) decode(r io.Reader, fb *screen.Image, rect image.Rectangle, pf *PixelFormat) error {
	switch pf.BPP {
	case 8, 16, 32:
	default:
		return fmt.Errorf("rfb: tight: %d bits per pixel", pf.BPP)
	}
	if !rect.In(fb.Rect) && !rect.Empty() {
		return fmt.Errorf("rfb: tight: rectangle %v outside the framebuffer %v", rect, fb.Rect)
	}
	var ctl [1]byte
	if err := readFull(r, ctl[:], "tight compression-control"); err != nil {
		return err
	}
	for i := range d.streams {
		if ctl[0]&(1<<i) != 0 {
			d.streams[i].reset()
		}
	}
	switch kind := ctl[0] >> 4; {
	case kind == tightCtlFill>>4:
		return d.fill(r, fb, rect, pf)
	case rect.Dx() > tightMaxWidth:
		return fmt.Errorf("rfb: tight: rectangle %d pixels wide, the limit is %d", rect.Dx(), tightMaxWidth)
	case kind == tightCtlJPEG>>4:
		return d.decodeJPEG(r, fb, rect, pf)
	case kind&0x8 == 0:
		return d.basic(r, fb, rect, pf, ctl[0])
	default:
		return fmt.Errorf("rfb: tight: unknown compression type %#x", ctl[0]>>4)
	}
}

// readPixel reads one TPIXEL and returns it as B, G, R, X.
func (d *tightDecoder) readPixel(r io.Reader, pf *PixelFormat) ([4]byte, error) {
	var b [4]byte
	n := tightPixelSize(pf)
	if err := readFull(r, b[:n], "tight pixel"); err != nil {
		return b, err
	}
	return tightToBGRX(b[:n], pf), nil
}

// tightToBGRX converts one TPIXEL to B, G, R, X.
func tightToBGRX(p []byte, pf *PixelFormat) [4]byte {
	if len(p) == 3 {
		return [4]byte{p[2], p[1], p[0], 0}
	}
	r, g, b := pf.rgb(pf.readValue(p, len(p)))
	return [4]byte{b, g, r, 0}
}

func (d *tightDecoder) fill(r io.Reader, fb *screen.Image, rect image.Rectangle, pf *PixelFormat) error {
	c, err := d.readPixel(r, pf)
	if err != nil {
		return err
	}
	for y := rect.Min.Y; y < rect.Max.Y; y++ {
		i := fb.PixOffset(rect.Min.X, y)
		row := fb.Pix[i : i+4*rect.Dx()]
		for x := 0; x+3 < len(row); x += 4 {
			row[x], row[x+1], row[x+2], row[x+3] = c[0], c[1], c[2], c[3]
		}
	}
	return nil
}

// readCompact reads a compact length (1 to 3 bytes).
func tightReadCompact(r io.Reader) (int, error) {
	var b [1]byte
	n := 0
	for i := 0; i < 3; i++ {
		if err := readFull(r, b[:], "tight length"); err != nil {
			return 0, err
		}
		if i == 2 {
			return n | int(b[0])<<14, nil
		}
		n |= int(b[0]&0x7f) << (7 * i)
		if b[0]&0x80 == 0 {
			break
		}
	}
	return n, nil
}

func (d *tightDecoder) decodeJPEG(r io.Reader, fb *screen.Image, rect image.Rectangle, pf *PixelFormat) error {
	if pf.BPP == 8 {
		return errors.New("rfb: tight: jpeg rectangle at 8 bits per pixel")
	}
	n, err := tightReadCompact(r)
	if err != nil {
		return err
	}
	if d.jpeg, err = appendRead(r, d.jpeg[:0], n, "tight jpeg data"); err != nil {
		return err
	}
	if rect.Empty() {
		return nil
	}
	return jpegDraw(fb, rect, d.jpeg, pf)
}

// basic decodes a BasicCompression rectangle.
func (d *tightDecoder) basic(r io.Reader, fb *screen.Image, rect image.Rectangle, pf *PixelFormat, ctl byte) error {
	filter := byte(tightFilterCopy)
	if ctl&tightCtlExplicitFilter != 0 {
		var b [1]byte
		if err := readFull(r, b[:], "tight filter-id"); err != nil {
			return err
		}
		filter = b[0]
	}
	w, h := rect.Dx(), rect.Dy()
	pix := tightPixelSize(pf)
	rowSize := w * pix
	colours := 0
	switch filter {
	case tightFilterCopy:
	case tightFilterPalette:
		var b [1]byte
		if err := readFull(r, b[:], "tight palette size"); err != nil {
			return err
		}
		colours = int(b[0]) + 1
		var raw [256 * 4]byte
		if err := readFull(r, raw[:colours*pix], "tight palette"); err != nil {
			return err
		}
		for i := range colours {
			d.pal[i] = tightToBGRX(raw[i*pix:(i+1)*pix], pf)
		}
		// Indices beyond the palette (a broken peer) draw black.
		clear(d.pal[colours:])
		rowSize = w
		if colours <= 2 {
			// As TigerVNC, take a one-colour palette as a bitmap too.
			rowSize = (w + 7) / 8
		}
	case tightFilterGradient:
		if pf.BPP == 8 {
			return errors.New("rfb: tight: gradient filter at 8 bits per pixel")
		}
	default:
		return fmt.Errorf("rfb: tight: unknown filter %d", filter)
	}

	size := rowSize * h
	var src io.Reader
	var s *tightInflater
	if size < tightMinToCompress {
		if err := readFull(r, d.small[:size], "tight pixel data"); err != nil {
			return err
		}
		src = bytes.NewReader(d.small[:size])
	} else {
		n, err := tightReadCompact(r)
		if err != nil {
			return err
		}
		s = &d.streams[ctl>>4&3]
		if err := s.feed.add(r, n); err != nil {
			return err
		}
		if src, err = s.reader(); err != nil {
			return fmt.Errorf("rfb: tight: zlib stream %d: %w", ctl>>4&3, err)
		}
	}
	if size == 0 {
		return nil
	}

	if filter == tightFilterGradient {
		clear(d.prev[:3*w])
	}
	rows := max(1, tightBatch/rowSize)
	d.data = tightGrow(d.data, rows*rowSize)
	for y := 0; y < h; y += rows {
		n := min(rows, h-y)
		data := d.data[:n*rowSize]
		if _, err := io.ReadFull(src, data); err != nil {
			if s != nil {
				s.broken = fmt.Errorf("broken by an earlier rectangle: %w", err)
			}
			return fmt.Errorf("rfb: tight: pixel data: %w", err)
		}
		for j := 0; j < n; j++ {
			row := data[j*rowSize : (j+1)*rowSize]
			i := fb.PixOffset(rect.Min.X, rect.Min.Y+y+j)
			dst := fb.Pix[i : i+4*w]
			switch {
			case filter == tightFilterGradient:
				d.gradientRow(dst, row, pf)
			case colours > 2:
				for x, v := range row {
					copy(dst[4*x:4*x+4], d.pal[v][:])
				}
			case colours > 0:
				for x := 0; x < w; x++ {
					v := row[x>>3] >> (7 - x&7) & 1
					copy(dst[4*x:4*x+4], d.pal[v][:])
				}
			default:
				tightCopyRow(dst, row, pf)
			}
		}
	}
	if s != nil && len(s.feed.b)-s.feed.off > tightMaxLeftover {
		s.broken = errors.New("broken by an earlier rectangle with trailing data")
		return fmt.Errorf("rfb: tight: %d bytes of compressed data left after the rectangle's pixels", len(s.feed.b)-s.feed.off)
	}
	return nil
}

// tightCopyRow converts one row of TPIXELs to BGRX.
func tightCopyRow(dst, row []byte, pf *PixelFormat) {
	if tightIs888(pf) {
		for x, j := 0, 0; x+3 < len(dst) && j+2 < len(row); x, j = x+4, j+3 {
			dst[x], dst[x+1], dst[x+2], dst[x+3] = row[j+2], row[j+1], row[j], 0
		}
		return
	}
	n := pf.bytesPerPixel()
	for x, j := 0, 0; x+3 < len(dst) && j+n <= len(row); x, j = x+4, j+n {
		r, g, b := pf.rgb(pf.readValue(row[j:], n))
		dst[x], dst[x+1], dst[x+2], dst[x+3] = b, g, r, 0
	}
}

// gradientRow undoes the gradient filter for one row: each colour
// component was sent as its difference from the prediction
// left + above - above-left, clamped to the component's range, modulo
// that range. d.prev holds the row above (zero above the first row).
func (d *tightDecoder) gradientRow(dst, row []byte, pf *PixelFormat) {
	w := len(dst) / 4
	var lim [3]int32
	var shift [3]uint8
	is888 := tightIs888(pf)
	n := pf.bytesPerPixel()
	if is888 {
		lim = [3]int32{255, 255, 255}
	} else {
		lim = [3]int32{int32(pf.RedMax), int32(pf.GreenMax), int32(pf.BlueMax)}
		shift = [3]uint8{pf.RedShift, pf.GreenShift, pf.BlueShift}
	}
	var left, aboveLeft [3]int32
	for x := 0; x < w; x++ {
		var diff [3]int32
		if is888 {
			diff = [3]int32{int32(row[3*x]), int32(row[3*x+1]), int32(row[3*x+2])}
		} else {
			v := pf.readValue(row[n*x:], n)
			for c := range 3 {
				diff[c] = int32(v >> shift[c])
			}
		}
		var comp [3]uint32
		for c := range 3 {
			above := int32(d.prev[3*x+c])
			pred := max(0, min(lim[c], left[c]+above-aboveLeft[c]))
			v := (diff[c] + pred) & lim[c]
			d.cur[3*x+c] = uint16(v)
			comp[c] = uint32(v)
			left[c], aboveLeft[c] = v, above
		}
		if is888 {
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = byte(comp[2]), byte(comp[1]), byte(comp[0]), 0
		} else {
			dst[4*x] = scale8(comp[2], pf.BlueMax)
			dst[4*x+1] = scale8(comp[1], pf.GreenMax)
			dst[4*x+2] = scale8(comp[0], pf.RedMax)
			dst[4*x+3] = 0
		}
	}
	copy(d.prev[:3*w], d.cur[:3*w])
}
