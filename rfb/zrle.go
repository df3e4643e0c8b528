package rfb

import (
	"compress/flate"
	"encoding/binary"
	"image"

	"github.com/assist-project/assist/screen"
)

// ZRLE (RFC 6143 §7.7.6) sends a rectangle as 64x64 tiles through one
// zlib stream that lasts as long as the connection. Each tile picks the
// cheapest of raw, solid, packed palette, plain RLE and palette RLE, by
// the same size estimates TigerVNC uses.

const (
	zrleTileSize = 64

	zrleRaw        = 0
	zrleSolid      = 1
	zrlePlainRLE   = 128
	zrlePaletteRLE = 128 // plus the palette size, 2..127

	zrleMaxPalette       = 127 // largest palette of palette RLE
	zrleMaxPackedPalette = 16  // largest palette of packed palette

	// zrleDefaultLevel is the zlib level used until the viewer asks for
	// another. The tiles are already run-length or palette coded, which
	// is where most of the gain is, so zlib's extra effort buys little:
	// on a 1280x800 desktop-like frame (BenchmarkZRLEEncode) Go's level 1
	// (its Snappy-like fast path) takes about 4 ms for 301 KB, level 2
	// 10 ms for 279 KB, level 6 14 ms for 276 KB; on a 640x480 text area
	// 1.7 ms / 25 KB against 2.5 ms / 21 KB and 9.5 ms / 17 KB. Encoding
	// time is latency on every update, while on a LAN the bytes cost
	// almost nothing; a viewer on a slow link can ask for more with a
	// CompressLevel pseudo-encoding.
	zrleDefaultLevel = 1

	// zrleFlushAt is how much tile data is collected before it is handed
	// to the compressor: large enough to amortise the call, small enough
	// to stay in cache.
	zrleFlushAt = 32 << 10
)

// zrleEncoder is the server side of ZRLE for one connection.
type zrleEncoder struct {
	level   int
	zw      *flate.Writer
	zwLevel int
	started bool        // the zlib header went out
	sink    sliceWriter // where zw's output goes: the caller's buf
	raw     []byte      // tile data not yet given to zw

	// The current tile as wire-ordered CPIXEL values (see wireOrder),
	// and, for packed palette tiles, each pixel's palette index.
	tile [zrleTileSize * zrleTileSize]uint32
	idx  [zrleTileSize * zrleTileSize]uint8
	pal  zrlePalette

	table   pixelTable
	tablePF PixelFormat
	tableN  int
}

// newZRLEEncoder returns an encoder whose zlib stream starts with the
// next rectangle it encodes.
func newZRLEEncoder() *zrleEncoder {
	return &zrleEncoder{level: zrleDefaultLevel}
}

// setCompression sets the zlib level, 0 (store) to 9 (smallest); other
// values select the default. It applies from the next rectangle on: the
// stream is continued by a new compressor at that level, which a viewer
// cannot tell from one that changed its level.
func (e *zrleEncoder) setCompression(level int) {
	if level < 0 || level > 9 {
		level = zrleDefaultLevel
	}
	e.level = level
}

// sliceWriter appends what is written to it to a slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// encode appends one ZRLE rectangle carrying area r of img.
func (e *zrleEncoder) encode(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat) ([]byte, int) {
	buf = appendRectHeader(buf, r, EncZRLE)
	lenAt := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	e.sink.b = buf
	if !e.started {
		// CMF 0x78: deflate with a 32 KiB window; FLG 0x01: fastest
		// level hint, no dictionary, and the check bits that make the
		// pair a multiple of 31.
		e.sink.b = append(e.sink.b, 0x78, 0x01)
		e.started = true
	}
	if e.zw == nil || e.zwLevel != e.level {
		// Only fails for an invalid level, which setCompression rules out.
		e.zw, _ = flate.NewWriter(&e.sink, e.level)
		e.zwLevel = e.level
	}
	n := pf.compactSize()
	if e.tableN != n || e.tablePF != *pf {
		e.table.fill(pf, n)
		e.tablePF, e.tableN = *pf, n
	}
	native := pf.isNative()
	e.raw = e.raw[:0]
	for ty := r.Min.Y; ty < r.Max.Y; ty += zrleTileSize {
		for tx := r.Min.X; tx < r.Max.X; tx += zrleTileSize {
			t := image.Rect(tx, ty, min(tx+zrleTileSize, r.Max.X), min(ty+zrleTileSize, r.Max.Y))
			e.loadTile(img, t, native)
			e.raw = e.appendTile(e.raw, t.Dx(), t.Dy(), n)
			if len(e.raw) >= zrleFlushAt {
				e.zw.Write(e.raw) // sliceWriter never fails
				e.raw = e.raw[:0]
			}
		}
	}
	e.zw.Write(e.raw)
	e.zw.Flush()
	buf = e.sink.b
	e.sink.b = nil
	binary.BigEndian.PutUint32(buf[lenAt:], uint32(len(buf)-lenAt-4))
	return buf, 1
}

// loadTile converts area t of img into e.tile.
func (e *zrleEncoder) loadTile(img *screen.Image, t image.Rectangle, native bool) {
	w := t.Dx()
	out := e.tile[:w*t.Dy()]
	for y := t.Min.Y; y < t.Max.Y; y++ {
		row := img.Pix[img.PixOffset(t.Min.X, y):][:4*w]
		o := out[:w]
		if native {
			// Compact or full, the native wire pixel is B, G, R (, 0).
			for x := range o {
				o[x] = binary.LittleEndian.Uint32(row[4*x:]) & 0xffffff
			}
		} else {
			for x := range o {
				o[x] = e.table.value(row[4*x:])
			}
		}
		out = out[w:]
	}
}

// appendTile analyses the w x h tile in e.tile and appends it in the
// cheapest sub-encoding.
func (e *zrleEncoder) appendTile(buf []byte, w, h, n int) []byte {
	count := w * h
	px := e.tile[:count]
	e.pal.reset()

	// One pass over the runs gathers the palette (while it fits in 127
	// colours) and the exact sizes of both RLE forms.
	palOK := true
	plainRLE, paletteRLE := 0, 0
	for i := 0; i < count; {
		v := px[i]
		j := i + 1
		for j < len(px) && px[j] == v {
			j++
		}
		run := j - i
		i = j
		plainRLE += n + 1 + (run-1)/255
		paletteRLE += runCost(run)
		if palOK {
			_, palOK = e.pal.add(v)
		}
	}

	palSize := e.pal.n
	if palOK && palSize == 1 {
		buf = append(buf, zrleSolid)
		return appendWire(buf, px[0], n)
	}
	const (
		raw = iota
		plain
		paletteRuns
		packed
	)
	kind, best := raw, count*n
	if plainRLE < best {
		kind, best = plain, plainRLE
	}
	if palOK {
		if c := palSize*n + paletteRLE; c < best {
			kind, best = paletteRuns, c
		}
		if palSize <= zrleMaxPackedPalette {
			if c := palSize*n + h*((w*packedBits(palSize)+7)/8); c <= best {
				kind = packed
			}
		}
	}
	switch kind {
	case raw:
		buf = append(buf, zrleRaw)
		return appendWires(buf, px, n)
	case plain:
		buf = append(buf, zrlePlainRLE)
		return appendPlainRuns(buf, px, n)
	case paletteRuns:
		buf = append(buf, byte(zrlePaletteRLE+palSize))
		buf = appendWires(buf, e.pal.colours[:palSize], n)
		return e.appendIndexRuns(buf, px)
	default:
		buf = append(buf, byte(palSize))
		buf = appendWires(buf, e.pal.colours[:palSize], n)
		return appendPacked(buf, e.indices(px), w, h, packedBits(palSize))
	}
}

// runCost is the size of one palette-RLE run.
func runCost(run int) int {
	if run == 1 {
		return 1
	}
	return 2 + (run-1)/255
}

// packedBits is the size of an index in a packed palette tile.
func packedBits(palSize int) int {
	switch {
	case palSize <= 2:
		return 1
	case palSize <= 4:
		return 2
	default:
		return 4
	}
}

// appendWire appends one wire-ordered value as an n-byte pixel.
func appendWire(buf []byte, v uint32, n int) []byte {
	switch n {
	case 1:
		return append(buf, byte(v))
	case 2:
		return append(buf, byte(v), byte(v>>8))
	case 3:
		return append(buf, byte(v), byte(v>>8), byte(v>>16))
	default:
		return append(buf, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
}

// appendWires appends wire-ordered values as n-byte pixels.
func appendWires(buf []byte, px []uint32, n int) []byte {
	start := len(buf)
	buf = growLen(buf, n*len(px))
	out := buf[start:]
	switch n {
	case 1:
		for i, v := range px {
			out[i] = byte(v)
		}
	case 2:
		for i, v := range px {
			out[2*i], out[2*i+1] = byte(v), byte(v>>8)
		}
	case 3:
		for i, v := range px {
			o := out[3*i : 3*i+3]
			o[0], o[1], o[2] = byte(v), byte(v>>8), byte(v>>16)
		}
	default:
		for i, v := range px {
			binary.LittleEndian.PutUint32(out[4*i:], v)
		}
	}
	return buf
}

// growLen extends buf by n bytes, reallocating at most once.
func growLen(buf []byte, n int) []byte {
	if cap(buf)-len(buf) < n {
		nb := make([]byte, len(buf), 2*cap(buf)+n)
		copy(nb, buf)
		buf = nb
	}
	return buf[:len(buf)+n]
}

// appendRunLength appends run-1 as a ZRLE run length: 255s, then the rest.
func appendRunLength(buf []byte, run int) []byte {
	l := run - 1
	for ; l >= 255; l -= 255 {
		buf = append(buf, 255)
	}
	return append(buf, byte(l))
}

// appendPlainRuns appends px as plain RLE runs.
func appendPlainRuns(buf []byte, px []uint32, n int) []byte {
	for i := 0; i < len(px); {
		v := px[i]
		j := i + 1
		for j < len(px) && px[j] == v {
			j++
		}
		buf = appendWire(buf, v, n)
		buf = appendRunLength(buf, j-i)
		i = j
	}
	return buf
}

// appendIndexRuns appends px, whose colours are all in e.pal, as
// palette RLE runs.
func (e *zrleEncoder) appendIndexRuns(buf []byte, px []uint32) []byte {
	for i := 0; i < len(px); {
		v := px[i]
		j := i + 1
		for j < len(px) && px[j] == v {
			j++
		}
		c, _ := e.pal.add(v)
		if j-i == 1 {
			buf = append(buf, c)
		} else {
			buf = append(buf, c|128)
			buf = appendRunLength(buf, j-i)
		}
		i = j
	}
	return buf
}

// indices returns the palette index of each pixel of px, whose colours
// are all in e.pal.
func (e *zrleEncoder) indices(px []uint32) []uint8 {
	idx := e.idx[:len(px)]
	for i := 0; i < len(px); {
		v := px[i]
		c, _ := e.pal.add(v)
		idx[i] = c
		i++
		for i < len(px) && px[i] == v {
			idx[i] = c
			i++
		}
	}
	return idx
}

// appendPacked appends palette indices of bits bits each, most
// significant first, each row starting on a byte.
func appendPacked(buf []byte, idx []uint8, w, h, bits int) []byte {
	for y := 0; y < h; y++ {
		row := idx[y*w : y*w+w]
		var acc byte
		nb := 0
		for _, v := range row {
			acc = acc<<bits | v
			nb += bits
			if nb == 8 {
				buf = append(buf, acc)
				acc, nb = 0, 0
			}
		}
		if nb > 0 {
			buf = append(buf, acc<<(8-nb))
		}
	}
	return buf
}

// zrlePalette collects a tile's distinct colours in order of appearance,
// up to zrleMaxPalette, in a small open-addressed hash table. Slots are
// marked with a generation number, so starting a tile clears nothing.
type zrlePalette struct {
	colours [zrleMaxPalette]uint32
	n       int
	gen     uint32
	slots   [256]palSlot
}

type palSlot struct {
	key uint32
	gen uint32
	idx uint8
}

func (p *zrlePalette) reset() {
	p.n = 0
	p.gen++
	if p.gen == 0 { // wrapped: old marks could look current
		p.slots = [256]palSlot{}
		p.gen = 1
	}
}

// add returns v's index, adding it if new. ok is false when the palette
// is full and v is not in it.
func (p *zrlePalette) add(v uint32) (idx uint8, ok bool) {
	h := (v * 0x9e3779b1) >> 24
	for {
		s := &p.slots[h]
		if s.gen != p.gen {
			if p.n == zrleMaxPalette {
				return 0, false
			}
			*s = palSlot{key: v, gen: p.gen, idx: uint8(p.n)}
			p.colours[p.n] = v
			p.n++
			return s.idx, true
		}
		if s.key == v {
			return s.idx, true
		}
		h = (h + 1) & 255
	}
}
