package rfb

import (
	"encoding/binary"
	"image"
	"runtime"
	"sync"

	"github.com/assist-project/assist/screen"
	"github.com/klauspost/compress/zlib"
)

// Tight encoding (encoding 7), server side, as TigerVNC and TightVNC speak
// it: each rectangle is a solid fill, a JPEG picture, or pixels passed
// through a filter (copy, palette) and one of four zlib streams that live
// as long as the connection.

// Wire constants of the Tight encoding.
const (
	tightCtlFill           = 0x80 // compression-control: FillCompression
	tightCtlJPEG           = 0x90 // compression-control: JpegCompression
	tightCtlExplicitFilter = 0x40 // compression-control: a filter-id follows
	tightFilterCopy        = 0
	tightFilterPalette     = 1
	tightFilterGradient    = 2
	// Data shorter than this is sent without zlib (fixed by the protocol).
	tightMinToCompress = 12
	// No Tight rectangle may be wider than this (fixed by the protocol).
	tightMaxWidth = 2048
	// Largest value a compact length can carry (22 bits).
	tightMaxCompact = 1<<22 - 1
)

// Encoder tuning, from TigerVNC's EncodeManager.
const (
	// A zlib rectangle covers at most this many pixels, so a decoder's
	// buffers stay small and the palette analysis stays local.
	tightMaxArea = 65536
	// JPEG rectangles may be larger (one picture compresses better than
	// many), but stay well below what a compact length can carry.
	tightJPEGMaxArea = 1 << 20
	// Solid areas are searched for in blocks of this side...
	tightSolidBlock = 16
	// ...and sent on their own only when they cover this many pixels.
	tightSolidMinArea = 2048
)

// zlib streams, assigned as TigerVNC does.
const (
	tightStreamFull    = 0 // full-colour pixels
	tightStreamMono    = 1 // two-colour bitmaps
	tightStreamIndexed = 2 // palette indices
	tightStreamGrad    = 3 // full-colour pixels through the gradient filter
)

// tightZlibLevels maps the client's compression level 0..9 to the zlib
// level of the full-colour, mono and indexed streams: TigerVNC's table
// (tuned by the VirtualGL project), capped at 7 because Go's deflate
// implementations are pathologically slow at 8 and 9 on the repetitive
// data of screen content (hundreds of milliseconds per 64K pixels).
var tightZlibLevels = [10][3]int{
	{0, 0, 0}, {1, 1, 1}, {2, 3, 3}, {2, 5, 5}, {3, 7, 6},
	{4, 7, 7}, {5, 7, 7}, {6, 7, 7}, {7, 7, 7}, {7, 7, 7},
}

// tightEncoder encodes rectangles for one connection. It is not safe for
// concurrent use. The connection that owns it must call close when it is
// done, to free the JPEG compressor (a cleanup frees it too, later, if
// close is forgotten).
type tightEncoder struct {
	level   int // compression level 0..9
	quality int // JPEG quality level 0..9, -1 for lossless only

	streams [4]tightStream
	sink    tightSink
	jpeg    []jpegCompressor // one per strip compressed in parallel
	jpegOut [][]byte         // each strip's JFIF stream
	jpegErr []error

	pal  tightPalette
	idx  []byte // palette index of each pixel of the area being encoded
	data []byte // filtered pixel data, before zlib
	hdr  []byte // filter-id and palette
	n    int    // rectangles appended by the current encode call
	// lossy collects the areas sent as JPEG, for lossless refinement
	// (refine.go); its reader empties it.
	lossy []image.Rectangle
	// gradient sends full-colour areas through the gradient filter
	// (refine.go sets it for refinement, see tightGradient).
	gradient bool
}

// tightStream is one of the four zlib streams.
type tightStream struct {
	w     *zlib.Writer
	level int
}

// tightSink collects zlib output straight into the output buffer.
type tightSink struct{ b []byte }

func (s *tightSink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// newTightEncoder returns an encoder at compression level 2 (TigerVNC's
// default) with JPEG off until setQuality says otherwise.
func newTightEncoder() *tightEncoder {
	return &tightEncoder{level: 2, quality: -1}
}

// setCompression sets the compression level 0..9; out-of-range values
// select the default, 2.
func (e *tightEncoder) setCompression(level int) {
	if level < 0 || level > 9 {
		level = 2
	}
	e.level = level
}

// setQuality sets the JPEG quality level 0..9, or -1 (or anything out of
// range) to send lossless rectangles only.
func (e *tightEncoder) setQuality(q int) {
	if q < 0 || q > 9 {
		q = -1
	}
	e.quality = q
}

// close frees the JPEG compressor. The encoder stays usable: a later
// JPEG rectangle makes a new compressor.
func (e *tightEncoder) close() {
	for _, c := range e.jpeg {
		c.close()
	}
	e.jpeg = nil
}

// encode implements rectEncoder.
func (e *tightEncoder) encode(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat) ([]byte, int) {
	r = r.Intersect(img.Rect)
	if r.Empty() {
		return buf, 0
	}
	e.n = 0
	if r.Dx()*r.Dy() >= 2*tightSolidMinArea {
		buf = e.encodeSearch(buf, img, r, pf)
	} else {
		buf = e.encodePlain(buf, img, r, pf)
	}
	return buf, e.n
}

// encodeSearch sends the large solid areas of r as fills and the rest
// with encodePlain. Desktops are mostly flat backgrounds, and a fill is
// 16 bytes whatever its size.
func (e *tightEncoder) encodeSearch(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat) []byte {
	for dy := r.Min.Y; dy < r.Max.Y; dy += tightSolidBlock {
		dh := min(tightSolidBlock, r.Max.Y-dy)
		for dx := r.Min.X; dx < r.Max.X; dx += tightSolidBlock {
			dw := min(tightSolidBlock, r.Max.X-dx)
			c := tightPixelAt(img, dx, dy)
			if !tightSolid(img, image.Rect(dx, dy, dx+dw, dy+dh), c) {
				continue
			}
			area := tightExtendByBlock(img, image.Rect(dx, dy, r.Max.X, r.Max.Y), c)
			if area != r {
				if area.Dx()*area.Dy() < tightSolidMinArea {
					continue
				}
				area = tightExtendByPixel(img, r, area, c)
			}
			buf = e.appendFill(buf, area, c, pf)
			// Rows above the area were searched already; the sides and
			// the rows below may hold more solid areas.
			if area.Min.Y > r.Min.Y {
				buf = e.encodePlain(buf, img, image.Rect(r.Min.X, r.Min.Y, r.Max.X, area.Min.Y), pf)
			}
			if area.Min.X > r.Min.X {
				buf = e.encodeSearch(buf, img, image.Rect(r.Min.X, area.Min.Y, area.Min.X, area.Max.Y), pf)
			}
			if area.Max.X < r.Max.X {
				buf = e.encodeSearch(buf, img, image.Rect(area.Max.X, area.Min.Y, r.Max.X, area.Max.Y), pf)
			}
			if area.Max.Y < r.Max.Y {
				buf = e.encodeSearch(buf, img, image.Rect(r.Min.X, area.Max.Y, r.Max.X, r.Max.Y), pf)
			}
			return buf
		}
	}
	return e.encodePlain(buf, img, r, pf)
}

// tightPixelAt returns the colour of pixel (x, y) as 0xRRGGBB.
func tightPixelAt(img *screen.Image, x, y int) uint32 {
	p := img.Pix[img.PixOffset(x, y):]
	return uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16
}

// tightSolid reports whether every pixel of r has colour c (0xRRGGBB).
func tightSolid(img *screen.Image, r image.Rectangle, c uint32) bool {
	w := 4 * r.Dx()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		i := img.PixOffset(r.Min.X, y)
		row := img.Pix[i : i+w]
		for x := 0; x+4 <= len(row); x += 4 {
			if binary.LittleEndian.Uint32(row[x:x+4])&0xffffff != c {
				return false
			}
		}
	}
	return true
}

// tightExtendByBlock grows a solid block whose top-left corner is
// r.Min to the right and down, block by block within r, and returns the
// largest solid area found: each block row may be narrower than the one
// above, never wider.
func tightExtendByBlock(img *screen.Image, r image.Rectangle, c uint32) image.Rectangle {
	width := r.Dx()
	var bestW, bestH int
	for dy := r.Min.Y; dy < r.Max.Y; dy += tightSolidBlock {
		dh := min(tightSolidBlock, r.Max.Y-dy)
		if !tightSolid(img, image.Rect(r.Min.X, dy, r.Min.X+min(tightSolidBlock, width), dy+dh), c) {
			break
		}
		dx := r.Min.X + tightSolidBlock
		for ; dx < r.Min.X+width; dx += tightSolidBlock {
			dw := min(tightSolidBlock, r.Min.X+width-dx)
			if !tightSolid(img, image.Rect(dx, dy, dx+dw, dy+dh), c) {
				break
			}
		}
		width = min(dx-r.Min.X, width)
		if h := dy + dh - r.Min.Y; width*h > bestW*bestH {
			bestW, bestH = width, h
		}
	}
	return image.Rect(r.Min.X, r.Min.Y, r.Min.X+bestW, r.Min.Y+bestH)
}

// tightExtendByPixel grows the solid area a one row or column at a time
// in all four directions, within outer.
func tightExtendByPixel(img *screen.Image, outer, a image.Rectangle, c uint32) image.Rectangle {
	for a.Min.Y > outer.Min.Y && tightSolid(img, image.Rect(a.Min.X, a.Min.Y-1, a.Max.X, a.Min.Y), c) {
		a.Min.Y--
	}
	for a.Max.Y < outer.Max.Y && tightSolid(img, image.Rect(a.Min.X, a.Max.Y, a.Max.X, a.Max.Y+1), c) {
		a.Max.Y++
	}
	for a.Min.X > outer.Min.X && tightSolid(img, image.Rect(a.Min.X-1, a.Min.Y, a.Min.X, a.Max.Y), c) {
		a.Min.X--
	}
	for a.Max.X < outer.Max.X && tightSolid(img, image.Rect(a.Max.X, a.Min.Y, a.Max.X+1, a.Max.Y), c) {
		a.Max.X++
	}
	return a
}

// encodePlain splits r into rectangles within Tight's limits and sends
// each as a fill, a palette, JPEG or full colour, whichever fits its
// content. Vertically adjacent JPEG pieces are joined into one picture.
func (e *tightEncoder) encodePlain(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat) []byte {
	useJPEG := e.quality >= 0 && pf.BPP >= 16
	sw := min(r.Dx(), tightMaxWidth)
	sh := max(1, tightMaxArea/sw)
	jh := max(1, tightJPEGMaxArea/sw)
	for x0 := r.Min.X; x0 < r.Max.X; x0 += sw {
		x1 := min(x0+sw, r.Max.X)
		jpegTop := -1 // first row of the pending JPEG area, if any
		for y0 := r.Min.Y; y0 < r.Max.Y; y0 += sh {
			sub := image.Rect(x0, y0, x1, min(y0+sh, r.Max.Y))
			colours := e.analyse(img, sub, e.maxColours(useJPEG, sub))
			if colours == 0 && useJPEG {
				if jpegTop >= 0 && sub.Max.Y-jpegTop > jh {
					buf = e.appendJPEG(buf, img, image.Rect(x0, jpegTop, x1, y0), pf)
					jpegTop = -1
				}
				if jpegTop < 0 {
					jpegTop = y0
				}
				continue
			}
			if jpegTop >= 0 {
				buf = e.appendJPEG(buf, img, image.Rect(x0, jpegTop, x1, y0), pf)
				jpegTop = -1
			}
			buf = e.appendAnalysed(buf, img, sub, pf, colours)
		}
		if jpegTop >= 0 {
			buf = e.appendJPEG(buf, img, image.Rect(x0, jpegTop, x1, r.Max.Y), pf)
		}
	}
	return buf
}

// maxColours is the largest palette worth sending for area r instead of
// full colour, per TigerVNC: with JPEG, a few dozen colours (more than
// that is a picture); without, one colour per 8*level pixels (at least
// per 4 pixels), as small areas gain nothing from a big palette.
func (e *tightEncoder) maxColours(useJPEG bool, r image.Rectangle) int {
	if useJPEG {
		if e.level < 2 {
			return 24
		}
		return 96
	}
	return min(256, max(2, r.Dx()*r.Dy()/max(4, 8*e.level)))
}

// appendAnalysed sends sub, just analysed into e.pal and e.idx (colours
// is 0 when it has too many colours for a palette).
func (e *tightEncoder) appendAnalysed(buf []byte, img *screen.Image, sub image.Rectangle, pf *PixelFormat, colours int) []byte {
	switch {
	case colours == 1:
		return e.appendFill(buf, sub, e.pal.colours[0], pf)
	case colours == 2:
		return e.appendMono(buf, sub, pf)
	case colours > 2 && pf.BPP > 8:
		// At 8 bits per pixel, indices are no smaller than pixels.
		return e.appendIndexed(buf, sub, pf, colours)
	default:
		return e.appendFull(buf, img, sub, pf)
	}
}

// tightIs888 reports whether TPIXELs of pf are three bytes R, G, B: the
// Tight spec's rule (32 bits per pixel, depth 24, 8-bit components),
// which is not ZRLE's CPIXEL rule, and the bytes are always in R, G, B
// order whatever the shifts and byte order of pf.
func tightIs888(pf *PixelFormat) bool {
	return pf.BPP == 32 && pf.Depth == 24 && pf.TrueColor &&
		pf.RedMax == 255 && pf.GreenMax == 255 && pf.BlueMax == 255
}

// tightPixelSize is the size of a TPIXEL in pf.
func tightPixelSize(pf *PixelFormat) int {
	if tightIs888(pf) {
		return 3
	}
	return pf.bytesPerPixel()
}

// tightAppendPixel appends colour c (0xRRGGBB) as a TPIXEL.
func tightAppendPixel(buf []byte, c uint32, pf *PixelFormat) []byte {
	r, g, b := byte(c>>16), byte(c>>8), byte(c)
	if tightIs888(pf) {
		return append(buf, r, g, b)
	}
	return pf.appendValue(buf, pf.pixel(b, g, r))
}

// tightAppendCompact appends n as a compact length (1 to 3 bytes).
func tightAppendCompact(buf []byte, n int) []byte {
	switch {
	case n < 1<<7:
		return append(buf, byte(n))
	case n < 1<<14:
		return append(buf, byte(n)|0x80, byte(n>>7))
	default:
		return append(buf, byte(n)|0x80, byte(n>>7)|0x80, byte(n>>14))
	}
}

// tightFixCompact writes the compact length of the data that follows a
// 3-byte gap at buf[start:], closing the gap when the length needs fewer
// bytes. Writing the data first and its length after avoids a copy of
// the (usually large) data.
func tightFixCompact(buf []byte, start int) []byte {
	n := len(buf) - start - 3
	var l [3]byte
	k := len(tightAppendCompact(l[:0], n))
	copy(buf[start:], l[:k])
	if k < 3 {
		copy(buf[start+k:], buf[start+3:])
		buf = buf[:len(buf)-(3-k)]
	}
	return buf
}

// appendFill sends r as one colour.
func (e *tightEncoder) appendFill(buf []byte, r image.Rectangle, c uint32, pf *PixelFormat) []byte {
	e.n++
	buf = appendRectHeader(buf, r, EncTight)
	buf = append(buf, tightCtlFill)
	return tightAppendPixel(buf, c, pf)
}

// appendMono sends r, whose two colours are in e.pal and whose pixels'
// indices are in e.idx, as a bitmap: one bit per pixel, rows padded to
// whole bytes, leftmost pixel in the most significant bit.
func (e *tightEncoder) appendMono(buf []byte, r image.Rectangle, pf *PixelFormat) []byte {
	w, h := r.Dx(), r.Dy()
	rowBytes := (w + 7) / 8
	data := tightGrow(e.data, rowBytes*h)
	idx := e.idx
	k := 0
	for y := 0; y < h; y++ {
		row := idx[y*w : y*w+w]
		x := 0
		for ; x+8 <= w; x += 8 {
			p := row[x : x+8]
			data[k] = p[0]<<7 | p[1]<<6 | p[2]<<5 | p[3]<<4 | p[4]<<3 | p[5]<<2 | p[6]<<1 | p[7]
			k++
		}
		if x < w {
			var v byte
			for s := 7; x < w; x, s = x+1, s-1 {
				v |= row[x] << s
			}
			data[k] = v
			k++
		}
	}
	e.data = data
	hdr := append(e.hdr[:0], tightFilterPalette, 1)
	hdr = tightAppendPixel(hdr, e.pal.colours[0], pf)
	hdr = tightAppendPixel(hdr, e.pal.colours[1], pf)
	e.hdr = hdr
	return e.appendBasic(buf, r, tightStreamMono, hdr, data)
}

// appendIndexed sends r with its palette (up to 256 colours) and one
// index byte per pixel.
func (e *tightEncoder) appendIndexed(buf []byte, r image.Rectangle, pf *PixelFormat, colours int) []byte {
	hdr := append(e.hdr[:0], tightFilterPalette, byte(colours-1))
	for _, c := range e.pal.colours[:colours] {
		hdr = tightAppendPixel(hdr, c, pf)
	}
	e.hdr = hdr
	return e.appendBasic(buf, r, tightStreamIndexed, hdr, e.idx[:r.Dx()*r.Dy()])
}

// appendFull sends r as TPIXELs through the copy filter, in as many
// rectangles as the area limit needs.
func (e *tightEncoder) appendFull(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat) []byte {
	sw := min(r.Dx(), tightMaxWidth)
	sh := max(1, tightMaxArea/sw)
	for y0 := r.Min.Y; y0 < r.Max.Y; y0 += sh {
		for x0 := r.Min.X; x0 < r.Max.X; x0 += sw {
			sub := image.Rect(x0, y0, min(x0+sw, r.Max.X), min(y0+sh, r.Max.Y))
			var data []byte
			if e.gradient && tightIs888(pf) {
				e.data = tightGradient(e.data, img, sub)
				buf = e.appendBasic(buf, sub, tightStreamGrad, []byte{tightFilterGradient}, e.data)
				continue
			}
			if tightIs888(pf) {
				data = tightRGB(e.data, img, sub)
			} else {
				data = appendPixels(e.data[:0], img, sub, pf)
			}
			e.data = data
			buf = e.appendBasic(buf, sub, tightStreamFull, nil, data)
		}
	}
	return buf
}

// tightRGB returns the pixels of r as R, G, B bytes, in dst's storage
// when it is large enough.
func tightRGB(dst []byte, img *screen.Image, r image.Rectangle) []byte {
	w := r.Dx()
	out := tightGrow(dst, 3*w*r.Dy())
	k := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		i := img.PixOffset(r.Min.X, y)
		row := img.Pix[i : i+4*w]
		o := out[k : k+3*w]
		for x, j := 0, 0; x+3 < len(row) && j+2 < len(o); x, j = x+4, j+3 {
			o[j], o[j+1], o[j+2] = row[x+2], row[x+1], row[x]
		}
		k += 3 * w
	}
	return out
}

// tightGradient returns the pixels of r as R, G, B bytes through the
// Tight gradient filter, in dst's storage when it is large enough: each
// component minus its prediction from the pixels left, above and above
// left (left + above - above-left, clamped to 0..255), modulo 256. On
// photographs the residues are small and zlib takes a quarter or more off
// the copy filter's output, for about the same CPU; TigerVNC's encoder
// never sends it, but every Tight decoder (TigerVNC's, noVNC's, ours)
// reads it.
func tightGradient(dst []byte, img *screen.Image, r image.Rectangle) []byte {
	w := r.Dx()
	out := tightGrow(dst, 3*w*r.Dy())
	k := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		i := img.PixOffset(r.Min.X, y)
		row := img.Pix[i : i+4*w]
		var up []byte
		if y > r.Min.Y {
			j := img.PixOffset(r.Min.X, y-1)
			up = img.Pix[j : j+4*w]
		}
		o := out[k : k+3*w]
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				// R, G, B are bytes 2, 1, 0 of a BGRX pixel.
				b := 4*x + 2 - c
				var left, above, aboveLeft int
				if x > 0 {
					left = int(row[b-4])
				}
				if up != nil {
					above = int(up[b])
					if x > 0 {
						aboveLeft = int(up[b-4])
					}
				}
				pred := max(0, min(255, left+above-aboveLeft))
				o[3*x+c] = byte(int(row[b]) - pred)
			}
		}
		k += 3 * w
	}
	return out
}

// appendBasic appends a BasicCompression rectangle: the
// compression-control byte, hdr (filter-id and palette; none for the
// copy filter), then data, through zlib stream id unless it is too
// short to be worth it.
func (e *tightEncoder) appendBasic(buf []byte, r image.Rectangle, id int, hdr, data []byte) []byte {
	e.n++
	buf = appendRectHeader(buf, r, EncTight)
	ctl := byte(id) << 4
	if len(hdr) > 0 {
		ctl |= tightCtlExplicitFilter
	}
	if len(data) < tightMinToCompress {
		buf = append(buf, ctl)
		buf = append(buf, hdr...)
		return append(buf, data...)
	}
	zw, reset := e.stream(id)
	if reset {
		ctl |= 1 << id
	}
	buf = append(buf, ctl)
	buf = append(buf, hdr...)
	start := len(buf)
	e.sink.b = append(buf, 0, 0, 0)
	// Writes to a tightSink cannot fail.
	_, _ = zw.Write(data)
	_ = zw.Flush()
	buf, e.sink.b = e.sink.b, nil
	return tightFixCompact(buf, start)
}

// stream returns zlib stream id at the zlib level the compression level
// asks for. A level change needs a new zlib stream (Go's compressor
// cannot change level mid-stream), which the decoder learns from the
// stream's reset bit; reset reports whether that is needed.
func (e *tightEncoder) stream(id int) (w *zlib.Writer, reset bool) {
	level := tightZlibLevels[e.level][min(id, tightStreamIndexed)]
	s := &e.streams[id]
	if s.w != nil && s.level == level {
		return s.w, false
	}
	reset = s.w != nil
	w, err := zlib.NewWriterLevel(&e.sink, level)
	if err != nil {
		// Unreachable: every level in the table is valid.
		w = zlib.NewWriter(&e.sink)
	}
	s.w, s.level = w, level
	return w, reset
}

// Big JPEG areas are cut into strips compressed in parallel: on a
// multi-core machine this divides the latency of a full-screen picture
// for a few hundred bytes of extra headers.
const (
	tightJPEGStripMinArea = 1 << 16 // pixels
	tightJPEGMaxStrips    = 4
)

// appendJPEG sends r as JPEG pictures: one, or several strips made in
// parallel when r is big and there are cores to spare.
func (e *tightEncoder) appendJPEG(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat) []byte {
	k := min(runtime.GOMAXPROCS(0), tightJPEGMaxStrips, r.Dx()*r.Dy()/tightJPEGStripMinArea)
	// Strips of whole 16-row JPEG blocks keep block edges where they
	// would be anyway.
	sh := (r.Dy()/max(k, 1) + 15) &^ 15
	if k < 2 || sh == 0 {
		return e.appendJPEGOne(buf, img, r, pf, 0)
	}
	k = (r.Dy() + sh - 1) / sh
	for len(e.jpeg) < k {
		e.jpeg = append(e.jpeg, newJPEGCompressor())
		e.jpegOut = append(e.jpegOut, nil)
		e.jpegErr = append(e.jpegErr, nil)
	}
	conf := tightJPEGLevels[e.quality]
	strip := func(i int) image.Rectangle {
		return image.Rect(r.Min.X, r.Min.Y+i*sh, r.Max.X, min(r.Min.Y+(i+1)*sh, r.Max.Y))
	}
	var wg sync.WaitGroup
	for i := 1; i < k; i++ {
		wg.Go(func() {
			e.jpegOut[i], e.jpegErr[i] = e.jpeg[i].appendJPEG(e.jpegOut[i][:0], img, strip(i), conf.quality, conf.sub)
		})
	}
	e.jpegOut[0], e.jpegErr[0] = e.jpeg[0].appendJPEG(e.jpegOut[0][:0], img, strip(0), conf.quality, conf.sub)
	wg.Wait()
	for i := 0; i < k; i++ {
		data := e.jpegOut[i]
		if e.jpegErr[i] != nil || len(data) > tightMaxCompact {
			buf = e.appendJPEGOne(buf, img, strip(i), pf, 0)
			continue
		}
		e.n++
		e.lossy = append(e.lossy, strip(i))
		buf = appendRectHeader(buf, strip(i), EncTight)
		buf = append(buf, tightCtlJPEG)
		buf = tightAppendCompact(buf, len(data))
		buf = append(buf, data...)
	}
	return buf
}

// appendJPEGOne sends r as one JPEG picture made by compressor c,
// falling back to smaller pictures if it is too big for a compact
// length, or to lossless pixels if it cannot be made.
func (e *tightEncoder) appendJPEGOne(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat, c int) []byte {
	for len(e.jpeg) <= c {
		e.jpeg = append(e.jpeg, newJPEGCompressor())
		e.jpegOut = append(e.jpegOut, nil)
		e.jpegErr = append(e.jpegErr, nil)
	}
	conf := tightJPEGLevels[e.quality]
	rectStart := len(buf)
	buf = appendRectHeader(buf, r, EncTight)
	buf = append(buf, tightCtlJPEG)
	start := len(buf)
	out, err := e.jpeg[c].appendJPEG(append(buf, 0, 0, 0), img, r, conf.quality, conf.sub)
	switch {
	case err == nil && len(out)-start-3 <= tightMaxCompact:
		e.n++
		e.lossy = append(e.lossy, r)
		return tightFixCompact(out, start)
	case err == nil && r.Dy() > 1:
		// Too big: two halves are each about half the size. buf still
		// holds everything before this rectangle, whatever out is.
		buf = buf[:rectStart]
		mid := r.Min.Y + r.Dy()/2
		buf = e.appendJPEGOne(buf, img, image.Rect(r.Min.X, r.Min.Y, r.Max.X, mid), pf, c)
		return e.appendJPEGOne(buf, img, image.Rect(r.Min.X, mid, r.Max.X, r.Max.Y), pf, c)
	default:
		return e.appendFull(buf[:rectStart], img, r, pf)
	}
}

// tightPalette finds the distinct colours of an area with a small
// open-addressing hash table.
type tightPalette struct {
	n       int
	colours [256]uint32
	keys    [tightHashSize]uint32
	slots   [tightHashSize]uint16 // palette index + 1; 0 is empty
}

const tightHashSize = 1024 // a power of two, at least 4 times 256

// lookup returns the index of colour c, adding it if it is new; ok is
// false when the palette is full.
func (p *tightPalette) lookup(c uint32) (idx byte, ok bool) {
	h := (c * 0x9e3779b1) >> (32 - 10)
	for {
		s := p.slots[h]
		if s == 0 {
			if p.n == len(p.colours) {
				return 0, false
			}
			p.colours[p.n] = c
			p.keys[h] = c
			p.n++
			p.slots[h] = uint16(p.n)
			return byte(p.n - 1), true
		}
		if p.keys[h] == c {
			return byte(s - 1), true
		}
		h = (h + 1) & (tightHashSize - 1)
	}
}

// analyse collects the colours of area r into e.pal and each pixel's
// index into e.idx. It returns the number of colours, or 0 as soon as
// there are more than maxColours (then e.idx is incomplete).
func (e *tightEncoder) analyse(img *screen.Image, r image.Rectangle, maxColours int) int {
	p := &e.pal
	p.n = 0
	clear(p.slots[:])
	w := r.Dx()
	e.idx = tightGrow(e.idx, w*r.Dy())
	c0 := tightPixelAt(img, r.Min.X, r.Min.Y)
	p.lookup(c0)
	// Most areas of a desktop have one or two colours (text, icons on a
	// background): a loop without hashing and without data-dependent
	// branches handles them, until a third colour shows up.
	c1 := uint32(1 << 31) // matches no 24-bit colour until the second one is seen
	for y := r.Min.Y; y < r.Max.Y; y++ {
		i := img.PixOffset(r.Min.X, y)
		row := img.Pix[i : i+4*w]
		out := e.idx[(y-r.Min.Y)*w : (y-r.Min.Y+1)*w]
		for x := 0; x < w; {
			x += tightMonoRow(row[4*x:], out[x:], c0, c1)
			if x == w {
				break
			}
			// Pixel x is a new colour.
			if p.n == 2 || maxColours < 2 {
				if maxColours < 3 {
					return 0
				}
				return e.analyseMany(img, r, maxColours, y, x)
			}
			c1 = binary.LittleEndian.Uint32(row[4*x:]) & 0xffffff
			p.lookup(c1)
		}
	}
	return p.n
}

// tightMonoRow sets out[x] to 0 where pixel x of row has colour c0 and
// to 1 where it has colour c1, and stops at the first pixel that has
// neither: it returns how many pixels it did. The loop has no branch
// that depends on the pixels until it stops, so it runs at full speed
// on any pattern of the two colours.
func tightMonoRow(row, out []byte, c0, c1 uint32) int {
	for x, i := 0, 0; x < len(out) && i+4 <= len(row); x, i = x+1, i+4 {
		c := binary.LittleEndian.Uint32(row[i:i+4]) & 0xffffff
		if uint64(c^c0)*uint64(c^c1) != 0 {
			return x
		}
		var v byte
		if c == c1 {
			v = 1
		}
		out[x] = v
	}
	return len(out)
}

// analyseMany goes on with analyse from pixel (x0, y0) on, once the area
// has shown more than two colours.
func (e *tightEncoder) analyseMany(img *screen.Image, r image.Rectangle, maxColours, y0, x0 int) int {
	p := &e.pal
	w := r.Dx()
	prev := uint32(1 << 31)
	var cur byte
	for y := y0; y < r.Max.Y; y++ {
		i := img.PixOffset(r.Min.X, y)
		row := img.Pix[i : i+4*w]
		out := e.idx[(y-r.Min.Y)*w : (y-r.Min.Y+1)*w]
		for x := x0; x < len(out); x++ {
			c := binary.LittleEndian.Uint32(row[4*x:]) & 0xffffff
			if c != prev {
				var ok bool
				cur, ok = p.lookup(c)
				if !ok || p.n > maxColours {
					return 0
				}
				prev = c
			}
			out[x] = cur
		}
		x0 = 0
	}
	return p.n
}

// tightGrow returns b resized to n bytes, reallocating only when its
// capacity is too small (contents are not kept).
func tightGrow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, n+n/4)
	}
	return b[:n]
}
