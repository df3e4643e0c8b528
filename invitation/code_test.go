package invitation

import (
	"regexp"
	"strings"
	"testing"
)

var generatedRE = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)

func TestNewPassword(t *testing.T) {
	const n = 1000
	seen := make(map[string]bool, n)
	var symbols [256]int
	for range n {
		p, err := NewPassword()
		if err != nil {
			t.Fatal(err)
		}
		if !generatedRE.MatchString(p) {
			t.Fatalf("NewPassword = %q, want XXXX-XXXX in Crockford base32", p)
		}
		if seen[p] {
			// 1000 draws from 2^40: a repeat means the generator is broken.
			t.Fatalf("NewPassword repeated %q", p)
		}
		seen[p] = true
		if got := NormalizePassword(p); got != strings.ReplaceAll(p, "-", "") {
			t.Errorf("NormalizePassword(%q) = %q", p, got)
		}
		for i := range len(p) {
			symbols[p[i]]++
		}
	}
	// Every symbol must turn up: 8000 symbols over 32 values, about 250
	// each; missing one means the encoding lost bits.
	for _, c := range crockfordAlphabet {
		if symbols[c] == 0 {
			t.Errorf("symbol %q never appeared in %d passwords", c, n)
		}
	}
}

func TestShortCode(t *testing.T) {
	inv := valid()
	code := inv.ShortCode()
	if !generatedRE.MatchString(code) {
		t.Fatalf("ShortCode = %q", code)
	}
	// The code is the id's first 40 bits in Crockford's alphabet (checked
	// independently: V7GS-S1Y5 for the golden id).
	raw, _ := idEncoding.DecodeString(inv.ID)
	if want := group(crockford.EncodeToString(raw[:5])); code != want {
		t.Errorf("ShortCode = %q, want %q", code, want)
	}
	if code != "V7GS-S1Y5" {
		t.Errorf("ShortCode of the golden invitation = %q, want V7GS-S1Y5 (codes must stay stable)", code)
	}
	inv.ID = "bad"
	if code := inv.ShortCode(); code != "" {
		t.Errorf("ShortCode of an invalid id = %q, want empty", code)
	}
}

func TestNormalizePassword(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// Generated passwords, however they were read back.
		{"K7M2-9XQT", "K7M29XQT"},
		{"k7m2-9xqt", "K7M29XQT"},
		{"k7m29xqt", "K7M29XQT"},
		{" K7M2 9XQT \n", "K7M29XQT"},
		{"K7M2 - 9XQT", "K7M29XQT"},
		{"K-7-M-2-9-X-Q-T", "K7M29XQT"},
		{"K7M2\u20139XQT", "K7M29XQT"}, // en dash from a phone
		{"K7M2\t9XQT", "K7M29XQT"},
		{"OIL0-1ABC", "01101ABC"},
		{"oil0-1abc", "01101ABC"},
		{"K7M29XQT", "K7M29XQT"},
		// Not 8 Crockford symbols: kept as typed, apart from trimming.
		{"", ""},
		{"   ", ""},
		{"K7M2-9XQ", "K7M2-9XQ"},
		{"K7M2-9XQTZ", "K7M2-9XQTZ"},
		{"K7M2-9XQU", "K7M2-9XQU"}, // U is not Crockford
		{"correct horse battery staple", "correct horse battery staple"},
		{"  Pass Word-1 \n", "Pass Word-1"},
		{"Tr0ub4dor&3", "Tr0ub4dor&3"},
		{"pässwörd", "pässwörd"},
		{"K7M2_9XQT", "K7M2_9XQT"},
		{"ＫＯＭ２９ＸＱＴ", "ＫＯＭ２９ＸＱＴ"}, // full-width letters are not folded
		// A user password of 8 letters and digits is folded, identically on
		// both sides.
		{"hello123", "HE110123"},
		{"HELLO123", "HE110123"},
	} {
		got := NormalizePassword(tc.in)
		if got != tc.want {
			t.Errorf("NormalizePassword(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := NormalizePassword(got); again != got {
			t.Errorf("NormalizePassword not idempotent on %q: %q", got, again)
		}
	}
}
