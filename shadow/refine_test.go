package shadow

import (
	"image"
	"slices"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// TestRefine drives one subscriber's lossy bookkeeping by hand (no capture
// loop): what the viewer was sent, what changed and moved, and what
// Refine then hands out.
func TestRefine(t *testing.T) {
	t0 := time.Unix(1000, 0)
	later := t0.Add(time.Hour)
	a := image.Rect(0, 0, 64, 64)
	type step func(sub *Subscriber)
	sent := func(all, lossy []image.Rectangle, at time.Time) step {
		return func(sub *Subscriber) { sub.NoteSent(all, lossy, at) }
	}
	changed := func(r image.Rectangle) step {
		return func(sub *Subscriber) {
			sub.deliver(&event{boxes: []image.Rectangle{r}}, 8)
		}
	}
	copied := func(c Copy) step {
		return func(sub *Subscriber) { sub.deliver(&event{copies: []Copy{c}}, 8) }
	}
	taken := func(sub *Subscriber) { sub.Take(nil) }
	// scanned asks LossySince, which shrinks the area Refine scans to
	// the cells lossy then; later steps must widen it again.
	scanned := func(sub *Subscriber) { sub.LossySince() }
	b := image.Rect(64, 64, 128, 128)
	rs := func(r ...image.Rectangle) []image.Rectangle { return r }
	for _, tc := range []struct {
		name    string
		steps   []step
		still   time.Time
		maxArea int
		want    []image.Rectangle
	}{
		{"nothing lossy", []step{taken}, later, 1 << 20, nil},
		{"lossy, not still long enough", []step{taken, sent(rs(a), rs(a), t0)}, t0.Add(-1), 1 << 20, nil},
		{"lossy and still", []step{taken, sent(rs(a), rs(a), t0)}, t0, 1 << 20, rs(a)},
		{"sent exactly since", []step{taken, sent(rs(a), rs(a), t0), sent(rs(a), nil, t0)}, later, 1 << 20, nil},
		{"lossy part of an update", []step{taken, sent(rs(image.Rect(0, 0, 128, 128)), rs(a), t0)}, later, 1 << 20, rs(a)},
		{"changed again: pending", []step{taken, sent(rs(a), rs(a), t0), changed(image.Rect(8, 8, 9, 9))}, later, 1 << 20,
			rs(image.Rect(0, 0, 64, 8), image.Rect(0, 8, 8, 16), image.Rect(16, 8, 64, 16), image.Rect(0, 16, 64, 64))},
		{"a cell partly resent stays lossy", []step{taken, sent(rs(a), rs(a), t0), sent(rs(image.Rect(0, 0, 60, 64)), nil, t0)}, later, 1 << 20,
			rs(image.Rect(56, 0, 64, 64))},
		{"copy pending", []step{taken, sent(rs(a), rs(a), t0), copied(Copy{Src: a, Dst: image.Pt(0, 64)})}, later, 1 << 20, nil},
		{"copy moves lossy pixels", []step{taken, sent(rs(a), rs(a), t0), copied(Copy{Src: a, Dst: image.Pt(0, 64)}), taken}, later, 1 << 20,
			rs(image.Rect(0, 0, 64, 128))},
		{"copy of exact pixels over lossy ones", []step{taken, sent(rs(image.Rect(0, 64, 64, 128)), rs(image.Rect(0, 64, 64, 128)), t0),
			copied(Copy{Src: a, Dst: image.Pt(0, 64)}), taken}, later, 1 << 20, nil},
		{"copy by less than a cell keeps its neighbours' state", []step{taken, sent(rs(image.Rect(0, 8, 64, 16)), rs(image.Rect(0, 8, 64, 16)), t0),
			copied(Copy{Src: image.Rect(0, 0, 64, 64), Dst: image.Pt(0, 4)}), taken}, later, 1 << 20,
			rs(image.Rect(0, 8, 64, 24))},
		{"lossy elsewhere after a scan", []step{taken, sent(rs(a), rs(a), t0), scanned, sent(rs(b), rs(b), t0)}, later, 1 << 20, rs(a, b)},
		{"exact after a scan, then lossy again", []step{taken, sent(rs(a), rs(a), t0), sent(rs(a), nil, t0), scanned,
			sent(rs(b), rs(b), t0.Add(time.Second))}, t0.Add(time.Second), 1 << 20, rs(b)},
		{"older lossy cell still due after newer ones", []step{taken, sent(rs(b), rs(b), t0.Add(time.Second)), scanned,
			sent(rs(a), rs(a), t0)}, t0, 1 << 20, rs(a)},
		{"resent lossy later: not still after a scan", []step{taken, sent(rs(a), rs(a), t0), sent(rs(a), rs(a), t0.Add(time.Second)), scanned},
			t0, 1 << 20, nil},
		{"copy moves lossy pixels out of the scanned area", []step{taken, sent(rs(a), rs(a), t0), scanned,
			copied(Copy{Src: a, Dst: image.Pt(64, 64)}), taken, sent(rs(a), nil, t0)}, later, 1 << 20, rs(b)},
		{"budget: whole rows of cells", []step{taken, sent(rs(image.Rect(0, 0, 128, 128)), rs(image.Rect(0, 0, 128, 128)), t0)}, later, 128 * 20,
			rs(image.Rect(0, 0, 128, 16))},
		{"budget: at least one row", []step{taken, sent(rs(image.Rect(0, 0, 128, 128)), rs(image.Rect(0, 0, 128, 128)), t0)}, later, 1,
			rs(image.Rect(0, 0, 128, 8))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(newFake(screen.NewImage(image.Rect(0, 0, 128, 128))), Options{})
			sub := s.Subscribe()
			defer sub.Close()
			for _, st := range tc.steps {
				st(sub)
			}
			var read []image.Rectangle
			got := sub.Refine(tc.still, tc.maxArea, func(rs []image.Rectangle, cur *screen.Image) {
				read = append(read, rs...)
			})
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Refine = %v, want %v", got, tc.want)
			}
			if len(got) > 0 && !slices.Equal(read, got) {
				t.Errorf("fn read %v, Refine returned %v", read, got)
			}
			since, ok := sub.LossySince()
			if len(tc.want) > 0 && (!ok || since.After(tc.still)) {
				t.Errorf("LossySince = %v, %v with areas due", since, ok)
			}
		})
	}
}
