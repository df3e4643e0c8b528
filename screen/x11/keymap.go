package x11

import "github.com/jezek/xgb/xproto"

// Keysyms the keyboard logic treats specially.
const (
	xkShiftL = 0xffe1
	xkShiftR = 0xffe2
)

// keyPos is where a keysym sits on the keyboard: its keycode and shift
// level (0 plain, 1 with Shift).
type keyPos struct {
	code  xproto.Keycode
	level int
}

// keymap is the server's core keyboard mapping, indexed by keysym.
type keymap struct {
	first xproto.Keycode
	per   int // keysyms per keycode
	syms  []xproto.Keysym
	index map[uint32]keyPos
}

// newKeymap indexes a GetKeyboardMapping reply. Only the first two
// columns (group 1, levels 1 and 2) are used: those are the ones a fake
// key press plus an optional Shift reaches reliably. Keysyms found only
// in other columns are treated as absent and get a spare keycode.
func newKeymap(first xproto.Keycode, per int, syms []xproto.Keysym) *keymap {
	m := &keymap{first: first, per: per, syms: syms, index: make(map[uint32]keyPos)}
	if per <= 0 {
		m.per, m.syms = 1, nil
		return m
	}
	n := len(syms) / per
	// Level 0 everywhere first, so a keysym reachable without Shift
	// never ends up needing it.
	for level := 0; level < 2; level++ {
		for i := 0; i < n; i++ {
			code := xproto.Keycode(int(first) + i)
			if int(code) != int(first)+i {
				break // beyond keycode 255
			}
			ks := m.level(code, level)
			if ks == 0 {
				continue
			}
			if _, dup := m.index[ks]; !dup {
				m.index[ks] = keyPos{code, level}
			}
		}
	}
	return m
}

// column returns the raw keysym in column col of code, 0 if none.
func (m *keymap) column(code xproto.Keycode, col int) uint32 {
	i := int(code) - int(m.first)
	if i < 0 || col >= m.per || (i+1)*m.per > len(m.syms) {
		return 0
	}
	return uint32(m.syms[i*m.per+col])
}

// level returns the keysym code produces at level 0 or 1, applying the
// core protocol's rule for a lone first column: (K, NoSymbol) means
// (lower(K), upper(K)) for letters and (K, K) otherwise.
func (m *keymap) level(code xproto.Keycode, level int) uint32 {
	k0, k1 := m.column(code, 0), m.column(code, 1)
	if k1 == 0 {
		k0, k1 = caseFold(k0)
	}
	if level == 0 {
		return k0
	}
	return k1
}

// empty reports whether code has no keysyms at all.
func (m *keymap) empty(code xproto.Keycode) bool {
	for c := 0; c < m.per; c++ {
		if m.column(code, c) != 0 {
			return false
		}
	}
	return true
}

// holdsOnly reports whether every keysym of code is ks or NoSymbol, i.e.
// whether code looks like a spare keycode we bound ks to.
func (m *keymap) holdsOnly(code xproto.Keycode, ks uint32) bool {
	for c := 0; c < m.per; c++ {
		if k := m.column(code, c); k != 0 && k != ks {
			return false
		}
	}
	return true
}

// lookup returns where ks sits on the keyboard.
func (m *keymap) lookup(ks uint32) (keyPos, bool) {
	p, ok := m.index[ks]
	return p, ok
}

// bind records that code now produces ks at both levels.
func (m *keymap) bind(code xproto.Keycode, ks uint32) {
	i := int(code) - int(m.first)
	if i < 0 || (i+1)*m.per > len(m.syms) {
		return
	}
	for c := 0; c < m.per; c++ {
		if old := uint32(m.syms[i*m.per+c]); old != 0 {
			if p, ok := m.index[old]; ok && p.code == code {
				delete(m.index, old)
			}
		}
		m.syms[i*m.per+c] = 0
	}
	m.syms[i*m.per] = xproto.Keysym(ks)
	if m.per > 1 {
		m.syms[i*m.per+1] = xproto.Keysym(ks)
	}
	m.index[ks] = keyPos{code, 0}
}

// levelsDiffer reports whether Shift changes what code produces.
func (m *keymap) levelsDiffer(code xproto.Keycode) bool {
	return m.level(code, 0) != m.level(code, 1)
}

// caseFold returns the lower and upper case forms of a Latin-1 letter
// keysym, or ks twice for anything else.
func caseFold(ks uint32) (lower, upper uint32) {
	switch {
	case ks >= 'A' && ks <= 'Z':
		return ks + 32, ks
	case ks >= 'a' && ks <= 'z':
		return ks, ks - 32
	case ks >= 0xc0 && ks <= 0xde && ks != 0xd7:
		return ks + 32, ks
	case ks >= 0xe0 && ks <= 0xfe && ks != 0xf7:
		return ks, ks - 32
	}
	return ks, ks
}

// isCharKeysym reports whether ks types a character (Latin-1, the legacy
// character sets, or Unicode keysyms) as opposed to a function or
// modifier key. Only characters get their Shift level forced: for
// function keys the expert's Shift is meant (Shift+Tab, Shift+Left).
func isCharKeysym(ks uint32) bool {
	return ks < 0xfe00 || ks >= 0x01000100 && ks <= 0x0110ffff
}
