package invitation

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkParsed checks the properties every successful parse must have: the
// invitation is well-formed, and writing it back and reading it again gives
// the same invitation (files and URLs are stable once normalised).
func checkParsed(t *testing.T, inv *Invitation) {
	t.Helper()
	if err := inv.checkFields(); err != nil {
		t.Fatalf("parsed an invalid invitation: %v", err)
	}
	out, err := inv.Marshal()
	if err != nil {
		t.Fatalf("Marshal of a parsed invitation: %v", err)
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Marshal(inv)): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again, inv) {
		t.Fatalf("round trip changed the invitation: %+v -> %+v", inv, again)
	}
	out2, err := again.Marshal()
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("Marshal not stable: %q vs %q (%v)", out, out2, err)
	}
	fromURL, err := ParseURL(inv.URL())
	if err != nil || !reflect.DeepEqual(fromURL, inv) {
		t.Fatalf("URL round trip: %+v, %v", fromURL, err)
	}
}

func checkParseError(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("error %v wraps neither ErrCorrupt nor ErrUnsupportedVersion", err)
	}
}

func FuzzParse(f *testing.F) {
	golden, err := readGoldenFile()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"type":"assist-invitation","version":2}`))
	f.Add([]byte(`{"type":"assist-invitation","version":1,"id":"3hqzzb6ffd7n6dabdjdx2qtghm","name":"A","created":"2025-03-01T09:30:00+02:00","expires":"2025-03-01T09:30:01.5Z","server":"http://a"}`))
	f.Add([]byte(`{"type":"assist-invitation","version":1,"version":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse(data)
		if err != nil {
			checkParseError(t, err)
			return
		}
		checkParsed(t, inv)
	})
}

func FuzzParseURL(f *testing.F) {
	inv := goldenInv
	f.Add(inv.URL())
	f.Add(urlPrefix)
	f.Add("assist://invite?d=e30")
	f.Add("ASSIST://invite?d=" + strings.TrimPrefix(inv.URL(), urlPrefix) + "&d=x")
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := ParseURL(s)
		if err != nil {
			checkParseError(t, err)
			return
		}
		checkParsed(t, inv)
	})
}

func FuzzNormalizePassword(f *testing.F) {
	for _, s := range []string{"K7M2-9XQT", "oil0 1abc", " hello123\n", "correct horse", "K7M2\u20139XQT", "\xff\xfe", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := NormalizePassword(s)
		if again := NormalizePassword(got); again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, got, again)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("valid UTF-8 %q became invalid %q", s, got)
		}
		if _, ok := CanonicalCrockford(got, passwordSymbols); ok {
			// Folded: exactly 8 canonical Crockford symbols.
			if len(got) != 8 || strings.Trim(got, crockfordAlphabet) != "" {
				t.Fatalf("folded %q to %q", s, got)
			}
		} else if got != strings.TrimSpace(s) {
			// Not folded: only the surrounding space may go.
			t.Fatalf("user password %q changed to %q", s, got)
		}
	})
}
