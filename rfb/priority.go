package rfb

import (
	"cmp"
	"image"
	"slices"
	"time"
)

// Small changes first.
//
// A viewer paced by its path (adapt.go) gets an update whenever the path
// has room, and everything that changed since goes into it. On a slow
// link one update of a full screen, or of a video frame as JPEG, takes
// tens to hundreds of milliseconds to send; a key the expert types or a
// cursor that blinks meanwhile waits behind all of it, however small. So
// for viewers that get updates without asking (continuous updates, or
// push across a paced session stream), an update carries at most about
// sliceTime of the path's throughput of changes:
//
//   - small areas (at most smallArea pixels) go first, and always whole.
//     An update that has some ends with them: a viewer shows an update
//     only once it has all of it, so a slice behind the small change
//     would delay it by the slice's sending time (14 ms at 5 Mbit/s).
//     Only every other update may do so, so a stream of small changes
//     cannot starve the large ones;
//   - large areas are cut into bands of bandRows screen rows and go in
//     order, starting where the previous update stopped (round robin, so
//     the bottom of a screen that keeps changing is not starved by its
//     top);
//   - once the update holds the budget, the bands left are held back in
//     the Subscriber (Subscriber.Hold) and go with a later update, read
//     afresh from the screen then. They come back apart from what changed
//     meanwhile (shadow.Pending.Held), so a small change made inside them
//     (a key typed into a window being sent in slices) is still a small
//     change and goes ahead of them.
//
// So a small change waits behind at most the update being written (one
// slice of bytes in our own buffers; for a viewer that takes LastRect,
// one piece of it: preempt.go), plus what is in flight on the path (the
// window). The viewer may
// show the top of a frame with the bottom of the previous one for a
// moment: the price of seeing the small change at once. A viewer that asks
// for each update (the pull model) gets whole updates: cutting would cost
// it a round trip per slice. JPEG quality is adapted per frame (all the
// slices up to one that leaves nothing behind), not per slice.
const (
	// smallArea is the most pixels of an area that goes first and whole:
	// 128x128, a word typed, a menu item, a clock.
	smallArea = 128 * 128
	// bandRows is the height of the bands large areas are cut into: a
	// 1280-pixel-wide band of photo is about 4-10 KB as JPEG.
	bandRows = 32
	// sliceTime is how long an update's changes may take to send at the
	// path's delivery rate: what a small change made just after waits at
	// most, besides the window in flight.
	sliceTime = 5 * time.Millisecond
	// minSlice is the least budget: about one band of photo, 5 ms at
	// 5 Mbit/s. Every update carries at least one band anyway; a larger
	// floor only makes a small change made meanwhile wait longer for the
	// update being written (6 KiB: 10 ms at 5 Mbit/s, plus the band
	// beyond it).
	minSlice = 3 << 10
)

// updateBudget is the most bytes of changes the next update should carry
// to a viewer that gets updates without asking, on a path of delivery
// rate rate (bytes per second); 0 means no limit (no estimate yet, or a
// viewer that asks for each update).
func updateBudget(unsolicited bool, rate float64) int {
	if !unsolicited || rate <= 0 {
		return 0
	}
	return max(minSlice, int(rate*sliceTime.Seconds()))
}

// schedule orders the areas of an update for sending: the small ones
// first, in the order given, then the large ones cut into bands of
// bandRows screen rows (aligned to multiples of bandRows), sorted by row
// and column, starting with the first band at or below row from and
// wrapping around to the top. Areas inside one of held (what an earlier
// update left for later) count as large whatever their size: they are no
// new change. It returns the pieces and how many of them are small.
// dirty is not changed.
func schedule(dirty, held []image.Rectangle, from int) (pieces []image.Rectangle, small int) {
	var large []image.Rectangle
	for _, r := range dirty {
		switch {
		case r.Empty():
		case r.Dx()*r.Dy() <= smallArea && !slices.ContainsFunc(held, func(h image.Rectangle) bool { return r.In(h) }):
			pieces = append(pieces, r)
		default:
			for y := r.Min.Y; y < r.Max.Y; {
				next := min(r.Max.Y, (y/bandRows+1)*bandRows)
				large = append(large, image.Rect(r.Min.X, y, r.Max.X, next))
				y = next
			}
		}
	}
	small = len(pieces)
	first := func(r image.Rectangle) int {
		if r.Min.Y >= from {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(large, func(a, b image.Rectangle) int {
		return cmp.Or(cmp.Compare(first(a), first(b)), cmp.Compare(a.Min.Y, b.Min.Y), cmp.Compare(a.Min.X, b.Min.X))
	})
	return append(pieces, large...), small
}

// notHeldBack returns the areas of dirty that are not wholly inside one
// of held, the areas an earlier update left for later (schedule): those
// come back (shadow.Pending.Held) without having changed on the screen,
// and must not make the H.264 tracker think they change at video rates. The result
// may share dirty's array only if held is empty.
func notHeldBack(dirty, held []image.Rectangle) []image.Rectangle {
	if len(held) == 0 {
		return dirty
	}
	var out []image.Rectangle
	for _, r := range dirty {
		if !slices.ContainsFunc(held, func(h image.Rectangle) bool { return r.In(h) }) {
			out = append(out, r)
		}
	}
	return out
}
