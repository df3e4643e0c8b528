package windows

// Windows virtual-key codes this package sends.
const (
	vkShift    = 0x10
	vkControl  = 0x11
	vkMenu     = 0x12
	vkLShift   = 0xA0
	vkRShift   = 0xA1
	vkLControl = 0xA2
	vkRControl = 0xA3
	vkLMenu    = 0xA4
	vkRMenu    = 0xA5
)

// vkey is how a non-character keysym is pressed on Windows.
type vkey struct {
	vk       uint16
	extended bool // KEYEVENTF_EXTENDEDKEY: the key has an E0 scan code prefix
}

// keysymVK maps the X keysyms of function, editing, keypad and modifier
// keys to virtual keys. Characters are not here: they go through the
// novice's keyboard layout (VkKeyScanW) or KEYEVENTF_UNICODE.
//
// The extended flag follows the PC keyboard: the editing keys and arrows
// between the main block and the keypad, the right-hand Ctrl and Alt,
// keypad Enter and Divide, and the Windows keys carry it; their keypad
// twins (KP_Home with Num Lock off) do not, so they reach applications
// as the keypad keys they were.
var keysymVK = map[uint32]vkey{
	0xff08: {0x08, false}, // BackSpace
	0xff09: {0x09, false}, // Tab
	0xfe20: {0x09, false}, // ISO_Left_Tab (Shift+Tab; Shift is held separately)
	0xff0d: {0x0D, false}, // Return
	0xff13: {0x13, false}, // Pause
	0xff14: {0x91, false}, // Scroll_Lock
	0xff15: {0x2C, true},  // Sys_Req
	0xff1b: {0x1B, false}, // Escape
	0xffff: {0x2E, true},  // Delete
	0xff50: {0x24, true},  // Home
	0xff51: {0x25, true},  // Left
	0xff52: {0x26, true},  // Up
	0xff53: {0x27, true},  // Right
	0xff54: {0x28, true},  // Down
	0xff55: {0x21, true},  // Prior (Page Up)
	0xff56: {0x22, true},  // Next (Page Down)
	0xff57: {0x23, true},  // End
	0xff60: {0x29, false}, // Select
	0xff61: {0x2C, true},  // Print
	0xff62: {0x2B, false}, // Execute
	0xff63: {0x2D, true},  // Insert
	0xff67: {0x5D, true},  // Menu (the context-menu key)
	0xff6a: {0x2F, false}, // Help
	0xff6b: {0x03, true},  // Break
	0xff7f: {0x90, true},  // Num_Lock
	0xff80: {0x20, false}, // KP_Space
	0xff89: {0x09, false}, // KP_Tab
	0xff8d: {0x0D, true},  // KP_Enter
	0xff95: {0x24, false}, // KP_Home
	0xff96: {0x25, false}, // KP_Left
	0xff97: {0x26, false}, // KP_Up
	0xff98: {0x27, false}, // KP_Right
	0xff99: {0x28, false}, // KP_Down
	0xff9a: {0x21, false}, // KP_Prior
	0xff9b: {0x22, false}, // KP_Next
	0xff9c: {0x23, false}, // KP_End
	0xff9d: {0x0C, false}, // KP_Begin (VK_CLEAR)
	0xff9e: {0x2D, false}, // KP_Insert
	0xff9f: {0x2E, false}, // KP_Delete
	0xffaa: {0x6A, false}, // KP_Multiply
	0xffab: {0x6B, false}, // KP_Add
	0xffac: {0x6C, false}, // KP_Separator
	0xffad: {0x6D, false}, // KP_Subtract
	0xffae: {0x6E, false}, // KP_Decimal
	0xffaf: {0x6F, true},  // KP_Divide
	0xffe1: {vkLShift, false},
	0xffe2: {vkRShift, false},
	0xffe3: {vkLControl, false},
	0xffe4: {vkRControl, true},
	0xffe5: {0x14, false}, // Caps_Lock
	0xffe7: {0x5B, true},  // Meta_L: the Windows key, as viewers on macOS send Command
	0xffe8: {0x5C, true},  // Meta_R
	0xffe9: {vkLMenu, false},
	0xffea: {vkRMenu, true},
	0xffeb: {0x5B, true},    // Super_L (the Windows key)
	0xffec: {0x5C, true},    // Super_R
	0xfe03: {vkRMenu, true}, // ISO_Level3_Shift (AltGr)
}

func init() {
	for i := uint32(0); i < 10; i++ {
		keysymVK[0xffb0+i] = vkey{uint16(0x60 + i), false} // KP_0..KP_9
	}
	for i := uint32(0); i < 24; i++ {
		keysymVK[0xffbe+i] = vkey{uint16(0x70 + i), false} // F1..F24
	}
}

// keysymRune returns the character keysym types, if it is a character:
// Latin-1 keysyms are their code points, Unicode keysyms are 0x01000000
// plus theirs, and the legacy sets (Cyrillic, Greek, the Euro sign...)
// come from legacyKeysyms.
func keysymRune(ks uint32) (rune, bool) {
	switch {
	case ks >= 0x20 && ks <= 0x7e, ks >= 0xa0 && ks <= 0xff:
		return rune(ks), true
	case ks >= 0x01000100 && ks <= 0x0110ffff:
		r := rune(ks - 0x01000000)
		if r >= 0xd800 && r < 0xe000 {
			return 0, false // a surrogate is half a character
		}
		return r, true
	}
	if r, ok := legacyKeysyms[ks]; ok {
		return r, true
	}
	return 0, false
}

// layoutKey is a character's key on the novice's layout, as VkKeyScanW
// reports it: the low byte is the virtual key, the high byte the shift
// state it needs (1 Shift, 2 Ctrl, 4 Alt; Ctrl+Alt is AltGr).
type layoutKey uint16

func (k layoutKey) valid() bool   { return k != 0xffff && byte(k) != 0xff }
func (k layoutKey) vk() uint16    { return uint16(byte(k)) }
func (k layoutKey) shift() bool   { return k>>8&1 != 0 }
func (k layoutKey) ctrlAlt() bool { return k>>8&6 != 0 }

// charStroke decides how to type a character the expert's keysym names,
// given its key on the novice's layout and the modifiers the expert
// holds: by its virtual key when the layout has it at the shift level the
// expert's Shift selects (so shortcuts and games see a real key), or as
// the character itself (KEYEVENTF_UNICODE) when the layout lacks it or
// puts it behind a different level or AltGr. With Ctrl or Alt held the
// virtual key wins whenever the layout has the character, whatever its
// level: Ctrl+Shift+T is meant as a shortcut.
func charStroke(k layoutKey, shiftHeld, ctrlAltHeld bool) (vk uint16, unicode bool) {
	if !k.valid() {
		return 0, true
	}
	if ctrlAltHeld {
		return k.vk(), false
	}
	if k.ctrlAlt() || k.shift() != shiftHeld {
		return 0, true
	}
	return k.vk(), false
}

// utf16Units splits r into the UTF-16 code units KEYEVENTF_UNICODE sends,
// one event each: two for characters outside the Basic Multilingual Plane.
func utf16Units(r rune) []uint16 {
	if r < 0x10000 {
		return []uint16{uint16(r)}
	}
	r -= 0x10000
	return []uint16{uint16(0xd800 + r>>10), uint16(0xdc00 + r&0x3ff)}
}
