package rfb

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"

	"github.com/assist-project/assist/screen"
)

// zrleMaxTrailing bounds the compressed bytes a rectangle may carry
// beyond what its tiles need. Real servers end each rectangle with a zlib
// sync flush, whose few bytes the inflater only reads when it next needs
// data; they are kept for the next rectangle. Anything much larger is
// malformed, and refusing it keeps a hostile length from being read.
const zrleMaxTrailing = 4 << 10

// zrleFeedSize is the read buffer for compressed data.
const zrleFeedSize = 16 << 10

// errZRLEShort means the inflater wanted more data than the rectangle
// declared.
var errZRLEShort = errors.New("compressed data ended before the rectangle's tiles")

// zrleDecoder is the client side of ZRLE for one connection. The zlib
// stream runs across rectangles, so after any error the decoder refuses
// every later rectangle: the connection has to be dropped.
type zrleDecoder struct {
	feed zrleFeeder
	br   *bufio.Reader // inflated data; nil until the zlib header is read
	err  error

	buf [zrleTileSize * zrleTileSize * 4]byte
	pal [zrleMaxPalette]uint32 // palette as native pixels (B | G<<8 | R<<16)
}

// newZRLEDecoder returns a decoder expecting a new zlib stream.
func newZRLEDecoder() rectDecoder { return &zrleDecoder{} }

// decode reads one ZRLE rectangle: a 4-byte length and that much zlib
// data, and draws its tiles into fb.
func (d *zrleDecoder) decode(r io.Reader, fb *screen.Image, rect image.Rectangle, pf *PixelFormat) error {
	if d.err != nil {
		return fmt.Errorf("rfb: zrle: stream unusable after an earlier error: %w", d.err)
	}
	if err := d.decodeRect(r, fb, rect, pf); err != nil {
		d.err = err
		return err
	}
	return nil
}

func (d *zrleDecoder) decodeRect(r io.Reader, fb *screen.Image, rect image.Rectangle, pf *PixelFormat) error {
	var hdr [4]byte
	if err := readFull(r, hdr[:], "zrle length"); err != nil {
		return err
	}
	d.feed.start(r, int64(binary.BigEndian.Uint32(hdr[:])))
	n := pf.compactSize()
	native := pf.isNative()
	for ty := rect.Min.Y; ty < rect.Max.Y; ty += zrleTileSize {
		for tx := rect.Min.X; tx < rect.Max.X; tx += zrleTileSize {
			t := image.Rect(tx, ty, min(tx+zrleTileSize, rect.Max.X), min(ty+zrleTileSize, rect.Max.Y))
			if err := d.tile(fb, t, pf, n, native); err != nil {
				return fmt.Errorf("rfb: zrle: tile at (%d,%d): %w", tx, ty, err)
			}
		}
	}
	if err := d.feed.finish(); err != nil {
		return fmt.Errorf("rfb: zrle: %w", err)
	}
	return nil
}

// inflated returns the reader of inflated data, starting the stream on
// first use: the zlib header is in the first rectangle's data.
func (d *zrleDecoder) inflated() (*bufio.Reader, error) {
	if d.br != nil {
		return d.br, nil
	}
	var h [2]byte
	if _, err := io.ReadFull(&d.feed, h[:]); err != nil {
		return nil, fmt.Errorf("zlib header: %w", err)
	}
	if h[0]&0x0f != 8 || h[0]>>4 > 7 || (uint(h[0])<<8|uint(h[1]))%31 != 0 || h[1]&0x20 != 0 {
		return nil, fmt.Errorf("bad zlib header %#02x %#02x", h[0], h[1])
	}
	d.br = bufio.NewReaderSize(flate.NewReader(&d.feed), zrleFeedSize)
	return d.br, nil
}

// tile decodes one tile into area t of fb.
func (d *zrleDecoder) tile(fb *screen.Image, t image.Rectangle, pf *PixelFormat, n int, native bool) error {
	br, err := d.inflated()
	if err != nil {
		return err
	}
	sub, err := br.ReadByte()
	if err != nil {
		return fmt.Errorf("sub-encoding: %w", err)
	}
	w, h := t.Dx(), t.Dy()
	tw := tileWriter{fb: fb, t: t}
	switch {
	case sub == zrleRaw:
		px := d.buf[:w*h*n]
		if _, err := io.ReadFull(br, px); err != nil {
			return fmt.Errorf("raw pixels: %w", err)
		}
		putPixels(fb, t, px, pf, n)
	case sub == zrleSolid:
		if err := d.readPalette(br, 1, pf, n, native); err != nil {
			return err
		}
		tw.fill(d.pal[0], w*h)
	case sub <= zrleMaxPackedPalette:
		return d.packed(br, &tw, int(sub), pf, n, native)
	case sub == zrlePlainRLE:
		return d.plainRLE(br, &tw, pf, n, native)
	case sub >= zrlePaletteRLE+2:
		return d.paletteRLE(br, &tw, int(sub)-zrlePaletteRLE, pf, n, native)
	default:
		return fmt.Errorf("sub-encoding %d is not defined", sub)
	}
	return nil
}

// readPalette reads size CPIXELs into d.pal.
func (d *zrleDecoder) readPalette(br *bufio.Reader, size int, pf *PixelFormat, n int, native bool) error {
	b := d.buf[:size*n]
	if _, err := io.ReadFull(br, b); err != nil {
		return fmt.Errorf("palette: %w", err)
	}
	for i := range size {
		d.pal[i] = wireToNative(pf, b[i*n:], n, native)
	}
	return nil
}

// packed decodes a packed palette tile.
func (d *zrleDecoder) packed(br *bufio.Reader, tw *tileWriter, size int, pf *PixelFormat, n int, native bool) error {
	if err := d.readPalette(br, size, pf, n, native); err != nil {
		return err
	}
	w, h := tw.t.Dx(), tw.t.Dy()
	bits := packedBits(size)
	rowBytes := (w*bits + 7) / 8
	b := d.buf[:h*rowBytes]
	if _, err := io.ReadFull(br, b); err != nil {
		return fmt.Errorf("packed pixels: %w", err)
	}
	mask := byte(1)<<bits - 1
	for y := range h {
		row := b[y*rowBytes:]
		for x := range w {
			bit := x * bits
			i := row[bit/8] >> (8 - bits - bit%8) & mask
			if int(i) >= size {
				return fmt.Errorf("palette index %d of a %d-colour palette", i, size)
			}
			tw.fill(d.pal[i], 1)
		}
	}
	return nil
}

// plainRLE decodes a plain RLE tile.
func (d *zrleDecoder) plainRLE(br *bufio.Reader, tw *tileWriter, pf *PixelFormat, n int, native bool) error {
	left := tw.t.Dx() * tw.t.Dy()
	var px [4]byte
	for left > 0 {
		if _, err := io.ReadFull(br, px[:n]); err != nil {
			return fmt.Errorf("run colour: %w", err)
		}
		run, err := readRunLength(br, left)
		if err != nil {
			return err
		}
		tw.fill(wireToNative(pf, px[:], n, native), run)
		left -= run
	}
	return nil
}

// paletteRLE decodes a palette RLE tile.
func (d *zrleDecoder) paletteRLE(br *bufio.Reader, tw *tileWriter, size int, pf *PixelFormat, n int, native bool) error {
	if err := d.readPalette(br, size, pf, n, native); err != nil {
		return err
	}
	left := tw.t.Dx() * tw.t.Dy()
	for left > 0 {
		b, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("run index: %w", err)
		}
		i := int(b & 127)
		if i >= size {
			return fmt.Errorf("palette index %d of a %d-colour palette", i, size)
		}
		run := 1
		if b&128 != 0 {
			if run, err = readRunLength(br, left); err != nil {
				return err
			}
		}
		tw.fill(d.pal[i], run)
		left -= run
	}
	return nil
}

// readRunLength reads a run length (255s, then a byte below 255, plus
// one) that must not exceed max pixels.
func readRunLength(br *bufio.Reader, max int) (int, error) {
	run := 1
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("run length: %w", err)
		}
		run += int(b)
		if run > max {
			return 0, fmt.Errorf("run of at least %d pixels with %d left in the tile", run, max)
		}
		if b != 255 {
			return run, nil
		}
	}
}

// wireToNative converts an n-byte pixel (full or compact) to a native
// pixel value, B | G<<8 | R<<16.
func wireToNative(pf *PixelFormat, b []byte, n int, native bool) uint32 {
	if native {
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	}
	r, g, bl := pf.rgb(pf.readValue(b, n))
	return uint32(bl) | uint32(g)<<8 | uint32(r)<<16
}

// tileWriter fills a tile of fb pixel by pixel in raster order.
type tileWriter struct {
	fb   *screen.Image
	t    image.Rectangle
	x, y int // next pixel, relative to t.Min
}

// fill writes run pixels of colour c; the caller keeps run within the
// tile.
func (tw *tileWriter) fill(c uint32, run int) {
	w := tw.t.Dx()
	for run > 0 {
		k := min(run, w-tw.x)
		i := tw.fb.PixOffset(tw.t.Min.X+tw.x, tw.t.Min.Y+tw.y)
		row := tw.fb.Pix[i : i+4*k]
		for j := 0; j < len(row); j += 4 {
			binary.LittleEndian.PutUint32(row[j:], c)
		}
		tw.x += k
		run -= k
		if tw.x == w {
			tw.x = 0
			tw.y++
		}
	}
}

// zrleFeeder hands the inflater the compressed bytes of successive
// rectangles as one stream. It is a byte reader, so the inflater reads
// exactly what it decodes and never past the current rectangle.
type zrleFeeder struct {
	src    io.Reader
	remain int64  // bytes of the current rectangle still unread on src
	buf    []byte // buf[r:w] was read from src but not yet inflated
	r, w   int
}

// start makes the next n bytes of src available.
func (f *zrleFeeder) start(src io.Reader, n int64) {
	f.src, f.remain = src, n
}

// fill reads more of the current rectangle; buf must be empty.
func (f *zrleFeeder) fill() error {
	if f.remain == 0 {
		return errZRLEShort
	}
	if f.buf == nil {
		f.buf = make([]byte, zrleFeedSize)
	}
	f.r, f.w = 0, 0
	m := int(min(int64(len(f.buf)), f.remain))
	k, err := io.ReadAtLeast(f.src, f.buf[:m], 1)
	f.w = k
	f.remain -= int64(k)
	if k == 0 {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read zrle data: %w", err)
	}
	return nil
}

func (f *zrleFeeder) ReadByte() (byte, error) {
	if f.r == f.w {
		if err := f.fill(); err != nil {
			return 0, err
		}
	}
	b := f.buf[f.r]
	f.r++
	return b, nil
}

func (f *zrleFeeder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if f.r == f.w {
		if err := f.fill(); err != nil {
			return 0, err
		}
	}
	k := copy(p, f.buf[f.r:f.w])
	f.r += k
	return k, nil
}

// finish reads the rest of the current rectangle from src and keeps it,
// with what is still buffered, for the next one.
func (f *zrleFeeder) finish() error {
	left := int64(f.w-f.r) + f.remain
	if left > zrleMaxTrailing {
		return fmt.Errorf("%d bytes of compressed data beyond the rectangle's tiles", left)
	}
	if f.remain > 0 {
		if f.buf == nil {
			f.buf = make([]byte, zrleFeedSize)
		}
		k := copy(f.buf, f.buf[f.r:f.w])
		f.r, f.w = 0, k
		if _, err := io.ReadFull(f.src, f.buf[k:k+int(f.remain)]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read zrle data: %w", err)
		}
		f.w += int(f.remain)
		f.remain = 0
	}
	f.src = nil
	return nil
}
