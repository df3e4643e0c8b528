package x11

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"
)

const xkEscape = 0xff1b

// keyboardUser plays the novice at the real keyboard. Xvfb has no real
// keyboard, so it presses keys with XTEST from a connection of its own:
// the watcher cannot tell it from the Display's injection, which is the
// point: only isInjected decides.
type keyboardUser struct {
	t    testing.TB
	c    *xgb.Conn
	root xproto.Window
	m    *keymap
}

func newKeyboardUser(t testing.TB, disp string) *keyboardUser {
	t.Helper()
	c, err := xgb.NewConnDisplay(disp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := xtest.Init(c); err != nil {
		t.Fatal(err)
	}
	u := &keyboardUser{t: t, c: c, root: xproto.Setup(c).DefaultScreen(c).Root}
	u.loadKeymap()
	return u
}

func (u *keyboardUser) loadKeymap() {
	u.t.Helper()
	s := xproto.Setup(u.c)
	rep, err := xproto.GetKeyboardMapping(u.c, s.MinKeycode, byte(int(s.MaxKeycode)-int(s.MinKeycode)+1)).Reply()
	if err != nil {
		u.t.Fatal(err)
	}
	u.m = newKeymap(s.MinKeycode, int(rep.KeysymsPerKeycode), rep.Keysyms)
}

func (u *keyboardUser) code(ks uint32) xproto.Keycode {
	u.t.Helper()
	p, ok := u.m.lookup(ks)
	if !ok {
		u.t.Fatalf("keysym %#x not on the keyboard", ks)
	}
	return p.code
}

// press presses (down) or releases the key of each keysym in order.
func (u *keyboardUser) press(down bool, keysyms ...uint32) {
	u.t.Helper()
	typ := byte(xproto.KeyRelease)
	if down {
		typ = xproto.KeyPress
	}
	for _, ks := range keysyms {
		xtest.FakeInput(u.c, typ, byte(u.code(ks)), 0, u.root, 0, 0, 0)
	}
	if _, err := xproto.GetInputFocus(u.c).Reply(); err != nil {
		u.t.Fatal(err)
	}
}

// tap presses and releases ks.
func (u *keyboardUser) tap(ks uint32) {
	u.t.Helper()
	u.press(true, ks)
	u.press(false, ks)
}

// hotKeyRig is a Display watching Esc, a focused application window,
// and the novice at the keyboard.
type hotKeyRig struct {
	t        *testing.T
	d        *Display
	app      *client
	user     *keyboardUser
	injected atomic.Bool
	presses  chan struct{}
	stop     func()
}

func newHotKeyRig(t *testing.T) *hotKeyRig {
	disp := startXvfb(t, "640x480x24")
	r := &hotKeyRig{t: t, d: openTest(t, disp, options{}), presses: make(chan struct{}, 64)}
	r.app = newClient(t, disp)
	r.app.focusWindow()
	r.user = newKeyboardUser(t, disp)
	stop, err := r.d.WatchHotKey(xkEscape, r.injected.Load, func() { r.presses <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	r.stop = stop
	t.Cleanup(stop)
	return r
}

// expect checks that the application is typed exactly want next. A
// marker key typed by the novice after the keys under test closes the
// sequence, so a key that should not arrive is seen missing without
// waiting, and the marker arriving proves the keyboard is not frozen.
func (r *hotKeyRig) expect(want ...uint32) {
	r.t.Helper()
	const marker = 'z'
	r.user.tap(marker)
	got := r.app.typed(len(want) + 1)
	want = append(want, marker)
	for i := range want {
		if got[i] != want[i] {
			r.t.Fatalf("application typed %#x, want %#x", got, want)
		}
	}
}

// expectPresses checks that onPress ran n times since the last check.
// Called after expect, when every decision has been made.
func (r *hotKeyRig) expectPresses(n int) {
	r.t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.presses:
		case <-time.After(safety):
			r.t.Fatalf("onPress ran %d times, want %d", i, n)
		}
	}
	select {
	case <-r.presses:
		r.t.Fatalf("onPress ran more than %d times", n)
	default:
	}
}

func (r *hotKeyRig) expertKey(ks uint32, down bool) {
	r.t.Helper()
	if err := r.d.Key(ks, down); err != nil {
		r.t.Fatal(err)
	}
	// In order with the novice's keys, which come from another
	// connection.
	syncDisplay(r.t, r.d)
}

func TestHotKeyNoviceTakesKey(t *testing.T) {
	r := newHotKeyRig(t)
	r.user.tap(xkEscape)
	r.expect() // the application never sees Esc
	r.expectPresses(1)

	// With Caps Lock on, and with Shift held, Esc is still the hot key.
	r.user.tap(0xffe5) // Caps_Lock
	r.user.tap(xkEscape)
	r.user.tap(0xffe5)
	r.user.press(true, xkShiftL, xkEscape)
	r.user.press(false, xkEscape, xkShiftL)
	r.expect()
	r.expectPresses(2)
}

func TestHotKeyInjectedReplayed(t *testing.T) {
	r := newHotKeyRig(t)
	r.injected.Store(true)
	r.expertKey(xkEscape, true)
	r.expertKey(xkEscape, false)
	r.expect(xkEscape)
	// Shift+Esc keeps its Shift on the way to the application.
	r.expertKey(xkShiftL, true)
	r.expertKey(xkEscape, true)
	r.expertKey(xkEscape, false)
	r.expertKey(xkShiftL, false)
	ev := r.app.nextEvent(func(ev xgb.Event) bool {
		k, ok := ev.(xproto.KeyPressEvent)
		return ok && k.Detail == r.user.code(xkEscape)
	}).(xproto.KeyPressEvent)
	if ev.State&xproto.ModMaskShift == 0 {
		t.Errorf("replayed Shift+Esc arrived with state %#x", ev.State)
	}
	r.expect()
	r.expectPresses(0)
}

func TestHotKeyOtherKeysUnaffected(t *testing.T) {
	r := newHotKeyRig(t)
	r.user.tap('a')
	r.expertKey('b', true)
	r.expertKey('b', false)
	r.expect('a', 'b')
	r.expectPresses(0)
}

func TestHotKeyStop(t *testing.T) {
	r := newHotKeyRig(t)
	r.stop()
	r.stop() // idempotent
	r.user.tap(xkEscape)
	r.expect(xkEscape)
	r.expectPresses(0)

	// The key can be watched again once stopped, but only once.
	stop, err := r.d.WatchHotKey(xkEscape, r.injected.Load, func() { r.presses <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := r.d.WatchHotKey(xkEscape, r.injected.Load, func() {}); err == nil {
		t.Fatal("second watcher of the same key accepted")
	}
	r.user.tap(xkEscape)
	r.expect()
	r.expectPresses(1)
}

// TestHotKeyMixed interleaves the expert's quick taps with the novice's,
// telling them apart the way the session's gate does: by counting the
// presses it injected.
func TestHotKeyMixed(t *testing.T) {
	r := newHotKeyRig(t)
	var sent atomic.Int64
	r.stop()
	stop, err := r.d.WatchHotKey(xkEscape, func() bool {
		for {
			n := sent.Load()
			if n == 0 {
				return false
			}
			if sent.CompareAndSwap(n, n-1) {
				return true
			}
		}
	}, func() { r.presses <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for i := 0; i < 5; i++ {
		sent.Add(1)
		r.expertKey(xkEscape, true)
		r.expertKey(xkEscape, false)
		r.user.tap(xkEscape)
	}
	r.expect(xkEscape, xkEscape, xkEscape, xkEscape, xkEscape)
	r.expectPresses(5)
}

func TestHotKeyAutoRepeatOff(t *testing.T) {
	disp := startXvfb(t, "640x480x24")
	d := openTest(t, disp, options{})
	u := newKeyboardUser(t, disp)
	esc := u.code(xkEscape)
	repeats := func() bool {
		t.Helper()
		ctl, err := xproto.GetKeyboardControl(u.c).Reply()
		if err != nil {
			t.Fatal(err)
		}
		return ctl.AutoRepeats[esc/8]&(1<<(esc%8)) != 0
	}
	if !repeats() {
		t.Skip("Esc does not auto-repeat on this server to begin with")
	}
	stop, err := d.WatchHotKey(xkEscape, func() bool { return false }, func() {})
	if err != nil {
		t.Fatal(err)
	}
	if repeats() {
		t.Error("Esc still auto-repeats while watched")
	}
	stop()
	syncDisplay(t, d)
	if !repeats() {
		t.Error("Esc auto-repeat not restored after stop")
	}

	// Close stops a watch its caller forgot.
	stop, err = d.WatchHotKey(xkEscape, func() bool { return false }, func() {})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if !repeats() {
		t.Error("Esc auto-repeat not restored after Close")
	}
	stop() // after Close: harmless
}

// TestHotKeyRemap moves Escape to another keycode: the watcher follows.
func TestHotKeyRemap(t *testing.T) {
	r := newHotKeyRig(t)
	old := r.user.code(xkEscape)
	var spare xproto.Keycode
	for c := int(r.d.maxKeycode); c >= int(r.d.minKeycode); c-- {
		if r.user.m.empty(xproto.Keycode(c)) {
			spare = xproto.Keycode(c)
			break
		}
	}
	if spare == 0 {
		t.Skip("no empty keycode to move Escape to")
	}
	per := r.user.m.per
	syms := make([]xproto.Keysym, 2*per)
	syms[per] = xkEscape
	// Old and spare are not adjacent: two requests.
	xproto.ChangeKeyboardMapping(r.user.c, 1, old, byte(per), syms[:per])
	xproto.ChangeKeyboardMapping(r.user.c, 1, spare, byte(per), syms[per:])
	r.user.loadKeymap()
	deadline := time.Now().Add(safety)
	for {
		r.d.hot.mu.Lock()
		moved := r.d.hot.byCode[spare] != nil && r.d.hot.byCode[old] == nil
		r.d.hot.mu.Unlock()
		if moved {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watcher did not follow Escape to its new keycode")
		}
		time.Sleep(time.Millisecond)
	}
	r.user.tap(xkEscape)
	r.expect()
	r.expectPresses(1)
}
