package shadow

import (
	"image"
	"math/rand/v2"
	"testing"

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
