package windows

import (
	"fmt"
	"image"
	"time"
	"unsafe"
)

// inputState is what Pointer and Key remember, guarded by inputMu.
type inputState struct {
	pos     image.Point
	moved   bool
	buttons uint8
	// pressed maps each keysym held down to the events that release it,
	// so the release matches the press even if the layout or the
	// modifiers changed in between.
	pressed map[uint32][]input
	shift   int // Shift keys held
	ctrlAlt int // Control and Alt keys held
}

// Pointer moves the pointer to (x, y) in the captured image (clamped to
// it) and presses or releases the buttons whose bits changed: 1 left,
// 2 middle, 3 right; 4 and 5 turn the wheel up and down a notch per
// press, 6 and 7 tilt it left and right.
func (d *Desktop) Pointer(x, y int, buttons uint8) error {
	size := d.Size()
	x = max(0, min(x, size.X-1))
	y = max(0, min(y, size.Y-1))
	d.inputMu.Lock()
	defer d.inputMu.Unlock()
	s := &d.in
	var evs []input
	if !s.moved || s.pos != image.Pt(x, y) {
		// Absolute coordinates over the virtual desktop are 0..65535
		// whatever its size; Windows maps n to pixel n*size/65536, so
		// round up to land on x itself.
		evs = append(evs, mouseEvent(mouseInput{
			Dx:    int32((x*65536 + size.X - 1) / size.X),
			Dy:    int32((y*65536 + size.Y - 1) / size.Y),
			Flags: mouseeventfMove | mouseeventfAbsolute | mouseeventfVirtualDsk,
		}))
		s.pos, s.moved = image.Pt(x, y), true
	}
	evs = append(evs, buttonEvents(s.buttons, buttons&0x7f)...)
	s.buttons = buttons & 0x7f
	return sendInput(evs)
}

// buttonEvents returns the mouse events that take the buttons from old
// to now. Wheel "buttons" act on their press only.
func buttonEvents(old, now uint8) []input {
	var evs []input
	type edge struct{ down, up uint32 }
	edges := [3]edge{
		{mouseeventfLeftDown, mouseeventfLeftUp},
		{mouseeventfMiddleDown, mouseeventfMiddleUp},
		{mouseeventfRightDown, mouseeventfRightUp},
	}
	for i, e := range edges {
		bit := uint8(1) << i
		switch {
		case old&bit == 0 && now&bit != 0:
			evs = append(evs, mouseEvent(mouseInput{Flags: e.down}))
		case old&bit != 0 && now&bit == 0:
			evs = append(evs, mouseEvent(mouseInput{Flags: e.up}))
		}
	}
	wheels := [4]struct {
		flags uint32
		delta int32
	}{{mouseeventfWheel, wheelDelta}, {mouseeventfWheel, -wheelDelta}, {mouseeventfHWheel, -wheelDelta}, {mouseeventfHWheel, wheelDelta}}
	for i, w := range wheels {
		bit := uint8(1) << (i + 3)
		if old&bit == 0 && now&bit != 0 {
			evs = append(evs, mouseEvent(mouseInput{Flags: w.flags, MouseData: uint32(w.delta)}))
		}
	}
	return evs
}

// Key presses or releases the key keysym names. Function and modifier
// keys are virtual keys with their scan codes; characters are typed on
// the novice's layout when it has them at the level the expert's Shift
// selects, and as the character itself otherwise (see charStroke).
func (d *Desktop) Key(keysym uint32, down bool) error {
	d.inputMu.Lock()
	defer d.inputMu.Unlock()
	s := &d.in
	if s.pressed == nil {
		s.pressed = make(map[uint32][]input)
	}
	if !down {
		up, ok := s.pressed[keysym]
		if !ok {
			return nil // a release of a key we never pressed (or released on take-back)
		}
		delete(s.pressed, keysym)
		s.countModifier(keysym, -1)
		return sendInput(up)
	}
	if _, ok := s.pressed[keysym]; ok {
		// Auto-repeat from the viewer: press again, release once.
		delete(s.pressed, keysym)
		s.countModifier(keysym, -1)
	}
	downEvs, upEvs, err := s.stroke(keysym)
	if err != nil {
		return err
	}
	if v, ok := keysymVK[keysym]; ok {
		// Before SendInput, which runs the hot key's hook.
		d.hook.injected.add(uint32(v.vk), time.Now())
	}
	if err := sendInput(downEvs); err != nil {
		return err
	}
	s.pressed[keysym] = upEvs
	s.countModifier(keysym, 1)
	return nil
}

func (s *inputState) countModifier(keysym uint32, n int) {
	switch {
	case isShiftKeysym(keysym):
		s.shift = max(0, s.shift+n)
	case isCtrlAltKeysym(keysym):
		s.ctrlAlt = max(0, s.ctrlAlt+n)
	}
}

// stroke returns the events that press keysym and those that release it.
func (s *inputState) stroke(keysym uint32) (down, up []input, err error) {
	if v, ok := keysymVK[keysym]; ok {
		return []input{vkEvent(v.vk, v.extended, false)}, []input{vkEvent(v.vk, v.extended, true)}, nil
	}
	r, ok := keysymRune(keysym)
	if !ok {
		return nil, nil, fmt.Errorf("windows: keysym %#x types nothing this backend knows", keysym)
	}
	res, _, _ := procVkKeyScanW.Call(uintptr(r))
	if r <= 0xffff {
		if vk, unicode := charStroke(layoutKey(res), s.shift > 0, s.ctrlAlt > 0); !unicode {
			return []input{vkEvent(vk, false, false)}, []input{vkEvent(vk, false, true)}, nil
		}
	}
	for _, u := range utf16Units(r) {
		down = append(down, keyEvent(keybdInput{Scan: u, Flags: keyeventfUnicode}))
		up = append(up, keyEvent(keybdInput{Scan: u, Flags: keyeventfUnicode | keyeventfKeyUp}))
	}
	return down, up, nil
}

// vkEvent is a press or release of a virtual key with its scan code, so
// that programs reading either (games read scan codes) see the key.
func vkEvent(vk uint16, extended, up bool) input {
	scan, _, _ := procMapVirtualKeyW.Call(uintptr(vk), mapvkVKToVSC)
	k := keybdInput{Vk: vk, Scan: uint16(scan)}
	if extended {
		k.Flags |= keyeventfExtendedKey
	}
	if up {
		k.Flags |= keyeventfKeyUp
	}
	return keyEvent(k)
}

// releaseAllLocked lifts every key and button still held; the caller
// holds inputMu.
func (d *Desktop) releaseAllLocked() {
	s := &d.in
	var evs []input
	for k, up := range s.pressed {
		evs = append(evs, up...)
		delete(s.pressed, k)
	}
	s.shift, s.ctrlAlt = 0, 0
	evs = append(evs, buttonEvents(s.buttons, 0)...)
	s.buttons = 0
	sendInput(evs)
}

// sendInput injects evs in one call, so no real input interleaves.
func sendInput(evs []input) error {
	if len(evs) == 0 {
		return nil
	}
	n, _, err := procSendInput.Call(uintptr(len(evs)), uintptr(unsafe.Pointer(&evs[0])), unsafe.Sizeof(evs[0]))
	if int(n) != len(evs) {
		// UIPI blocks input into windows of a higher integrity level
		// (an elevated program, the secure desktop) without saying so.
		return fmt.Errorf("windows: SendInput injected %d of %d events: %w (is an administrator's window or the lock screen in front?)", n, len(evs), err)
	}
	return nil
}

// isShiftKeysym reports whether ks is a Shift key.
func isShiftKeysym(ks uint32) bool { return ks == 0xffe1 || ks == 0xffe2 }

// isCtrlAltKeysym reports whether ks is a Control or Alt key (AltGr too):
// while one is held, characters keep their virtual key so that shortcuts
// (Ctrl+C, Alt+F) reach applications as shortcuts.
func isCtrlAltKeysym(ks uint32) bool {
	switch ks {
	case 0xffe3, 0xffe4, 0xffe9, 0xffea, 0xfe03:
		return true
	}
	return false
}
