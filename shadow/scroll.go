package shadow

import (
	"cmp"
	"encoding/binary"
	"image"
	"math/bits"
	"slices"

	"github.com/assist-project/assist/screen"
)

// Scroll detection tuning.
const (
	// minScrollHeight is the height below which an area is not worth
	// checking: a CopyRect saves little there.
	minScrollHeight = 64
	// minScrollRows is how many changed rows a scroll must explain.
	minScrollRows = 32
	// maxRowMatches skips rows whose content occurs more often than this
	// in the old area (blank lines): they vote for every offset.
	maxRowMatches = 8
	// scrollSamples is about how many rows of the new content are hashed.
	scrollSamples = 128
)

// scroller finds vertical scrolls. It keeps its buffers from change to
// change so that detection allocates nothing in the steady state.
type scroller struct {
	oldH, newH []uint64
	prints     []uint64 // sorted row prints of the old area (see mayScroll)
	// lastHit is where the last scroll was found: an area that keeps
	// scrolling skips mayScroll, which would only add to its cost.
	lastHit image.Rectangle
	sorted  []hashedRow
	votes   []int32
	seen    []bool // tiles already put in a group
	queue   []int
}

type hashedRow struct {
	h uint64
	y int32
}

// candidates appends to dst the areas worth checking for a scroll: the
// bounding boxes of groups of touching changed tiles that are tall enough
// and mostly changed. Grouping by changed tiles rather than by damage keeps
// an unrelated change elsewhere (a clock) out of a scrolling area, even
// when the capturer reports the whole screen as damaged.
func (sc *scroller) candidates(g *tileGrid, dst []image.Rectangle) []image.Rectangle {
	m := &g.damaged
	n := len(g.boxes)
	sc.seen = grow(sc.seen, n)
	clear(sc.seen)
	for start := range g.boxes {
		if g.boxes[start].Empty() || sc.seen[start] {
			continue
		}
		sc.seen[start] = true
		sc.queue = append(sc.queue[:0], start)
		var box image.Rectangle
		count := 0
		for len(sc.queue) > 0 {
			i := sc.queue[len(sc.queue)-1]
			sc.queue = sc.queue[:len(sc.queue)-1]
			box = box.Union(g.boxes[i])
			count++
			x := i % m.cols
			for _, j := range [4]int{i - 1, i + 1, i - m.cols, i + m.cols} {
				if j < 0 || j >= n || (j == i-1 && x == 0) || (j == i+1 && x == m.cols-1) {
					continue
				}
				if !g.boxes[j].Empty() && !sc.seen[j] {
					sc.seen[j] = true
					sc.queue = append(sc.queue, j)
				}
			}
		}
		if box.Dy() < minScrollHeight || box.Dx() < 8 {
			continue
		}
		x0, y0, x1, y1 := m.span(box)
		if 2*count < (x1-x0)*(y1-y0) {
			continue
		}
		dst = append(dst, box)
	}
	return dst
}

// detect looks for a vertical offset d such that many rows of area in new
// equal the rows d lower in old (d > 0: the content moved up). It returns
// the copy that moves the matching rows of old to their place in new.
//
// Every row of old is hashed, to look rows up; only every step-th row of
// new is, which is enough to find and check an offset. Hashes may collide
// and unsampled rows may not match: the caller compares the result
// exactly, so a wrong guess costs bandwidth, never correctness.
func (sc *scroller) detect(old, new *screen.Image, area image.Rectangle) (Copy, bool) {
	step := max(1, area.Dy()/scrollSamples)
	recent := area.Overlaps(sc.lastHit)
	if !recent && !sc.mayScroll(old, new, area, step) {
		return Copy{}, false
	}
	c, ok := sc.detectRows(old, new, area, step)
	switch {
	case ok:
		sc.lastHit = area
	case recent:
		sc.lastHit = image.Rectangle{}
	}
	return c, ok
}

// detectRows is detect without the quick rejection.
func (sc *scroller) detectRows(old, new *screen.Image, area image.Rectangle, step int) (Copy, bool) {
	h := area.Dy()
	n := 4 * area.Dx()
	sc.oldH = grow(sc.oldH, h)
	sc.newH = grow(sc.newH, h)
	sc.sorted = sc.sorted[:0]
	for i := range h {
		o := old.PixOffset(area.Min.X, area.Min.Y+i)
		sc.oldH[i] = rowHash(old.Pix[o : o+n])
		sc.sorted = append(sc.sorted, hashedRow{sc.oldH[i], int32(i)})
	}
	for i := 0; i < h; i += step {
		o := new.PixOffset(area.Min.X, area.Min.Y+i)
		sc.newH[i] = rowHash(new.Pix[o : o+n])
	}
	slices.SortFunc(sc.sorted, func(a, b hashedRow) int { return cmp.Compare(a.h, b.h) })

	// Each changed sample row of new votes for the offsets at which its
	// content appears in old. votes[d+h] counts offset d.
	sc.votes = grow(sc.votes, 2*h)
	clear(sc.votes)
	for i := 0; i < h; i += step {
		nh := sc.newH[i]
		if nh == sc.oldH[i] {
			continue
		}
		lo, _ := slices.BinarySearchFunc(sc.sorted, nh, func(r hashedRow, h uint64) int { return cmp.Compare(r.h, h) })
		hi := lo
		for hi < len(sc.sorted) && sc.sorted[hi].h == nh {
			hi++
		}
		if hi == lo || hi-lo > maxRowMatches {
			continue
		}
		for _, r := range sc.sorted[lo:hi] {
			sc.votes[int(r.y)-i+h]++
		}
	}
	best := 0
	for j, v := range sc.votes {
		if v > sc.votes[best] {
			best = j
		}
	}
	d := best - h
	if d == 0 || sc.votes[best] < 2 {
		return Copy{}, false
	}

	// Check the offset on the samples: it must explain many rows that
	// changed, and most of the area. The copy spans from the first to the
	// last matching sample, widened up to the neighbouring samples.
	lo, hi := max(0, -d), min(h, h-d) // rows of new with a row of old at d
	first, last := -1, -1
	matches, gain, samples := 0, 0, 0
	prevMiss := lo - 1
	for i := (lo + step - 1) / step * step; i < hi; i += step {
		samples++
		if sc.newH[i] != sc.oldH[i+d] {
			prevMiss = i
			continue
		}
		matches++
		if sc.newH[i] != sc.oldH[i] {
			gain++
		}
		if first < 0 {
			first = prevMiss + 1
		}
		last = min(i+step, hi) - 1
	}
	if gain*step < minScrollRows || 2*matches < samples || 2*matches*step < h {
		return Copy{}, false
	}
	y := area.Min.Y
	return Copy{
		Src: image.Rect(area.Min.X, y+first+d, area.Max.X, y+last+1+d),
		Dst: image.Pt(area.Min.X, y+first),
	}, true
}

// mayScroll is a cheap test that rules out most areas that did not
// scroll (video, a repainted window) before detect hashes every row of
// the old area, which costs as much as reading the area once.
//
// detect counts a vote only for a sample row of new that equals some
// other row of old, and needs two votes. Equal rows have equal prints (a
// hash of a few words spread over the row), so when fewer than two sample
// rows have a print that occurs at another row of old, detect would find
// nothing: mayScroll then reports false, and is never wrong to do so. A
// print is 8 loads, against a few hundred for the hash of a row.
func (sc *scroller) mayScroll(old, new *screen.Image, area image.Rectangle, step int) bool {
	h := area.Dy()
	sc.prints = grow(sc.prints, h)
	for i := range h {
		sc.prints[i] = rowPrint(old, area.Min.X, area.Min.Y+i, area.Dx())
	}
	// Which row a print came from matters only when it occurs once, and
	// then the row is found again by comparing prints.
	slices.Sort(sc.prints)
	candidates := 0
	for i := 0; i < h; i += step {
		p := rowPrint(new, area.Min.X, area.Min.Y+i, area.Dx())
		lo, found := slices.BinarySearch(sc.prints, p)
		if !found {
			continue
		}
		if lo+1 < h && sc.prints[lo+1] == p || p != rowPrint(old, area.Min.X, area.Min.Y+i, area.Dx()) {
			// Occurs twice, or once at a row other than i.
			candidates++
			if candidates >= 2 {
				return true
			}
		}
	}
	return false
}

// printWords is how many 8-byte words of a row rowPrint reads.
const printWords = 8

// rowPrint hashes printWords words spread evenly over the w pixels of row
// y of m from x on, or the whole row when it is narrower than that.
func rowPrint(m *screen.Image, x, y, w int) uint64 {
	o := m.PixOffset(x, y)
	row := m.Pix[o : o+4*w]
	if len(row) < 8*printWords*2 {
		return rowHash(row)
	}
	// Word k starts at pixel k*(w-2)/(printWords-1): the first and last
	// pixels are always read.
	var a uint64 = 1
	for k := range printWords {
		i := 4 * (k * (w - 2) / (printWords - 1))
		a = bits.RotateLeft64((a^binary.LittleEndian.Uint64(row[i:]))*0x9e3779b97f4a7c15, 29)
	}
	return a
}

// rowHash hashes a row of pixels. Four independent multiply-xor lanes run
// at several bytes a cycle, twice maphash's speed here, and any difference
// confined to one lane always changes the result.
func rowHash(b []byte) uint64 {
	const k0, k1, k2, k3 = 0x9e3779b97f4a7c15, 0xc2b2ae3d27d4eb4f, 0x165667b19e3779f9, 0xd6e8feb86659fd93
	var a, c, d, e uint64 = 1, 2, 3, 4
	for len(b) >= 32 {
		a = (a ^ binary.LittleEndian.Uint64(b)) * k0
		c = (c ^ binary.LittleEndian.Uint64(b[8:])) * k1
		d = (d ^ binary.LittleEndian.Uint64(b[16:])) * k2
		e = (e ^ binary.LittleEndian.Uint64(b[24:])) * k3
		b = b[32:]
	}
	for len(b) >= 8 {
		a = (a ^ binary.LittleEndian.Uint64(b)) * k0
		b = b[8:]
	}
	for _, x := range b {
		c = (c ^ uint64(x)) * k1
	}
	return bits.RotateLeft64(a, 7) ^ bits.RotateLeft64(c, 19) ^ bits.RotateLeft64(d, 31) ^ bits.RotateLeft64(e, 47)
}

// grow returns s resized to n elements, reusing its storage when it can.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// applyCopy moves c.Src to c.Dst within m, which must contain both.
func applyCopy(m *screen.Image, c Copy) {
	n := 4 * c.Src.Dx()
	dy := c.Dst.Y - c.Src.Min.Y
	move := func(y int) {
		s := m.PixOffset(c.Src.Min.X, y)
		d := m.PixOffset(c.Dst.X, y+dy)
		copy(m.Pix[d:d+n], m.Pix[s:s+n])
	}
	// Walk rows away from the destination so no source row is
	// overwritten before it is read; copy handles overlap within a row.
	if dy <= 0 {
		for y := c.Src.Min.Y; y < c.Src.Max.Y; y++ {
			move(y)
		}
	} else {
		for y := c.Src.Max.Y - 1; y >= c.Src.Min.Y; y-- {
			move(y)
		}
	}
}
