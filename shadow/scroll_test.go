package shadow

import (
	"image"
	"math/rand/v2"
	"testing"

	"github.com/assist-project/assist/screen"
)

// scrollCase builds an old and a new picture of r: text scrolled by dy
// (0: none), then, if noisy, some rows of new replaced by noise.
func scrollCase(r image.Rectangle, dy, lineHeight int, noisy bool, rng *rand.Rand) (old, new *screen.Image) {
	page := textImage(image.Rect(r.Min.X, r.Min.Y-64, r.Max.X, r.Max.Y+64), lineHeight, rng)
	old, new = screen.NewImage(r), screen.NewImage(r)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		n := 4 * r.Dx()
		copy(old.Pix[old.PixOffset(r.Min.X, y):][:n], page.Pix[page.PixOffset(r.Min.X, y):])
		copy(new.Pix[new.PixOffset(r.Min.X, y):][:n], page.Pix[page.PixOffset(r.Min.X, y+dy):])
	}
	if noisy {
		for range rng.IntN(r.Dy()) {
			y := r.Min.Y + rng.IntN(r.Dy())
			for i := new.PixOffset(r.Min.X, y); i < new.PixOffset(r.Max.X, y); i++ {
				new.Pix[i] = byte(rng.Uint32())
			}
		}
	}
	return old, new
}

// TestMayScrollIsSafe checks that the quick rejection never hides a
// scroll that the full detection finds, on scrolled, partly scrolled and
// unscrolled text of many sizes.
func TestMayScrollIsSafe(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	var sc scroller
	found := 0
	const cases = 200
	for i := range cases {
		r := image.Rect(0, 0, 8+rng.IntN(300), minScrollHeight+rng.IntN(300))
		dy := rng.IntN(129) - 64
		if i%5 == 0 {
			dy = 0
		}
		old, new := scrollCase(r, dy, 8+rng.IntN(16), i%3 == 0, rng)
		step := max(1, r.Dy()/scrollSamples)
		c, ok := sc.detectRows(old, new, r, step)
		if ok {
			found++
		}
		if may := sc.mayScroll(old, new, r, step); ok && !may {
			t.Fatalf("case %d (%v, dy %d): detection finds %+v, but mayScroll rules it out", i, r, dy, c)
		}
	}
	if found < cases/4 {
		t.Errorf("only %d of %d cases scrolled: the test does not exercise mayScroll", found, cases)
	}
}

// TestMayScrollRejectsVideo checks the point of the quick rejection: two
// unrelated pictures (consecutive video frames) are ruled out without
// hashing their rows, while a scroll is not.
func TestMayScrollRejectsVideo(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	r := image.Rect(320, 160, 960, 640)
	var sc scroller
	step := max(1, r.Dy()/scrollSamples)
	if sc.mayScroll(noiseImage(r, rng), noiseImage(r, rng), r, step) {
		t.Error("mayScroll(two noise frames) = true, want false")
	}
	old, new := scrollCase(r, 17, 16, false, rng)
	if !sc.mayScroll(old, new, r, step) {
		t.Error("mayScroll(scrolled text) = false, want true")
	}
}

// BenchmarkMayScrollVideo is the cost of ruling out a scroll in a
// 640x480 video frame.
func BenchmarkMayScrollVideo(b *testing.B) {
	rng := rand.New(rand.NewPCG(6, 6))
	r := image.Rect(320, 160, 960, 640)
	bounds := image.Rect(0, 0, 1280, 800)
	old, new := noiseImage(bounds, rng), noiseImage(bounds, rng)
	var sc scroller
	step := max(1, r.Dy()/scrollSamples)
	for b.Loop() {
		if sc.mayScroll(old, new, r, step) {
			b.Fatal("mayScroll = true")
		}
	}
}

// TestScrollUnderTitleBar is the benchmark's scrolling window: text
// scrolls below a title bar in which a small change (a clock, the
// benchmark's marker) happens at the same time. Damage covers the
// scrolled area and the small change only, not the rest of the title
// bar, yet the tiles they share make one candidate area for detection.
func TestScrollUnderTitleBar(t *testing.T) {
	const lineHeight, title = 13, 32
	size := image.Pt(1280, 800)
	bounds := image.Rectangle{Max: size}
	window := image.Rect(0, title, size.X, title+(size.Y-title)/lineHeight*lineHeight)
	rng := rand.New(rand.NewPCG(9, 9))
	page := textImage(image.Rect(0, 0, size.X, 2*size.Y), lineHeight, rng)
	desktop := screen.NewImage(bounds)
	fill(desktop, image.Rect(0, 0, size.X, title), [4]byte{0x7e, 0x4f, 0x2b, 0})
	show := func(m *screen.Image, off int) {
		for y := window.Min.Y; y < window.Max.Y; y++ {
			copy(m.Pix[m.PixOffset(0, y):m.PixOffset(0, y+1)], page.Pix[page.PixOffset(0, y+off):])
		}
	}
	show(desktop, 0)
	for _, lend := range []bool{false, true} {
		t.Run(map[bool]string{false: "copying", true: "lending"}[lend], func(t *testing.T) {
			f := newFake(cloneImage(desktop))
			f.cursor = &screen.Cursor{}
			var c screen.Capturer = f
			if lend {
				c = &lendingFake{fakeCapturer: f}
			}
			s := New(c, Options{})
			sub := s.Subscribe()
			if err := s.step(s.firstChange(), false); err != nil {
				t.Fatal(err)
			}
			sub.Collect()
			sub.ReadDone()
			marker := image.Rect(1180, 8, 1260, 24)
			show(f.img, lineHeight)
			fill(f.img, marker, [4]byte{1, 2, 3, 0})
			damage := []image.Rectangle{window, marker}
			if err := s.step(screen.Change{Damage: damage}, true); err != nil {
				t.Fatal(err)
			}
			p := sub.Collect()
			if len(p.Copies) != 1 || p.Copies[0].Src.Min.Y-p.Copies[0].Dst.Y != lineHeight {
				t.Errorf("copies = %v, want one by %d rows", p.Copies, lineHeight)
			}
			if p, ok := sameImage(current(s), f.img); !ok {
				t.Errorf("copy differs from the desktop at %v", p)
			}
		})
	}
}
