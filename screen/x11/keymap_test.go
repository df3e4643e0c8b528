package x11

import (
	"testing"

	"github.com/jezek/xgb/xproto"
)

func TestKeymap(t *testing.T) {
	// Keycodes 8..13, 3 columns each.
	syms := []xproto.Keysym{
		'a', 0, 0, // 8: lone letter: a / A
		'1', '!', 0, // 9
		'/', '?', 0, // 10
		0, 0, 0, // 11: spare
		'!', 0, 0, // 12: '!' again, unshifted: wins over keycode 9's level 1
		0xe9, 0, 0x20ac, // 13: eacute / Eacute; EuroSign in column 2 is not used
	}
	m := newKeymap(8, 3, syms)
	for _, tc := range []struct {
		ks    uint32
		want  keyPos
		found bool
	}{
		{'a', keyPos{8, 0}, true},
		{'A', keyPos{8, 1}, true},
		{'1', keyPos{9, 0}, true},
		{'!', keyPos{12, 0}, true},
		{'?', keyPos{10, 1}, true},
		{0xe9, keyPos{13, 0}, true},
		{0xc9, keyPos{13, 1}, true},
		{0x20ac, keyPos{}, false},
		{'z', keyPos{}, false},
	} {
		got, ok := m.lookup(tc.ks)
		if ok != tc.found || got != tc.want {
			t.Errorf("lookup(%#x) = %v %v, want %v %v", tc.ks, got, ok, tc.want, tc.found)
		}
	}
	if !m.empty(11) || m.empty(8) || !m.empty(200) {
		t.Error("empty")
	}
	if !m.levelsDiffer(8) || m.levelsDiffer(12) {
		t.Error("levelsDiffer")
	}
	m.bind(11, 0x20ac)
	if got, ok := m.lookup(0x20ac); !ok || got != (keyPos{11, 0}) || !m.holdsOnly(11, 0x20ac) || m.levelsDiffer(11) {
		t.Errorf("after bind: %v %v", got, ok)
	}
	m.bind(11, 0x1000416)
	if _, ok := m.lookup(0x20ac); ok {
		t.Error("rebinding kept the old keysym")
	}
	if newKeymap(8, 0, nil).empty(8) != true {
		t.Error("zero keysyms per keycode")
	}
}

func TestIsCharKeysym(t *testing.T) {
	for ks, want := range map[uint32]bool{
		'a': true, 0xe9: true, 0x6c1: true, 0x20ac: true, 0x1000416: true,
		0xff09: false, 0xffe1: false, 0xfe03: false, 0xff51: false,
	} {
		if got := isCharKeysym(ks); got != want {
			t.Errorf("isCharKeysym(%#x) = %v", ks, got)
		}
	}
}

func FuzzLatin1(f *testing.F) {
	f.Add([]byte("caf\xe9"))
	f.Add([]byte{0, 0xff, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := latin1ToUTF8(b)
		if back := utf8ToLatin1(s); string(back) != string(b) {
			t.Fatalf("round trip %q -> %q -> %q", b, s, back)
		}
	})
}
