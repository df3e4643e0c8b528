package rfb

import (
	"image"
	"slices"
	"testing"

	"github.com/assist-project/assist/screen"
)

func TestUpdateBudget(t *testing.T) {
	for _, tc := range []struct {
		name        string
		unsolicited bool
		rate        float64 // bytes per second
		want        int
	}{
		{"pull model: whole updates", false, 20e6 / 8, 0},
		{"no estimate yet", true, 0, 0},
		{"20 Mbit/s: 5 ms of it", true, 20e6 / 8, 12500},
		{"5 Mbit/s: 5 ms of it", true, 5e6 / 8, 3125},
		{"2 Mbit/s: the least slice", true, 2e6 / 8, 3072},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := updateBudget(tc.unsolicited, tc.rate); got != tc.want {
				t.Errorf("updateBudget(%v, %v) = %d, want %d", tc.unsolicited, tc.rate, got, tc.want)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	full := image.Rect(0, 0, 640, 100)
	key := image.Rect(600, 440, 608, 456)
	bands := func(from ...int) []image.Rectangle {
		var out []image.Rectangle
		for _, y := range from {
			out = append(out, image.Rect(0, y, 640, min(y+bandRows, 100)))
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		dirty     []image.Rectangle
		held      []image.Rectangle
		from      int
		want      []image.Rectangle
		wantSmall int
	}{
		{"small areas go first, whole", []image.Rectangle{full, key}, nil, 0,
			append([]image.Rectangle{key}, bands(0, 32, 64, 96)...), 1},
		{"large areas resume where the last update stopped", []image.Rectangle{full, key}, nil, 64,
			append([]image.Rectangle{key}, bands(64, 96, 0, 32)...), 1},
		{"bands follow the screen's rows", []image.Rectangle{image.Rect(0, 20, 400, 90)}, nil, 0,
			[]image.Rectangle{image.Rect(0, 20, 400, 32), image.Rect(0, 32, 400, 64), image.Rect(0, 64, 400, 90)}, 0},
		{"empty areas are dropped", []image.Rectangle{{}, key}, nil, 0, []image.Rectangle{key}, 1},
		{"a small area held back is no small change", []image.Rectangle{image.Rect(0, 96, 640, 100), key},
			[]image.Rectangle{image.Rect(0, 96, 640, 100)}, 0, []image.Rectangle{key, image.Rect(0, 96, 640, 100)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.dirty)
			got, small := schedule(tc.dirty, tc.held, tc.from)
			if !slices.Equal(got, tc.want) || small != tc.wantSmall {
				t.Errorf("schedule(%v, %d) = %v, %d; want %v, %d", tc.dirty, tc.from, got, small, tc.want, tc.wantSmall)
			}
			if !slices.Equal(in, tc.dirty) {
				t.Errorf("schedule changed its argument: %v", tc.dirty)
			}
		})
	}
}

// Across a paced path, a small change made together with a large one
// reaches the viewer in the first update, which leaves most of the large
// one for later updates instead of carrying it all: the small change
// waits behind one slice, not behind the whole screen.
func TestServerSmallChangeFirst(t *testing.T) {
	ts := startServer(t, 640, 480, false)
	c, pp := pacedClient(t, ts, 5, EncTight, EncJPEGQuality0+8, EncAssistPush) // 5 Mbit/s
	type upd struct {
		rects []image.Rectangle
		bytes int
	}
	readUpdate := func() upd {
		t.Helper()
		for {
			m, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if m.Type == ServerFramebufferUpdate {
				var u upd
				for _, r := range m.Rects {
					u.rects = append(u.rects, r.Rect)
				}
				u.bytes = m.Bytes
				return u
			}
		}
	}
	for want := ts.desk.Snapshot(); !equalImages(c.Framebuffer(), want) || len(c.Framebuffer().Pix) == 0; {
		readUpdate()
	}

	// With no room, a large change and a small one pile up in the
	// viewer's Subscriber.
	pp.set(true, 5)
	watch := ts.srv.Screen.Subscribe()
	defer watch.Close()
	watch.Take(nil)
	photoArea := image.Rect(0, 0, 640, 400)
	key := image.Rect(600, 440, 608, 456)
	ts.desk.Change(func(img *screen.Image) image.Rectangle {
		photo(img, photoArea)
		return photoArea
	})
	ts.desk.Change(func(img *screen.Image) image.Rectangle {
		fillPattern(img, key, 7)
		return key
	})
	for seen := false; !seen; {
		<-watch.Ready()
		for _, r := range watch.Take(nil).Dirty {
			seen = seen || r.Overlaps(key)
		}
	}
	pp.set(false, 5)
	first := readUpdate()
	covers := func(u upd, r image.Rectangle) bool {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if !slices.ContainsFunc(u.rects, func(q image.Rectangle) bool { return image.Pt(x, y).In(q) }) {
					return false
				}
			}
		}
		return true
	}
	area := 0
	for _, r := range first.rects {
		area += r.Dx() * r.Dy()
	}
	t.Logf("first update: %d bytes, %d rectangles, %d pixels", first.bytes, len(first.rects), area)
	if !covers(first, key) {
		t.Fatalf("the first update (%v) does not carry the small change %v", first.rects, key)
	}
	// It carries the small change alone: the viewer shows an update
	// only once it has all of it, so a slice of the large change behind
	// the small one would delay it by the slice's sending time.
	for _, r := range first.rects {
		if r.Overlaps(photoArea) {
			t.Errorf("the first update carries %v of the large change besides the small change %v (%d pixels in all): the small change waited for it", r, key, area)
		}
	}
	// The next carries a slice of the large change: small changes do not
	// starve it.
	if second := readUpdate(); !slices.ContainsFunc(second.rects, func(r image.Rectangle) bool { return r.Overlaps(photoArea) }) {
		t.Errorf("the second update (%v) carries nothing of the large change", second.rects)
	}

	// A small change inside an area left for later is a small change
	// too: it goes ahead of the slices, not in its band's turn.
	pp.set(true, 5)
	key2 := image.Rect(296, 360, 304, 368) // in a band not sent yet
	ts.desk.Change(func(img *screen.Image) image.Rectangle {
		fillPattern(img, key2, 9)
		return key2
	})
	for seen := false; !seen; {
		<-watch.Ready()
		for _, r := range watch.Take(nil).Dirty {
			seen = seen || r.Overlaps(key2)
		}
	}
	pp.set(false, 5)
	for {
		u := readUpdate()
		if !slices.ContainsFunc(u.rects, func(r image.Rectangle) bool { return r.Overlaps(key2) }) {
			continue
		}
		if !slices.ContainsFunc(u.rects, func(r image.Rectangle) bool { return r.Overlaps(key2) && r.Dx()*r.Dy() <= smallArea }) {
			t.Errorf("the small change %v inside an area left for later came with %v: in its band's turn, not first", key2, u.rects)
		}
		break
	}

	// The rest follows, and the viewer ends up with the whole screen.
	updates := 1
	for want := ts.desk.Snapshot(); !equalImages(c.Framebuffer(), want); updates++ {
		readUpdate()
	}
	if updates < 3 {
		t.Errorf("the change came in %d updates, want it cut into slices", updates)
	}

	// A non-incremental request is answered whole, in one update: an
	// assist join takes it as the picture for a new viewer of its own
	// (vncsnapshot through assist join saw one band and grey below).
	whole := image.Rect(0, 0, 640, 480)
	if err := c.RequestUpdate(false, whole); err != nil {
		t.Fatal(err)
	}
	for n := 0; ; n++ {
		if u := readUpdate(); covers(u, whole) {
			break
		}
		if n == 50 {
			t.Fatal("no update answered the non-incremental request whole")
		}
	}
}

// Areas an update left for later come back dirty; they are no change of
// the screen for the H.264 tracker, while anything new among them is.
func TestNotHeldBack(t *testing.T) {
	held := []image.Rectangle{image.Rect(0, 32, 640, 64), image.Rect(0, 64, 640, 96)}
	dirty := []image.Rectangle{
		image.Rect(0, 32, 640, 64),   // held back, unchanged
		image.Rect(100, 64, 200, 80), // inside a held-back band
		image.Rect(0, 0, 640, 40),    // overlaps one: a real change too
		image.Rect(600, 440, 608, 456),
	}
	want := []image.Rectangle{image.Rect(0, 0, 640, 40), image.Rect(600, 440, 608, 456)}
	if got := notHeldBack(dirty, held); !slices.Equal(got, want) {
		t.Errorf("notHeldBack = %v, want %v", got, want)
	}
	if got := notHeldBack(dirty, nil); !slices.Equal(got, dirty) {
		t.Errorf("notHeldBack with nothing held = %v, want all of %v", got, dirty)
	}
}
