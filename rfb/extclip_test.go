package rfb

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEncExtendedClipboardValue(t *testing.T) {
	e := EncExtendedClipboard
	if uint32(e) != 0xc0a1e5ce {
		t.Fatalf("EncExtendedClipboard = %#x, want 0xc0a1e5ce", uint32(e))
	}
}

// extBody returns the bytes after an extended cut text's length field,
// checking that the length is the negated size of the rest.
func extBody(t *testing.T, msg []byte, typ byte) []byte {
	t.Helper()
	if len(msg) < 8 || msg[0] != typ {
		t.Fatalf("not a cut text message of type %d: % x", typ, msg)
	}
	n := int32(binary.BigEndian.Uint32(msg[4:8]))
	if int(-n) != len(msg)-8 {
		t.Fatalf("length field %d for %d bytes of body", n, len(msg)-8)
	}
	return msg[8:]
}

func TestExtClipRoundTrip(t *testing.T) {
	texts := []string{"", "plain", "Grüße ✓ 你好", "two\nlines\n", "crlf\r\nkept as lf", strings.Repeat("long text ", 10000)}
	for _, text := range texts {
		msg, err := appendClipProvide(nil, msgServerCutText, text)
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseExtClip(extBody(t, msg, msgServerCutText))
		if err != nil {
			t.Fatalf("%.20q: %v", text, err)
		}
		if m.action() != clipProvide || m.flags&clipText == 0 {
			t.Fatalf("flags %#x", m.flags)
		}
		got, ok, err := m.providedText(maxClipText)
		want := strings.ReplaceAll(text, "\r\n", "\n")
		if err != nil || !ok || got != want {
			t.Fatalf("providedText = %.40q, %v, %v; want %.40q", got, ok, err, want)
		}
	}
}

// TestExtClipWire checks the bytes rfbproto defines: CRLF line ends and
// a terminating NUL counted in the size.
func TestExtClipWire(t *testing.T) {
	msg, err := appendClipProvide(nil, msgClientCutText, "a\nb")
	if err != nil {
		t.Fatal(err)
	}
	body := extBody(t, msg, msgClientCutText)
	if f := binary.BigEndian.Uint32(body); f != clipProvide|clipText {
		t.Fatalf("flags %#x", f)
	}
	zr, err := zlib.NewReader(bytes.NewReader(body[4:]))
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	plain.ReadFrom(zr)
	if want := "\x00\x00\x00\x05a\r\nb\x00"; plain.String() != want {
		t.Fatalf("inflated % x, want % x", plain.Bytes(), want)
	}

	caps := appendClipCaps(nil, msgServerCutText, 1234)
	m, err := parseExtClip(extBody(t, caps, msgServerCutText))
	if err != nil {
		t.Fatal(err)
	}
	if c := m.caps(); m.action() != clipCaps || !c.hasText || c.textMax != 1234 || c.actions != clipAllActions {
		t.Fatalf("caps %+v from flags %#x", c, m.flags)
	}
	for _, a := range []uint32{clipRequest, clipPeek, clipNotify} {
		m, err := parseExtClip(extBody(t, appendClipAction(nil, msgServerCutText, a, clipText), msgServerCutText))
		if err != nil || m.action() != a {
			t.Fatalf("action %#x: %v, %#x", a, err, m.action())
		}
	}
}

// zlibOf compresses b, for hand-made provide messages.
func zlibOf(b []byte) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	return z.Bytes()
}

func TestExtClipRejects(t *testing.T) {
	flags := func(f uint32, rest ...byte) []byte { return append(binary.BigEndian.AppendUint32(nil, f), rest...) }
	tests := []struct {
		name string
		body []byte
	}{
		{"no flags", []byte{1, 2}},
		{"no action", flags(clipText)},
		{"two actions", flags(clipNotify | clipRequest | clipText)},
		{"reserved action", flags(1<<30 | clipText)},
		{"caps without sizes", flags(clipCaps | clipText | 1<<2)},
		{"caps with extra bytes", flags(clipCaps, 0, 0, 0, 1)},
		{"request with payload", flags(clipRequest|clipText, 1)},
	}
	for _, tt := range tests {
		if _, err := parseExtClip(tt.body); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	provides := []struct {
		name string
		data []byte
	}{
		{"not zlib", []byte("hello")},
		{"truncated size", zlibOf([]byte{0, 0})},
		{"text over the limit", zlibOf([]byte{0, 0, 1, 0, 'x'})},
		{"shorter than announced", zlibOf([]byte{0, 0, 0, 9, 'x', 0})},
	}
	for _, tt := range provides {
		m := extClip{flags: clipProvide | clipText, data: tt.data}
		if _, _, err := m.providedText(64); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	// A provide without the text format carries nothing for us.
	if _, ok, err := (extClip{flags: clipProvide | 1<<2, data: []byte("junk")}).providedText(64); ok || err != nil {
		t.Errorf("html-only provide: ok=%v err=%v", ok, err)
	}
}

func FuzzExtClip(f *testing.F) {
	for _, text := range []string{"", "Grüße ✓ 你好", "a\r\nb"} {
		msg, _ := appendClipProvide(nil, msgClientCutText, text)
		f.Add(msg[8:])
	}
	f.Add(appendClipCaps(nil, msgClientCutText, 0)[8:])
	f.Add(appendClipAction(nil, msgClientCutText, clipPeek, 0)[8:])
	f.Add(append(binary.BigEndian.AppendUint32(nil, clipProvide|clipText), zlibOf([]byte{0, 0, 0, 3, 0xff, 0xfe, 0})...))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseExtClip(body)
		if err != nil {
			return
		}
		text, ok, err := m.providedText(1 << 10)
		if err != nil {
			return
		}
		if !ok && text != "" {
			t.Fatalf("text %q without the text format", text)
		}
		if len(text) > 3<<10 || !utf8.ValidString(text) {
			t.Fatalf("bad text %q", text)
		}
		// What we decoded survives our encoder.
		msg, err := appendClipProvide(nil, msgServerCutText, text)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := parseExtClip(msg[8:])
		if err != nil {
			t.Fatal(err)
		}
		if got, _, err := m2.providedText(1 << 14); err != nil || got != strings.ReplaceAll(text, "\r\n", "\n") {
			t.Fatalf("re-encoded %q became %q (%v)", text, got, err)
		}
	})
}
