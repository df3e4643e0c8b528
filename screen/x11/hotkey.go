package x11

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/jezek/xgb/xproto"
)

// A hot key is a key the novice presses on the real keyboard to act on
// the session (Esc takes control back, as in Windows XP Remote
// Assistance) while the expert's keys of the same name must still reach
// applications. Both arrive through the same X server, so the watcher
// holds a passive grab on the root window in synchronous keyboard mode:
// each press freezes the keyboard and is sent to us alone, and we either
// replay it to the focused window as if no grab existed (the expert's
// press, which the caller recognises) or keep it and report it (the
// novice's). The keyboard stays frozen only while that question is
// answered.
//
// The grab covers the key with any modifiers when the server allows it,
// so that every injected press is seen and the caller's bookkeeping of
// injected presses stays exact; if another client holds a grab on some
// combination (a window manager's Alt+Esc), only the lock modifier
// combinations (none, Lock, NumLock, both) are grabbed.
//
// While watched, the key's auto-repeat is off: the server repeats a key
// held down through XTEST just as it repeats a real one, and a repeated
// press cannot be told from the novice's. The previous setting comes
// back when the watch stops (not if the process dies: the key then just
// does not repeat, which for Esc nobody misses).
//
// Releases need no decision: after a replayed press the grab is over and
// the release goes to the application as usual; after a kept press the
// grab lasts until the key is released, so the release (and any key
// pressed while the novice holds the hot key down) comes to us and is
// dropped, and the application sees neither half of the novice's press.

// lockCombos are the modifier sets grabbed when AnyModifier is refused:
// Caps Lock and Num Lock (Mod2 on nearly every layout) must not disarm
// the hot key.
var lockCombos = []uint16{0, xproto.ModMaskLock, xproto.ModMask2, xproto.ModMaskLock | xproto.ModMask2}

// hotKeys is a Display's set of watchers. The event loop reads it with
// Display.mu held, so nothing that takes Display.mu may run under hotKeys.mu.
type hotKeys struct {
	mu     sync.Mutex
	bySym  map[uint32]*hotKey
	byCode map[xproto.Keycode]*hotKey
}

// hotKey watches one keysym.
type hotKey struct {
	d          *Display
	keysym     uint32
	isInjected func() bool
	onPress    func()

	presses chan xproto.KeyPressEvent // frozen presses awaiting a decision
	remap   chan struct{}             // cap 1: the keyboard mapping changed
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once // stop
	running bool      // run started; guarded by hotKeys.mu

	// Owned by WatchHotKey, then the run goroutine, then stop.
	codes  []xproto.Keycode
	mods   []uint16
	repeat map[xproto.Keycode]bool // auto-repeat before we turned it off
}

// WatchHotKey grabs keysym on the whole desktop until stop is called.
// For every press of it, isInjected says whether the press is one the
// caller injected itself (the expert's): that press is replayed to the
// focused window unchanged. Any other press is kept from applications
// and onPress runs, in a goroutine of its own. isInjected runs on a
// goroutine of the watcher while the keyboard is frozen, so it must
// answer quickly; it may take locks held around Key, since the event
// loop does not wait for it. Only one watcher per keysym; stop may be
// called more than once, and after Close.
func (d *Display) WatchHotKey(keysym uint32, isInjected func() bool, onPress func()) (stop func(), err error) {
	if err := d.connErr(); err != nil {
		return nil, err
	}
	hk := &hotKey{
		d: d, keysym: keysym, isInjected: isInjected, onPress: onPress,
		presses: make(chan xproto.KeyPressEvent, 16),
		remap:   make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	d.hot.mu.Lock()
	if d.hot.bySym == nil {
		d.hot.bySym = make(map[uint32]*hotKey)
		d.hot.byCode = make(map[xproto.Keycode]*hotKey)
	}
	if d.hot.bySym[keysym] != nil {
		d.hot.mu.Unlock()
		return nil, fmt.Errorf("x11: hot key %#x is already watched", keysym)
	}
	// Reserved before the grab so a remap arriving meanwhile is seen.
	d.hot.bySym[keysym] = hk
	d.hot.mu.Unlock()

	codes, err := hk.lookup()
	if err == nil && len(codes) == 0 {
		err = fmt.Errorf("x11: hot key %#x is not on the keyboard", keysym)
	}
	if err == nil {
		err = hk.grab(codes)
	}
	if err != nil {
		d.hot.mu.Lock()
		delete(d.hot.bySym, keysym)
		d.hot.mu.Unlock()
		return nil, err
	}
	d.hot.mu.Lock()
	hk.running = true
	d.hot.mu.Unlock()
	go hk.run()
	return func() { hk.once.Do(hk.stop) }, nil
}

// lookup returns the keycodes that type hk.keysym without Shift.
func (hk *hotKey) lookup() ([]xproto.Keycode, error) {
	d := hk.d
	n := int(d.maxKeycode) - int(d.minKeycode) + 1
	rep, err := xproto.GetKeyboardMapping(d.conn, d.minKeycode, byte(n)).Reply()
	if err != nil {
		return nil, fmt.Errorf("x11: hot key %#x: get keyboard mapping: %w", hk.keysym, err)
	}
	m := newKeymap(d.minKeycode, int(rep.KeysymsPerKeycode), rep.Keysyms)
	var codes []xproto.Keycode
	for c := int(d.minKeycode); c <= int(d.maxKeycode); c++ {
		if m.level(xproto.Keycode(c), 0) == hk.keysym {
			codes = append(codes, xproto.Keycode(c))
		}
	}
	return codes, nil
}

// grab takes the passive grabs on codes, turns their auto-repeat off and
// routes their presses to hk. On error nothing stays grabbed.
func (hk *hotKey) grab(codes []xproto.Keycode) error {
	d := hk.d
	hk.codes, hk.mods, hk.repeat = codes, nil, nil
	mods := []uint16{xproto.ModMaskAny}
	if err := hk.grabAll(codes, mods); err != nil {
		mods = lockCombos
		if err := hk.grabAll(codes, mods); err != nil {
			hk.release()
			return fmt.Errorf("x11: hot key %#x: grab (is another program using it?): %w", hk.keysym, err)
		}
	}
	hk.mods = mods
	ctl, err := xproto.GetKeyboardControl(d.conn).Reply()
	if err != nil {
		hk.release()
		return fmt.Errorf("x11: hot key %#x: get keyboard control: %w", hk.keysym, err)
	}
	hk.repeat = make(map[xproto.Keycode]bool, len(codes))
	for _, c := range codes {
		if int(c)/8 >= len(ctl.AutoRepeats) || ctl.AutoRepeats[c/8]&(1<<(c%8)) == 0 {
			continue
		}
		// Checked, so that once WatchHotKey returns the key no longer
		// repeats.
		err := xproto.ChangeKeyboardControlChecked(d.conn, xproto.KbKey|xproto.KbAutoRepeatMode,
			[]uint32{uint32(c), xproto.AutoRepeatModeOff}).Check()
		if err != nil {
			hk.release()
			return fmt.Errorf("x11: hot key %#x: turn auto-repeat off: %w", hk.keysym, err)
		}
		hk.repeat[c] = true
	}
	// Routed last: until the grab is complete, a press frozen for us
	// is replayed by keyPressed, as if the watch had not started yet.
	d.hot.mu.Lock()
	for _, c := range codes {
		d.hot.byCode[c] = hk
	}
	d.hot.mu.Unlock()
	return nil
}

// grabAll grabs every code with every modifier set, or nothing.
func (hk *hotKey) grabAll(codes []xproto.Keycode, mods []uint16) error {
	d := hk.d
	var cookies []xproto.GrabKeyCookie
	for _, c := range codes {
		for _, m := range mods {
			cookies = append(cookies, xproto.GrabKeyChecked(d.conn, false, d.root, m, c,
				xproto.GrabModeAsync, xproto.GrabModeSync))
		}
	}
	var errs []error
	for _, ck := range cookies {
		if err := ck.Check(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// Ungrabbing a combination held by someone else does nothing.
		hk.ungrabAll(codes, mods)
		return errors.Join(errs...)
	}
	return nil
}

func (hk *hotKey) ungrabAll(codes []xproto.Keycode, mods []uint16) {
	for _, c := range codes {
		for _, m := range mods {
			xproto.UngrabKey(hk.d.conn, c, hk.d.root, m)
		}
	}
}

// release undoes grab: routing, grabs, auto-repeat.
func (hk *hotKey) release() {
	d := hk.d
	d.hot.mu.Lock()
	for _, c := range hk.codes {
		if d.hot.byCode[c] == hk {
			delete(d.hot.byCode, c)
		}
	}
	d.hot.mu.Unlock()
	hk.ungrabAll(hk.codes, hk.mods)
	for _, c := range hk.codes {
		if hk.repeat[c] {
			xproto.ChangeKeyboardControl(d.conn, xproto.KbKey|xproto.KbAutoRepeatMode,
				[]uint32{uint32(c), xproto.AutoRepeatModeOn})
		}
	}
	hk.codes, hk.mods, hk.repeat = nil, nil, nil
}

// run answers frozen presses and follows keyboard remaps until stopped
// or the connection ends.
func (hk *hotKey) run() {
	defer close(hk.done)
	for {
		select {
		case e := <-hk.presses:
			hk.decide(e)
		case <-hk.remap:
			hk.regrab()
		case <-hk.quit:
			return
		case <-hk.d.loopDone:
			return
		}
	}
}

// decide thaws the keyboard for one frozen press: replayed if injected,
// kept and reported otherwise. The press's own time makes a late answer
// harmless: the server ignores AllowEvents older than its current grab.
func (hk *hotKey) decide(e xproto.KeyPressEvent) {
	if hk.isInjected() {
		xproto.AllowEvents(hk.d.conn, xproto.AllowReplayKeyboard, e.Time)
		return
	}
	xproto.AllowEvents(hk.d.conn, xproto.AllowAsyncKeyboard, e.Time)
	go hk.onPress()
}

// regrab moves the grab when the keysym changed keycodes.
func (hk *hotKey) regrab() {
	codes, err := hk.lookup()
	if err != nil || slices.Equal(codes, hk.codes) {
		return
	}
	hk.release()
	if len(codes) > 0 {
		// A failure leaves the key unwatched until the next remap:
		// nothing better to do from here, and the novice can still
		// take control back from the console.
		_ = hk.grab(codes)
	}
}

// stop ends the watch. Presses already frozen for us are replayed: the
// hot key is off from now on.
func (hk *hotKey) stop() {
	d := hk.d
	close(hk.quit)
	<-hk.done
	d.hot.mu.Lock()
	delete(d.hot.bySym, hk.keysym)
	d.hot.mu.Unlock()
	hk.release()
	for {
		select {
		case e := <-hk.presses:
			xproto.AllowEvents(d.conn, xproto.AllowReplayKeyboard, e.Time)
		default:
			return
		}
	}
}

// keyPressed routes a press from the event loop (Display.mu held) to its
// watcher. Every key event this connection receives comes from one of
// our grabs, so a press nobody claims (its watch just stopped, or the
// queue is full) is replayed here rather than left frozen.
func (d *Display) keyPressed(e xproto.KeyPressEvent) {
	d.hot.mu.Lock()
	hk := d.hot.byCode[e.Detail]
	if hk != nil {
		select {
		case hk.presses <- e:
			d.hot.mu.Unlock()
			return
		default:
		}
	}
	d.hot.mu.Unlock()
	xproto.AllowEvents(d.conn, xproto.AllowReplayKeyboard, e.Time)
}

// keymapChanged tells every watcher to look for its keysym again.
func (d *Display) keymapChanged() {
	d.hot.mu.Lock()
	defer d.hot.mu.Unlock()
	for _, hk := range d.hot.bySym {
		select {
		case hk.remap <- struct{}{}:
		default:
		}
	}
}

// stopHotKeys ends every watch, so Close leaves no grab and no key
// without its auto-repeat behind (the server keeps keyboard settings
// after the client is gone).
func (d *Display) stopHotKeys() {
	d.hot.mu.Lock()
	var all []*hotKey
	for _, hk := range d.hot.bySym {
		if hk.running { // not one WatchHotKey is still setting up
			all = append(all, hk)
		}
	}
	d.hot.mu.Unlock()
	for _, hk := range all {
		hk.once.Do(hk.stop)
	}
}
