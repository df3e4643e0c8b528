package x11

import (
	"image"
	"testing"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// loadKeymap reads the client's view of the keyboard mapping.
func (cl *client) loadKeymap() *keymap {
	cl.t.Helper()
	s := xproto.Setup(cl.c)
	rep, err := xproto.GetKeyboardMapping(cl.c, s.MinKeycode, byte(int(s.MaxKeycode)-int(s.MinKeycode)+1)).Reply()
	if err != nil {
		cl.t.Fatal(err)
	}
	return newKeymap(s.MinKeycode, int(rep.KeysymsPerKeycode), rep.Keysyms)
}

// focusWindow creates a focused window that receives key events.
func (cl *client) focusWindow() xproto.Window {
	cl.t.Helper()
	win := cl.window(image.Rect(0, 0, 300, 200), xproto.EventMaskKeyPress|xproto.EventMaskKeyRelease, 0)
	xproto.SetInputFocus(cl.c, xproto.InputFocusPointerRoot, win, xproto.TimeCurrentTime)
	cl.sync()
	return win
}

// typed decodes key presses into keysyms, as an application would,
// until it has n of them. Modifier keys are left out.
func (cl *client) typed(n int) []uint32 {
	cl.t.Helper()
	m := cl.loadKeymap()
	var out []uint32
	for len(out) < n {
		ev := cl.nextEvent(func(ev xgb.Event) bool {
			switch ev.(type) {
			case xproto.KeyPressEvent, xproto.MappingNotifyEvent:
				return true
			}
			return false
		})
		switch e := ev.(type) {
		case xproto.MappingNotifyEvent:
			m = cl.loadKeymap()
		case xproto.KeyPressEvent:
			level := 0
			if e.State&xproto.ModMaskShift != 0 {
				level = 1
			}
			ks := m.level(e.Detail, level)
			if ks >= 0xffe1 && ks <= 0xffee {
				continue
			}
			out = append(out, ks)
		}
	}
	return out
}

func TestKey(t *testing.T) {
	disp := startXvfb(t, "640x480x24")
	d := openTest(t, disp, options{})
	cl := newClient(t, disp)
	cl.focusWindow()

	// Each key is decoded before the next is typed: a spare keycode
	// gets rebound later on, and the application must see the mapping
	// that was current when the key went down.
	tap := func(ks uint32) {
		t.Helper()
		if err := d.Key(ks, true); err != nil {
			t.Fatal(err)
		}
		if err := d.Key(ks, false); err != nil {
			t.Fatal(err)
		}
		if got := cl.typed(1)[0]; got != ks {
			t.Fatalf("typed %#x, want %#x", got, ks)
		}
	}
	for _, r := range "Hello, World!" {
		tap(uint32(r))
	}
	tap(0x20ac)    // EuroSign, not on the default map
	tap(0x1000416) // Unicode Cyrillic ZHE
	tap(0x20ac)    // again: reuses its binding
	for i := 0; i < maxSpareKeycodes+3; i++ {
		tap(0x1000430 + uint32(i)) // more than the pool: round robin
	}
	// The expert holds Shift for a character that is unshifted here.
	if err := d.Key(xkShiftL, true); err != nil {
		t.Fatal(err)
	}
	tap('/')
	tap('A')
	if err := d.Key(xkShiftL, false); err != nil {
		t.Fatal(err)
	}
}

func TestCloseReleasesKeys(t *testing.T) {
	disp := startXvfb(t, "640x480x24")
	d, err := Open(disp)
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, disp)
	const controlL = 0xffe3
	if err := d.Key(controlL, true); err != nil {
		t.Fatal(err)
	}
	if err := d.Key(0x20ac, true); err != nil {
		t.Fatal(err)
	}
	if err := d.Pointer(10, 10, 1); err != nil {
		t.Fatal(err)
	}
	d.Close()
	cl.sync()
	keys, err := xproto.QueryKeymap(cl.c).Reply()
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range keys.Keys {
		if b != 0 {
			t.Errorf("keys still down after Close: byte %d = %08b", i, b)
		}
	}
	ptr, err := xproto.QueryPointer(cl.c, cl.root).Reply()
	if err != nil {
		t.Fatal(err)
	}
	if ptr.Mask&(xproto.KeyButMaskButton1|xproto.KeyButMaskControl) != 0 {
		t.Errorf("button or Control still held after Close: mask %#x", ptr.Mask)
	}
	if _, ok := cl.loadKeymap().lookup(0x20ac); ok {
		t.Error("EuroSign still bound after Close")
	}
}

func TestPointer(t *testing.T) {
	disp := startXvfb(t, "640x480x24")
	d := openTest(t, disp, options{})
	cl := newClient(t, disp)
	win := cl.window(image.Rect(0, 0, 400, 300), xproto.EventMaskButtonPress|xproto.EventMaskButtonRelease, 0)

	if err := d.Pointer(123, 45, 0); err != nil {
		t.Fatal(err)
	}
	syncDisplay(t, d)
	ptr, err := xproto.QueryPointer(cl.c, cl.root).Reply()
	if err != nil {
		t.Fatal(err)
	}
	if ptr.RootX != 123 || ptr.RootY != 45 {
		t.Fatalf("pointer at %d,%d", ptr.RootX, ptr.RootY)
	}
	// Out of range coordinates are clamped to the screen.
	if err := d.Pointer(5000, -3, 0); err != nil {
		t.Fatal(err)
	}
	syncDisplay(t, d)
	if ptr, _ = xproto.QueryPointer(cl.c, cl.root).Reply(); ptr.RootX != 639 || ptr.RootY != 0 {
		t.Fatalf("clamped pointer at %d,%d", ptr.RootX, ptr.RootY)
	}

	for _, button := range []int{1, 3, 4, 5, 6, 7} {
		mask := uint8(1) << (button - 1)
		if err := d.Pointer(50, 60, mask); err != nil {
			t.Fatal(err)
		}
		if err := d.Pointer(50, 60, 0); err != nil {
			t.Fatal(err)
		}
		press := cl.nextEvent(func(ev xgb.Event) bool { _, ok := ev.(xproto.ButtonPressEvent); return ok }).(xproto.ButtonPressEvent)
		if int(press.Detail) != button || press.Event != win || press.EventX != 50 || press.EventY != 60 {
			t.Errorf("press: %+v, want button %d at 50,60", press, button)
		}
		rel := cl.nextEvent(func(ev xgb.Event) bool { _, ok := ev.(xproto.ButtonReleaseEvent); return ok }).(xproto.ButtonReleaseEvent)
		if int(rel.Detail) != button {
			t.Errorf("release: button %d, want %d", rel.Detail, button)
		}
	}
}

// syncDisplay waits until the server processed the Display's requests
// (input injection does not wait for that, to keep latency down).
func syncDisplay(t testing.TB, d *Display) {
	t.Helper()
	if _, err := xproto.GetInputFocus(d.conn).Reply(); err != nil {
		t.Fatal(err)
	}
}
