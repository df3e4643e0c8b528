package shadow

import (
	"image"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/assist-project/assist/screen"
)

func TestCellMapRects(t *testing.T) {
	size := image.Pt(100, 70) // 7x5 cells of 16, the last ones cut short
	tests := []struct {
		name string
		mark []image.Rectangle
		want []image.Rectangle
	}{
		{"none", nil, nil},
		{"all", []image.Rectangle{image.Rect(-5, -5, 500, 500)}, []image.Rectangle{image.Rect(0, 0, 100, 70)}},
		{"one pixel", []image.Rectangle{image.Rect(17, 17, 18, 18)}, []image.Rectangle{image.Rect(16, 16, 32, 32)}},
		{"block from pieces",
			[]image.Rectangle{image.Rect(0, 0, 40, 10), image.Rect(5, 10, 48, 40), image.Rect(0, 12, 6, 44)},
			[]image.Rectangle{image.Rect(0, 0, 48, 48)}},
		{"L shape",
			[]image.Rectangle{image.Rect(0, 0, 16, 48), image.Rect(16, 32, 48, 48)},
			[]image.Rectangle{image.Rect(0, 0, 16, 32), image.Rect(0, 32, 48, 48)}},
		{"two columns", []image.Rectangle{image.Rect(0, 0, 1, 70), image.Rect(99, 0, 100, 70)},
			[]image.Rectangle{image.Rect(0, 0, 16, 70), image.Rect(96, 0, 100, 70)}},
		{"corner", []image.Rectangle{image.Rect(99, 69, 100, 70)}, []image.Rectangle{image.Rect(96, 64, 100, 70)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m cellMap
			m.reset(size, 16)
			for _, r := range tt.mark {
				m.mark(r)
			}
			got := m.rects(nil)
			sortRects(got)
			sortRects(tt.want)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("rects = %v, want %v", got, tt.want)
			}
		})
	}
}

func sortRects(rs []image.Rectangle) {
	slices.SortFunc(rs, func(a, b image.Rectangle) int {
		if a.Min.Y != b.Min.Y {
			return a.Min.Y - b.Min.Y
		}
		return a.Min.X - b.Min.X
	})
}

// TestCellMapRectsCover checks on random bitmaps that rects covers exactly
// the set cells with disjoint rectangles.
func TestCellMapRectsCover(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for range 200 {
		var m cellMap
		size := image.Pt(1+rng.IntN(120), 1+rng.IntN(120))
		m.reset(size, 1+rng.IntN(16))
		for i := range m.bits {
			m.bits[i] = rng.IntN(3) > 0
		}
		rs := m.rects(nil)
		checkDirty(t, rs, m.bounds())
		var back cellMap
		back.reset(size, m.cell)
		for _, r := range rs {
			back.mark(r)
		}
		if !slices.Equal(back.bits, m.bits) {
			t.Fatalf("rects %v do not cover the cells of %+v", rs, m)
		}
	}
}

func TestUnmarkCovered(t *testing.T) {
	var m cellMap
	m.reset(image.Pt(100, 70), 16)
	m.markAll()
	m.unmarkCovered(image.Rect(10, 0, 100, 70)) // column 0 is only partly covered
	if got := m.rects(nil); !slices.Equal(got, []image.Rectangle{image.Rect(0, 0, 16, 70)}) {
		t.Fatalf("after unmarking, rects = %v", got)
	}
	m.unmarkCovered(image.Rect(0, 0, 16, 64)) // the last row, cut short, stays
	if got := m.rects(nil); !slices.Equal(got, []image.Rectangle{image.Rect(0, 64, 16, 70)}) {
		t.Fatalf("after unmarking, rects = %v", got)
	}
}

// TestDiffRect compares diffRect with a pixel-by-pixel bounding box.
func TestDiffRect(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	bounds := image.Rect(0, 0, 70, 50)
	for range 500 {
		a := noiseImage(bounds, rng)
		b := cloneImage(a)
		for range rng.IntN(4) {
			x, y := rng.IntN(70), rng.IntN(50)
			b.Pix[b.PixOffset(x, y)+rng.IntN(4)] ^= 1 << rng.IntN(8)
		}
		r := image.Rect(rng.IntN(35), rng.IntN(25), 35+rng.IntN(36), 25+rng.IntN(26))
		if got, want := diffRect(a, b, r), naiveDiff(a, b, r); got != want {
			t.Fatalf("diffRect(%v) = %v, want %v", r, got, want)
		}
	}
}

func naiveDiff(a, b *screen.Image, r image.Rectangle) image.Rectangle {
	var box image.Rectangle
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			i := a.PixOffset(x, y)
			if [4]byte(a.Pix[i:i+4]) != [4]byte(b.Pix[i:i+4]) {
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return box
}
