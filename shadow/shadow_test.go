package shadow

import (
	"context"
	"errors"
	"image"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// synced returns a harness on img with one subscriber whose viewer is up
// to date.
func synced(t *testing.T, img *screen.Image, opts Options) (*harness, *Subscriber, *viewer) {
	t.Helper()
	h := newHarness(t, img, opts)
	sub := h.s.Subscribe()
	v := &viewer{}
	v.apply(t, h.s, sub.Collect())
	sub.ReadDone()
	checkViewer(t, h, v)
	return h, sub, v
}

// checkViewer checks that v shows both the copy and the desktop.
func checkViewer(t *testing.T, h *harness, v *viewer) {
	t.Helper()
	if p, ok := sameImage(v.img, current(h.s)); !ok {
		t.Fatalf("viewer differs from the copy at %v", p)
	}
	if p, ok := sameImage(v.img, h.f.snapshot()); !ok {
		t.Fatalf("viewer differs from the desktop at %v", p)
	}
}

func TestSubscribeGetsWholeScreen(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	size := image.Pt(203, 157) // not a multiple of any tile size
	h := newHarness(t, noiseImage(image.Rectangle{Max: size}, rng), Options{})
	sub := h.s.Subscribe()
	select {
	case <-sub.Ready():
	default:
		t.Fatal("a new subscriber is not ready")
	}
	p := sub.Collect()
	want := Pending{Dirty: []image.Rectangle{{Max: size}}, Size: size, CursorChanged: true}
	if !slices.Equal(p.Dirty, want.Dirty) || p.Size != want.Size || !p.CursorChanged || p.Resized || len(p.Copies) != 0 {
		t.Fatalf("first Collect = %+v, want %+v", p, want)
	}
	v := &viewer{}
	v.apply(t, h.s, p)
	checkViewer(t, h, v)
	if h.s.Cursor() == nil {
		t.Error("no cursor after the first capture")
	}
	if p := sub.Collect(); !p.Empty() {
		t.Errorf("second Collect = %+v, want empty", p)
	}
}

// roundOut rounds r out to the grid of cells of the given size, clipped
// to bounds.
func roundOut(r image.Rectangle, cell int, bounds image.Rectangle) image.Rectangle {
	r.Min.X = r.Min.X / cell * cell
	r.Min.Y = r.Min.Y / cell * cell
	r.Max.X = (r.Max.X + cell - 1) / cell * cell
	r.Max.Y = (r.Max.Y + cell - 1) / cell * cell
	return r.Intersect(bounds)
}

func TestSmallChange(t *testing.T) {
	size := image.Pt(300, 200)
	bounds := image.Rectangle{Max: size}
	tests := []struct {
		name    string
		tile    int
		changed image.Rectangle   // pixels that change
		damage  []image.Rectangle // what the capturer reports
	}{
		{"one pixel", 64, image.Rect(100, 70, 101, 71), []image.Rectangle{image.Rect(100, 70, 101, 71)}},
		{"one pixel, whole screen damaged", 64, image.Rect(100, 70, 101, 71), []image.Rectangle{bounds}},
		{"one pixel, 16-pixel tiles", 16, image.Rect(100, 70, 101, 71), []image.Rectangle{bounds}},
		{"across four tiles", 64, image.Rect(60, 60, 70, 70), []image.Rectangle{image.Rect(0, 0, 150, 150)}},
		{"at the corner", 64, image.Rect(295, 195, 300, 200), []image.Rectangle{image.Rect(290, 190, 400, 400)}},
		{"overlapping damage", 32, image.Rect(10, 10, 20, 20), []image.Rectangle{image.Rect(0, 0, 30, 30), image.Rect(5, 5, 25, 25), bounds}},
		{"nothing", 64, image.Rectangle{}, []image.Rectangle{bounds}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			h, sub, v := synced(t, noiseImage(bounds, rng), Options{TileSize: tt.tile, DetectScroll: true})
			h.f.draw(func(m *screen.Image) { fill(m, tt.changed, [4]byte{1, 2, 3, 0}) })
			h.change(screen.Change{Damage: tt.damage})
			p := sub.Collect()
			var want []image.Rectangle
			if !tt.changed.Empty() {
				want = []image.Rectangle{roundOut(tt.changed, min(tt.tile, maxCell), bounds)}
			}
			if !slices.Equal(p.Dirty, want) || len(p.Copies) != 0 || p.CursorChanged || p.Resized {
				t.Fatalf("Collect = %+v, want dirty %v only", p, want)
			}
			v.apply(t, h.s, p)
			checkViewer(t, h, v)
		})
	}
}

func TestNoSignalWithoutChange(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	h, sub, _ := synced(t, noiseImage(image.Rect(0, 0, 128, 128), rng), Options{})
	h.change(screen.Change{Damage: []image.Rectangle{image.Rect(0, 0, 128, 128)}})
	select {
	case <-sub.Ready():
		t.Fatalf("ready after a change that changed nothing: %+v", sub.Collect())
	default:
	}
}

// scrollCase builds a desktop showing a page of text and scrolls it.
func TestScroll(t *testing.T) {
	const lineHeight = 17
	size := image.Pt(640, 480)
	bounds := image.Rectangle{Max: size}
	tests := []struct {
		name   string
		detect bool
		off    int // new view offset into the page, from 2*lineHeight
	}{
		{"up one line", true, 3 * lineHeight},
		{"down one line", true, lineHeight},
		{"up five lines", true, 7 * lineHeight},
		{"detection off", false, 3 * lineHeight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			page := textImage(image.Rect(0, 0, size.X, size.Y+10*lineHeight), lineHeight, rng)
			view := func(off int) *screen.Image { return pageView(page, size, off) }
			h, sub, v := synced(t, view(2*lineHeight), Options{TileSize: 64, DetectScroll: tt.detect})
			h.f.draw(func(m *screen.Image) { m.CopyFrom(view(tt.off), bounds) })
			h.change(screen.Change{Damage: []image.Rectangle{bounds}})
			p := sub.Collect()
			v.apply(t, h.s, p)
			checkViewer(t, h, v)

			dy := tt.off - 2*lineHeight // content moves up by dy
			if !tt.detect {
				if len(p.Copies) != 0 {
					t.Fatalf("copies %v with detection off", p.Copies)
				}
				return
			}
			if len(p.Copies) != 1 {
				t.Fatalf("copies = %v, want one", p.Copies)
			}
			c := p.Copies[0]
			if got := c.Src.Min.Y - c.Dst.Y; got != dy {
				t.Errorf("copy %v moves by %d, want %d", c, got, dy)
			}
			if c.Src.Dy() < size.Y-abs(dy)-lineHeight {
				t.Errorf("copy %v moves only %d rows", c, c.Src.Dy())
			}
			// Only the revealed lines (rounded to cells) are repainted.
			revealed := image.Rect(0, size.Y-dy, size.X, size.Y)
			if dy < 0 {
				revealed = image.Rect(0, 0, size.X, -dy)
			}
			revealed = roundOut(revealed, maxCell, bounds)
			for _, r := range p.Dirty {
				if !r.In(revealed) {
					t.Errorf("dirty %v outside the revealed lines %v", r, revealed)
				}
			}
		})
	}
}

// pageView is a screen of the given size showing page (as wide) from row
// off down: a window of text scrolled by off rows.
func pageView(page *screen.Image, size image.Point, off int) *screen.Image {
	m := screen.NewImage(image.Rectangle{Max: size})
	for y := range size.Y {
		copy(m.Pix[m.PixOffset(0, y):m.PixOffset(0, y+1)], page.Pix[page.PixOffset(0, y+off):])
	}
	return m
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestResize(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	h, sub, v := synced(t, noiseImage(image.Rect(0, 0, 100, 80), rng), Options{})
	sub.Invalidate(image.Rect(0, 0, 10, 10)) // pending work that the resize replaces
	size := image.Pt(130, 90)
	h.f.draw(func(m *screen.Image) { *m = *noiseImage(image.Rectangle{Max: size}, rng) })
	h.change(screen.Change{Resized: true, Size: size})
	if got := h.s.Size(); got != size {
		t.Fatalf("Size = %v, want %v", got, size)
	}
	p := sub.Collect()
	if !p.Resized || p.Size != size || !slices.Equal(p.Dirty, []image.Rectangle{{Max: size}}) || len(p.Copies) != 0 {
		t.Fatalf("Collect after resize = %+v", p)
	}
	v.apply(t, h.s, p)
	checkViewer(t, h, v)
}

func TestInvalidate(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	bounds := image.Rect(0, 0, 100, 80)
	h, sub, _ := synced(t, noiseImage(bounds, rng), Options{})
	sub.Invalidate(image.Rect(200, 200, 300, 300)) // off screen: nothing to do
	select {
	case <-sub.Ready():
		t.Fatal("ready after invalidating nothing")
	default:
	}
	r := image.Rect(20, 30, 40, 40)
	sub.Invalidate(r)
	select {
	case <-sub.Ready():
	default:
		t.Fatal("not ready after Invalidate")
	}
	p := sub.Collect()
	if want := []image.Rectangle{roundOut(r, maxCell, bounds)}; !slices.Equal(p.Dirty, want) {
		t.Fatalf("dirty = %v, want %v", p.Dirty, want)
	}
	sub.Invalidate(image.Rect(-10, -10, 1000, 1000))
	if p := sub.Collect(); !slices.Equal(p.Dirty, []image.Rectangle{bounds}) {
		t.Fatalf("dirty = %v, want the whole screen", p.Dirty)
	}
	_ = h
}

// An area the reader held back comes back as Held while the screen does
// not change there; a change inside it comes back as Dirty, on its own,
// so the reader can send it first (rfb's small changes first).
func TestHold(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	bounds := image.Rect(0, 0, 256, 128)
	h, sub, v := synced(t, noiseImage(bounds, rng), Options{TileSize: 16})
	area := func(rs []image.Rectangle) (n int) {
		for _, r := range rs {
			n += r.Dx() * r.Dy()
		}
		return n
	}
	held := image.Rect(0, 0, 256, 64)
	sub.Hold(held)
	select {
	case <-sub.Ready():
	default:
		t.Fatal("not ready after Hold")
	}
	key := image.Rect(96, 24, 104, 32) // inside the held area, on the cell grid
	h.f.draw(func(m *screen.Image) { fill(m, key, [4]byte{9, 8, 7, 0}) })
	h.change(screen.Change{Damage: []image.Rectangle{key}})
	p := sub.Collect()
	if !slices.Equal(p.Dirty, []image.Rectangle{key}) {
		t.Errorf("Dirty = %v, want only the change %v", p.Dirty, key)
	}
	if got := area(p.Held); got != area([]image.Rectangle{held})-area([]image.Rectangle{key}) {
		t.Errorf("Held = %v (%d pixels), want %v without %v", p.Held, got, held, key)
	}
	v.apply(t, h.s, p)
	checkViewer(t, h, v)
	if p := sub.Collect(); !p.Empty() || len(p.Held) != 0 {
		t.Errorf("second Collect = %+v, want empty", p)
	}

	// Held areas that a change, a copy or an Invalidate covers are
	// changes: Dirty.
	sub.Hold(held)
	sub.Invalidate(image.Rect(0, 0, 128, 64))
	p = sub.Collect()
	if !slices.Equal(p.Dirty, []image.Rectangle{image.Rect(0, 0, 128, 64)}) || !slices.Equal(p.Held, []image.Rectangle{image.Rect(128, 0, 256, 64)}) {
		t.Errorf("after Invalidate: Dirty %v, Held %v; want the invalidated half dirty, the other held", p.Dirty, p.Held)
	}
	v.apply(t, h.s, p)
	checkViewer(t, h, v)

	// Only what the reader had collected is held: an area dirty anyway
	// stays a change.
	h.f.draw(func(m *screen.Image) { fill(m, key, [4]byte{1, 1, 1, 0}) })
	h.change(screen.Change{Damage: []image.Rectangle{key}})
	sub.Hold(held)
	p = sub.Collect()
	if !slices.Equal(p.Dirty, []image.Rectangle{key}) {
		t.Errorf("change then Hold: Dirty = %v, want %v", p.Dirty, key)
	}
	v.apply(t, h.s, p)
	checkViewer(t, h, v)
}

func TestClose(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	bounds := image.Rect(0, 0, 100, 80)
	h, sub, _ := synced(t, noiseImage(bounds, rng), Options{})
	other := h.s.Subscribe()
	sub.Close()
	h.f.draw(func(m *screen.Image) { fill(m, bounds, [4]byte{}) })
	h.change(screen.Change{Damage: []image.Rectangle{bounds}})
	if p := sub.Collect(); !p.Empty() {
		t.Errorf("closed subscriber collected %+v", p)
	}
	sub.Invalidate(bounds)
	if p := sub.Collect(); !p.Empty() {
		t.Errorf("closed subscriber collected %+v after Invalidate", p)
	}
	if p := other.Collect(); len(p.Dirty) == 0 {
		t.Error("the other subscriber got nothing")
	}
	h.s.mu.RLock()
	n := len(h.s.subs)
	h.s.mu.RUnlock()
	if n != 1 {
		t.Errorf("%d subscribers after Close, want 1", n)
	}
}

func TestCursorAndClipboard(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	h, sub, _ := synced(t, noiseImage(image.Rect(0, 0, 64, 64), rng), Options{})
	c := &screen.Cursor{Pix: make([]uint32, 6), Size: image.Pt(2, 3), Hot: image.Pt(1, 1)}
	h.f.draw(func(*screen.Image) { h.f.cursor = c })
	h.change(screen.Change{CursorChanged: true})
	if p := sub.Collect(); !p.CursorChanged || len(p.Dirty) != 0 {
		t.Fatalf("Collect = %+v, want the cursor only", p)
	}
	if h.s.Cursor() != c {
		t.Fatal("Cursor is not the new shape")
	}
	h.change(screen.Change{Clipboard: true, Text: "first"})
	h.change(screen.Change{Clipboard: true, Text: "héllo"})
	if p := sub.Collect(); !p.Clipboard || p.Text != "héllo" || p.CursorChanged {
		t.Fatalf("Collect = %+v, want the latest clipboard text", p)
	}
}

// TestTakeClipboard: the clipboard can be taken alone, with the time the
// capture loop saw it, and leaves the other changes pending.
func TestTakeClipboard(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	h, sub, _ := synced(t, noiseImage(image.Rect(0, 0, 64, 64), rng), Options{})
	before := time.Now()
	h.f.draw(func(img *screen.Image) { img.Pix[0] ^= 0xff })
	h.change(screen.Change{Damage: []image.Rectangle{image.Rect(0, 0, 1, 1)}, Clipboard: true, Text: "copied"})
	text, at, ok := sub.TakeClipboard()
	if !ok || text != "copied" || at.Before(before) || at.After(time.Now()) {
		t.Fatalf("TakeClipboard = %q, %v, %v; want the text, seen after %v", text, at, ok, before)
	}
	if _, _, ok := sub.TakeClipboard(); ok {
		t.Fatal("the clipboard was taken twice")
	}
	if p := sub.Collect(); p.Clipboard || len(p.Dirty) == 0 {
		t.Fatalf("Collect after TakeClipboard = %+v, want the damage and no clipboard", p)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	f := newFake(screen.NewImage(image.Rect(0, 0, 8, 8)))
	f.cursor = &screen.Cursor{}
	s := New(f, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	f.waitIdle()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestRunFails(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		set  func(f *fakeCapturer)
	}{
		{"next", func(f *fakeCapturer) { f.nextErr = boom }},
		{"grab", func(f *fakeCapturer) { f.grabErr = boom }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, screen.NewImage(image.Rect(0, 0, 8, 8)), Options{})
			h.failing = true
			h.f.draw(func(*screen.Image) { tt.set(h.f) })
			h.f.push(screen.Change{Damage: []image.Rectangle{image.Rect(0, 0, 8, 8)}})
			if err := h.wait(); !errors.Is(err, boom) {
				t.Fatalf("Run = %v, want %v", err, boom)
			}
		})
	}
}

// TestRunUnreadableCursorAtStart: a cursor X will not give at the start
// does not stop Run either.
func TestRunUnreadableCursorAtStart(t *testing.T) {
	f := newFake(screen.NewImage(image.Rect(0, 0, 8, 8))) // no cursor: Cursor fails
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(f, Options{}).Run(ctx) }()
	idle := make(chan struct{})
	go func() { f.waitIdle(); close(idle) }()
	select {
	case <-idle: // Run got past its first step and waits for changes
	case err := <-done:
		t.Fatalf("Run = %v with an unreadable cursor, want it to go on", err)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want it to go on until cancelled", err)
	}
}

// goroutineT lets helpers that call Fatalf run outside the test's
// goroutine: the failure is recorded and only that goroutine stops.
type goroutineT struct{ testing.TB }

func (t goroutineT) Fatalf(format string, args ...any) {
	t.TB.Helper()
	t.TB.Errorf(format, args...)
	runtime.Goexit()
}

// TestConcurrentTake runs the capture loop while three viewers take
// updates as they come, as rfb connections do, and checks that each ends
// up showing the desktop.
func TestConcurrentTake(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	bounds := image.Rect(0, 0, 320, 240)
	h := newHarness(t, textImage(bounds, 15, rng), Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	viewers := make([]*viewer, 3)
	subs := make([]*Subscriber, 3)
	for i := range viewers {
		viewers[i], subs[i] = &viewer{}, h.s.Subscribe()
		wg.Add(1)
		go func(v *viewer, sub *Subscriber) {
			defer wg.Done()
			gt := goroutineT{t}
			for {
				select {
				case <-stop:
					return
				case <-sub.Ready():
					v.take(gt, sub)
				}
			}
		}(viewers[i], subs[i])
	}
	for i := range 300 {
		r := image.Rect(rng.IntN(200), rng.IntN(150), 320, 240)
		if i%2 == 0 {
			h.f.draw(func(m *screen.Image) {
				dy := 1 + rng.IntN(30)
				moveRect(m, Copy{Src: image.Rect(r.Min.X, r.Min.Y+dy, r.Max.X, r.Max.Y), Dst: r.Min})
				revealed := image.Rect(r.Min.X, r.Max.Y-dy, r.Max.X, r.Max.Y)
				fill(m, revealed, [4]byte{0xf0, 0xf0, 0xf0, 0})
				drawText(m, revealed, 15, rng)
			})
		} else {
			h.f.draw(func(m *screen.Image) { fill(m, r.Inset(rng.IntN(20)), [4]byte{byte(i), 0, 0, 0}) })
		}
		h.f.push(screen.Change{Damage: []image.Rectangle{r}})
		if i%50 == 0 {
			h.f.waitIdle()
		}
	}
	h.f.waitIdle()
	close(stop)
	wg.Wait()
	for i, v := range viewers {
		v.take(t, subs[i])
		checkViewer(t, h, v)
	}
}

// TestUnreadableCursor: X may refuse a cursor's image (BadAccess once the
// client that set it has gone); the screen keeps following the desktop
// and subscribers keep the previous shape.
func TestUnreadableCursor(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	h, sub, _ := synced(t, noiseImage(image.Rect(0, 0, 64, 64), rng), Options{})
	before := h.s.Cursor()
	h.f.draw(func(*screen.Image) { h.f.cursor = nil }) // the fake's Cursor now fails
	h.change(screen.Change{CursorChanged: true})
	if p := sub.Collect(); p.CursorChanged {
		t.Fatalf("Collect = %+v after an unreadable cursor, want no cursor change", p)
	}
	if h.s.Cursor() != before {
		t.Fatal("the cursor changed although it could not be read")
	}
	h.f.draw(func(img *screen.Image) { img.Pix[0] ^= 0xff })
	h.change(screen.Change{Damage: []image.Rectangle{image.Rect(0, 0, 1, 1)}})
	if p := sub.Collect(); len(p.Dirty) == 0 {
		t.Fatal("the screen stopped following the desktop after an unreadable cursor")
	}
}

// An area held back long after it was taken (rfb waits for room before
// each slice) may meanwhile have been the source of a copy: what the copy
// moved elsewhere is as stale at the viewer as the area itself.
func TestHoldAfterCopy(t *testing.T) {
	const lineHeight = 17
	size := image.Pt(320, 256)
	bounds := image.Rectangle{Max: size}
	rng := rand.New(rand.NewPCG(31, 32))
	page := textImage(image.Rect(0, 0, size.X, size.Y+4*lineHeight), lineHeight, rng)
	view := func(off int) *screen.Image { return pageView(page, size, off) }
	h, sub, v := synced(t, view(0), Options{TileSize: 64, DetectScroll: true})

	// Lines in the middle change; the reader takes them, sends nothing
	// of them yet...
	held := image.Rect(0, 128, size.X, 192)
	drawText(page, held.Add(image.Pt(0, 0)), lineHeight, rng)
	h.f.draw(func(m *screen.Image) { m.CopyFrom(view(0), bounds) })
	h.change(screen.Change{Damage: []image.Rectangle{held}})
	if p := sub.Take(nil); len(p.Dirty) == 0 {
		t.Fatal("the change was not pending")
	}
	// ...the page scrolls by a line, moving the middle lines up...
	h.f.draw(func(m *screen.Image) { m.CopyFrom(view(lineHeight), bounds) })
	h.change(screen.Change{Damage: []image.Rectangle{bounds}})
	// ...and the reader gives them back.
	sub.Hold(held)
	p := sub.Collect()
	if len(p.Copies) != 1 {
		t.Fatalf("copies = %v, want the scroll", p.Copies)
	}
	v.apply(t, h.s, p)
	checkViewer(t, h, v)
}

// TakeSmall takes the small changes alone, and nothing while a copy is
// pending; HasSmall says whether it would take any.
func TestTakeSmall(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	bounds := image.Rect(0, 0, 256, 128)
	h, sub, v := synced(t, noiseImage(bounds, rng), Options{TileSize: 16})
	if sub.HasSmall(64 * 64) {
		t.Fatal("HasSmall with nothing pending")
	}
	big := image.Rect(0, 0, 256, 64)
	key := image.Rect(96, 96, 104, 112)
	h.f.draw(func(m *screen.Image) {
		fill(m, big, [4]byte{1, 2, 3, 0})
		fill(m, key, [4]byte{9, 8, 7, 0})
	})
	h.change(screen.Change{Damage: []image.Rectangle{big, key}})
	if !sub.HasSmall(64 * 64) {
		t.Fatal("HasSmall = false with a key pending")
	}
	if sub.HasSmall(7 * 15) {
		t.Fatal("HasSmall counts an area larger than asked")
	}
	var got []image.Rectangle
	rs := sub.TakeSmall(64*64, func(rs []image.Rectangle, cur *screen.Image) {
		got = slices.Clone(rs)
		for _, r := range rs {
			v.img.CopyFrom(cur, r)
		}
	})
	if !slices.Equal(rs, []image.Rectangle{key}) || !slices.Equal(got, rs) {
		t.Fatalf("TakeSmall = %v (fn saw %v), want %v", rs, got, key)
	}
	if sub.HasSmall(64 * 64) {
		t.Error("HasSmall after the key was taken")
	}
	// The large change is still pending, and nothing else.
	p := sub.Collect()
	if !slices.Equal(p.Dirty, []image.Rectangle{big}) {
		t.Errorf("left pending: %v, want %v", p.Dirty, big)
	}
	v.apply(t, h.s, p)
	checkViewer(t, h, v)

	// A held area is no small change, even when small.
	sub.Hold(key)
	if sub.HasSmall(64 * 64) {
		t.Error("HasSmall counts a held area")
	}
	v.apply(t, h.s, sub.Collect())
	checkViewer(t, h, v)
}
