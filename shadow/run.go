package shadow

import (
	"context"
	"fmt"
	"image"
	"time"

	"github.com/assist-project/assist/screen"
)

// maxGrabs is how many separate rectangles one change may grab; past it
// the bounding box is grabbed at once, as each grab is a round trip to the
// X server.
const maxGrabs = 8

// lender is a Capturer that can lend the pixels it grabs instead of
// copying them out (screen/x11 with MIT-SHM): the image stays valid until
// release, and the capturer grabs nothing else meanwhile.
type lender interface {
	GrabView(r image.Rectangle) (img *screen.Image, release func(), err error)
}

// Run follows the desktop: it waits for changes, grabs the damaged areas,
// finds what really changed and scrolled, updates the copy and notifies
// the subscribers. It returns nil when ctx is done, or the capturer's
// error, wrapped, when capturing fails.
func (s *Screen) Run(ctx context.Context) error {
	if err := s.step(s.firstChange(), false); err != nil {
		return err
	}
	for ctx.Err() == nil {
		ch, err := s.c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("shadow: waiting for changes: %w", err)
		}
		if err := s.step(ch, s.scr); err != nil {
			return err
		}
	}
	return nil
}

// firstChange is the change that brings a new copy up to date: the whole
// screen, and the cursor.
func (s *Screen) firstChange() screen.Change {
	first := screen.Change{CursorChanged: true}
	if size := s.c.Size(); size != s.Size() {
		first.Resized, first.Size = true, size
	} else {
		first.Damage = []image.Rectangle{{Max: size}}
	}
	return first
}

// step applies one change to the copy and tells the subscribers. The slow
// parts (grabbing, comparing, looking for scrolls) read the copy without
// the lock, which is safe as only step writes it; the lock is held only
// to change the copy and to notify, together, so that no Read sees a
// change that the subscribers have not been told about yet.
func (s *Screen) step(ch screen.Change, detectScroll bool) error {
	defer s.releaseGrab()
	ev := &s.ev
	*ev = event{copies: ev.copies[:0], boxes: ev.boxes[:0]}
	var resized *screen.Image
	damaged := false
	if ch.Resized {
		size := ch.Size
		if size == (image.Point{}) {
			size = s.c.Size()
		}
		resized = screen.NewImage(image.Rectangle{Max: size})
		if !resized.Rect.Empty() {
			if err := s.c.Grab(resized, resized.Rect); err != nil {
				return fmt.Errorf("shadow: grabbing the resized screen %v: %w", size, err)
			}
		}
		ev.resized, ev.size = true, size
	} else if len(ch.Damage) > 0 && !s.cur.Rect.Empty() {
		if err := s.compare(ch.Damage, detectScroll); err != nil {
			return err
		}
		damaged = true
	}
	var cursor *screen.Cursor
	if ch.CursorChanged {
		var err error
		if cursor, err = s.c.Cursor(); err != nil {
			// The cursor is not worth the session: X refuses the
			// image of a cursor whose owner just went away (BadAccess
			// after xsetroot -cursor exits), and viewers can keep the
			// previous shape until the next change.
			s.log.Warn("shadow: could not read the cursor; viewers keep the previous shape", "err", err)
		} else {
			ev.cursor = true
		}
	}
	if ch.Clipboard {
		ev.clip, ev.text, ev.clipAt = true, ch.Text, time.Now()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case resized != nil:
		s.cur = resized
	case damaged:
		for _, c := range ev.copies {
			applyCopy(s.cur, c)
		}
		for _, c := range ev.copies {
			s.grid.rediff(s.cur, s.fresh, c.DstRect())
		}
		ev.boxes = s.grid.changed(ev.boxes)
		for _, b := range ev.boxes {
			s.cur.CopyFrom(s.fresh, b)
		}
	}
	if cursor != nil {
		s.cursor = cursor
	}
	for _, sub := range s.subs {
		sub.deliver(ev, s.cell)
	}
	return nil
}

// compare grabs the damaged areas into s.fresh, records in s.grid which
// tiles really changed and, if asked, puts the scrolls it finds in
// s.ev.copies. It does not touch the copy.
//
// s.fresh is the scratch image or, when one grab covers the damage and
// the capturer can lend it, the capturer's own memory: the damage of a
// video is mostly one rectangle, and lending saves copying each frame
// once more.
func (s *Screen) compare(damage []image.Rectangle, detectScroll bool) error {
	size := s.cur.Rect.Size()
	if s.scratch == nil || s.scratch.Rect != s.cur.Rect {
		s.scratch = screen.NewImage(s.cur.Rect)
	}
	g := &s.grid
	g.reset(size, s.tile)
	for _, r := range damage {
		g.markDamage(r.Intersect(s.cur.Rect))
	}
	g.widen()
	s.grabs = g.damaged.rects(s.grabs[:0])
	for i, r := range s.grabs {
		s.grabs[i] = g.damagedIn(r)
	}
	if len(s.grabs) > maxGrabs {
		var all image.Rectangle
		for _, r := range s.grabs {
			all = all.Union(r)
		}
		s.grabs = append(s.grabs[:0], all)
	}
	s.fresh = s.scratch
	if l, ok := s.c.(lender); ok && len(s.grabs) == 1 {
		img, release, err := l.GrabView(s.grabs[0])
		if err != nil {
			return fmt.Errorf("shadow: grabbing %v: %w", s.grabs[0], err)
		}
		s.fresh, s.release = img, release
	} else {
		for _, r := range s.grabs {
			if err := s.c.Grab(s.scratch, r); err != nil {
				return fmt.Errorf("shadow: grabbing %v: %w", r, err)
			}
		}
	}
	g.diffDamaged(s.cur, s.fresh)
	if !detectScroll {
		return nil
	}
	s.areas = s.sc.candidates(g, s.areas[:0])
	taken := s.grabs[:0] // areas with a copy; the grabs are done
	for _, a := range s.areas {
		a, ok := s.coveredPart(a, damage)
		if !ok || overlapsAny(a, taken) {
			continue
		}
		if c, ok := s.sc.detect(s.cur, s.fresh, a); ok {
			s.ev.copies = append(s.ev.copies, c)
			taken = append(taken, a)
		}
	}
	return nil
}

// maxCoverTries bounds the damage rectangles coveredPart tries.
const maxCoverTries = 16

// coveredPart returns the part of candidate area a to check for a scroll:
// only pixels under the damage were grabbed. That is a itself, or, when a
// also spans pixels outside the damage, its largest intersection with one
// damage rectangle, which must still be tall enough. The second case is a
// small change (a clock in a title bar) in tiles that a scrolled window
// shares: the changed tiles then join into one candidate.
func (s *Screen) coveredPart(a image.Rectangle, damage []image.Rectangle) (image.Rectangle, bool) {
	g := &s.grid
	if g.covered(a) {
		return a, true
	}
	var best image.Rectangle
	for _, r := range damage[:min(len(damage), maxCoverTries)] {
		b := a.Intersect(r)
		if b.Dy() >= minScrollHeight && b.Dx()*b.Dy() > best.Dx()*best.Dy() && g.covered(b) {
			best = b
		}
	}
	return best, !best.Empty()
}

// releaseGrab gives a lent grab back to the capturer.
func (s *Screen) releaseGrab() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
	s.fresh = nil
}

func overlapsAny(r image.Rectangle, rs []image.Rectangle) bool {
	for _, x := range rs {
		if r.Overlaps(x) {
			return true
		}
	}
	return false
}
