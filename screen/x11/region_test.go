package x11

import (
	"image"
	"testing"
)

func TestRegionAdd(t *testing.T) {
	r := image.Rect
	for _, tc := range []struct {
		name string
		add  []image.Rectangle
		want []image.Rectangle // exact result, in any order
	}{
		{"empty ignored", []image.Rectangle{{}, r(5, 5, 5, 9)}, nil},
		{"contained", []image.Rectangle{r(0, 0, 100, 100), r(10, 10, 20, 20)}, []image.Rectangle{r(0, 0, 100, 100)}},
		{"containing", []image.Rectangle{r(10, 10, 20, 20), r(0, 0, 100, 100)}, []image.Rectangle{r(0, 0, 100, 100)}},
		{"glyph row", []image.Rectangle{r(0, 0, 8, 16), r(8, 0, 16, 16), r(16, 0, 24, 16)}, []image.Rectangle{r(0, 0, 24, 16)}},
		{"far apart", []image.Rectangle{r(0, 0, 100, 100), r(500, 500, 600, 600)},
			[]image.Rectangle{r(0, 0, 100, 100), r(500, 500, 600, 600)}},
		{"corner touch of big ones stays apart", []image.Rectangle{r(0, 0, 200, 200), r(200, 200, 400, 400)},
			[]image.Rectangle{r(0, 0, 200, 200), r(200, 200, 400, 400)}},
		{"merge chain", []image.Rectangle{r(0, 0, 10, 10), r(20, 0, 30, 10), r(10, 0, 20, 10)}, []image.Rectangle{r(0, 0, 30, 10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g region
			for _, a := range tc.add {
				g.add(a)
			}
			if len(g.rects) != len(tc.want) {
				t.Fatalf("got %v, want %v", g.rects, tc.want)
			}
			for _, w := range tc.want {
				found := false
				for _, x := range g.rects {
					found = found || x == w
				}
				if !found {
					t.Fatalf("got %v, want %v", g.rects, tc.want)
				}
			}
		})
	}
}

func TestRegionCap(t *testing.T) {
	var g region
	// A flood of scattered 1x1 rectangles.
	for i := 0; i < 10000; i++ {
		x, y := (i*7919)%1920, (i*104729)%1080
		p := image.Rect(x, y, x+1, y+1)
		g.add(p)
		if len(g.rects) > maxRects {
			t.Fatalf("%d rectangles", len(g.rects))
		}
		if !covers(g.rects, p) {
			t.Fatalf("lost %v", p)
		}
	}
}

func TestRegionClip(t *testing.T) {
	var g region
	g.add(image.Rect(0, 0, 100, 100))
	g.add(image.Rect(700, 500, 900, 700))
	g.clip(image.Rect(0, 0, 800, 600))
	if len(g.rects) != 2 || g.rects[1] != image.Rect(700, 500, 800, 600) && g.rects[0] != image.Rect(700, 500, 800, 600) {
		t.Fatalf("clip: %v", g.rects)
	}
	g.clip(image.Rect(0, 0, 50, 50))
	if len(g.rects) != 1 || g.rects[0] != image.Rect(0, 0, 50, 50) {
		t.Fatalf("clip: %v", g.rects)
	}
}

// FuzzRegion checks that whatever arrives, every damaged pixel stays
// covered and the rectangle count stays capped.
func FuzzRegion(f *testing.F) {
	f.Add([]byte{0, 0, 10, 10, 5, 5, 20, 20})
	f.Add([]byte{1, 2, 3, 4, 200, 100, 3, 3, 4, 2, 1, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		var g region
		var added []image.Rectangle
		for i := 0; i+4 <= len(data); i += 4 {
			x, y := int(data[i]), int(data[i+1])
			r := image.Rect(x, y, x+int(data[i+2]%64), y+int(data[i+3]%64))
			g.add(r)
			added = append(added, r)
			if len(g.rects) > maxRects {
				t.Fatalf("%d rectangles", len(g.rects))
			}
		}
		for _, r := range added {
			if !covers(g.rects, r) {
				t.Fatalf("%v not covered by %v", r, g.rects)
			}
		}
	})
}
