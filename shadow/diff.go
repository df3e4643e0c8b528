package shadow

import (
	"bytes"
	"encoding/binary"
	"image"

	"github.com/assist-project/assist/screen"
)

// tileGrid holds the per-change state of the tile comparison: which tiles
// the capturer said were damaged, the part of each that the damage covers,
// and the bounding box of the pixels that really changed (empty when none
// did).
type tileGrid struct {
	damaged cellMap
	// within[i] is the bounding box of the damage inside tile i: only
	// that part is grabbed and compared, as the rest cannot have changed.
	// A video whose frames arrive in bands of rows that do not line up
	// with tiles would otherwise have some tiles grabbed and compared
	// twice per frame, once for each band.
	within []image.Rectangle
	boxes  []image.Rectangle // indexed like damaged.bits
}

// reset sizes g for a screen and forgets the previous change.
func (g *tileGrid) reset(size image.Point, tile int) {
	g.damaged.reset(size, tile)
	n := len(g.damaged.bits)
	g.boxes = grow(g.boxes, n)
	clear(g.boxes)
	g.within = grow(g.within, n)
	clear(g.within)
}

// markDamage records that r (within the screen) may have changed.
func (g *tileGrid) markDamage(r image.Rectangle) {
	m := &g.damaged
	x0, y0, x1, y1 := m.span(r)
	for ty := y0; ty < y1; ty++ {
		for tx := x0; tx < x1; tx++ {
			i := ty*m.cols + tx
			m.bits[i] = true
			g.within[i] = g.within[i].Union(r.Intersect(m.cellRect(tx, ty)))
		}
	}
}

// widen extends the damaged part of each tile that is at least half
// damaged to the whole tile. Grabbing the rest costs little more, and it
// often picks up changes whose damage is still on its way: X reports
// damage per drawing request, so a burst of drawing (a scroll, then the
// text it reveals, then a clock next to it) arrives in several events, and
// the screen grabbed a moment later already shows more of the burst.
func (g *tileGrid) widen() {
	m := &g.damaged
	for i, b := range m.bits {
		if !b {
			continue
		}
		c := m.cellRect(i%m.cols, i/m.cols)
		if w := g.within[i]; 2*w.Dx()*w.Dy() >= c.Dx()*c.Dy() {
			g.within[i] = c
		}
	}
}

// damagedIn returns the bounding box of the damage inside r, a union of
// whole tiles.
func (g *tileGrid) damagedIn(r image.Rectangle) image.Rectangle {
	m := &g.damaged
	x0, y0, x1, y1 := m.span(r)
	var box image.Rectangle
	for ty := y0; ty < y1; ty++ {
		for _, w := range g.within[ty*m.cols+x0 : ty*m.cols+x1] {
			box = box.Union(w)
		}
	}
	return box
}

// covered reports whether the damage covers every pixel of r: only there
// was the screen grabbed.
func (g *tileGrid) covered(r image.Rectangle) bool {
	m := &g.damaged
	x0, y0, x1, y1 := m.span(r)
	for ty := y0; ty < y1; ty++ {
		for tx := x0; tx < x1; tx++ {
			i := ty*m.cols + tx
			if !m.bits[i] || !r.Intersect(m.cellRect(tx, ty)).In(g.within[i]) {
				return false
			}
		}
	}
	return true
}

// diffDamaged compares the damaged part of every damaged tile of old and
// new and records the changed boxes.
func (g *tileGrid) diffDamaged(old, new *screen.Image) {
	for i, b := range g.damaged.bits {
		if b {
			g.boxes[i] = diffRect(old, new, g.within[i])
		}
	}
}

// rediff compares again the damaged tiles that overlap r, after the copy
// was changed there (by a scroll).
func (g *tileGrid) rediff(old, new *screen.Image, r image.Rectangle) {
	m := &g.damaged
	x0, y0, x1, y1 := m.span(r)
	for ty := y0; ty < y1; ty++ {
		for tx := x0; tx < x1; tx++ {
			i := ty*m.cols + tx
			if m.bits[i] {
				g.boxes[i] = diffRect(old, new, g.within[i])
			}
		}
	}
}

// changed appends the non-empty boxes to dst.
func (g *tileGrid) changed(dst []image.Rectangle) []image.Rectangle {
	for _, b := range g.boxes {
		if !b.Empty() {
			dst = append(dst, b)
		}
	}
	return dst
}

// diffRect returns the bounding box of the pixels of r that differ between
// a and b, or an empty rectangle. Unchanged areas, the common case, cost
// one memcmp per row.
func diffRect(a, b *screen.Image, r image.Rectangle) image.Rectangle {
	n := 4 * r.Dx()
	row := func(m *screen.Image, y int) []byte {
		i := m.PixOffset(r.Min.X, y)
		return m.Pix[i : i+n : i+n]
	}
	y0 := r.Min.Y
	for y0 < r.Max.Y && bytes.Equal(row(a, y0), row(b, y0)) {
		y0++
	}
	if y0 == r.Max.Y {
		return image.Rectangle{}
	}
	y1 := r.Max.Y
	for bytes.Equal(row(a, y1-1), row(b, y1-1)) {
		y1--
	}
	lo, hi := n, 0
	for y := y0; y < y1 && (lo > 0 || hi < n); y++ {
		ra, rb := row(a, y), row(b, y)
		if l := firstDiff(ra[:lo], rb[:lo]); l < lo {
			lo = l
		}
		if h := lastDiff(ra[hi:], rb[hi:]); h > 0 {
			hi += h
		}
	}
	return image.Rect(r.Min.X+lo/4, y0, r.Min.X+(hi+3)/4, y1)
}

// firstDiff returns the index of the first byte where a and b (of equal
// length) differ, or len(a).
func firstDiff(a, b []byte) int {
	i := 0
	for ; i+8 <= len(a); i += 8 {
		if binary.LittleEndian.Uint64(a[i:]) != binary.LittleEndian.Uint64(b[i:]) {
			break
		}
	}
	for ; i < len(a); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// lastDiff returns one past the index of the last byte where a and b (of
// equal length) differ, or 0.
func lastDiff(a, b []byte) int {
	i := len(a)
	for ; i >= 8; i -= 8 {
		if binary.LittleEndian.Uint64(a[i-8:]) != binary.LittleEndian.Uint64(b[i-8:]) {
			break
		}
	}
	for ; i > 0; i-- {
		if a[i-1] != b[i-1] {
			return i
		}
	}
	return 0
}
