package rtc

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/assist-project/assist/pake"
)

// ProtocolVersion is the handshake version this package speaks, the first
// byte of the hello. It numbers the WebRTC handshake separately from the
// direct transport's.
const ProtocolVersion = 1

// Frame kinds inside the data channel: the same values and order as the
// direct transport (package transport), so a trace reads the same.
const (
	kindHello   byte = 0xA1
	kindRefusal byte = 0xA2
	kindShare   byte = 0xA3
	kindConfirm byte = 0xA4
	kindFailed  byte = 0xA5
	kindVerdict byte = 0xA6
)

// Limits of the handshake messages.
const (
	// MaxInvitationID is the longest invitation ID, in bytes.
	MaxInvitationID = 255
	// MaxName is the longest expert display name, in bytes of UTF-8.
	MaxName = 255

	maxRefusalMessage = 512
	maxHello          = 1 + 1 + MaxInvitationID + 1 + MaxName
	maxRefusal        = 1 + maxRefusalMessage
	verdictLen        = 1
	maxNoviceReply    = max(maxRefusal, pake.MessageSize)
)

// Refusal codes: the novice will not run the PAKE.
const (
	refuseUnknown byte = 4
	refuseVersion byte = 5
)

// Verdict codes: the novice's last word.
const (
	verdictOK            byte = 0
	verdictWrongPassword byte = 1
)

var (
	errMalformed          = errors.New("malformed handshake message")
	errUnsupportedVersion = errors.New("unsupported protocol version")
)

// hello is the expert's first message.
type hello struct {
	version      byte
	invitationID string
	name         string
}

func (h hello) marshal() ([]byte, error) {
	if err := checkInvitationID(h.invitationID); err != nil {
		return nil, err
	}
	if err := checkName(h.name); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 3+len(h.invitationID)+len(h.name))
	b = append(b, h.version, byte(len(h.invitationID)))
	b = append(b, h.invitationID...)
	b = append(b, byte(len(h.name)))
	return append(b, h.name...), nil
}

// parseHello parses a hello payload; for another version it returns only
// the version and an error wrapping errUnsupportedVersion.
func parseHello(p []byte) (hello, error) {
	if len(p) == 0 {
		return hello{}, fmt.Errorf("hello: %w: empty", errMalformed)
	}
	h := hello{version: p[0]}
	if h.version != ProtocolVersion {
		return h, fmt.Errorf("hello: %w %d", errUnsupportedVersion, h.version)
	}
	id, rest, ok := cutLV(p[1:])
	if !ok {
		return h, fmt.Errorf("hello: %w: truncated invitation id", errMalformed)
	}
	name, rest, ok := cutLV(rest)
	if !ok {
		return h, fmt.Errorf("hello: %w: truncated name", errMalformed)
	}
	if len(rest) != 0 {
		return h, fmt.Errorf("hello: %w: %d trailing bytes", errMalformed, len(rest))
	}
	h.invitationID, h.name = string(id), string(name)
	if err := checkInvitationID(h.invitationID); err != nil {
		return h, fmt.Errorf("hello: %w: %w", errMalformed, err)
	}
	if err := checkName(h.name); err != nil {
		return h, fmt.Errorf("hello: %w: %w", errMalformed, err)
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

// checkInvitationID accepts 1..MaxInvitationID bytes of printable ASCII, as
// the direct transport does.
func checkInvitationID(id string) error {
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

// checkName accepts up to MaxName bytes of UTF-8 without control characters:
// the novice shows the name in its consent prompt.
func checkName(name string) error {
	if len(name) > MaxName {
		return fmt.Errorf("name is %d bytes, max %d", len(name), MaxName)
	}
	return checkText(name)
}

func checkText(s string) error {
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

// marshalRefusal encodes a refusal: code, then a human-readable message.
func marshalRefusal(code byte, msg string) []byte {
	if len(msg) > maxRefusalMessage {
		msg = msg[:maxRefusalMessage]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	return append([]byte{code}, msg...)
}

func parseRefusal(p []byte) (code byte, msg string, err error) {
	if len(p) < 1 {
		return 0, "", fmt.Errorf("refusal: %w: empty", errMalformed)
	}
	if len(p)-1 > maxRefusalMessage {
		return 0, "", fmt.Errorf("refusal: %w: message is %d bytes, max %d", errMalformed, len(p)-1, maxRefusalMessage)
	}
	msg = string(p[1:])
	if err := checkText(msg); err != nil {
		return 0, "", fmt.Errorf("refusal: %w: %w", errMalformed, err)
	}
	return p[0], msg, nil
}
