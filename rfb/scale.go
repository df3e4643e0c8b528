package rfb

import (
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"time"

	"github.com/assist-project/assist/screen"
)

// Resolution adaptation.
//
// On a link too slow for a large area that keeps changing (a video, a
// full screen being redrawn), even JPEG at its lowest quality costs
// hundreds of milliseconds a frame. Halving the picture's resolution
// costs about a third of the bytes at the same quality, where lowering
// the quality further saves little (JPEG at low quality already drops
// the fine detail that a smaller picture drops). RFB has no scaled
// rectangle, so this is a private encoding, EncAssistScaled, offered only
// by a party that can undo it: `assist join`'s relay (Relay), which turns
// each such rectangle back into Raw for its local viewer, and this
// package's Client.
//
// The server uses it only for viewers that accept JPEG (a Tight viewer
// that asked for a quality level), only on a path slower than scaleBelow
// (at the JPEG level adapted to it, adapt.go), and only for large areas
// (not the small changes of priority.go) whose 64-pixel tiles have
// changed scaleChanges times within scaleWindow: text, a menu, a window
// that opened once never go scaled. A scaled area counts as lossy, so
// once it is still lossless refinement (refine.go) makes it exact.

// EncAssistScaled is the private encoding of a rectangle sent at a lower
// resolution. The rectangle header carries the full-size area; the
// payload is the picture's width and height (2 bytes each, at least 1 and
// at most the area's), a 4-byte length and that many bytes of a JFIF
// stream of that size. The receiver scales it up to the area.
const EncAssistScaled int32 = 0x41535343 // "ASSC"

// msgAssistPixelFormat is a private server message sent only to viewers
// that named EncAssistScaled (that is, to a relay), before the first
// update and whenever the pixel format of the updates changes: 3 bytes of
// padding and the 16-byte pixel format of the updates that follow. A
// relay that parses updates needs the format they were encoded in, and a
// viewer's SetPixelFormat may cross an update already on its way. The
// relay removes it.
const msgAssistPixelFormat = 0x41 // "A"

const (
	// scaleBelow: areas go scaled on paths slower than this (bytes per
	// second; the rate at which adapt.go's table lowers JPEG to level
	// 5). Not by the quality cap: on a faster path it falls for video
	// too (slices of a video that never stops add up to one "frame"),
	// and there halving the resolution was measured to cost more time
	// (the relay's decoding and scaling on a loaded machine) than it
	// saved on the wire: at 20 Mbit/s 40 ms, video display lag p95 went
	// from 46-115 to 114-131 ms.
	scaleBelow = 6 * mbit
	// A tile changes "often" when it changed in scaleChanges updates
	// within scaleWindow (bands held back and sent in a later update do
	// not count again: notHeldBack): a frame rate of a few a second is
	// all a slow link gives a large changing area.
	scaleTile    = 64
	scaleChanges = 4
	scaleWindow  = 2 * time.Second
	// scaleMaxPixels bounds the area of a scaled rectangle a receiver
	// accepts (it allocates the picture at full size).
	scaleMaxPixels = 1 << 24
)

// scaledMaxJPEG is the most bytes of JFIF a w×h picture may carry: far
// more than any real encoder makes, at most a few bytes a pixel.
func scaledMaxJPEG(w, h int) int { return 8*w*h + 64<<10 }

// scaleMotion records, per 64-pixel tile, when one viewer was last sent
// changes of it. Writer only.
type scaleMotion struct {
	size image.Point
	tileGrid
	hist [][scaleChanges]time.Time // ring per tile, at pos
	pos  []uint8
}

func newScaleMotion(size image.Point) *scaleMotion {
	g := newTileGrid(size, scaleTile)
	n := g.cols * g.rows
	return &scaleMotion{size: size, tileGrid: g, hist: make([][scaleChanges]time.Time, n), pos: make([]uint8, n)}
}

// record notes that the areas in dirty changed at now.
func (m *scaleMotion) record(dirty []image.Rectangle, now time.Time) {
	for _, r := range dirty {
		m.tiles(r, func(i int) {
			if m.hist[i][(int(m.pos[i])+scaleChanges-1)%scaleChanges] == now {
				return // two areas of one update
			}
			m.hist[i][m.pos[i]] = now
			m.pos[i] = uint8((int(m.pos[i]) + 1) % scaleChanges)
		})
	}
}

// moving reports whether at least half the tiles under r changed often.
func (m *scaleMotion) moving(r image.Rectangle, now time.Time) bool {
	n, k := 0, 0
	m.tiles(r, func(i int) {
		n++
		oldest := m.hist[i][m.pos[i]]
		if !oldest.IsZero() && now.Sub(oldest) <= scaleWindow {
			k++
		}
	})
	return n > 0 && 2*k >= n
}

// scaleBands is how many bands (priority.go) of a large area may go as
// one scaled picture: at a quarter of the pixels, four bands cost about
// what one costs at full size, and share one picture's headers (about
// 600 bytes of tables each, more than a 16-row picture's data at low
// quality).
const scaleBands = 4

// scaleJoins reports whether band b, the piece after a, may join it in
// one scaled picture: right below it, as wide, and the two within
// scaleBands bands.
func scaleJoins(a, b image.Rectangle) bool {
	return b.Min.Y == a.Max.Y && b.Min.X == a.Min.X && b.Max.X == a.Max.X && b.Max.Y-a.Min.Y <= scaleBands*bandRows
}

// scaleLevel is the JPEG level at which large changing areas go scaled
// to this viewer in the update being built, or -1 for none. It must be
// called after encoder, which sets the level adapted to the link.
func (c *conn) scaleLevel(enc *encodingPrefs, pf *PixelFormat) int {
	if !enc.scaled || enc.preferred != EncTight || enc.quality < 0 || pf.BPP == 8 || c.tight == nil {
		return -1
	}
	if est, ok := c.estimate(); !ok || !est.Measured || est.Rate <= 0 || est.Rate >= scaleBelow {
		return -1
	}
	return c.tight.quality
}

// scaleRecord notes the areas this update changed (not those held back)
// for the viewer's motion record.
func (c *conn) scaleRecord(enc *encodingPrefs, dirty []image.Rectangle, now time.Time) {
	if !enc.scaled || enc.quality < 0 {
		c.motion = nil
		return
	}
	if c.motion == nil || c.motion.size != c.size {
		c.motion = newScaleMotion(c.size)
	}
	c.motion.record(notHeldBack(dirty, c.heldBack), now)
}

// appendScaled appends area r of c.scratch as a half-size JFIF picture at
// Tight JPEG level level, and records it as lossy with the Tight
// encoder. If the picture cannot be made it falls back to e.
func (c *conn) appendScaled(buf []byte, r image.Rectangle, level int, e rectEncoder, pf *PixelFormat) ([]byte, int) {
	sw, sh := (r.Dx()+1)/2, (r.Dy()+1)/2
	if c.scaleSmall == nil || c.scaleSmall.Rect.Dx() < sw || c.scaleSmall.Rect.Dy() < sh {
		c.scaleSmall = screen.NewImage(image.Rect(0, 0, max(sw, 640), max(sh, 32)))
	}
	small := image.Rect(0, 0, sw, sh)
	downscale2(c.scaleSmall, c.scratch, r)
	if c.scaleJPEG == nil {
		c.scaleJPEG = newJPEGCompressor()
	}
	conf := tightJPEGLevels[level]
	start := len(buf)
	buf = appendRectHeader(buf, r, EncAssistScaled)
	buf = binary.BigEndian.AppendUint16(buf, uint16(sw))
	buf = binary.BigEndian.AppendUint16(buf, uint16(sh))
	buf = append(buf, 0, 0, 0, 0)
	out, err := c.scaleJPEG.appendJPEG(buf, c.scaleSmall, small, conf.quality, conf.sub)
	if err != nil {
		c.log.Debug("scaled picture not made: sending it at full size", "err", err)
		return e.encode(buf[:start], c.scratch, r, pf)
	}
	binary.BigEndian.PutUint32(out[start+16:], uint32(len(out)-start-20))
	c.tight.lossy = append(c.tight.lossy, r)
	c.stats.scaled++
	return out, 1
}

// downscale2 writes area r of src at half its size (rounded up) to the
// top left of dst, each pixel the mean of the (up to) 2x2 it covers.
func downscale2(dst, src *screen.Image, r image.Rectangle) {
	sw, sh := (r.Dx()+1)/2, (r.Dy()+1)/2
	for y := 0; y < sh; y++ {
		y0 := r.Min.Y + 2*y
		y1 := min(y0+1, r.Max.Y-1)
		row0 := src.Pix[src.PixOffset(r.Min.X, y0):]
		row1 := src.Pix[src.PixOffset(r.Min.X, y1):]
		out := dst.Pix[dst.PixOffset(0, y):][:4*sw]
		for x := 0; x < sw; x++ {
			a := 8 * x
			b := min(a+4, 4*(r.Dx()-1))
			for k := 0; k < 3; k++ {
				s := int(row0[a+k]) + int(row0[b+k]) + int(row1[a+k]) + int(row1[b+k])
				out[4*x+k] = byte((s + 2) >> 2)
			}
			out[4*x+3] = 0
		}
	}
}

// upscale draws src (its whole Rect) scaled to the size of area dr of dst,
// bilinearly, sample centres aligned. Each source row is interpolated
// across once and shared by the output rows that need it.
func upscale(dst *screen.Image, dr image.Rectangle, src *screen.Image) {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	w, h := dr.Dx(), dr.Dy()
	if w <= 0 || h <= 0 || sw <= 0 || sh <= 0 {
		return
	}
	// Per output column: the offsets of the left and right source
	// pixels, the weight of the right one (0..256); per output row the
	// same.
	type tap struct{ i0, i1, w int }
	taps := func(n, sn int) []tap {
		t := make([]tap, n)
		for d := range t {
			// Source coordinate of the centre of d, in 1/256 pixels.
			f := ((2*d+1)*sn*256)/(2*n) - 128
			f = max(0, min(f, (sn-1)*256))
			i0 := f >> 8
			t[d] = tap{4 * i0, 4 * min(i0+1, sn-1), f & 0xff}
		}
		return t
	}
	xs, ys := taps(w, sw), taps(h, sh)
	// across fills row (3 values a pixel, times 256) from source row sy.
	across := func(row []int32, sy int) {
		s := src.Pix[src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y+sy):][:4*sw]
		for x, tx := range xs {
			a, b := s[tx.i0:tx.i0+3], s[tx.i1:tx.i1+3]
			w1 := int32(tx.w)
			w0 := 256 - w1
			o := row[3*x : 3*x+3]
			o[0] = int32(a[0])*w0 + int32(b[0])*w1
			o[1] = int32(a[1])*w0 + int32(b[1])*w1
			o[2] = int32(a[2])*w0 + int32(b[2])*w1
		}
	}
	rows := [2][]int32{make([]int32, 3*w), make([]int32, 3*w)}
	have := [2]int{-1, -1} // the source row in each
	get := func(sy, keep int) []int32 {
		for k := range have {
			if have[k] == sy {
				return rows[k]
			}
		}
		k := 0
		if have[0] == keep {
			k = 1
		}
		across(rows[k], sy)
		have[k] = sy
		return rows[k]
	}
	for y, ty := range ys {
		wy1 := int32(ty.w)
		wy0 := 256 - wy1
		top := get(ty.i0/4, -1)
		bot := get(ty.i1/4, ty.i0/4)
		out := dst.Pix[dst.PixOffset(dr.Min.X, dr.Min.Y+y):][:4*w]
		for x := 0; x < w; x++ {
			t, b, o := top[3*x:3*x+3], bot[3*x:3*x+3], out[4*x:4*x+4]
			o[0] = byte((t[0]*wy0 + b[0]*wy1 + 1<<15) >> 16)
			o[1] = byte((t[1]*wy0 + b[1]*wy1 + 1<<15) >> 16)
			o[2] = byte((t[2]*wy0 + b[2]*wy1 + 1<<15) >> 16)
			o[3] = 0
		}
	}
}

// scaledDecoder reads EncAssistScaled rectangles, for one connection.
// Everything it reads is untrusted: the picture's size is checked against
// the rectangle before anything is allocated for it, and the JFIF stream
// is read in steps.
type scaledDecoder struct {
	hdr   [8]byte
	jpeg  []byte
	small *screen.Image
}

// decode reads the payload of a scaled rectangle for area rect and draws
// the picture, scaled up, into area dr of dst (dr has rect's size).
func (d *scaledDecoder) decode(r io.Reader, rect image.Rectangle, dst *screen.Image, dr image.Rectangle) error {
	if !dr.In(dst.Rect) || dr.Size() != rect.Size() {
		return fmt.Errorf("rfb: scaled rectangle %v is outside the framebuffer %v", rect, dst.Rect)
	}
	if err := d.read(r, rect); err != nil {
		return err
	}
	upscale(dst, dr, d.small)
	return nil
}

// read reads the payload of a scaled rectangle for area rect and decodes
// its picture into d.small, allocating nothing of the area's size.
func (d *scaledDecoder) read(r io.Reader, rect image.Rectangle) error {
	sw, sh, err := d.readPayload(r, rect)
	if err != nil {
		return err
	}
	if d.small == nil || d.small.Rect.Dx() != sw || d.small.Rect.Dy() != sh {
		d.small = screen.NewImage(image.Rect(0, 0, sw, sh))
	}
	if err := jpegDecode(d.small, d.small.Rect, d.jpeg); err != nil {
		return fmt.Errorf("rfb: scaled picture: %w", err)
	}
	return nil
}

// readPayload reads the payload of a scaled rectangle for area rect into
// d.hdr (its 8 bytes of sizes) and d.jpeg (the JFIF stream), checking the
// sizes before it reads the stream, and returns the picture's size.
func (d *scaledDecoder) readPayload(r io.Reader, rect image.Rectangle) (sw, sh int, err error) {
	if err := readFull(r, d.hdr[:], "scaled rectangle header"); err != nil {
		return 0, 0, err
	}
	sw, sh = int(binary.BigEndian.Uint16(d.hdr[0:])), int(binary.BigEndian.Uint16(d.hdr[2:]))
	n := int(binary.BigEndian.Uint32(d.hdr[4:]))
	w, h := rect.Dx(), rect.Dy()
	switch {
	case w*h > scaleMaxPixels:
		return 0, 0, fmt.Errorf("rfb: scaled rectangle of %dx%d is over the limit of %d pixels", w, h, scaleMaxPixels)
	case sw < 1 || sh < 1 || sw > w || sh > h:
		return 0, 0, fmt.Errorf("rfb: scaled picture of %dx%d does not fit its %dx%d rectangle", sw, sh, w, h)
	case n > scaledMaxJPEG(sw, sh):
		return 0, 0, fmt.Errorf("rfb: scaled picture of %dx%d claims %d bytes", sw, sh, n)
	}
	if d.jpeg, err = appendRead(r, d.jpeg[:0], n, "scaled picture"); err != nil {
		return 0, 0, err
	}
	return sw, sh, nil
}

// appendAssistPixelFormat appends the msgAssistPixelFormat message.
func appendAssistPixelFormat(buf []byte, pf *PixelFormat) []byte {
	buf = append(buf, msgAssistPixelFormat, 0, 0, 0)
	var b [16]byte
	pf.marshal(b[:])
	return append(buf, b[:]...)
}
