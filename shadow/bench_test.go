package shadow

import (
	"image"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

var benchSize = image.Pt(1280, 800)

// BenchmarkDiffFullScreen is the common worst case of damage reporting:
// the whole screen reported damaged, one tile really changed. It covers a
// capture step end to end: grab (a memcpy here), compare, update, notify
// one subscriber, collect.
func BenchmarkDiffFullScreen(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	bounds := image.Rectangle{Max: benchSize}
	f := newFake(textImage(bounds, 17, rng))
	f.cursor = &screen.Cursor{}
	s := New(f, Options{})
	sub := s.Subscribe()
	if err := s.step(s.firstChange(), false); err != nil {
		b.Fatal(err)
	}
	sub.Collect()
	ch := screen.Change{Damage: []image.Rectangle{bounds}}
	b.SetBytes(int64(4 * benchSize.X * benchSize.Y))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.img.Pix[f.img.PixOffset(600, 400)] = byte(i)
		if err := s.step(ch, true); err != nil {
			b.Fatal(err)
		}
		if p := sub.Collect(); len(p.Dirty) != 1 || len(p.Copies) != 0 {
			b.Fatalf("Collect = %+v, want one rectangle", p)
		}
		sub.ReadDone()
	}
}

// BenchmarkScrollDetect scrolls a screen of text by 17 pixels, down and up
// in turn, with the whole screen damaged.
func BenchmarkScrollDetect(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	bounds := image.Rectangle{Max: benchSize}
	page := textImage(image.Rect(0, 0, benchSize.X, benchSize.Y+17), 17, rng)
	views := [2]*screen.Image{screen.NewImage(bounds), screen.NewImage(bounds)}
	for i, v := range views {
		for y := range benchSize.Y {
			copy(v.Pix[v.PixOffset(0, y):v.PixOffset(0, y+1)], page.Pix[page.PixOffset(0, y+17*i):])
		}
	}
	f := newFake(cloneImage(views[0]))
	f.cursor = &screen.Cursor{}
	s := New(f, Options{})
	sub := s.Subscribe()
	if err := s.step(s.firstChange(), false); err != nil {
		b.Fatal(err)
	}
	sub.Collect()
	sub.ReadDone()
	ch := screen.Change{Damage: []image.Rectangle{bounds}}
	b.SetBytes(int64(4 * benchSize.X * benchSize.Y))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.img = views[(i+1)%2]
		if err := s.step(ch, true); err != nil {
			b.Fatal(err)
		}
		p := sub.Collect()
		sub.ReadDone()
		if len(p.Copies) != 1 {
			b.Fatalf("Collect = %+v, want one copy", p)
		}
	}
}

// BenchmarkRefineVideo is the lossless-refinement bookkeeping of one
// update of a 640x480 video on a 1280x800 screen: the band just sent is
// lossy and fresh, nothing is still long enough, so Refine finds nothing
// and LossySince finds the oldest band (what rfb's flush asks of every
// update).
func BenchmarkRefineVideo(b *testing.B) {
	bounds := image.Rectangle{Max: benchSize}
	s := New(newFake(screen.NewImage(bounds)), Options{})
	sub := s.Subscribe()
	defer sub.Close()
	sub.Take(nil)
	video := image.Rect(320, 160, 960, 640)
	t0 := time.Unix(1000, 0)
	sub.NoteSent([]image.Rectangle{video}, []image.Rectangle{video}, t0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i+1) * 4 * time.Millisecond)
		band := image.Rect(video.Min.X, video.Min.Y+i%5*96, video.Max.X, video.Min.Y+i%5*96+96)
		sub.NoteSent([]image.Rectangle{band}, []image.Rectangle{band}, now)
		if rs := sub.Refine(now.Add(-200*time.Millisecond), 1<<16, nil); len(rs) != 0 {
			b.Fatalf("Refine = %v, want nothing", rs)
		}
		if _, ok := sub.LossySince(); !ok {
			b.Fatal("LossySince found nothing lossy")
		}
	}
}

// BenchmarkCellMapRects is what a subscriber's Take spends turning its
// dirty cells into rectangles under a video: one band of a 640x480 video
// dirty on a 1280x800 screen of 8-pixel cells.
func BenchmarkCellMapRects(b *testing.B) {
	var m cellMap
	m.reset(benchSize, maxCell)
	m.mark(image.Rect(320, 256, 960, 352))
	var dst []image.Rectangle
	b.ReportAllocs()
	for b.Loop() {
		if dst = m.rects(dst[:0]); len(dst) != 1 {
			b.Fatalf("rects = %v, want one", dst)
		}
	}
}
