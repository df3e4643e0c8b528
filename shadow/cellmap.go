package shadow

import (
	"bytes"
	"image"
	"unsafe"
)

// cellMap is a bitmap over a grid of square cells covering a screen. It is
// exact at cell granularity, costs one byte per cell, and turns back into a
// few non-overlapping rectangles, which is all the dirty bookkeeping needs:
// a list of rectangles would need merging and splitting to stay
// non-overlapping and bounded.
type cellMap struct {
	cell       int
	cols, rows int
	size       image.Point
	bits       []bool
}

// reset sizes m for a screen of the given size and clears every cell.
func (m *cellMap) reset(size image.Point, cell int) {
	m.cell = cell
	m.size = size
	m.cols = (size.X + cell - 1) / cell
	m.rows = (size.Y + cell - 1) / cell
	n := m.cols * m.rows
	if cap(m.bits) < n {
		m.bits = make([]bool, n)
	}
	m.bits = m.bits[:n]
	clear(m.bits)
}

// bounds is the screen rectangle.
func (m *cellMap) bounds() image.Rectangle {
	return image.Rectangle{Max: m.size}
}

// span returns the range of cells [x0,x1)×[y0,y1) that overlap r.
func (m *cellMap) span(r image.Rectangle) (x0, y0, x1, y1 int) {
	r = r.Intersect(m.bounds())
	if r.Empty() {
		return 0, 0, 0, 0
	}
	c := m.cell
	return r.Min.X / c, r.Min.Y / c, (r.Max.X + c - 1) / c, (r.Max.Y + c - 1) / c
}

// cellRect is the part of the screen that cell (x, y) covers.
func (m *cellMap) cellRect(x, y int) image.Rectangle {
	c := m.cell
	return image.Rect(x*c, y*c, (x+1)*c, (y+1)*c).Intersect(m.bounds())
}

// mark sets every cell that overlaps r.
func (m *cellMap) mark(r image.Rectangle) {
	x0, y0, x1, y1 := m.span(r)
	for y := y0; y < y1; y++ {
		row := m.bits[y*m.cols:]
		for x := x0; x < x1; x++ {
			row[x] = true
		}
	}
}

// unmark unsets every cell that overlaps r.
func (m *cellMap) unmark(r image.Rectangle) {
	x0, y0, x1, y1 := m.span(r)
	for y := y0; y < y1; y++ {
		clear(m.bits[y*m.cols+x0 : y*m.cols+x1])
	}
}

// markAll sets every cell.
func (m *cellMap) markAll() {
	for i := range m.bits {
		m.bits[i] = true
	}
}

// clear unsets every cell.
func (m *cellMap) clear() {
	clear(m.bits)
}

// unmarkCovered unsets the cells whose visible part lies entirely within r.
// Cells only partly covered keep their state: the bitmap cannot express
// "dirty except this corner", and staying dirty is always safe.
func (m *cellMap) unmarkCovered(r image.Rectangle) {
	x0, y0, x1, y1 := m.coveredSpan(r)
	for y := y0; y < y1; y++ {
		row := m.bits[y*m.cols:]
		for x := x0; x < x1; x++ {
			row[x] = false
		}
	}
}

// coveredSpan returns the range of cells [x0,x1)×[y0,y1) whose visible
// part lies entirely within r (an empty range when there are none).
func (m *cellMap) coveredSpan(r image.Rectangle) (x0, y0, x1, y1 int) {
	r = r.Intersect(m.bounds())
	if r.Empty() {
		return 0, 0, 0, 0
	}
	c := m.cell
	x0, y0 = (r.Min.X+c-1)/c, (r.Min.Y+c-1)/c
	x1, y1 = r.Max.X/c, r.Max.Y/c
	// The last column and row may be cut short by the screen's edge.
	if r.Max.X == m.size.X {
		x1 = m.cols
	}
	if r.Max.Y == m.size.Y {
		y1 = m.rows
	}
	return x0, y0, x1, y1
}

// run is a horizontal run of set cells [x0, x1) that started at row y0.
type run struct{ x0, x1, y0 int }

// rects appends to dst non-overlapping rectangles, clipped to the screen,
// covering exactly the set cells. Runs of set cells in each row are merged
// with the identical run of the row above, so a changed block of any size
// comes out as one rectangle.
func (m *cellMap) rects(dst []image.Rectangle) []image.Rectangle {
	var open, next []run
	emit := func(r run, y int) {
		c := m.cell
		dst = append(dst, image.Rect(r.x0*c, r.y0*c, r.x1*c, y*c).Intersect(m.bounds()))
	}
	// The cells as bytes (a bool is one byte, 0 or 1), so that the runs
	// are found with IndexByte, many cells at a time: a Take of every
	// update scans the whole screen's cells, mostly clear.
	all := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(m.bits))), len(m.bits))
	for y := 0; y <= m.rows; y++ {
		next = next[:0]
		i := 0 // index into open, whose runs are sorted by x0
		x := 0
		for y < m.rows && x < m.cols {
			row := all[y*m.cols : (y+1)*m.cols]
			n := bytes.IndexByte(row[x:], 1)
			if n < 0 {
				break
			}
			x += n
			x0 := x
			if n = bytes.IndexByte(row[x:], 0); n < 0 {
				x = m.cols
			} else {
				x += n
			}
			// Close the open runs that end before this one can match.
			for i < len(open) && open[i].x0 < x0 {
				emit(open[i], y)
				i++
			}
			if i < len(open) && open[i].x0 == x0 && open[i].x1 == x {
				next = append(next, open[i])
				i++
			} else {
				next = append(next, run{x0, x, y})
			}
		}
		for ; i < len(open); i++ {
			emit(open[i], y)
		}
		open, next = next, open
	}
	return dst
}
