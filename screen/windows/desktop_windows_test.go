package windows

import (
	"context"
	"image"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/assist-project/assist/screen"
	"go.uber.org/goleak"
)

// These tests need a Windows desktop: real Windows, or Wine, where
// wine_test.go runs them (go test ./screen/windows on Linux).

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openDesktop opens the desktop as the tests use it. ASSIST_CAPTURE=dxgi
// runs them over Desktop Duplication, for a real Windows.
func openDesktop(t *testing.T) *Desktop {
	t.Helper()
	opts := Options{PollInterval: 10 * time.Millisecond}
	if os.Getenv("ASSIST_CAPTURE") == "dxgi" {
		opts.Capture = CaptureDXGI
	}
	d, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// grabUntil grabs the whole screen until ok holds, or fails after 5 s.
func grabUntil(t *testing.T, d *Desktop, ok func(*screen.Image) bool) *screen.Image {
	t.Helper()
	img := screen.NewImage(image.Rectangle{Max: d.Size()})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := d.Grab(img, img.Rect); err != nil {
			t.Fatal(err)
		}
		if ok(img) {
			return img
		}
		if time.Now().After(deadline) {
			return img
		}
		time.Sleep(20 * time.Millisecond) // painting is asynchronous; nothing to wait on
	}
}

// showsPicture reports where img differs from the test window's picture.
func showsPicture(img *screen.Image, w *testWindow) (bad int, first image.Point) {
	size := w.rect.Size()
	for y := range size.Y {
		for x := range size.X {
			o := img.PixOffset(w.rect.Min.X+x, w.rect.Min.Y+y)
			i := 4 * (y*size.X + x)
			if [3]byte(img.Pix[o:o+3]) != [3]byte(w.pict[i:i+3]) {
				if bad == 0 {
					first = image.Pt(x, y)
				}
				bad++
			}
		}
	}
	return bad, first
}

func TestGrabShowsWindow(t *testing.T) {
	d := openDesktop(t)
	w := openTestWindow(t, image.Rect(64, 48, 64+200, 48+120))
	img := grabUntil(t, d, func(img *screen.Image) bool { n, _ := showsPicture(img, w); return n == 0 })
	if n, at := showsPicture(img, w); n != 0 {
		t.Fatalf("%d pixels of the window differ in the grab, the first at %v", n, at)
	}
	// A grab of a part lands at the same coordinates and touches nothing else.
	part := screen.NewImage(image.Rectangle{Max: d.Size()})
	r := image.Rect(100, 60, 140, 90)
	if err := d.Grab(part, r); err != nil {
		t.Fatal(err)
	}
	for y := range part.Rect.Dy() {
		for x := range part.Rect.Dx() {
			o := part.PixOffset(x, y)
			in := image.Pt(x, y).In(r)
			if got, want := [3]byte(part.Pix[o:o+3]), [3]byte(img.Pix[o:o+3]); in && got != want || !in && got != [3]byte{} {
				t.Fatalf("partial grab of %v: pixel (%d,%d) is %v (inside: %v, full grab %v)", r, x, y, got, in, want)
			}
		}
	}
}

// TestCaptureDXGI asks for Desktop Duplication: where it runs (Windows
// 8 and later with one display) the frames must show the window; where
// it cannot (Wine), the Desktop must fall back to GDI and still capture.
func TestCaptureDXGI(t *testing.T) {
	d, err := Open(Options{PollInterval: 10 * time.Millisecond, Capture: CaptureDXGI})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t.Logf("capture method: %s", d.Method())
	if d.Method() == "gdi" {
		dup, err := newDuplicator(image.Rectangle{Max: d.Size()})
		if err == nil {
			dup.close()
		}
		t.Logf("why not DXGI: %v", err)
	}
	w := openTestWindow(t, image.Rect(64, 48, 64+200, 48+120))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	img := screen.NewImage(image.Rectangle{Max: d.Size()})
	for {
		ch, err := d.Next(ctx)
		if err != nil {
			t.Fatalf("the window never showed in the capture (method %s): %v", d.Method(), err)
		}
		for _, r := range ch.Damage {
			if err := d.Grab(img, r); err != nil {
				t.Fatal(err)
			}
		}
		if n, _ := showsPicture(img, w); n == 0 {
			break
		}
	}
}

func TestNextReportsScreen(t *testing.T) {
	d := openDesktop(t)
	ch, err := d.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []image.Rectangle{{Max: d.Size()}}; !slices.Equal(ch.Damage, want) {
		t.Fatalf("damage %v, want %v", ch.Damage, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Next(ctx); err == nil {
		t.Fatal("Next with a done context returned no error")
	}
}

func TestPointerMoves(t *testing.T) {
	d := openDesktop(t)
	size := d.Size()
	for _, p := range []image.Point{{0, 0}, {1, 1}, {123, 45}, {size.X / 2, size.Y / 3}, {size.X - 1, size.Y - 1}} {
		if err := d.Pointer(p.X, p.Y, 0); err != nil {
			t.Fatal(err)
		}
		if got, err := d.CursorPos(); err != nil || got != p {
			t.Errorf("pointer sent to %v is at %v (%v)", p, got, err)
		}
	}
	// Outside the screen is clamped to its edge.
	d.Pointer(size.X+50, -10, 0)
	if got, _ := d.CursorPos(); got != image.Pt(size.X-1, 0) {
		t.Errorf("pointer sent off screen is at %v, want %v", got, image.Pt(size.X-1, 0))
	}
}

func TestPointerButtons(t *testing.T) {
	d := openDesktop(t)
	w := openTestWindow(t, image.Rect(200, 200, 400, 300))
	d.Pointer(250, 230, 0)
	d.Pointer(250, 230, 1) // left down
	d.Pointer(250, 230, 0) // left up
	d.Pointer(250, 230, 4) // right down
	d.Pointer(250, 230, 0)
	d.Pointer(250, 230, 8) // wheel up, one notch
	d.Pointer(250, 230, 0)
	d.Pointer(250, 230, 16) // wheel down
	d.Pointer(250, 230, 0)
	ev := w.waitEvents(func(ev []event) bool { return len(filterMsgs(ev, wmWheel)) == 2 })
	down := filterMsgs(ev, wmLButton)
	if len(down) != 1 || down[0].lParam != uintptr(30<<16|50) {
		t.Errorf("left button downs %v, want one at client (50,30)", down)
	}
	if n := len(filterMsgs(ev, wmLButtonU)); n != 1 {
		t.Errorf("%d left button ups, want 1", n)
	}
	if n := len(filterMsgs(ev, wmRButton)); n != 1 {
		t.Errorf("%d right button downs, want 1", n)
	}
	wheel := filterMsgs(ev, wmWheel)
	if d1, d2 := int16(wheel[0].wParam>>16), int16(wheel[1].wParam>>16); d1 != 120 || d2 != -120 {
		t.Errorf("wheel deltas %d, %d; want 120, -120", d1, d2)
	}
}

func filterMsgs(ev []event, m uint32) []event {
	var out []event
	for _, e := range ev {
		if e.msg == m {
			out = append(out, e)
		}
	}
	return out
}

func TestKeysType(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []uint32 // pressed and released in order; modifiers wrap with shift
		want string
	}{
		{"letters", []uint32{'h', 'i'}, "hi"},
		{"digits and punctuation", []uint32{'1', '.', ' ', '-'}, "1. -"},
		// A viewer whose layout differs sends '!' or 'A' without Shift:
		// the character, not the unshifted key under it, must arrive.
		{"shifted characters without Shift", []uint32{'!', 'A', '@'}, "!A@"},
		{"latin-1 outside the layout", []uint32{0xe9, 0xdf}, "éß"},
		{"legacy keysym (EuroSign)", []uint32{0x20ac}, "€"},
		{"Cyrillic legacy keysym", []uint32{0x6c1}, "а"},
		{"unicode keysym outside the BMP", []uint32{0x0101f600}, "😀"},
		{"return", []uint32{0xff0d}, "\r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := openDesktop(t)
			w := openTestWindow(t, image.Rect(300, 300, 400, 350))
			for _, k := range tc.keys {
				if err := d.Key(k, true); err != nil {
					t.Fatal(err)
				}
				if err := d.Key(k, false); err != nil {
					t.Fatal(err)
				}
			}
			ev := w.waitEvents(func(ev []event) bool { return chars(ev) == tc.want })
			if got := chars(ev); got != tc.want {
				t.Errorf("typed %q, want %q", got, tc.want)
			}
		})
	}
}

func TestShiftedLetter(t *testing.T) {
	d := openDesktop(t)
	w := openTestWindow(t, image.Rect(300, 300, 400, 350))
	// As a viewer sends it: Shift, then the upper-case keysym.
	for _, k := range []struct {
		ks   uint32
		down bool
	}{{0xffe1, true}, {'H', true}, {'H', false}, {0xffe1, false}, {'i', true}, {'i', false}} {
		if err := d.Key(k.ks, k.down); err != nil {
			t.Fatal(err)
		}
	}
	ev := w.waitEvents(func(ev []event) bool { return len(chars(ev)) >= 2 })
	if got := chars(ev); got != "Hi" {
		t.Errorf("typed %q, want \"Hi\"", got)
	}
	// The H went through the layout, as the virtual key of H.
	if n := keyDowns(ev, 'H'); n != 1 {
		t.Errorf("%d key downs of VK H, want 1 (events %v)", n, ev)
	}
}

func TestFunctionKeys(t *testing.T) {
	d := openDesktop(t)
	w := openTestWindow(t, image.Rect(300, 300, 400, 350))
	for _, tc := range []struct {
		ks       uint32
		vk       uintptr
		extended bool
	}{{0xff51, 0x25, true}, {0xff96, 0x25, false}, {0xffbe, 0x70, false}, {0xff1b, 0x1b, false}, {0xffff, 0x2e, true}} {
		w.take()
		d.Key(tc.ks, true)
		d.Key(tc.ks, false)
		ev := w.waitEvents(func(ev []event) bool { return keyUps(ev, tc.vk) == 1 })
		var down *event
		for i := range ev {
			if ev[i].msg == wmKeyDown && ev[i].wParam == tc.vk {
				down = &ev[i]
			}
		}
		if down == nil {
			t.Errorf("keysym %#x: no key down of VK %#x in %v", tc.ks, tc.vk, ev)
			continue
		}
		if ext := down.lParam>>24&1 != 0; ext != tc.extended {
			t.Errorf("keysym %#x: extended %v, want %v", tc.ks, ext, tc.extended)
		}
		if scan := down.lParam >> 16 & 0xff; scan == 0 {
			t.Errorf("keysym %#x: no scan code", tc.ks)
		}
	}
}

func keyHeld(vk uintptr) bool {
	r, _, _ := procGetAsyncKeyState.Call(vk)
	return r&0x8000 != 0
}

func TestCloseReleasesHeldKeys(t *testing.T) {
	d, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Key(0xffe1, true) // Shift_L
	d.Pointer(10, 10, 1)
	if !keyHeld(vkLShift) || !keyHeld(0x01) {
		t.Fatal("Shift or the left button is not down after pressing them")
	}
	d.Close()
	if keyHeld(vkLShift) || keyHeld(0x01) {
		t.Fatal("Shift or the left button is still down after Close")
	}
}

func TestClipboard(t *testing.T) {
	d := openDesktop(t)
	const ours = "héllo ✓ 😀\r\nline two"
	if err := d.SetClipboard(ours); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	got, err := d.readClipboard()
	d.mu.Unlock()
	if err != nil || got != ours {
		t.Fatalf("clipboard holds %q (%v), want %q", got, err, ours)
	}
	if ch, err := d.Next(context.Background()); err != nil || ch.Clipboard {
		t.Fatalf("Next reported our own clipboard text back: %+v, %v", ch, err)
	}
	// Another program's text is reported, once.
	const theirs = "from another program"
	u, _ := utf16z(theirs)
	if err := writeClipboard(u); err != nil {
		t.Fatal(err)
	}
	ch, err := d.Next(context.Background())
	if err != nil || !ch.Clipboard || ch.Text != theirs {
		t.Fatalf("after another program's copy, Next reported %+v, %v", ch, err)
	}
	if ch, _ := d.Next(context.Background()); ch.Clipboard {
		t.Fatal("the same clipboard text was reported twice")
	}
	// An emptied clipboard is not news (Wine empties it before an X
	// program's text arrives); the text after it is.
	if err := writeClipboard([]uint16{0}); err != nil {
		t.Fatal(err)
	}
	if ch, _ := d.Next(context.Background()); ch.Clipboard {
		t.Fatalf("an empty clipboard was reported: %+v", ch)
	}
	u, _ = utf16z("after the empty one")
	if err := writeClipboard(u); err != nil {
		t.Fatal(err)
	}
	if ch, _ := d.Next(context.Background()); !ch.Clipboard || ch.Text != "after the empty one" {
		t.Fatalf("after an empty clipboard, Next reported %+v", ch)
	}
	if err := d.SetClipboard("a\x00b"); err == nil {
		t.Fatal("text with a NUL was put on the clipboard")
	}
}

func TestCursorShape(t *testing.T) {
	d := openDesktop(t)
	c, err := d.Cursor()
	if err != nil {
		t.Fatal(err)
	}
	opaque := 0
	for _, p := range c.Pix {
		if p>>24 == 0xff {
			opaque++
		}
	}
	if c.Size.X < 8 || c.Size.Y < 8 || opaque == 0 || !c.Hot.In(image.Rectangle{Max: c.Size}) {
		t.Fatalf("cursor %v with hot spot %v and %d opaque pixels: not a pointer", c.Size, c.Hot, opaque)
	}
}

// untaggedKey is a key event as another program injects it (the
// on-screen keyboard): without this package's tag.
func untaggedKey(vk uint16, up bool) input {
	in := input{Type: inputKeyboard}
	k := (*keybdInput)(unsafe.Pointer(&in.Mouse))
	k.Vk = vk
	if up {
		k.Flags = keyeventfKeyUp
	}
	return in
}

func TestHotKey(t *testing.T) {
	// gateMu and pressedAt play session.Gate: it records each press
	// under its lock, holds the lock around Key, and its isInjected
	// takes the lock and claims only presses younger than a second. The
	// hook must not wait for that lock: SendInput waits for the hook.
	var gateMu sync.Mutex
	var pressedAt time.Time
	isInjected := func() bool {
		gateMu.Lock()
		defer gateMu.Unlock()
		return time.Since(pressedAt) < time.Second
	}
	for _, tc := range []struct {
		name   string
		press  func(t *testing.T, d *Desktop)
		passes bool // the window sees the Esc; otherwise onPress runs
	}{
		{"the expert's Esc passes", func(t *testing.T, d *Desktop) {
			gateMu.Lock()
			pressedAt = time.Now()
			gateMu.Unlock()
			d.Key(0xff1b, true)
			d.Key(0xff1b, false)
		}, true},
		{"the expert's Esc passes while the gate's lock is held", func(t *testing.T, d *Desktop) {
			gateMu.Lock()
			defer gateMu.Unlock()
			pressedAt = time.Now()
			d.Key(0xff1b, true)
			d.Key(0xff1b, false)
		}, true},
		{"another program's injected Esc is the novice's", func(t *testing.T, d *Desktop) {
			if err := sendInput([]input{untaggedKey(vkEscape, false), untaggedKey(vkEscape, true)}); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := openDesktop(t)
			w := openTestWindow(t, image.Rect(300, 300, 400, 350))
			pressed := make(chan struct{}, 4)
			stop, err := d.WatchHotKey(0xff1b, isInjected, func() { pressed <- struct{}{} })
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			tc.press(t, d)
			// A marker after the Esc: once the window has it, the
			// Esc has been decided.
			d.Key('x', true)
			d.Key('x', false)
			// Wait for the marker itself: a passed Esc makes a WM_CHAR
			// of its own (27), which arrives before the Esc's key-up.
			ev := w.waitEvents(func(ev []event) bool { return strings.ContainsRune(chars(ev), 'x') })
			if got := keyDowns(ev, vkEscape) == 1 && keyUps(ev, vkEscape) == 1; got != tc.passes {
				t.Errorf("the window saw the Esc: %v, want %v (events %v)", got, tc.passes, ev)
			}
			if !tc.passes && (keyDowns(ev, vkEscape) != 0 || keyUps(ev, vkEscape) != 0) {
				t.Errorf("half of a swallowed Esc reached the window: %v", ev)
			}
			if !tc.passes {
				select {
				case <-pressed:
				case <-time.After(5 * time.Second):
					t.Fatal("onPress did not run")
				}
			} else if len(pressed) != 0 {
				t.Fatal("onPress ran for the expert's Esc")
			}
			// Once stopped, Esc is an ordinary key again.
			stop()
			w.take()
			if err := sendInput([]input{untaggedKey(vkEscape, false), untaggedKey(vkEscape, true)}); err != nil {
				t.Fatal(err)
			}
			w.waitEvents(func(ev []event) bool { return keyUps(ev, vkEscape) == 1 })
			if len(pressed) != 0 {
				t.Fatal("onPress ran after stop")
			}
		})
	}
}

// BenchmarkGrab is one full-screen GDI grab, what every poll costs.
func BenchmarkGrab(b *testing.B) {
	d, err := Open(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	img := screen.NewImage(image.Rectangle{Max: d.Size()})
	b.SetBytes(int64(len(img.Pix)))
	for b.Loop() {
		if err := d.Grab(img, img.Rect); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPointer is one SendInput move, checked with GetCursorPos.
func BenchmarkPointer(b *testing.B) {
	d, err := Open(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	i := 0
	for b.Loop() {
		p := image.Pt(100+i%200, 100+i%100)
		i++
		if err := d.Pointer(p.X, p.Y, 0); err != nil {
			b.Fatal(err)
		}
		if got, _ := d.CursorPos(); got != p {
			b.Fatalf("pointer at %v, want %v", got, p)
		}
	}
}
