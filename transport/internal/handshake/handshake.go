// Package handshake holds what the direct (package transport) and WebRTC
// (package transport/rtc) handshakes share: the frame kinds, the expert's
// hello and its codec, the refusal and its codec, and the checks on
// invitation IDs, names and text.
// Keeping one copy keeps the two transports' wire formats from drifting.
package handshake

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Version is the handshake version, the first byte of the hello.
const Version = 1

// Frame kinds, in the order the handshake sends them.
const (
	KindHello   byte = 0xA1
	KindRefusal byte = 0xA2
	KindShare   byte = 0xA3
	KindConfirm byte = 0xA4
	KindFailed  byte = 0xA5
	KindVerdict byte = 0xA6
	// KindAttempts follows a wrong-password verdict of the WebRTC
	// handshake: how many wrong passwords the invitation still takes (see
	// MarshalAttempts). It came after version 1 and needs no new version:
	// an older expert stops reading at the verdict, and an expert that
	// meets an older novice's end of the channel instead knows no count.
	KindAttempts byte = 0xA7
)

// Limits of the hello. They keep what an unauthenticated peer can make us
// allocate to a few hundred bytes.
const (
	// MaxInvitationID is the longest invitation ID, in bytes.
	MaxInvitationID = 255
	// MaxName is the longest expert display name, in bytes of UTF-8.
	MaxName = 255
	// MaxHello is the longest hello payload.
	MaxHello = 1 + 1 + MaxInvitationID + 1 + MaxName
)

// ErrMalformed marks a handshake message that does not parse.
var ErrMalformed = errors.New("malformed handshake message")

// ErrUnsupportedVersion is what ParseHello returns for a hello whose version
// byte is not Version; the rest of such a hello is not parsed, since a newer
// version may lay it out differently.
var ErrUnsupportedVersion = errors.New("unsupported protocol version")

// Hello is the expert's first message.
type Hello struct {
	Version      byte
	InvitationID string
	Name         string
}

// Marshal encodes h: version | len | invitation ID | len | name.
func (h Hello) Marshal() ([]byte, error) {
	if err := CheckInvitationID(h.InvitationID); err != nil {
		return nil, err
	}
	if err := CheckName(h.Name); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 3+len(h.InvitationID)+len(h.Name))
	b = append(b, h.Version, byte(len(h.InvitationID)))
	b = append(b, h.InvitationID...)
	b = append(b, byte(len(h.Name)))
	return append(b, h.Name...), nil
}

// ParseHello parses a hello payload. For a version other than Version it
// returns the hello with only Version set and an error wrapping
// ErrUnsupportedVersion.
func ParseHello(p []byte) (Hello, error) {
	if len(p) == 0 {
		return Hello{}, fmt.Errorf("hello: %w: empty", ErrMalformed)
	}
	h := Hello{Version: p[0]}
	if h.Version != Version {
		return h, fmt.Errorf("hello: %w %d", ErrUnsupportedVersion, h.Version)
	}
	id, rest, ok := cutLV(p[1:])
	if !ok {
		return h, fmt.Errorf("hello: %w: truncated invitation id", ErrMalformed)
	}
	name, rest, ok := cutLV(rest)
	if !ok {
		return h, fmt.Errorf("hello: %w: truncated name", ErrMalformed)
	}
	if len(rest) != 0 {
		return h, fmt.Errorf("hello: %w: %d trailing bytes", ErrMalformed, len(rest))
	}
	h.InvitationID, h.Name = string(id), string(name)
	if err := CheckInvitationID(h.InvitationID); err != nil {
		return h, fmt.Errorf("hello: %w: %w", ErrMalformed, err)
	}
	if err := CheckName(h.Name); err != nil {
		return h, fmt.Errorf("hello: %w: %w", ErrMalformed, err)
	}
	return h, nil
}

// cutLV splits a one-byte length-prefixed field off p.
func cutLV(p []byte) (field, rest []byte, ok bool) {
	if len(p) < 1 || len(p)-1 < int(p[0]) {
		return nil, nil, false
	}
	n := int(p[0])
	return p[1 : 1+n], p[1+n:], true
}

// CheckInvitationID accepts 1..MaxInvitationID bytes of printable ASCII: IDs
// are typed and read aloud, and a narrow alphabet keeps them out of terminal
// escape trouble wherever they are shown.
func CheckInvitationID(id string) error {
	if id == "" {
		return errors.New("empty invitation id")
	}
	if len(id) > MaxInvitationID {
		return fmt.Errorf("invitation id is %d bytes, max %d", len(id), MaxInvitationID)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return fmt.Errorf("invitation id has a byte 0x%02x outside printable ASCII", id[i])
		}
	}
	return nil
}

// CheckName accepts up to MaxName bytes of UTF-8 without control characters:
// the novice shows the name in its consent prompt.
func CheckName(name string) error {
	if len(name) > MaxName {
		return fmt.Errorf("name is %d bytes, max %d", len(name), MaxName)
	}
	return CheckText(name)
}

// CheckText accepts valid UTF-8 without control characters.
func CheckText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("text is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("text has a control character %U", r)
		}
	}
	return nil
}

// Refusal codes: why the novice will not run the PAKE. Both transports use
// the same values; the WebRTC one never sends the first three (the
// rendezvous server answers those cases itself).
const (
	RefuseExpired byte = 1
	RefuseVoid    byte = 2
	RefuseBusy    byte = 3
	RefuseUnknown byte = 4
	RefuseVersion byte = 5
	// RefuseDenied: the novice said no to an expert a moment ago; the
	// invitation turns experts away for a while. The message says how long.
	RefuseDenied byte = 6
	// RefuseClosed: the novice said no too many times; the invitation is
	// closed for good.
	RefuseClosed byte = 7
)

// MaxRefusalMessage bounds the human-readable text of a refusal, in bytes.
const MaxRefusalMessage = 512

// MaxRefusal is the largest refusal payload.
const MaxRefusal = 1 + MaxRefusalMessage

// MarshalRefusal encodes a refusal: its code, then msg cut to
// MaxRefusalMessage bytes without leaving half a rune at the end.
func MarshalRefusal(code byte, msg string) []byte {
	if len(msg) > MaxRefusalMessage {
		msg = msg[:MaxRefusalMessage]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	return append([]byte{code}, msg...)
}

// ParseRefusal parses a refusal payload. Codes it does not know are
// returned as they are: a newer novice may have reasons we have not heard
// of. The message is checked like any text from an unauthenticated peer.
func ParseRefusal(p []byte) (code byte, msg string, err error) {
	if len(p) < 1 {
		return 0, "", fmt.Errorf("refusal: %w: empty", ErrMalformed)
	}
	if len(p)-1 > MaxRefusalMessage {
		return 0, "", fmt.Errorf("refusal: %w: message is %d bytes, max %d", ErrMalformed, len(p)-1, MaxRefusalMessage)
	}
	msg = string(p[1:])
	if err := CheckText(msg); err != nil {
		return 0, "", fmt.Errorf("refusal: %w: %w", ErrMalformed, err)
	}
	return p[0], msg, nil
}

// AttemptsLen is the length of a KindAttempts payload.
const AttemptsLen = 1

// MarshalAttempts encodes how many attempts an invitation has left,
// clamped to 0..255.
func MarshalAttempts(left int) []byte {
	return []byte{byte(min(max(left, 0), 255))}
}

// ParseAttempts decodes a KindAttempts payload: exactly one byte.
func ParseAttempts(p []byte) (int, error) {
	if len(p) != AttemptsLen {
		return 0, fmt.Errorf("attempts left: %w: %d bytes, want %d", ErrMalformed, len(p), AttemptsLen)
	}
	return int(p[0]), nil
}

// AttemptsNote is what follows a wrong-password error, on either
// transport, once the novice said how many attempts are left: " (3
// attempts left)", or that the invitation is now void.
func AttemptsNote(left int) string {
	if left <= 0 {
		return " (no attempts left: the invitation is now void; ask for a new invitation)"
	}
	return fmt.Sprintf(" (%d attempts left)", left)
}
