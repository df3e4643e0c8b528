package x11

import (
	"fmt"
	"image"

	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"
)

// maxSpareKeycodes caps the pool of keycodes used for keysyms that are
// not on the keyboard. A handful is plenty: a binding only has to last
// from the press to the release.
const maxSpareKeycodes = 16

// keyboard is Key's state, guarded by Display.inputMu.
type keyboard struct {
	m       *keymap
	spare   []xproto.Keycode          // free keycodes, highest first
	next    int                       // round-robin position in spare
	bound   map[xproto.Keycode]uint32 // spare keycodes we bound, to what
	pressed map[uint32]xproto.Keycode // keysyms held down, on which keycode
}

// pointerState is Pointer's state, guarded by Display.inputMu.
type pointerState struct {
	pos     image.Point
	moved   bool
	buttons uint8
}

// Pointer moves the pointer to (x, y), clamped to the screen, then
// presses or releases buttons 1..7 whose bits changed since last call.
func (d *Display) Pointer(x, y int, buttons uint8) error {
	buttons &= 0x7f
	if err := d.connErr(); err != nil {
		return err
	}
	size := d.Size()
	x = max(0, min(x, size.X-1))
	y = max(0, min(y, size.Y-1))
	d.inputMu.Lock()
	defer d.inputMu.Unlock()
	p := &d.ptr
	if !p.moved || p.pos != image.Pt(x, y) {
		xtest.FakeInput(d.conn, xproto.MotionNotify, 0, 0, d.root, int16(x), int16(y), 0)
		p.pos, p.moved = image.Pt(x, y), true
	}
	changed := buttons ^ p.buttons
	for i := 0; i < 7; i++ {
		bit := uint8(1) << i
		if changed&bit == 0 {
			continue
		}
		typ := byte(xproto.ButtonRelease)
		if buttons&bit != 0 {
			typ = xproto.ButtonPress
		}
		xtest.FakeInput(d.conn, typ, byte(i+1), 0, d.root, 0, 0, 0)
	}
	p.buttons = buttons
	return nil
}

// Key presses or releases the key that types keysym, adding or removing
// Shift around it as the keysym's level needs, and binding keysyms the
// keyboard lacks to a spare keycode.
func (d *Display) Key(keysym uint32, down bool) error {
	if err := d.connErr(); err != nil {
		return err
	}
	d.inputMu.Lock()
	defer d.inputMu.Unlock()
	if err := d.refreshKeymap(); err != nil {
		return err
	}
	if down {
		return d.keyDown(keysym)
	}
	d.keyUp(keysym)
	return nil
}

// refreshKeymap loads the keyboard mapping if it is unknown or a
// MappingNotify said it changed.
func (d *Display) refreshKeymap() error {
	d.mu.Lock()
	stale := d.state.keymapStale || d.kb.m == nil
	d.state.keymapStale = false
	d.mu.Unlock()
	if !stale {
		return nil
	}
	n := int(d.maxKeycode) - int(d.minKeycode) + 1
	rep, err := xproto.GetKeyboardMapping(d.conn, d.minKeycode, byte(n)).Reply()
	if err != nil {
		d.mu.Lock()
		d.state.keymapStale = true
		d.mu.Unlock()
		return fmt.Errorf("x11: get keyboard mapping: %w", err)
	}
	kb := &d.kb
	kb.m = newKeymap(d.minKeycode, int(rep.KeysymsPerKeycode), rep.Keysyms)
	if kb.pressed == nil {
		kb.pressed = make(map[uint32]xproto.Keycode)
		kb.bound = make(map[xproto.Keycode]uint32)
	}
	// Spare keycodes: empty ones, or ones still holding what we bound.
	// Taken from the top, where keyboards leave gaps.
	kb.spare = kb.spare[:0]
	for c := int(d.maxKeycode); c >= int(d.minKeycode) && len(kb.spare) < maxSpareKeycodes; c-- {
		code := xproto.Keycode(c)
		ks, ours := kb.bound[code]
		if kb.m.empty(code) || ours && kb.m.holdsOnly(code, ks) {
			kb.spare = append(kb.spare, code)
		} else if ours {
			delete(kb.bound, code) // someone else remapped it
		}
	}
	return nil
}

func (d *Display) keyDown(ks uint32) error {
	kb := &d.kb
	if code, ok := kb.pressed[ks]; ok {
		// Auto-repeat from the viewer: repeat on the same keycode.
		d.fakeKey(code, true)
		return nil
	}
	pos, ok := kb.m.lookup(ks)
	if !ok {
		code, err := d.bindSpare(ks)
		if err != nil {
			return err
		}
		pos = keyPos{code: code}
	}
	shifts := kb.heldShifts()
	switch {
	case !isCharKeysym(ks):
		d.fakeKey(pos.code, true)
	case pos.level == 1 && len(shifts) == 0:
		// A shifted character typed without Shift held ('A' from a
		// viewer whose keyboard types it differently): Shift around it.
		shift, ok := kb.m.lookup(xkShiftL)
		if ok {
			d.fakeKey(shift.code, true)
		}
		d.fakeKey(pos.code, true)
		if ok {
			d.fakeKey(shift.code, false)
		}
	case pos.level == 0 && len(shifts) > 0 && kb.m.levelsDiffer(pos.code):
		// The expert holds Shift but the character is unshifted here
		// (e.g. '/' is Shift+7 on their keyboard): lift Shift for it.
		for _, c := range shifts {
			d.fakeKey(c, false)
		}
		d.fakeKey(pos.code, true)
		for _, c := range shifts {
			d.fakeKey(c, true)
		}
	default:
		d.fakeKey(pos.code, true)
	}
	kb.pressed[ks] = pos.code
	return nil
}

func (d *Display) keyUp(ks uint32) {
	kb := &d.kb
	code, ok := kb.pressed[ks]
	if ok {
		delete(kb.pressed, ks)
	} else {
		// Released without a press we saw (e.g. held when the viewer
		// connected): release where it would be.
		pos, found := kb.m.lookup(ks)
		if !found {
			return
		}
		code = pos.code
	}
	d.fakeKey(code, false)
}

// heldShifts returns the keycodes of the Shift keys held through Key.
func (kb *keyboard) heldShifts() []xproto.Keycode {
	var out []xproto.Keycode
	for _, ks := range [...]uint32{xkShiftL, xkShiftR} {
		if c, ok := kb.pressed[ks]; ok {
			out = append(out, c)
		}
	}
	return out
}

// bindSpare maps ks onto the next spare keycode that is not held down,
// as x11vnc and TigerVNC do for keysyms the layout lacks.
func (d *Display) bindSpare(ks uint32) (xproto.Keycode, error) {
	kb := &d.kb
	for range kb.spare {
		code := kb.spare[kb.next%len(kb.spare)]
		kb.next++
		if kb.isPressed(code) {
			continue
		}
		syms := make([]xproto.Keysym, kb.m.per)
		syms[0] = xproto.Keysym(ks)
		if len(syms) > 1 {
			syms[1] = xproto.Keysym(ks) // the same with or without Shift
		}
		xproto.ChangeKeyboardMapping(d.conn, 1, code, byte(kb.m.per), syms)
		kb.m.bind(code, ks)
		kb.bound[code] = ks
		return code, nil
	}
	return 0, fmt.Errorf("x11: keysym %#x is not on the keyboard and no spare keycode is free", ks)
}

func (kb *keyboard) isPressed(code xproto.Keycode) bool {
	for _, c := range kb.pressed {
		if c == code {
			return true
		}
	}
	return false
}

func (d *Display) fakeKey(code xproto.Keycode, down bool) {
	typ := byte(xproto.KeyRelease)
	if down {
		typ = xproto.KeyPress
	}
	xtest.FakeInput(d.conn, typ, byte(code), 0, d.root, 0, 0, 0)
}

// releaseAll lets go of every key and button still held and gives the
// spare keycodes back, so a viewer that vanishes mid-chord leaves no
// stuck modifiers behind. Called with inputMu held.
func (d *Display) releaseAll() {
	kb := &d.kb
	for ks, code := range kb.pressed {
		d.fakeKey(code, false)
		delete(kb.pressed, ks)
	}
	for i := 0; i < 7; i++ {
		if d.ptr.buttons&(1<<i) != 0 {
			xtest.FakeInput(d.conn, xproto.ButtonRelease, byte(i+1), 0, d.root, 0, 0, 0)
		}
	}
	d.ptr.buttons = 0
	if kb.m == nil {
		return
	}
	for code := range kb.bound {
		xproto.ChangeKeyboardMapping(d.conn, 1, code, byte(kb.m.per), make([]xproto.Keysym, kb.m.per))
		delete(kb.bound, code)
	}
}
