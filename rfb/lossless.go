package rfb

import (
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"slices"

	"github.com/klauspost/compress/fse"
	"github.com/klauspost/compress/zstd"

	"github.com/assist-project/assist/screen"
)

// Lossless pictures across the wide link.
//
// Refinement (refine.go) re-sends photos exactly, and on a slow link its
// bytes decide how soon a still screen is sharp. Tight's best lossless
// form, the gradient filter with zlib, predicts each colour channel on its
// own: the grain a camera (or a video, or a rendered scene) puts into all
// three channels at once is paid for three times. EncAssistLossless first
// predicts each pixel from its neighbours, with the predictor that does
// best on that row, then keeps green's error and the differences of red's
// and blue's errors from it (WebP lossless's "subtract green", which takes
// out what the channels share), in three planes that zstd compresses. On
// the benchmark's full-screen scene this is about 55% of the gradient
// filter's bytes.
//
// Like EncAssistScaled it is offered only by parties that undo it:
// `assist join`'s Relay, which writes each such rectangle as Raw for its
// local viewer in the pixel format the server announced
// (msgAssistPixelFormat), and this package's Client. The server uses it
// for refinement only: everything else has encodings of its own that do
// better (solid, palette, JPEG, copies).

// EncAssistLossless is the private encoding of a rectangle's exact pixels.
// The payload is three parts, each a 4-byte length and that many bytes of
// one zstd frame that declares its content size. For a w×h rectangle the
// first holds h + w·h bytes: one predictor number (losslessPredictors)
// per row, then the green plane; the second red minus green; the third
// blue minus green (w·h bytes each, rows top to bottom). Three frames,
// not one: zstd codes the literals of a block with one Huffman table,
// and the planes' statistics differ (a 400x8 slice of refinement took
// 5-8% more bytes as one frame). Each plane holds, per pixel, the channel's
// error against the row's predictor (modulo 256); red and blue hold their
// error minus green's. Predictors read only the rectangle's own pixels,
// those outside counting as 0.
const EncAssistLossless int32 = 0x4153534C // "ASSL"

// The predictors of a row, from the pixel's left (a), upper (b) and
// upper-left (c) neighbours, per channel.
const (
	predLeft    = iota // a
	predUp             // b
	predAverage        // (a+b)/2, rounded down: best under grain
	predMED            // LOCO-I's median edge detector: best at edges
	losslessPredictors
)

const (
	// losslessMaxPixels bounds the area of a lossless rectangle a
	// receiver accepts (it decodes the whole of it at once).
	losslessMaxPixels = scaleMaxPixels
	// losslessLevel: zstd's default level compresses the planes within
	// 1-3% of its better levels at a third of their time (a 1280x800
	// scene: about 30 ms).
	losslessLevel = zstd.SpeedFastest
)

// losslessSize is the size of a w×h rectangle's content.
func losslessSize(w, h int) int { return h + 3*w*h }

// losslessParts are the sizes of the content of a w×h rectangle's three
// frames.
func losslessParts(w, h int) [3]int { return [3]int{h + w*h, w * h, w * h} }

// losslessMaxFrame is the most bytes a frame of size bytes of content may
// take: zstd stores incompressible blocks as they are, plus a few bytes
// each.
func losslessMaxFrame(size int) int { return size + 64<<10 }

// predict returns the prediction of predictor k from neighbours a, b, c.
func predict(k int, a, b, c int32) int32 {
	switch k {
	case predLeft:
		return a
	case predUp:
		return b
	case predAverage:
		return (a + b) >> 1
	}
	hi, lo := max(a, b), min(a, b)
	switch {
	case c >= hi:
		return lo
	case c <= lo:
		return hi
	}
	return a + b - c
}

// losslessEncoder makes EncAssistLossless or EncAssistLosslessFSE
// payloads, for one connection.
type losslessEncoder struct {
	enc   int32 // the encoding it makes
	z     *zstd.Encoder
	plain []byte // the frame's content

	// EncAssistLosslessFSE's (lossless_fse.go).
	streams [losslessContexts][]byte
	single  []byte // a plane coded as one stream
	zigzag  []byte // a plane's errors zigzagged
	fse     fse.Scratch
}

// newLosslessEncoder returns an encoder of enc (EncAssistLossless or
// EncAssistLosslessFSE).
func newLosslessEncoder(enc int32) *losslessEncoder {
	if enc == EncAssistLosslessFSE {
		return &losslessEncoder{enc: enc}
	}
	// Errors only come from invalid options.
	z, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(losslessLevel),
		zstd.WithEncoderConcurrency(1),
		// Without it a block where zstd finds no repeats (grain, the
		// usual case here) goes uncompressed, whatever its entropy.
		zstd.WithAllLitEntropyCompression(true),
		// The session's transport already checks every byte.
		zstd.WithEncoderCRC(false),
		// So that every frame declares its content size, which the
		// receiver checks before decompressing (small ones otherwise
		// do not).
		zstd.WithSingleSegment(true))
	if err != nil {
		panic(err)
	}
	return &losslessEncoder{enc: EncAssistLossless, z: z}
}

// close frees the zstd encoder.
func (e *losslessEncoder) close() {
	if e.z != nil {
		e.z.Close()
	}
}

// encode appends one rectangle of area r of img. The pixels go as they
// are, whatever the viewer's format: the receiver turns them into it.
func (e *losslessEncoder) encode(buf []byte, img *screen.Image, r image.Rectangle, _ *PixelFormat) ([]byte, int) {
	w, h := r.Dx(), r.Dy()
	e.plain = slices.Grow(e.plain[:0], losslessSize(w, h))[:losslessSize(w, h)]
	filters := e.plain[:h]
	planes := [3][]byte{e.plain[h : h+w*h], e.plain[h+w*h : h+2*w*h], e.plain[h+2*w*h:]}
	for y := 0; y < h; y++ {
		cur := img.Pix[img.PixOffset(r.Min.X, r.Min.Y+y):][:4*w]
		var up []byte
		if y > 0 {
			up = img.Pix[img.PixOffset(r.Min.X, r.Min.Y+y-1):][:4*w]
		}
		best := rowPredictor(cur, up)
		filters[y] = byte(best)
		residuals(best, cur, up, planes[0][y*w:], planes[1][y*w:], planes[2][y*w:])
	}
	buf = appendRectHeader(buf, r, e.enc)
	if e.enc == EncAssistLosslessFSE {
		return e.appendFSE(buf, e.plain, w, h), 1
	}
	plain := e.plain
	for _, size := range losslessParts(w, h) {
		start := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		buf = e.z.EncodeAll(plain[:size], buf)
		binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-4))
		plain = plain[size:]
	}
	return buf, 1
}

// costStep: rowPredictor tries the predictors on every costStep-th pixel
// of a row. Trying all four on every pixel took twice as long as the
// rest of the encoding, for 1% fewer bytes.
const costStep = 4

// rowPredictor chooses the predictor for row cur (up is the row above,
// nil for the first): the one whose errors on a sample of the row have
// the least sum of magnitudes, which tracks how well they compress.
func rowPredictor(cur, up []byte) int {
	if up == nil {
		return predLeft // the row above counts as 0
	}
	var cost [losslessPredictors]int
	for i := 4; i < len(cur); i += 4 * costStep {
		var err [losslessPredictors][3]int32
		for ch := range 3 {
			v, a, b, c := int32(cur[i+ch]), int32(cur[i-4+ch]), int32(up[i+ch]), int32(up[i-4+ch])
			for k := range losslessPredictors {
				err[k][ch] = v - predict(k, a, b, c)
			}
		}
		for k, e := range err {
			cost[k] += abs8(int8(e[1])) + abs8(int8(e[2]-e[1])) + abs8(int8(e[0]-e[1]))
		}
	}
	best := 0
	for k := 1; k < losslessPredictors; k++ {
		if cost[k] < cost[best] {
			best = k
		}
	}
	return best
}

// residuals writes row cur's errors against predictor k into the three
// planes' rows g, rd and bl (up is the row above, nil for the first).
func residuals(k int, cur, up, g, rd, bl []byte) {
	var a, c [3]int32 // left and upper-left, per channel (B, G, R)
	for x := 0; x < len(cur)/4; x++ {
		var err [3]int32
		for ch := range 3 {
			var b int32
			if up != nil {
				b = int32(up[4*x+ch])
			}
			v := int32(cur[4*x+ch])
			err[ch] = v - predict(k, a[ch], b, c[ch])
			a[ch], c[ch] = v, b
		}
		g[x], rd[x], bl[x] = byte(err[1]), byte(err[2]-err[1]), byte(err[0]-err[1])
	}
}

func abs8(v int8) int {
	if v < 0 {
		return -int(v)
	}
	return int(v)
}

// losslessDecoder reads EncAssistLossless rectangles, for one connection.
// Everything it reads is untrusted: sizes are checked against the
// rectangle before anything is allocated for them, the compressed bytes
// are read in steps, and the frame must declare exactly the content the
// rectangle needs before it is decompressed.
type losslessDecoder struct {
	z     *zstd.Decoder
	frame []byte
	plain []byte

	// EncAssistLosslessFSE's (lossless_fse.go).
	symbols []byte
	fse     fse.Scratch
}

// decode reads the payload of a lossless rectangle of encoding enc
// (EncAssistLossless or EncAssistLosslessFSE) for area rect and draws it
// into area dr of dst (dr has rect's size).
func (d *losslessDecoder) decode(r io.Reader, enc int32, rect image.Rectangle, dst *screen.Image, dr image.Rectangle) error {
	if !dr.In(dst.Rect) || dr.Size() != rect.Size() {
		return fmt.Errorf("rfb: lossless rectangle %v is outside the framebuffer %v", rect, dst.Rect)
	}
	w, h := rect.Dx(), rect.Dy()
	if w*h > losslessMaxPixels {
		return fmt.Errorf("rfb: lossless rectangle of %dx%d is over the limit of %d pixels", w, h, losslessMaxPixels)
	}
	if enc == EncAssistLosslessFSE {
		if err := d.readFrame(r, w, h, -1, losslessSize(w, h)); err != nil {
			return err
		}
		if rect.Empty() {
			return nil // nothing to draw, whatever the bytes
		}
		if err := d.decodeFSE(d.frame, w, h); err != nil {
			return err
		}
		return unpredict(dst, dr, d.plain)
	}
	if d.z == nil {
		// Used only through DecodeAll, a decoder starts no goroutine
		// and needs no Close.
		z, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			// Bounds what a frame may make the decoder allocate.
			zstd.WithDecoderMaxMemory(uint64(losslessSize(4096, 4096))),
			zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return fmt.Errorf("rfb: lossless decoder: %w", err)
		}
		d.z = z
	}
	d.plain = slices.Grow(d.plain[:0], losslessSize(w, h))
	for i, size := range losslessParts(w, h) {
		if err := d.readFrame(r, w, h, i, size); err != nil {
			return err
		}
		if rect.Empty() {
			continue // nothing to draw, whatever the bytes
		}
		var fh zstd.Header
		if err := fh.Decode(d.frame); err != nil {
			return fmt.Errorf("rfb: lossless rectangle, part %d: %w", i, err)
		}
		if !fh.HasFCS || fh.FrameContentSize != uint64(size) {
			return fmt.Errorf("rfb: lossless rectangle of %dx%d: its part %d does not declare %d bytes of content", w, h, i, size)
		}
		before := len(d.plain)
		plain, err := d.z.DecodeAll(d.frame, d.plain)
		if err != nil {
			return fmt.Errorf("rfb: lossless rectangle, part %d: %w", i, err)
		}
		d.plain = plain
		if len(plain)-before != size {
			return fmt.Errorf("rfb: lossless rectangle of %dx%d: part %d holds %d bytes, want %d", w, h, i, len(plain)-before, size)
		}
	}
	if rect.Empty() {
		return nil
	}
	return unpredict(dst, dr, d.plain)
}

// readFrame reads a 4-byte length and that many bytes into d.frame: part
// of a w×h rectangle (-1: its only one) that holds size bytes of content.
// A length beyond losslessMaxFrame(size) is refused before anything is
// read for it.
func (d *losslessDecoder) readFrame(r io.Reader, w, h, part, size int) error {
	var hdr [4]byte
	if err := readFull(r, hdr[:], "lossless rectangle length"); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n > losslessMaxFrame(size) {
		if part < 0 {
			return fmt.Errorf("rfb: lossless rectangle of %dx%d claims %d bytes", w, h, n)
		}
		return fmt.Errorf("rfb: lossless rectangle of %dx%d claims %d bytes for part %d", w, h, n, part)
	}
	var err error
	d.frame, err = appendRead(r, d.frame[:0], n, "lossless rectangle")
	return err
}

// unpredict undoes the encoder's prediction: plain is a rectangle's
// content, drawn into area dr of dst.
func unpredict(dst *screen.Image, dr image.Rectangle, plain []byte) error {
	w, h := dr.Dx(), dr.Dy()
	filters := plain[:h]
	gp, rp, bp := plain[h:h+w*h], plain[h+w*h:h+2*w*h], plain[h+2*w*h:]
	for y := 0; y < h; y++ {
		k := int(filters[y])
		if k >= losslessPredictors {
			return fmt.Errorf("rfb: lossless rectangle: row %d names predictor %d", y, k)
		}
		cur := dst.Pix[dst.PixOffset(dr.Min.X, dr.Min.Y+y):][:4*w]
		var up []byte
		if y > 0 {
			up = dst.Pix[dst.PixOffset(dr.Min.X, dr.Min.Y+y-1):][:4*w]
		}
		var a, c [3]int32
		row := y * w
		for x := 0; x < w; x++ {
			g := int32(gp[row+x])
			err := [3]int32{int32(bp[row+x]) + g, g, int32(rp[row+x]) + g}
			p := cur[4*x : 4*x+4]
			for ch := range 3 {
				var b int32
				if up != nil {
					b = int32(up[4*x+ch])
				}
				v := byte(predict(k, a[ch], b, c[ch]) + err[ch])
				p[ch] = v
				a[ch], c[ch] = int32(v), b
			}
			p[3] = 0
		}
	}
	return nil
}
