package windows

import (
	"image"
	"slices"
	"testing"
	"unicode/utf16"
)

func TestKeysymRune(t *testing.T) {
	for _, tc := range []struct {
		ks   uint32
		want rune
		ok   bool
	}{
		{'a', 'a', true},
		{0xe9, 'é', true},
		{0x20ac, '€', true},     // EuroSign, a legacy keysym
		{0x6c1, 'а', true},      // Cyrillic_a
		{0x7e1, 'α', true},      // Greek_alpha
		{0x010020ac, '€', true}, // the Unicode keysym for the same
		{0x0101f600, '😀', true},
		{0xff0d, 0, false}, // Return: a function key
		{0xffe1, 0, false}, // Shift_L
		{0x1f, 0, false},
		{0x01000000, 0, false}, // below the Unicode keysym range's characters
		{0x01110000, 0, false}, // past Unicode
		{0x0100d800, 0, false}, // a surrogate
	} {
		got, ok := keysymRune(tc.ks)
		if got != tc.want || ok != tc.ok {
			t.Errorf("keysymRune(%#x) = %q, %v; want %q, %v", tc.ks, got, ok, tc.want, tc.ok)
		}
	}
}

func TestKeysymVK(t *testing.T) {
	for _, tc := range []struct {
		ks       uint32
		vk       uint16
		extended bool
	}{
		{0xff1b, 0x1B, false}, // Escape
		{0xff51, 0x25, true},  // Left, the arrow block
		{0xff96, 0x25, false}, // KP_Left, the keypad's
		{0xff8d, 0x0D, true},  // KP_Enter
		{0xffbe, 0x70, false}, // F1
		{0xffd5, 0x87, false}, // F24
		{0xffb5, 0x65, false}, // KP_5
		{0xffe4, vkRControl, true},
		{0xfe03, vkRMenu, true}, // AltGr
	} {
		if got := keysymVK[tc.ks]; got != (vkey{tc.vk, tc.extended}) {
			t.Errorf("keysym %#x: %+v, want vk %#x extended %v", tc.ks, got, tc.vk, tc.extended)
		}
	}
}

func TestCharStroke(t *testing.T) {
	const (
		a      = layoutKey(0x0041) // 'a' on a US layout: VK_A, no shift
		upperA = layoutKey(0x0141) // 'A': VK_A with Shift
		at     = layoutKey(0x0651) // '@' on a German layout: AltGr (Ctrl+Alt) + Q
		none   = layoutKey(0xffff) // not on the layout
	)
	for _, tc := range []struct {
		name           string
		k              layoutKey
		shift, ctrlAlt bool
		vk             uint16
		unicode        bool
	}{
		{"plain letter", a, false, false, 'A', false},
		{"shifted letter with Shift", upperA, true, false, 'A', false},
		{"shifted letter without Shift", upperA, false, false, 0, true},
		{"plain letter with Shift held (Caps Lock on the viewer)", a, true, false, 0, true},
		{"AltGr character", at, false, false, 0, true},
		{"shortcut: Ctrl+letter", a, false, true, 'A', false},
		{"shortcut: Ctrl+Shift+letter", upperA, true, true, 'A', false},
		{"AltGr character with AltGr held", at, false, true, 'Q', false},
		{"not on the layout", none, false, false, 0, true},
		{"not on the layout, Ctrl held", none, false, true, 0, true},
	} {
		vk, unicode := charStroke(tc.k, tc.shift, tc.ctrlAlt)
		if vk != tc.vk || unicode != tc.unicode {
			t.Errorf("%s: vk %#x unicode %v; want vk %#x unicode %v", tc.name, vk, unicode, tc.vk, tc.unicode)
		}
	}
}

func TestUTF16Units(t *testing.T) {
	for _, r := range []rune{'a', 'é', '€', 0xffff, '😀', 0x10ffff} {
		if got, want := utf16Units(r), utf16.Encode([]rune{r}); !slices.Equal(got, want) {
			t.Errorf("%U: %x, want %x", r, got, want)
		}
	}
}

// FuzzKeysym feeds keysyms as an expert's viewer may send them: every
// one is a function key, a character whose UTF-16 decodes back to it, or
// refused; none panics.
func FuzzKeysym(f *testing.F) {
	for _, ks := range []uint32{0, 'a', 0xff1b, 0x20ac, 0x01000000, 0x0101f600, 0x0110ffff, 0xffffffff, 0xd800 + 0x01000000} {
		f.Add(ks)
	}
	f.Fuzz(func(t *testing.T, ks uint32) {
		if _, ok := keysymVK[ks]; ok {
			return
		}
		r, ok := keysymRune(ks)
		if !ok {
			return
		}
		if got := utf16.Decode(utf16Units(r)); len(got) != 1 || got[0] != r {
			t.Fatalf("keysym %#x: rune %U round-trips as %U", ks, r, got)
		}
	})
}

func TestMonoCursor(t *testing.T) {
	// 2x2: transparent, black, white, inverted (drawn black).
	const b, w = 0xff000000, 0xffffffff
	mask := []uint32{
		w, b, // AND
		b, w,
		b, b, // XOR
		w, w,
	}
	c := monoCursor(mask, image.Pt(2, 2))
	if want := []uint32{0, 0xff000000, 0xffffffff, 0xff000000}; !slices.Equal(c.Pix, want) {
		t.Fatalf("pixels %x, want %x", c.Pix, want)
	}
}

func TestColorCursor(t *testing.T) {
	t.Run("alpha channel, premultiplied", func(t *testing.T) {
		c := colorCursor([]uint32{0x80ff0000, 0xff00ff00, 0x00000000}, []uint32{0, 0, 0}, image.Pt(3, 1))
		if want := []uint32{0x80800000, 0xff00ff00, 0}; !slices.Equal(c.Pix, want) {
			t.Fatalf("pixels %x, want %x", c.Pix, want)
		}
	})
	t.Run("no alpha: the AND mask decides", func(t *testing.T) {
		c := colorCursor([]uint32{0x00ff0000, 0x0000ff00}, []uint32{0xffffffff, 0xff000000}, image.Pt(2, 1))
		if want := []uint32{0, 0xff00ff00}; !slices.Equal(c.Pix, want) {
			t.Fatalf("pixels %x, want %x", c.Pix, want)
		}
	})
}
