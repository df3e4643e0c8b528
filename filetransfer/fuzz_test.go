package filetransfer

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzReadFrame: any bytes either decode to a frame that encodes back to
// the same bytes, or are refused; nothing panics, and a length is checked
// before its body is read.
func FuzzReadFrame(f *testing.F) {
	for _, fr := range []frame{
		{Kind: kindOffer, Size: 5, Name: "report.pdf"},
		{Kind: kindAccept, Offset: 7},
		{Kind: kindRefuse, Reason: "no"},
		{Kind: kindData, Offset: 3, Data: []byte("abc")},
		{Kind: kindDone},
		{Kind: kindResult, OK: true},
		{Kind: kindCancel, Reason: "the disk is full"},
	} {
		b, err := appendFrame(nil, &fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{kindOffer, 0xff, 0xff, 0xff})
	f.Add([]byte{kindData, 0, 0, 25})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr frame
		_, err := readFrame(bytes.NewReader(b), nil, &fr)
		if err != nil {
			return
		}
		if fr.Kind == kindOffer && (fr.Name == "" || !utf8.ValidString(fr.Name) || fr.Size > MaxSize) {
			t.Fatalf("offer accepted: %+v", fr)
		}
		if checkReason(fr.Reason) != nil {
			t.Fatalf("reason accepted: %q", fr.Reason)
		}
		out, err := appendFrame(nil, &fr)
		if err != nil {
			t.Fatalf("decoded frame does not encode: %v", err)
		}
		if !bytes.Equal(out, b[:len(out)]) {
			t.Fatalf("round trip: %x != %x", out, b[:len(out)])
		}
	})
}

// FuzzSanitizeName: whatever a peer offers, the name is one element of a
// path, neither hidden nor "." or "..", printable, valid UTF-8, short, and
// sanitising it again changes nothing.
func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"report.pdf", "../../etc/passwd", `C:\x\y.exe`, "\u202eexe.jpg", "...", "CON", "a\x00b", "x.tar.gz", strings.Repeat("é", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s := SanitizeName(name)
		switch {
		case s == "", s == ".", s == "..", strings.HasPrefix(s, "."), strings.HasPrefix(s, " "):
			t.Fatalf("%q -> %q", name, s)
		case strings.ContainsAny(s, `/\<>:"|?*`), filepath.Base(s) != s:
			t.Fatalf("%q -> %q: separator or reserved character", name, s)
		case !utf8.ValidString(s), len(s) > maxSaved:
			t.Fatalf("%q -> %q: invalid or too long", name, s)
		case strings.HasSuffix(s, ".") || strings.HasSuffix(s, " "):
			t.Fatalf("%q -> %q: trailing dot or space", name, s)
		}
		for _, r := range s {
			if unsafeRune(r) {
				t.Fatalf("%q -> %q: %U", name, s, r)
			}
		}
		if stem, _ := splitExt(s); isDeviceName(stem) {
			t.Fatalf("%q -> %q: a device name", name, s)
		}
		if again := SanitizeName(s); again != s {
			t.Fatalf("not idempotent: %q -> %q -> %q", name, s, again)
		}
		if n := numbered(s, 2); filepath.Base(n) != n || len(n) > 255 {
			t.Fatalf("numbered %q", n)
		}
	})
}
