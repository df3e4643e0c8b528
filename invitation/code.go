package invitation

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"unicode"
)

// crockfordAlphabet is Douglas Crockford's base32: digits and upper-case
// letters without I, L, O and U, so a code read aloud or copied by hand has no
// look-alike symbols; NormalizePassword maps the look-alikes back.
const crockfordAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

var crockford = base32.NewEncoding(crockfordAlphabet).WithPadding(base32.NoPadding)

const (
	// PasswordBits is the entropy of a generated password.
	//
	// Why 40 bits is enough: the password is only ever used as the input of
	// a PAKE (CPace), so neither an eavesdropper, a relay, a hostile server
	// nor a thief of the invitation file can test guesses offline; each
	// connection attempt tests exactly one guess, online, against the
	// novice's agent. The agent voids the invitation after 5 failed
	// attempts, so an attacker succeeds with probability at most
	// 5/2^40 ≈ 4.5e-12 per invitation, and the invitation expires anyway.
	// 40 bits is 8 Crockford base32 symbols, short enough to read over the
	// phone.
	PasswordBits = 40
	// passwordSymbols is the number of symbols of a generated password.
	passwordSymbols = PasswordBits / 5

	// shortCodeBytes is how much of the ID the short code shows: 40 bits,
	// 8 symbols.
	shortCodeBytes = 5
)

// NewPassword returns a fresh random password of PasswordBits bits, as 8
// Crockford base32 symbols grouped 4-4, for example "K7M2-9XQT". The dash is
// for reading; NormalizePassword drops it.
func NewPassword() (string, error) {
	var raw [PasswordBits / 8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("invitation: generating password: %w", err)
	}
	return group(crockford.EncodeToString(raw[:])), nil
}

// ShortCode returns a short, phone-readable form of the invitation's ID: its
// first 40 bits in Crockford base32, grouped 4-4 ("K7M2-9XQT"). It lets the
// novice and the expert check that they are talking about the same
// invitation, and lets a server look one up. It IDENTIFIES, it does not
// AUTHENTICATE: anyone who sees the invitation knows it, and it is not a
// password. ShortCode returns "" if the ID is invalid.
func (inv *Invitation) ShortCode() string {
	if checkID(inv.ID) != nil {
		return ""
	}
	raw, _ := idEncoding.DecodeString(inv.ID)
	return group(crockford.EncodeToString(raw[:shortCodeBytes]))
}

// group inserts a dash in the middle of an 8-symbol code.
func group(code string) string {
	return code[:4] + "-" + code[4:]
}

// NormalizePassword maps what a person typed to the canonical password given
// to the PAKE. Both the novice's and the expert's side must pass the password
// through it, and it is idempotent.
//
// It first trims surrounding white space (a password file usually ends in a
// newline). Then, only if the result looks like a generated password (8
// Crockford base32 symbols once spaces and dashes are ignored, in either
// case, counting O as 0 and I or L as 1) it returns those 8 symbols in upper
// case, without separators. Anything else, including every password chosen by
// the user that is not 8 symbols long, is returned as typed apart from the
// trimming: its case, inner spaces, dashes and other characters all count.
//
// A user-chosen password that happens to be 8 letters and digits, such as
// "hello123", is folded like a generated one ("HE110123"). Both sides fold it
// the same way, so it still works; the only cost is that its case stops
// mattering.
func NormalizePassword(s string) string {
	s = strings.TrimSpace(s)
	if c, ok := CanonicalCrockford(s, passwordSymbols); ok {
		return c
	}
	return s
}

// CanonicalCrockford returns the canonical spelling of s if s is exactly
// symbols Crockford base32 symbols once spaces and dashes are ignored, in
// either case, counting O as 0 and I or L as 1: those symbols in upper case,
// without separators. Codes that people read aloud or copy by hand (the
// generated passwords here, the messenger's pairing codes) go through it.
func CanonicalCrockford(s string, symbols int) (string, bool) {
	out := make([]byte, symbols)
	n := 0
	for _, r := range s {
		if unicode.IsSpace(r) || isDash(r) {
			continue
		}
		if n == symbols {
			return "", false
		}
		switch r {
		case 'o', 'O':
			r = '0'
		case 'i', 'I', 'l', 'L':
			r = '1'
		}
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		if r > unicode.MaxASCII || !strings.ContainsRune(crockfordAlphabet, r) {
			return "", false
		}
		out[n] = byte(r)
		n++
	}
	if n != symbols {
		return "", false
	}
	return string(out), true
}

// isDash reports whether r is a hyphen-like character: phones and word
// processors turn "-" into these when a code is passed along by message.
func isDash(r rune) bool {
	switch r {
	case '-', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212', '\uFE63', '\uFF0D':
		return true
	}
	return false
}
