package windows

import (
	"encoding/binary"
	"image"
	"slices"
	"testing"
)

// record writes int32s little-endian, as DXGI fills its buffers.
func record(v ...int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

func TestFrameDamage(t *testing.T) {
	bounds := image.Rect(0, 0, 1920, 1080)
	for _, tc := range []struct {
		name         string
		moves, dirty []byte
		want         []image.Rectangle
	}{
		{"nothing changed", nil, nil, []image.Rectangle{}},
		{"a typed character", nil, record(100, 200, 108, 216), []image.Rectangle{image.Rect(100, 200, 108, 216)}},
		{
			// A window scrolled up by 40 lines: DXGI moves the block
			// and marks the revealed strip dirty.
			"scroll",
			record(200, 140, 200, 100, 1000, 700),
			record(200, 700, 1000, 740),
			[]image.Rectangle{image.Rect(200, 100, 1000, 700), image.Rect(200, 700, 1000, 740)},
		},
		{
			// A window dragged right by 30: its new place moved, the
			// uncovered strip on the left dirty.
			"window dragged",
			record(300, 300, 330, 300, 830, 600),
			record(300, 300, 330, 600),
			[]image.Rectangle{image.Rect(330, 300, 830, 600), image.Rect(300, 300, 330, 600)},
		},
		{"clipped to the screen", nil, record(1900, 1000, 2000, 1200, -50, -50, 10, 10), []image.Rectangle{image.Rect(1900, 1000, 1920, 1080), image.Rect(0, 0, 10, 10)}},
		{"off screen entirely", nil, record(2000, 0, 2100, 10), []image.Rectangle{}},
		{"empty dirty rectangle skipped", nil, record(5, 5, 5, 9), []image.Rectangle{}},
		{"torn move buffer: all of it", record(1, 2, 3), nil, []image.Rectangle{bounds}},
		{"torn dirty buffer: all of it", nil, record(1, 2, 3, 4, 5), []image.Rectangle{bounds}},
		{"move to nothing: all of it", record(0, 0, 10, 10, 10, 10), nil, []image.Rectangle{bounds}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := frameDamage(tc.moves, tc.dirty, bounds); !slices.Equal(got, tc.want) {
				t.Errorf("damage %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseMoveRects(t *testing.T) {
	got, err := parseMoveRects(record(200, 140, 200, 100, 1000, 700, -10, 0, 0, 0, 5, 5))
	want := []moveRect{{image.Pt(200, 140), image.Rect(200, 100, 1000, 700)}, {image.Pt(-10, 0), image.Rect(0, 0, 5, 5)}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
}

// FuzzFrameDamage: whatever the buffers hold, the damage lies within
// the screen and nothing panics.
func FuzzFrameDamage(f *testing.F) {
	f.Add(record(200, 140, 200, 100, 1000, 700), record(200, 700, 1000, 740))
	f.Add([]byte{1, 2, 3}, []byte{})
	f.Add(record(-1<<31, -1<<31, -1<<31, -1<<31, 1<<31-1, 1<<31-1), record(1<<31-1, 0, -1<<31, 5))
	bounds := image.Rect(0, 0, 800, 600)
	f.Fuzz(func(t *testing.T, moves, dirty []byte) {
		for _, r := range frameDamage(moves, dirty, bounds) {
			if r.Empty() || !r.In(bounds) {
				t.Fatalf("damage %v outside %v or empty", r, bounds)
			}
		}
	})
}
