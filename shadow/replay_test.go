package shadow

import (
	"image"
	"math/rand/v2"
	"testing"

	"github.com/assist-project/assist/screen"
)

// replayViewer is one subscriber and the viewer it feeds. held is a
// Pending collected but not yet shown: the capture loop may run between a
// server's Collect and its Reads.
type replayViewer struct {
	sub  *Subscriber
	v    viewer
	held *Pending
}

// replayStats counts what a replay exercised.
type replayStats struct {
	copies, checks int
}

// replay drives a Screen through random changes, scrolls, resizes and
// invalidations, with three subscribers that collect at random moments,
// sometimes showing what they collected only after further changes. Every
// time a subscriber collects and shows at once, its viewer must equal the
// copy, which must equal the desktop.
func replay(t testing.TB, seed uint64, steps int) replayStats {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	tiles := []int{8, 16, 32, 64}
	opts := Options{TileSize: tiles[rng.IntN(len(tiles))], DetectScroll: true}
	randSize := func() image.Point { return image.Pt(64+rng.IntN(240), 64+rng.IntN(200)) }
	desktop := func(size image.Point) *screen.Image {
		return textImage(image.Rectangle{Max: size}, 10+rng.IntN(12), rng)
	}
	f := newFake(desktop(randSize()))
	f.cursor = &screen.Cursor{}
	var c screen.Capturer = f
	lender := &lendingFake{fakeCapturer: f}
	if rng.IntN(2) == 0 {
		c = lender
	}
	s := New(c, opts)
	mustStep := func(ch screen.Change, scroll bool) {
		if err := s.step(ch, scroll); err != nil {
			t.Fatalf("step: %v", err)
		}
		if lender.lent != 0 {
			t.Fatalf("seed %d: %d grabs still lent after a step", seed, lender.lent)
		}
	}
	var stats replayStats
	viewers := make([]*replayViewer, 3)
	for i := range viewers {
		viewers[i] = &replayViewer{sub: s.Subscribe()}
	}
	mustStep(s.firstChange(), false)

	show := func(rv *replayViewer, p Pending) {
		rv.v.apply(t, s, p)
		stats.copies += len(p.Copies)
		if rng.IntN(3) > 0 {
			rv.sub.ReadDone()
		}
	}
	check := func(rv *replayViewer) {
		if rv.held != nil {
			show(rv, *rv.held)
			rv.held = nil
		}
		if rng.IntN(2) == 0 {
			stats.copies += len(rv.v.take(t, rv.sub).Copies)
		} else {
			show(rv, rv.sub.Collect())
		}
		stats.checks++
		if p, ok := sameImage(rv.v.img, s.cur); !ok {
			t.Fatalf("seed %d: viewer differs from the copy at %v", seed, p)
		}
		if p, ok := sameImage(s.cur, f.img); !ok {
			t.Fatalf("seed %d: copy differs from the desktop at %v", seed, p)
		}
	}

	for range steps {
		m := f.img
		b := m.Rect
		randRect := func() image.Rectangle {
			p := image.Pt(rng.IntN(b.Dx()), rng.IntN(b.Dy()))
			return image.Rectangle{p, p.Add(image.Pt(1+rng.IntN(b.Dx()), 1+rng.IntN(b.Dy())))}.Intersect(b)
		}
		// Damage as capturers report it: exact, enlarged, split or the
		// whole screen.
		report := func(r image.Rectangle) []image.Rectangle {
			switch rng.IntN(4) {
			case 0:
				return []image.Rectangle{r}
			case 1:
				return []image.Rectangle{r.Inset(-rng.IntN(40)), randRect()}
			case 2:
				mid := r.Min.Y + r.Dy()/2
				return []image.Rectangle{image.Rect(r.Min.X, r.Min.Y, r.Max.X, mid+1), image.Rect(r.Min.X, mid, r.Max.X, r.Max.Y)}
			default:
				return []image.Rectangle{b, image.Rect(-5, -5, 10000, 10000)}
			}
		}
		switch k := rng.IntN(20); {
		case k < 6: // a filled rectangle, maybe with text on it
			r := randRect()
			fill(m, r, [4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), 0})
			if rng.IntN(2) == 0 {
				drawText(m, r, 10+rng.IntN(10), rng)
			}
			mustStep(screen.Change{Damage: report(r)}, true)
		case k < 12: // a scroll of an area, with new lines
			r := randRect()
			if r.Dy() < 70 {
				r.Min.Y, r.Max.Y = 0, b.Dy()
			}
			dy := rng.IntN(r.Dy()/2) + 1
			if rng.IntN(2) == 0 {
				dy = -dy
			}
			src := image.Rect(r.Min.X, max(r.Min.Y, r.Min.Y+dy), r.Max.X, min(r.Max.Y, r.Max.Y+dy))
			moveRect(m, Copy{Src: src, Dst: image.Pt(r.Min.X, src.Min.Y-dy)})
			revealed := image.Rect(r.Min.X, r.Max.Y-dy, r.Max.X, r.Max.Y)
			if dy < 0 {
				revealed = image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y-dy)
			}
			fill(m, revealed, [4]byte{0xf0, 0xf0, 0xf0, 0})
			drawText(m, revealed, 10+rng.IntN(10), rng)
			mustStep(screen.Change{Damage: report(r)}, true)
		case k < 13: // scattered pixels
			var damage []image.Rectangle
			for range 1 + rng.IntN(30) {
				p := image.Pt(rng.IntN(b.Dx()), rng.IntN(b.Dy()))
				m.Pix[m.PixOffset(p.X, p.Y)+rng.IntN(3)]++
				damage = append(damage, image.Rectangle{p, p.Add(image.Pt(1, 1))})
			}
			mustStep(screen.Change{Damage: damage}, true)
		case k < 14: // damage without change
			mustStep(screen.Change{Damage: report(randRect())}, true)
		case k < 15: // a resize, rarely
			if rng.IntN(4) == 0 {
				f.img = desktop(randSize())
				mustStep(screen.Change{Resized: true, Size: f.img.Rect.Size()}, true)
			}
		case k < 16:
			viewers[rng.IntN(len(viewers))].sub.Invalidate(randRect())
		default:
			// Let up to all the viewers act.
		}
		for _, rv := range viewers {
			switch rng.IntN(6) {
			case 0: // collect, show later
				if rv.held != nil {
					show(rv, *rv.held)
				}
				p := rv.sub.Collect()
				rv.held = &p
			case 1, 2: // show what was held, if anything
				if rv.held != nil {
					show(rv, *rv.held)
					rv.held = nil
				}
			case 3, 4:
				check(rv)
			}
		}
	}
	for _, rv := range viewers {
		check(rv)
	}
	return stats
}

func TestReplayInvariant(t *testing.T) {
	var total replayStats
	for seed := range uint64(30) {
		st := replay(t, seed, 150)
		total.copies += st.copies
		total.checks += st.checks
	}
	t.Logf("%d copies, %d checks", total.copies, total.checks)
	if total.copies == 0 {
		t.Error("the replay never exercised a copy")
	}
}

func FuzzReplay(f *testing.F) {
	for seed := range uint64(4) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		replay(t, seed, 40)
	})
}
