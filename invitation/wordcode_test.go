package invitation

import (
	"errors"
	"strings"
	"testing"
)

func TestCodeWords(t *testing.T) {
	seen := make(map[string]bool, len(codeWords))
	for i, w := range codeWords {
		if len(w) < 3 || len(w) > 7 {
			t.Errorf("word %d %q: length %d, want 3 to 7", i, w, len(w))
		}
		for _, r := range w {
			if r < 'a' || r > 'z' {
				t.Errorf("word %d %q: not lower-case ASCII letters", i, w)
				break
			}
		}
		if seen[w] {
			t.Errorf("word %q appears twice", w)
		}
		seen[w] = true
		if i > 0 && codeWords[i-1] >= w {
			t.Errorf("words %q, %q: not sorted", codeWords[i-1], w)
		}
	}
}

func TestNewWordCode(t *testing.T) {
	seen := make(map[string]bool)
	for range 200 {
		c, err := NewWordCode()
		if err != nil {
			t.Fatal(err)
		}
		if c.Lookup < 1 || c.Lookup > MaxLookup {
			t.Fatalf("look-up number %d outside 1..%d", c.Lookup, MaxLookup)
		}
		back, err := ParseWordCode(c.String())
		if err != nil || back != c {
			t.Fatalf("ParseWordCode(%q) = %+v, %v; want %+v", c.String(), back, err, c)
		}
		seen[c.Password()] = true
	}
	// 200 draws from 65536 passwords: a handful of collisions at most.
	if len(seen) < 190 {
		t.Errorf("only %d distinct passwords in 200 codes", len(seen))
	}
}

func TestParseWordCode(t *testing.T) {
	want := WordCode{Lookup: 7, Words: [2]string{"crayon", "harbor"}}
	for _, tc := range []struct {
		in      string
		want    WordCode
		wantErr string // "" for success
	}{
		{"7-crayon-harbor", want, ""},
		{"  7-crayon-harbor\n", want, ""},
		{"7 Crayon Harbor", want, ""},
		{"7-CRAYON-harbor", want, ""},
		{"7 - crayon -- harbor", want, ""},
		{"7\u2013crayon\u2014harbor", want, ""},
		{"007-crayon-harbor", want, ""},
		{"9999-acorn-turtle", WordCode{Lookup: 9999, Words: [2]string{"acorn", "turtle"}}, ""},
		{"1-acorn-acorn", WordCode{Lookup: 1, Words: [2]string{"acorn", "acorn"}}, ""},
		{"", WordCode{}, "a number and two words"},
		{"7-crayon", WordCode{}, "a number and two words"},
		{"7-crayon-harbor-extra", WordCode{}, "a number and two words"},
		{"crayon-7-harbor", WordCode{}, "number from 1"},
		{"0-crayon-harbor", WordCode{}, "number from 1"},
		{"10000-crayon-harbor", WordCode{}, "number from 1"},
		{"+7-crayon-harbor", WordCode{}, "number from 1"},
		{"７-crayon-harbor", WordCode{}, "number from 1"},
		{"999999999999-crayon-harbor", WordCode{}, "number from 1"},
		{"7-crayn-harbor", WordCode{}, "first word"},
		{"7-crayon-harbour", WordCode{}, "second word"},
		{"K7M2-9XQT", WordCode{}, "a number and two words"},
	} {
		got, err := ParseWordCode(tc.in)
		if tc.wantErr == "" {
			if err != nil || got != tc.want {
				t.Errorf("ParseWordCode(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, ErrBadCode) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseWordCode(%q) error %v, want ErrBadCode mentioning %q", tc.in, err, tc.wantErr)
		}
		// The words are the password: errors never repeat them.
		for _, w := range []string{"crayn", "harbour", "crayon", "harbor"} {
			if err != nil && strings.Contains(err.Error(), w) {
				t.Errorf("ParseWordCode(%q) error %q repeats a word", tc.in, err)
			}
		}
	}
}

func TestWordCodeFormat(t *testing.T) {
	c := WordCode{Lookup: 42, Words: [2]string{"maple", "otter"}}
	if got := c.String(); got != "42-maple-otter" {
		t.Errorf("String = %q", got)
	}
	if got := c.Password(); got != "maple-otter" {
		t.Errorf("Password = %q", got)
	}
	if got := c.LookupID(); got != "42" {
		t.Errorf("LookupID = %q", got)
	}
}

func TestNormalizeWordPassword(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"crayon-harbor", "crayon-harbor", true},
		{" Crayon Harbor\n", "crayon-harbor", true},
		{"CRAYON\u2011HARBOR", "crayon-harbor", true},
		{"crayon", "", false},
		{"crayon-harbor-maple", "", false},
		{"correct-horse", "", false},
		{"K7M2-9XQT", "", false},
	} {
		got, ok := NormalizeWordPassword(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeWordPassword(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseWordCode(f *testing.F) {
	for _, s := range []string{"7-crayon-harbor", "7 Crayon Harbor", "0-a-b", "9999-turtle-acorn", "", "---", "1 2 3 4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseWordCode(s)
		if err != nil {
			if !errors.Is(err, ErrBadCode) {
				t.Fatalf("error %v does not wrap ErrBadCode", err)
			}
			return
		}
		if c.Lookup < 1 || c.Lookup > MaxLookup || !isCodeWord(c.Words[0]) || !isCodeWord(c.Words[1]) {
			t.Fatalf("parsed an invalid code %+v", c)
		}
		again, err := ParseWordCode(c.String())
		if err != nil || again != c {
			t.Fatalf("round trip %q -> %+v -> %q -> %+v, %v", s, c, c.String(), again, err)
		}
		if p, ok := NormalizeWordPassword(c.Password()); !ok || p != c.Password() {
			t.Fatalf("NormalizeWordPassword(%q) = %q, %v", c.Password(), p, ok)
		}
	})
}
