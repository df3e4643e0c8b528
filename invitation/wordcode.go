package invitation

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Short codes for invitations registered with a rendezvous server, in the
// style of magic-wormhole and croc: "7-crayon-harbor". The number is the
// look-up id the novice's agent registered with the server (public: it only
// finds the invitation); the two words are the password given to the PAKE.
//
// Why 16 bits of password are enough here, and only here: each word is one
// of 256, so the password has 16 bits. As everywhere in Assist the password
// only feeds CPace, so the server, a relay or an eavesdropper cannot test
// guesses offline: each connection attempt tests one guess, online, against
// the novice's agent, which voids the invitation after 5 failed attempts. An
// attacker who knows the number wins with probability at most 5/65536
// (about 1 in 13000) per invitation. A short code is only ever used through a
// rendezvous server and dies with its invitation (an hour by default); the
// 40-bit passwords of NewPassword remain the choice for invitation files
// passed around without a server.
const (
	// WordCodeBits is the entropy of a short code's password.
	WordCodeBits = 16
	// MaxLookup is the largest look-up number; numbers run from 1.
	MaxLookup = 9999
)

// ErrBadCode is returned (wrapped) by ParseWordCode for text that is not a
// short code.
var ErrBadCode = errors.New("invitation: not a short code")

// WordCode is a short code: a look-up number and two words.
type WordCode struct {
	// Lookup is the look-up id registered with the server, 1..MaxLookup.
	Lookup int
	// Words are the password, each one of the 256 code words.
	Words [2]string
}

// NewWordCode returns a code with a random look-up number and a random
// two-word password.
func NewWordCode() (WordCode, error) {
	n, err := NewLookup()
	if err != nil {
		return WordCode{}, err
	}
	var raw [2]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return WordCode{}, fmt.Errorf("invitation: generating short code: %w", err)
	}
	return WordCode{Lookup: n, Words: [2]string{codeWords[raw[0]], codeWords[raw[1]]}}, nil
}

// NewLookup returns a random look-up number, 1..MaxLookup. The novice's
// agent draws another one when the server says the number is taken.
func NewLookup() (int, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(MaxLookup))
	if err != nil {
		return 0, fmt.Errorf("invitation: generating look-up number: %w", err)
	}
	return int(n.Int64()) + 1, nil
}

// String formats the code as people exchange it: "7-crayon-harbor".
func (c WordCode) String() string {
	return strconv.Itoa(c.Lookup) + "-" + c.Password()
}

// Password is the code's password as given to the PAKE: the two words
// joined by a dash, "crayon-harbor". NormalizeWordPassword maps what people
// type to this form.
func (c WordCode) Password() string {
	return c.Words[0] + "-" + c.Words[1]
}

// LookupID is the id under which the invitation is registered with the
// rendezvous server: the number in decimal.
func (c WordCode) LookupID() string {
	return strconv.Itoa(c.Lookup)
}

// ParseWordCode reads a short code as a person typed it: surrounding spaces
// are ignored, case does not matter, and the three parts may be separated
// by dashes (any kind), spaces, or both ("7 Crayon Harbor",
// "7-crayon - harbor"). Errors wrap ErrBadCode; they never repeat the
// words, which are the password.
func ParseWordCode(s string) (WordCode, error) {
	parts := splitCode(s)
	if len(parts) != 3 {
		return WordCode{}, fmt.Errorf("%w: want a number and two words, like 42-maple-otter", ErrBadCode)
	}
	n, err := parseLookup(parts[0])
	if err != nil {
		return WordCode{}, err
	}
	c := WordCode{Lookup: n}
	for i, w := range parts[1:] {
		if !isCodeWord(w) {
			return WordCode{}, fmt.Errorf("%w: the %s word is not one of Assist's code words: check its spelling", ErrBadCode, [2]string{"first", "second"}[i])
		}
		c.Words[i] = w
	}
	return c, nil
}

// NormalizeWordPassword maps a typed two-word password ("Crayon Harbor",
// "crayon-harbor") to its canonical form and reports whether it is one:
// exactly two code words. Callers fold only passwords they know to be
// word passwords (an invitation with a server), so a chosen password that
// happens to be two code words is never changed behind its owner's back.
func NormalizeWordPassword(s string) (string, bool) {
	parts := splitCode(s)
	if len(parts) != 2 || !isCodeWord(parts[0]) || !isCodeWord(parts[1]) {
		return "", false
	}
	return parts[0] + "-" + parts[1], true
}

// splitCode lower-cases s and splits it at runs of spaces and dashes. It
// returns nil for more than 3 parts, so hostile input costs little.
func splitCode(s string) []string {
	var parts []string
	for f := range strings.FieldsFuncSeq(s, func(r rune) bool { return unicode.IsSpace(r) || isDash(r) }) {
		if len(parts) == 3 {
			return nil
		}
		parts = append(parts, strings.ToLower(f))
	}
	return parts
}

// parseLookup reads the number of a code: decimal digits only (no sign, no
// spaces), 1..MaxLookup. Leading zeros are accepted: "007" is 7.
func parseLookup(s string) (int, error) {
	if s == "" || len(s) > 8 {
		return 0, fmt.Errorf("%w: the code must start with a number from 1 to %d", ErrBadCode, MaxLookup)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: the code must start with a number from 1 to %d", ErrBadCode, MaxLookup)
		}
		n = n*10 + int(s[i]-'0')
	}
	if n < 1 || n > MaxLookup {
		return 0, fmt.Errorf("%w: the code must start with a number from 1 to %d", ErrBadCode, MaxLookup)
	}
	return n, nil
}

// isCodeWord reports whether w (lower case) is one of the code words.
func isCodeWord(w string) bool {
	_, ok := slices.BinarySearch(codeWords[:], w)
	return ok
}
