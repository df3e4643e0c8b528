package shadow

import (
	"image"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/assist-project/assist/screen"
)

// TestGrabDamagedParts checks that a change grabs (and compares) the
// damaged parts of tiles, not the whole tiles under them, unless at least
// half a tile is damaged: a video's bands of rows would otherwise be
// grabbed twice where a band ends inside a tile.
func TestGrabDamagedParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	bounds := image.Rect(0, 0, 256, 256)
	for _, tc := range []struct {
		name   string
		damage []image.Rectangle
		want   []image.Rectangle
	}{
		{"inside one tile", []image.Rectangle{image.Rect(10, 20, 50, 40)}, []image.Rectangle{image.Rect(10, 20, 50, 40)}},
		{"half a tile", []image.Rectangle{image.Rect(0, 32, 64, 64)}, []image.Rectangle{image.Rect(0, 0, 64, 64)}},
		{"across tiles", []image.Rectangle{image.Rect(10, 20, 100, 140)}, []image.Rectangle{image.Rect(0, 0, 128, 140)}},
		{"small parts of tiles", []image.Rectangle{image.Rect(70, 20, 100, 60), image.Rect(10, 130, 60, 140)},
			[]image.Rectangle{image.Rect(70, 20, 100, 60), image.Rect(10, 130, 60, 140)}},
		{"first band", []image.Rectangle{image.Rect(0, 0, 256, 100)}, []image.Rectangle{image.Rect(0, 0, 256, 128)}},
		{"second band", []image.Rectangle{image.Rect(0, 100, 256, 200)}, []image.Rectangle{image.Rect(0, 100, 256, 200)}},
		{"two pieces in a tile", []image.Rectangle{image.Rect(2, 2, 4, 4), image.Rect(30, 40, 32, 42)}, []image.Rectangle{image.Rect(2, 2, 32, 42)}},
		{"outside the screen", []image.Rectangle{image.Rect(200, 250, 300, 300)}, []image.Rectangle{image.Rect(200, 250, 256, 256)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(noiseImage(bounds, rng))
			f.cursor = &screen.Cursor{}
			s := New(f, Options{TileSize: 64, DetectScroll: true})
			sub := s.Subscribe()
			if err := s.step(s.firstChange(), false); err != nil {
				t.Fatal(err)
			}
			sub.Collect()
			for _, r := range tc.damage {
				fill(f.img, r, [4]byte{1, 2, 3, 0})
			}
			f.grabs = nil
			if err := s.step(screen.Change{Damage: tc.damage}, true); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.grabs, tc.want) {
				t.Errorf("grabbed %v, want %v", f.grabs, tc.want)
			}
			if p, ok := sameImage(current(s), f.img); !ok {
				t.Errorf("copy differs from the desktop at %v", p)
			}
		})
	}
}
