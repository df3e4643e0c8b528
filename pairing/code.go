package pairing

import (
	"errors"
	"fmt"

	"github.com/assist-project/assist/invitation"
)

// Lengths of a code's parts, in Crockford base32 symbols.
const (
	PairIDSymbols = 4
	SecretSymbols = 8
)

// Code is a pairing code: the server's pairing id and the opener's secret,
// both canonical (upper-case Crockford base32, no separators).
type Code struct {
	PairID string
	Secret string
}

// NewSecret returns a fresh 40-bit secret, 8 canonical Crockford symbols.
func NewSecret() (string, error) {
	p, err := invitation.NewPassword() // 40 bits, "XXXX-XXXX"
	if err != nil {
		return "", fmt.Errorf("pairing: %w", err)
	}
	s, _ := invitation.CanonicalCrockford(p, SecretSymbols)
	return s, nil
}

// NewCode pairs the server's id with a fresh secret.
func NewCode(pairID string) (Code, error) {
	id, err := ParsePairID(pairID)
	if err != nil {
		return Code{}, err
	}
	s, err := NewSecret()
	if err != nil {
		return Code{}, err
	}
	return Code{PairID: id, Secret: s}, nil
}

// String prints the code grouped 4-4-4 for people: "K7M2-9XQT-ABCD".
func (c Code) String() string {
	return c.PairID + "-" + c.Secret[:4] + "-" + c.Secret[4:]
}

// ErrBadCode: what was typed is not a pairing code.
var ErrBadCode = errors.New("pairing: not a pairing code: a code is 12 letters and digits like K7M2-9XQT-ABCD; ask for it again")

// ParseCode reads a code as a person typed it: 12 Crockford symbols, with any
// dashes and spaces, either case, O read as 0 and I or L as 1.
func ParseCode(s string) (Code, error) {
	c, ok := invitation.CanonicalCrockford(s, PairIDSymbols+SecretSymbols)
	if !ok {
		return Code{}, ErrBadCode
	}
	return Code{PairID: c[:PairIDSymbols], Secret: c[PairIDSymbols:]}, nil
}

// ParsePairID checks a pairing id (from the server or a person) and returns
// it canonical.
func ParsePairID(s string) (string, error) {
	c, ok := invitation.CanonicalCrockford(s, PairIDSymbols)
	if !ok {
		return "", fmt.Errorf("pairing: %q is not a pairing id (4 Crockford base32 symbols)", s)
	}
	return c, nil
}
