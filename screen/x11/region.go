package x11

import "image"

// maxRects caps how many rectangles a region keeps. Past it, new damage
// is folded into the rectangle it enlarges least, so a flood of tiny
// rectangles (a terminal printing) costs O(maxRects) per event and turns
// into a few bounding boxes instead of an ever-growing list.
const maxRects = 256

// region accumulates damage rectangles, merging those that overlap or
// touch when the merged box wastes little area.
type region struct {
	rects []image.Rectangle
}

// add merges r into the region.
func (g *region) add(r image.Rectangle) {
	if r.Empty() {
		return
	}
	for i := 0; i < len(g.rects); {
		e := g.rects[i]
		switch {
		case r.In(e):
			return
		case e.In(r):
			g.remove(i)
			continue
		case cheapUnion(e, r):
			// The union may now swallow or touch earlier rectangles:
			// rescan from the start. Each merge removes one rectangle,
			// so this ends.
			r = r.Union(e)
			g.remove(i)
			i = 0
			continue
		}
		i++
	}
	if len(g.rects) < maxRects {
		g.rects = append(g.rects, r)
		return
	}
	best, bestCost := 0, -1
	for i, e := range g.rects {
		if c := area(e.Union(r)) - area(e); bestCost < 0 || c < bestCost {
			best, bestCost = i, c
		}
	}
	u := g.rects[best].Union(r)
	g.remove(best)
	g.add(u)
}

// remove deletes rects[i] without keeping the order.
func (g *region) remove(i int) {
	last := len(g.rects) - 1
	g.rects[i] = g.rects[last]
	g.rects = g.rects[:last]
}

// take returns the rectangles and empties the region.
func (g *region) take() []image.Rectangle {
	if len(g.rects) == 0 {
		return nil
	}
	out := g.rects
	g.rects = nil
	return out
}

// clip drops everything outside bounds (after a shrink).
func (g *region) clip(bounds image.Rectangle) {
	out := g.rects[:0]
	for _, r := range g.rects {
		if r = r.Intersect(bounds); !r.Empty() {
			out = append(out, r)
		}
	}
	g.rects = out
}

// cheapUnion reports whether a and b overlap or touch and their bounding
// box covers little more than the two of them: then one rectangle is
// cheaper to grab and encode than two.
func cheapUnion(a, b image.Rectangle) bool {
	if a.Min.X > b.Max.X || b.Min.X > a.Max.X || a.Min.Y > b.Max.Y || b.Min.Y > a.Max.Y {
		return false
	}
	covered := area(a) + area(b) - area(a.Intersect(b))
	waste := area(a.Union(b)) - covered
	// A little slack lets neighbouring glyphs of different heights and
	// staggered rows merge; 64x64 is the size below which a separate
	// rectangle's header and grab round trip dominate.
	return waste <= covered/4 || waste <= 64*64
}

func area(r image.Rectangle) int {
	if r.Empty() {
		return 0
	}
	return r.Dx() * r.Dy()
}
