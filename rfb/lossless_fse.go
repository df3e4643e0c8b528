package rfb

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/fse"
)

// Context-coded planes for lossless rectangles.
//
// EncAssistLossless hands each plane to zstd, which codes a block's
// literals with one Huffman table. That costs a whole bit a byte at least,
// where red's and blue's planes (what is left once green's error is taken
// out) hold about 1.4 bits a pixel, and one table serves a whole plane,
// where flat areas and grainy ones err on very different scales.
// EncAssistLosslessFSE sorts each plane's bytes into losslessContexts
// streams by how large the errors left of and above the byte were, in the
// same plane (the receiver knows both by then), and codes each stream on
// its own with FSE (tANS, fractions of a bit a byte; the entropy coder of
// zstd, from the same module). On the benchmark's full-screen scene, in
// refinement's slices of 8 rows: 7.0 bits a pixel instead of 7.9.

// EncAssistLosslessFSE is the private encoding of a rectangle's exact
// pixels with context-coded planes. It has EncAssistLossless's content
// (a predictor per row, then the green, red-minus-green and
// blue-minus-green planes of errors) and codes it so: a 4-byte length and
// that many bytes, which hold the h predictor numbers as they are, then
// each plane in turn: the number of its streams (1, or losslessContexts
// when sorted by context), then each stream: the number of its bytes
// (uvarint), and when that is not 0 a mode byte (losslessStreamRaw,
// losslessStreamRepeat or losslessStreamFSE) and the stream so coded.
// Streams hold the errors zigzagged (errMagnitude: 0, -1, 1, -2 as 0, 1,
// 2, 3), so that an FSE table describes few symbols. The context of a
// plane's byte comes from the magnitudes of the errors left of it and
// above it in that plane (those outside the rectangle counting as 0):
// losslessContext. The bytes of a sorted plane are its streams' bytes
// taken in raster order, each from the stream of its context.
const EncAssistLosslessFSE int32 = 0x41535346 // "ASSF"

// The modes of a stream of EncAssistLosslessFSE.
const (
	losslessStreamRaw    = iota // the bytes as they are
	losslessStreamRepeat        // one byte, repeated
	losslessStreamFSE           // a uvarint length, then that many bytes of one FSE block
)

// losslessContexts is how many contexts a plane's bytes are sorted into.
// Refinement mostly sends slices of 8 rows, where each stream's FSE table
// weighs: on the benchmark's scene, before errors were zigzagged, 5
// contexts took 7.18 bits a pixel there (EncAssistLossless 7.86), 3 took
// 7.14 and 7 took 7.29; on slices of 48 rows 5 and 7 took 6.78 and 6.79,
// 3 took 6.84.
const losslessContexts = 5

// errMagnitude[b] is the magnitude of error b (an int8), zigzagged: 0, 1,
// 2 for 0, -1, 1 and so on. Streams hold errors so (0..255), and
// unzigzag turns them back.
var errMagnitude, unzigzag = func() (m [256]uint16, u [256]byte) {
	for b := range m {
		v := int(int8(b))
		if v < 0 {
			m[b] = uint16(-2*v - 1)
		} else {
			m[b] = uint16(2 * v)
		}
		u[m[b]] = byte(b)
	}
	return m, u
}()

// losslessContext[a] is the context of a byte whose left and upper
// neighbours' error magnitudes sum to a.
var losslessContext = func() (c [511]uint8) {
	for a := range c {
		switch {
		case a == 0:
			c[a] = 0
		case a <= 3:
			c[a] = 1
		case a <= 10:
			c[a] = 2
		case a <= 30:
			c[a] = 3
		default:
			c[a] = 4
		}
	}
	return c
}()

// appendFSE appends the EncAssistLosslessFSE payload of content plain, of
// a w×h rectangle.
func (e *losslessEncoder) appendFSE(buf, plain []byte, w, h int) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf = append(buf, plain[:h]...)
	for p := range 3 {
		plane := plain[h+p*w*h:][:w*h]
		for i := range e.streams {
			e.streams[i] = e.streams[i][:0]
		}
		for y := 0; y < h; y++ {
			row := plane[y*w:][:w]
			var up []byte
			if y > 0 {
				up = plane[(y-1)*w:][:w]
			}
			var left uint16
			for x, v := range row {
				a := left
				if up != nil {
					a += errMagnitude[up[x]]
				}
				ctx := losslessContext[a]
				e.streams[ctx] = append(e.streams[ctx], byte(errMagnitude[v]))
				left = errMagnitude[v]
			}
		}
		mark := len(buf)
		buf = append(buf, losslessContexts)
		for _, s := range e.streams {
			buf = e.appendStream(buf, s)
		}
		// A small or evenly noisy plane may do better as one stream,
		// with one table instead of losslessContexts.
		e.zigzag = growLen(e.zigzag[:0], len(plane))
		for i, v := range plane {
			e.zigzag[i] = byte(errMagnitude[v])
		}
		e.single = e.appendStream(append(e.single[:0], 1), e.zigzag)
		if len(e.single) < len(buf)-mark {
			buf = append(buf[:mark], e.single...)
		}
	}
	binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-4))
	return buf
}

// appendStream appends stream s in the mode that takes fewest bytes.
func (e *losslessEncoder) appendStream(buf, s []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	if len(s) == 0 {
		return buf
	}
	out, err := fse.Compress(s, &e.fse)
	switch {
	case err == nil && len(out) < len(s):
		buf = append(buf, losslessStreamFSE)
		buf = binary.AppendUvarint(buf, uint64(len(out)))
		return append(buf, out...)
	case errors.Is(err, fse.ErrUseRLE):
		return append(buf, losslessStreamRepeat, s[0])
	}
	// Incompressible (or too short for FSE), or no smaller coded.
	return append(append(buf, losslessStreamRaw), s...)
}

// decodeFSE turns src, the bytes of an EncAssistLosslessFSE payload
// after its length, into d.plain, the content of a w×h rectangle.
// Everything in src is untrusted: every count and length is checked
// against what is left, and each stream must hold exactly the bytes its
// context takes.
func (d *losslessDecoder) decodeFSE(src []byte, w, h int) error {
	if len(src) < h {
		return fmt.Errorf("rfb: lossless rectangle of %dx%d: %d bytes leave no room for its %d row predictors", w, h, len(src), h)
	}
	d.plain = append(d.plain[:0], src[:h]...)
	src = src[h:]
	d.symbols = growLen(d.symbols[:0], w*h)
	for p := range 3 {
		if len(src) == 0 {
			return fmt.Errorf("rfb: lossless rectangle of %dx%d: plane %d missing", w, h, p)
		}
		k := int(src[0])
		src = src[1:]
		if k != 1 && k != losslessContexts {
			return fmt.Errorf("rfb: lossless rectangle of %dx%d: plane %d in %d streams, want 1 or %d", w, h, p, k, losslessContexts)
		}
		// Each stream's bytes, in d.symbols.
		var streams [losslessContexts][]byte
		total := 0
		for ctx := range streams[:k] {
			n, k := binary.Uvarint(src)
			if k <= 0 || n > uint64(w*h-total) {
				return fmt.Errorf("rfb: lossless rectangle of %dx%d: plane %d, context %d: bad byte count", w, h, p, ctx)
			}
			src = src[k:]
			s := d.symbols[total : total+int(n)]
			total += int(n)
			streams[ctx] = s
			if n == 0 {
				continue
			}
			var err error
			if src, err = d.readStream(src, s); err != nil {
				return fmt.Errorf("rfb: lossless rectangle of %dx%d: plane %d, context %d: %w", w, h, p, ctx, err)
			}
		}
		if total != w*h {
			return fmt.Errorf("rfb: lossless rectangle of %dx%d: plane %d holds %d bytes, want %d", w, h, p, total, w*h)
		}
		d.plain = growLen(d.plain, w*h)
		if k == 1 {
			plane := d.plain[len(d.plain)-w*h:]
			for i, z := range streams[0] {
				plane[i] = unzigzag[z]
			}
			continue
		}
		if err := unsortPlane(d.plain[len(d.plain)-w*h:], w, h, &streams); err != nil {
			return fmt.Errorf("rfb: lossless rectangle of %dx%d: plane %d: %w", w, h, p, err)
		}
	}
	if len(src) != 0 {
		return fmt.Errorf("rfb: lossless rectangle of %dx%d: %d bytes left over", w, h, len(src))
	}
	return nil
}

// unsortPlane fills plane, of a w×h rectangle, taking each byte from the
// stream of its context (appendFSE's sorting undone).
func unsortPlane(plane []byte, w, h int, streams *[losslessContexts][]byte) error {
	var next [losslessContexts]int
	var end [losslessContexts]int
	for ctx, s := range streams {
		end[ctx] = len(s)
	}
	for y := 0; y < h; y++ {
		row := plane[y*w:][:w]
		up := row // the first row's upper neighbours count as 0
		if y > 0 {
			up = plane[(y-1)*w:][:w]
		}
		var left uint16
		for x := range row {
			a := left
			if y > 0 {
				a += errMagnitude[up[x]]
			}
			ctx := losslessContext[a]
			i := next[ctx]
			if i == end[ctx] {
				return fmt.Errorf("context %d: stream ends at (%d,%d)", ctx, x, y)
			}
			next[ctx] = i + 1
			z := streams[ctx][i]
			row[x] = unzigzag[z]
			left = uint16(z)
		}
	}
	return nil
}

// readStream decodes one stream from src into s (len(s) bytes) and
// returns what follows it in src.
func (d *losslessDecoder) readStream(src, s []byte) ([]byte, error) {
	if len(src) == 0 {
		return nil, errors.New("no mode")
	}
	mode := src[0]
	src = src[1:]
	switch mode {
	case losslessStreamRaw:
		if len(src) < len(s) {
			return nil, fmt.Errorf("%d raw bytes, want %d", len(src), len(s))
		}
		copy(s, src)
		return src[len(s):], nil
	case losslessStreamRepeat:
		if len(src) < 1 {
			return nil, errors.New("no byte to repeat")
		}
		for i := range s {
			s[i] = src[0]
		}
		return src[1:], nil
	case losslessStreamFSE:
		n, k := binary.Uvarint(src)
		if k <= 0 || n > uint64(len(src)-k) {
			return nil, errors.New("bad FSE length")
		}
		block := src[k : k+int(n)]
		d.fse.DecompressLimit = len(s)
		out, err := fse.Decompress(block, &d.fse)
		if err != nil {
			return nil, fmt.Errorf("FSE: %w", err)
		}
		if len(out) != len(s) {
			return nil, fmt.Errorf("FSE block holds %d bytes, want %d", len(out), len(s))
		}
		copy(s, out)
		return src[k+int(n):], nil
	}
	return nil, fmt.Errorf("unknown mode %d", mode)
}
