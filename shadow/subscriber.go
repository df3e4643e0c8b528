package shadow

import (
	"image"
	"sync"
	"time"

	"github.com/assist-project/assist/screen"
)

// maxCopies bounds the copies a subscriber holds: past that, a viewer that
// is slow to collect gets plain repaints, which cost no more than
// replaying a long history of scrolls.
const maxCopies = 4

// Copy moves pixels on the viewer's screen: the pixels of Src go to the
// rectangle of the same size whose top-left corner is Dst (a CopyRect).
type Copy struct {
	Src image.Rectangle
	Dst image.Point
}

// DstRect is the rectangle that c overwrites.
func (c Copy) DstRect() image.Rectangle {
	return c.Src.Add(c.Dst.Sub(c.Src.Min))
}

// Pending is what changed since a subscriber last collected.
//
// The invariant: a viewer that showed the copy as of its previous Collect
// (its Copies applied and its Dirty areas read) and that now applies
// Copies in order and then paints Dirty from Screen.Read shows the current
// copy exactly. Where a copy's source was not up to date at the viewer,
// the affected part of its destination is in Dirty too.
type Pending struct {
	// Copies are applied first, in order.
	Copies []Copy
	// Dirty are then read from the current copy: non-overlapping
	// rectangles within the screen.
	Dirty []image.Rectangle
	// Held are areas the subscriber's reader held back (Hold) that have
	// not changed since: read and painted like Dirty, but no change of
	// the screen. They overlap neither Dirty nor each other; empty for a
	// reader that never holds anything back.
	Held []image.Rectangle
	// Resized is set when the screen changed size since the last Collect:
	// Dirty then covers the whole screen, and Copies holds only copies made
	// after the resize. Size is the screen's size, set in every Pending.
	Resized bool
	Size    image.Point
	// CursorChanged is set when Screen.Cursor has a new shape.
	CursorChanged bool
	// Clipboard is set when the desktop's clipboard got new text (Text).
	// ClipboardAt is when the capture loop saw that text: a viewer may
	// only get text that changed while it was allowed to (rfb.Server's
	// ClipboardOut decides).
	Clipboard   bool
	Text        string
	ClipboardAt time.Time
	// Invalidations is how many times Invalidate had been called when
	// this was taken: what the returned count of a call covers, this
	// Pending includes.
	Invalidations uint64
}

// Empty reports whether p carries nothing to send.
func (p Pending) Empty() bool {
	return len(p.Copies) == 0 && len(p.Dirty) == 0 && len(p.Held) == 0 && !p.Resized && !p.CursorChanged && !p.Clipboard
}

// Subscriber follows the changes of a Screen for one viewer. Its methods
// are safe for concurrent use.
type Subscriber struct {
	s     *Screen
	ready chan struct{}

	mu     sync.Mutex
	closed bool
	size   image.Point
	// dirty are the cells the viewer must repaint. unsettled are the cells
	// handed out by the last Collect: until ReadDone, the viewer may read
	// them at any later version of the copy, so a copy from them is not
	// trusted. Take reads at once and leaves nothing unsettled.
	dirty, unsettled cellMap
	// held are the dirty cells that are dirty only because the reader
	// held them back (Hold), a subset of dirty; anyHeld says some are.
	// fresh is scratch for collect.
	held, fresh cellMap
	anyHeld     bool
	copies      []Copy
	resized     bool
	cursor      bool
	clip        bool
	text        string
	clipAt      time.Time
	stale       []image.Rectangle // scratch for addCopy
	lossy       lossyCells        // what the viewer holds lossy (refine.go)
	// invalidations counts the calls of Invalidate.
	invalidations uint64
}

// Ready receives a value whenever changes are pending. It is buffered: a
// signal is never lost, but one signal may stand for many changes, and
// Collect may find nothing after a signal that was already collected.
// Closing the subscriber does not close the channel.
func (sub *Subscriber) Ready() <-chan struct{} {
	return sub.ready
}

// Collect takes and clears everything pending.
//
// The capture loop may change the copy between Collect and the Reads of
// the Dirty areas that follow, so a later copy whose source lies in those
// areas is not trusted until ReadDone. The caller must finish reading
// before it collects again. Take avoids the question altogether.
func (sub *Subscriber) Collect() Pending {
	return sub.collect(false)
}

// Take collects like Collect and calls fn with the result and the copy
// while the capture loop waits, so that fn reads (copies out) exactly the
// pixels the Pending describes. It returns the Pending as fn left it. fn
// must be quick (a memcpy of the dirty areas) and must not call methods
// of the Screen or of sub; cur must not be used after fn returns.
func (sub *Subscriber) Take(fn func(p *Pending, cur *screen.Image)) Pending {
	s := sub.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	p := sub.collect(true)
	if fn != nil {
		fn(&p, s.cur)
	}
	return p
}

// collect takes everything pending. settled tells whether the caller
// reads the dirty areas before the copy can change again.
func (sub *Subscriber) collect(settled bool) Pending {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	dirty := sub.freshLocked()
	var held []image.Rectangle
	if sub.anyHeld {
		held = sub.held.rects(nil)
		sub.held.clear()
		sub.anyHeld = false
	}
	p := Pending{
		Copies:        sub.copies,
		Dirty:         dirty.rects(nil),
		Held:          held,
		Resized:       sub.resized,
		Size:          sub.size,
		CursorChanged: sub.cursor,
		Clipboard:     sub.clip,
		Text:          sub.text,
		ClipboardAt:   sub.clipAt,
		Invalidations: sub.invalidations,
	}
	sub.copies = nil
	if settled {
		sub.unsettled.clear()
	} else {
		sub.dirty, sub.unsettled = sub.unsettled, sub.dirty
	}
	sub.dirty.clear()
	sub.resized, sub.cursor, sub.clip, sub.text, sub.clipAt = false, false, false, "", time.Time{}
	// The signal, if any, is for what was just collected.
	select {
	case <-sub.ready:
	default:
	}
	return p
}

// TakeClipboard takes and clears only the pending clipboard text, so a
// viewer gets it without waiting for its next update request. The other
// pending changes, and the Ready signal for them, stay.
func (sub *Subscriber) TakeClipboard() (text string, at time.Time, ok bool) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	text, at, ok = sub.text, sub.clipAt, sub.clip
	sub.clip, sub.text, sub.clipAt = false, "", time.Time{}
	return text, at, ok
}

// ReadDone tells the subscriber that the caller has finished reading the
// Dirty areas of the last Collect. It is optional: it lets a scroll that
// happens afterwards move those areas with a copy instead of repainting
// them.
func (sub *Subscriber) ReadDone() {
	sub.mu.Lock()
	sub.unsettled.clear()
	sub.mu.Unlock()
}

// Invalidate marks r dirty, as a non-incremental update request asks.
// It returns the count of invalidations so far, this one included: a
// Pending whose Invalidations is at least that count holds r.
func (sub *Subscriber) Invalidate(r image.Rectangle) uint64 {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.invalidations++
	if sub.closed {
		return sub.invalidations
	}
	r = r.Intersect(sub.dirty.bounds())
	if r.Empty() {
		return sub.invalidations
	}
	sub.markLocked(r)
	sub.signal()
	return sub.invalidations
}

// Hold gives back r, an area the reader collected but did not send: it
// is dirty again, yet comes back in Pending.Held rather than Dirty as
// long as the screen does not change there, so that the reader can tell
// a change made since (a key typed inside a large area it is sending in
// slices) from what it left for later.
func (sub *Subscriber) Hold(r image.Rectangle) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed {
		return
	}
	x0, y0, x1, y1 := sub.dirty.span(r)
	if x0 == x1 || y0 == y1 {
		return
	}
	if sub.held.cols != sub.dirty.cols || sub.held.rows != sub.dirty.rows {
		sub.held.reset(sub.dirty.size, sub.dirty.cell)
	}
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			if i := y*sub.dirty.cols + x; !sub.dirty.bits[i] {
				sub.dirty.bits[i], sub.held.bits[i] = true, true
				sub.anyHeld = true
			}
		}
	}
	// A copy recorded since the collect took r as up to date at the
	// viewer when it moved r's pixels; the viewer never got them, so
	// what the copy put elsewhere is stale too, and so on down the
	// later copies. (The reader may hold an area back long after it
	// collected it: rfb waits for room before each slice.)
	stale := []image.Rectangle{r}
	for _, c := range sub.copies {
		off := c.Dst.Sub(c.Src.Min)
		for _, s := range stale {
			if moved := s.Intersect(c.Src).Add(off); !moved.Empty() {
				sub.markLocked(moved)
				stale = append(stale, moved)
			}
		}
	}
	sub.signal()
}

// HasSmall reports whether a change is pending in an area of at most
// maxArea pixels (as Pending.Dirty would have it, held areas apart), with
// no copy or resize pending before it: what TakeSmall would take.
func (sub *Subscriber) HasSmall(maxArea int) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return len(sub.smallLocked(maxArea)) > 0
}

// TakeSmall takes only the pending changes in areas of at most maxArea
// pixels, leaving everything else pending, and calls fn with those areas
// and the copy while the capture loop waits, like Take. It takes nothing
// while a copy or a resize is pending: those must reach the viewer first.
// It returns the areas taken.
//
// It lets a reader that is sending a large area in slices put a small
// change made meanwhile (a key typed) ahead of the slices it has not sent
// yet, which it gives back with Hold.
func (sub *Subscriber) TakeSmall(maxArea int, fn func(rs []image.Rectangle, cur *screen.Image)) []image.Rectangle {
	s := sub.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	sub.mu.Lock()
	rs := sub.smallLocked(maxArea)
	for _, r := range rs {
		sub.dirty.unmark(r)
	}
	sub.mu.Unlock()
	if len(rs) > 0 && fn != nil {
		fn(rs, s.cur)
	}
	return rs
}

// freshLocked returns the dirty cells that are changes, not only held
// back: sub.dirty itself when nothing is held, else sub.fresh, set from it.
// Called with sub.mu held.
func (sub *Subscriber) freshLocked() *cellMap {
	if !sub.anyHeld {
		return &sub.dirty
	}
	sub.fresh.reset(sub.dirty.size, sub.dirty.cell)
	for i, d := range sub.dirty.bits {
		sub.fresh.bits[i] = d && !sub.held.bits[i]
	}
	return &sub.fresh
}

// smallLocked returns the pending changes of at most maxArea pixels that
// TakeSmall may take. Called with sub.mu held.
func (sub *Subscriber) smallLocked(maxArea int) []image.Rectangle {
	if sub.closed || sub.resized || len(sub.copies) > 0 {
		return nil
	}
	rs := sub.freshLocked().rects(nil)
	small := rs[:0]
	for _, r := range rs {
		if r.Dx()*r.Dy() <= maxArea {
			small = append(small, r)
		}
	}
	return small
}

// markLocked marks r dirty as a change: cells in it that were only held
// back are held no longer. Called with sub.mu held.
func (sub *Subscriber) markLocked(r image.Rectangle) {
	sub.dirty.mark(r)
	if sub.anyHeld {
		sub.held.unmark(r)
	}
}

// Close stops the subscriber; it receives nothing more.
func (sub *Subscriber) Close() {
	sub.s.unsubscribe(sub)
	sub.mu.Lock()
	sub.closed = true
	sub.mu.Unlock()
}

// signal wakes the subscriber's reader without ever blocking the capture
// loop. Called with sub.mu held.
func (sub *Subscriber) signal() {
	select {
	case sub.ready <- struct{}{}:
	default:
	}
}

// event is what one capture step tells every subscriber.
type event struct {
	resized bool
	size    image.Point
	copies  []Copy
	boxes   []image.Rectangle
	cursor  bool
	clip    bool
	text    string
	clipAt  time.Time
}

func (e *event) empty() bool {
	return !e.resized && len(e.copies) == 0 && len(e.boxes) == 0 && !e.cursor && !e.clip
}

// deliver records ev. The screen's write lock is held, so no Read sees the
// copy between its update and this bookkeeping.
func (sub *Subscriber) deliver(ev *event, cell int) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed || ev.empty() {
		return
	}
	if ev.resized {
		sub.size = ev.size
		sub.resized = true
		sub.copies = nil
		sub.dirty.reset(ev.size, cell)
		sub.dirty.markAll()
		sub.unsettled.reset(ev.size, cell)
		sub.held.reset(ev.size, cell)
		sub.anyHeld = false
		sub.lossy.forget()
	}
	for _, c := range ev.copies {
		sub.addCopy(c)
	}
	for _, b := range ev.boxes {
		sub.markLocked(b)
	}
	if ev.cursor {
		sub.cursor = true
	}
	if ev.clip {
		sub.clip = true
		sub.text = ev.text
		sub.clipAt = ev.clipAt
	}
	sub.signal()
}

// addCopy records that the copy moved c.Src to c.Dst. Called with sub.mu
// held.
func (sub *Subscriber) addCopy(c Copy) {
	dst := c.DstRect()
	if len(sub.copies) >= maxCopies {
		sub.markLocked(dst)
		return
	}
	// The parts of the source the viewer may not have right land, moved,
	// in the destination: those must be repainted after the copy.
	off := c.Dst.Sub(c.Src.Min)
	sub.stale = sub.stale[:0]
	area := 0
	x0, y0, x1, y1 := sub.dirty.span(c.Src)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; {
			i := y*sub.dirty.cols + x
			if !sub.dirty.bits[i] && !sub.unsettled.bits[i] {
				x++
				continue
			}
			start := x
			for x < x1 && (sub.dirty.bits[y*sub.dirty.cols+x] || sub.unsettled.bits[y*sub.dirty.cols+x]) {
				x++
			}
			r := sub.dirty.cellRect(start, y).Union(sub.dirty.cellRect(x-1, y)).Intersect(c.Src)
			area += r.Dx() * r.Dy()
			sub.stale = append(sub.stale, r.Add(off))
		}
	}
	if 2*area >= c.Src.Dx()*c.Src.Dy() {
		// Mostly stale: the copy would save little.
		sub.markLocked(dst)
		return
	}
	sub.dirty.unmarkCovered(dst)
	if sub.anyHeld {
		sub.held.unmarkCovered(dst)
	}
	for _, r := range sub.stale {
		sub.markLocked(r)
	}
	sub.moveLossy(c)
	sub.copies = append(sub.copies, c)
}
