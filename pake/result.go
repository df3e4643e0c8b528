package pake

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha512"
	"fmt"
)

// ConfirmationSize is the length of Result.Confirmation. Use it as the maxLen
// of ReadMessage for the peer's tag.
const ConfirmationSize = 32

// maxSessionKey is the most HKDF-SHA512 can expand to (RFC 5869: 255 blocks).
const maxSessionKey = 255 * sha512.Size

// Labels that separate this package's uses of ISK from each other and from
// other protocols. They name the package and a version, so a change to the
// confirmation or key schedule cannot be confused with this one.
const (
	confirmLabel    = "assist/pake/v1 key confirmation"
	sessionKeyLabel = "assist/pake/v1 session key: "
)

// Result is the outcome of a finished Exchange: the shared intermediate
// session key (kept inside) and the key confirmation. It is not safe for
// concurrent use.
type Result struct {
	role Role
	// The shares in the order of the transcript (initiator first); the
	// confirmation tags cover them.
	initiatorShare, responderShare [MessageSize]byte
	// secret is nil-able and pointer-held; see resultSecret.
	secret   *resultSecret
	verified bool
	failed   bool
}

// resultSecret holds ISK and the confirmation key derived from it. They are
// pointers, not arrays: when fmt falls back to reflection (an unexported
// field, a verb that does not fit a pointer) it expands at most one pointer
// level and prints deeper pointers as addresses, so the bytes stay two
// pointers away from any printer.
type resultSecret struct {
	isk    *[sha512.Size]byte
	macKey *[sha512.Size]byte
}

// Role returns the role this side played.
func (r *Result) Role() Role { return r.role }

// Confirmation returns our key-confirmation tag, to send to the peer after
// the shares: HMAC-SHA512(mac_key, lv_cat(label, role, Ya, Yb)) truncated to
// ConfirmationSize bytes, with mac_key derived from ISK as the draft suggests
// (Section 10.4). The role in the tag is what makes a tag reflected back to
// its sender fail; the shares bind it to this exchange.
func (r *Result) Confirmation() []byte {
	return r.tag(r.role)
}

// tag computes the confirmation tag that the side playing role sends.
func (r *Result) tag(role Role) []byte {
	if r.secret == nil {
		panic("pake: Result was not created by Exchange.Finish")
	}
	m := hmac.New(sha512.New, r.secret.macKey[:])
	m.Write(lvCat([]byte(confirmLabel), []byte{byte(role)}, r.initiatorShare[:], r.responderShare[:]))
	return m.Sum(nil)[:ConfirmationSize]
}

// Verify checks the peer's confirmation tag in constant time. It returns an
// error wrapping ErrWrongPassword when the tag does not match: the caller
// counts that as a failed attempt. A failed Verify is final: the Result stays
// unusable even if a right tag arrives later, so an attacker cannot try
// several tags against one exchange.
func (r *Result) Verify(peerTag []byte) error {
	if r.failed || r.secret == nil {
		return fmt.Errorf("%w: the peer's confirmation already failed", ErrWrongPassword)
	}
	// hmac.Equal is constant-time; for a tag of the wrong length it returns
	// false at once, which only reveals the length the attacker chose.
	if !hmac.Equal(peerTag, r.tag(r.role.peer())) {
		r.failed = true
		r.verified = false
		return fmt.Errorf("%w: the peer's key confirmation does not match", ErrWrongPassword)
	}
	r.verified = true
	return nil
}

// SessionKey derives an n-byte key for one purpose, named by label (for
// example "assist/1 display initiator->responder"), with HKDF-SHA512 from ISK.
// Different labels give independent keys; both sides get the same key for the
// same label.
//
// SessionKey panics if the peer's confirmation has not been verified, or if n
// is not between 1 and 255*64: both are programming errors, and a key that
// was never confirmed must not protect a channel.
func (r *Result) SessionKey(label string, n int) []byte {
	if !r.verified {
		panic("pake: SessionKey before a successful Verify")
	}
	if n < 1 || n > maxSessionKey {
		panic(fmt.Sprintf("pake: SessionKey length %d out of range [1, %d]", n, maxSessionKey))
	}
	key, err := hkdf.Key(sha512.New, r.secret.isk[:], nil, sessionKeyLabel+label, n)
	if err != nil {
		// Unreachable: n is in range and SHA-512 is always available.
		panic("pake: " + err.Error())
	}
	return key
}
