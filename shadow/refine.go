package shadow

import (
	"image"
	"time"

	"github.com/assist-project/assist/screen"
)

// Lossless refinement. A viewer that asked for JPEG gets photo-like areas
// approximately; once such an area stops changing, its connection sends it
// again losslessly, so a still screen ends up exact at the viewer. The
// subscriber keeps the bookkeeping because it alone sees, under the
// screen's lock, which cells change, which are pending and where scrolls
// move the viewer's pixels: per cell, when the viewer last got it lossy.
// The connection says what it sent (NoteSent) and asks for what is due
// (Refine).

// lossyCells records, per cell of the subscriber's grid, when the viewer
// last received the cell lossy (Unix nanoseconds), or 0 when the viewer
// holds it exactly. A nil at means no cell is lossy.
type lossyCells struct {
	at   []int64
	prev []int64 // scratch: at before a copy moved it
	ripe cellMap // scratch: the cells Refine may send
	// box (in cells) holds every lossy cell, and floor is at most the
	// time of each: the scans of every update (LossySince, Refine) read
	// only the box, and Refine none of it while even floor is not still
	// long enough, which is always the case under a video (measured with
	// BenchmarkRefineVideo: a full scan of a 1280x800 screen's cells
	// twice per update was a few percent of the video's CPU). Both only
	// widen as cells become lossy, and LossySince's scan makes them exact.
	box   image.Rectangle
	floor int64
}

// forget drops the whole state: no cell is lossy.
func (l *lossyCells) forget() {
	l.at, l.box, l.floor = nil, image.Rectangle{}, 0
}

// stamped widens box and floor for cells [x0,x1)×[y0,y1) made lossy at t.
func (l *lossyCells) stamped(x0, y0, x1, y1 int, t int64) {
	if x0 >= x1 || y0 >= y1 {
		return
	}
	if l.box.Empty() || t < l.floor {
		l.floor = t
	}
	l.box = l.box.Union(image.Rect(x0, y0, x1, y1))
}

// NoteSent records an update the viewer was sent: every area in sent
// (each as the viewer now shows it, copies already applied) and, among
// them, the areas sent lossy, at time at. Cells wholly within a sent
// area become exact unless a lossy area overlaps them; partly covered
// cells keep their state, as exactness cannot be told for part of a cell.
func (sub *Subscriber) NoteSent(sent, lossy []image.Rectangle, at time.Time) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	l := &sub.lossy
	if sub.closed || (l.at == nil && len(lossy) == 0) {
		return
	}
	m := &sub.dirty
	if n := m.cols * m.rows; len(l.at) != n {
		l.forget()
		l.at = make([]int64, n)
	}
	for _, r := range sent {
		x0, y0, x1, y1 := m.coveredSpan(r)
		for y := y0; y < y1; y++ {
			clear(l.at[y*m.cols+x0 : y*m.cols+x1])
		}
	}
	stamp := at.UnixNano()
	for _, r := range lossy {
		x0, y0, x1, y1 := m.span(r)
		for y := y0; y < y1; y++ {
			row := l.at[y*m.cols:]
			for x := x0; x < x1; x++ {
				row[x] = stamp
			}
		}
		l.stamped(x0, y0, x1, y1, stamp)
	}
}

// LossySince reports the earliest time a cell that the viewer holds lossy,
// and that has no change pending, was sent; ok is false when there is
// none. Refine finds that cell due once the time is before its still
// argument.
func (sub *Subscriber) LossySince() (t time.Time, ok bool) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	l := &sub.lossy
	if l.at == nil || l.box.Empty() {
		return time.Time{}, false
	}
	// The scan also makes box and floor exact.
	cols := sub.dirty.cols
	var first, floor int64
	box := image.Rectangle{}
	for y := l.box.Min.Y; y < l.box.Max.Y; y++ {
		o := y * cols
		row := l.at[o+l.box.Min.X : o+l.box.Max.X]
		x0, x1 := -1, 0
		for dx, v := range row {
			if v == 0 {
				continue
			}
			if x0 < 0 {
				x0 = dx
			}
			x1 = dx + 1
			if floor == 0 || v < floor {
				floor = v
			}
			i := o + l.box.Min.X + dx
			if (first == 0 || v < first) && !sub.dirty.bits[i] && !sub.unsettled.bits[i] {
				first = v
			}
		}
		if x0 >= 0 {
			box = box.Union(image.Rect(l.box.Min.X+x0, y, l.box.Min.X+x1, y+1))
		}
	}
	l.box, l.floor = box, floor
	if first == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, first), true
}

// Refine returns the areas to send losslessly now: cells the viewer holds
// lossy that were last sent at or before still and have no change
// pending, as rectangles of whole cells covering at most about maxArea
// pixels (at least one row of cells). It returns nothing while copies are
// pending: they must reach the viewer first, or a copy would move
// refined pixels that the copy's source did not hold yet. fn is called, as
// in Take, while the capture loop waits, to copy the pixels of the
// rectangles out of cur; the same rules apply. The cells stay lossy until
// NoteSent says they were sent.
func (sub *Subscriber) Refine(still time.Time, maxArea int, fn func(rs []image.Rectangle, cur *screen.Image)) []image.Rectangle {
	s := sub.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	sub.mu.Lock()
	defer sub.mu.Unlock()
	l := &sub.lossy
	m := &sub.dirty
	if sub.closed || l.at == nil || len(sub.copies) > 0 || sub.resized || len(l.at) != len(m.bits) {
		return nil
	}
	if l.ripe.size != m.size || l.ripe.cell != m.cell {
		l.ripe.reset(m.size, m.cell)
	}
	limit := still.UnixNano()
	if l.box.Empty() || l.floor > limit {
		return nil // nothing lossy, or nothing still long enough
	}
	clear(l.ripe.bits)
	found := false
	for y := l.box.Min.Y; y < l.box.Max.Y; y++ {
		for i := y*m.cols + l.box.Min.X; i < y*m.cols+l.box.Max.X; i++ {
			v := l.at[i]
			r := v != 0 && v <= limit && !m.bits[i] && !sub.unsettled.bits[i]
			l.ripe.bits[i] = r
			found = found || r
		}
	}
	if !found {
		return nil
	}
	all := l.ripe.rects(nil)
	var out []image.Rectangle
	area := 0
	for _, r := range all {
		if area >= maxArea {
			break
		}
		if a := r.Dx() * r.Dy(); area+a > maxArea {
			// Take whole rows of cells, at least one.
			rows := max(1, (maxArea-area)/r.Dx()/m.cell) * m.cell
			r.Max.Y = min(r.Max.Y, r.Min.Y+rows)
		}
		area += r.Dx() * r.Dy()
		out = append(out, r)
	}
	if fn != nil {
		fn(out, s.cur)
	}
	return out
}

// moveLossy carries the lossy state along a copy the viewer will apply:
// a destination cell gets the latest time of the source cells its pixels
// come from, or keeps its own too when the copy covers it only in part.
// Called with sub.mu held, with c's destination within the screen.
func (sub *Subscriber) moveLossy(c Copy) {
	l := &sub.lossy
	m := &sub.dirty
	if l.at == nil || len(l.at) != len(m.bits) || l.box.Empty() {
		return
	}
	l.prev = append(l.prev[:0], l.at...)
	dst := c.DstRect()
	off := c.Src.Min.Sub(c.Dst)
	x0, y0, x1, y1 := m.span(dst)
	// The times moved are times of lossy cells already: floor holds.
	l.box = l.box.Union(image.Rect(x0, y0, x1, y1))
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			cell := m.cellRect(x, y)
			part := cell.Intersect(dst)
			var t int64
			sx0, sy0, sx1, sy1 := m.span(part.Add(off))
			for sy := sy0; sy < sy1; sy++ {
				for sx := sx0; sx < sx1; sx++ {
					t = max(t, l.prev[sy*m.cols+sx])
				}
			}
			i := y*m.cols + x
			if part != cell {
				t = max(t, l.prev[i])
			}
			l.at[i] = t
		}
	}
}
