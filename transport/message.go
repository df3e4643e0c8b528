package transport

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/assist-project/assist/pake"
)

// ProtocolVersion is the handshake version this package speaks, the first
// byte of the hello.
const ProtocolVersion = 1

// Frame kinds of the handshake (see the package documentation).
const (
	kindHello   byte = 0xA1
	kindRefusal byte = 0xA2
	kindShare   byte = 0xA3
	kindConfirm byte = 0xA4
	kindFailed  byte = 0xA5
	kindVerdict byte = 0xA6
)

// Limits of the handshake messages. They keep what an unauthenticated peer
// can make us allocate to a few hundred bytes.
const (
	// MaxInvitationID is the longest invitation ID, in bytes.
	MaxInvitationID = 255
	// MaxName is the longest expert display name, in bytes of UTF-8.
	MaxName = 255
	// maxRefusalMessage bounds the human-readable text of a refusal.
	maxRefusalMessage = 512

	maxHello   = 1 + 1 + MaxInvitationID + 1 + MaxName
	maxRefusal = 1 + maxRefusalMessage
	verdictLen = 2
	// maxNoviceReply is the largest frame the expert accepts after its hello.
	maxNoviceReply = max(maxRefusal, pake.MessageSize)
)

// refusalCode says why the novice will not run the PAKE.
type refusalCode byte

const (
	refuseExpired refusalCode = 1
	refuseVoid    refusalCode = 2
	refuseBusy    refusalCode = 3
	refuseUnknown refusalCode = 4
	refuseVersion refusalCode = 5
)

// verdictCode is the novice's last word on an attempt.
type verdictCode byte

const (
	verdictOK            verdictCode = 0
	verdictWrongPassword verdictCode = 1
	verdictVoid          verdictCode = 2
	verdictBusy          verdictCode = 3
)

// errMalformed marks a handshake message that does not parse.
var errMalformed = errors.New("malformed handshake message")

// errUnsupportedVersion is what parseHello returns for a hello whose version
// byte is not ours; the rest of such a hello is not parsed, since a newer
// version may lay it out differently.
var errUnsupportedVersion = errors.New("unsupported protocol version")

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
	b = append(b, h.name...)
	return b, nil
}

// parseHello parses a hello payload. For a version other than
// ProtocolVersion it returns the hello with only version set and an error
// wrapping errUnsupportedVersion.
func parseHello(p []byte) (hello, error) {
	if len(p) == 0 {
		return hello{}, fmt.Errorf("hello: %w: empty", errMalformed)
	}
	h := hello{version: p[0]}
	if h.version != ProtocolVersion {
		return h, fmt.Errorf("hello: %w %d", errUnsupportedVersion, h.version)
	}
	rest := p[1:]
	id, rest, ok := cutLV(rest)
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

// checkInvitationID accepts 1..MaxInvitationID bytes of printable ASCII: IDs
// are typed and read aloud, and a narrow alphabet keeps them out of terminal
// escape trouble wherever they are shown.
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

// checkText accepts valid UTF-8 without control characters.
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

// refusal is the novice's answer to a hello it will not serve.
type refusal struct {
	code    refusalCode
	message string
}

func (r refusal) marshal() []byte {
	msg := r.message
	if len(msg) > maxRefusalMessage {
		msg = msg[:maxRefusalMessage]
		// Do not leave half a rune at the end.
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	return append([]byte{byte(r.code)}, msg...)
}

// parseRefusal parses a refusal payload. Codes it does not know are kept as
// they are: a newer novice may have reasons we have not heard of.
func parseRefusal(p []byte) (refusal, error) {
	if len(p) < 1 {
		return refusal{}, fmt.Errorf("refusal: %w: empty", errMalformed)
	}
	if len(p)-1 > maxRefusalMessage {
		return refusal{}, fmt.Errorf("refusal: %w: message is %d bytes, max %d", errMalformed, len(p)-1, maxRefusalMessage)
	}
	r := refusal{code: refusalCode(p[0]), message: string(p[1:])}
	if err := checkText(r.message); err != nil {
		return refusal{}, fmt.Errorf("refusal: %w: %w", errMalformed, err)
	}
	return r, nil
}

// verdict is the novice's last handshake message.
type verdict struct {
	code         verdictCode
	attemptsLeft int
}

func (v verdict) marshal() []byte {
	return []byte{byte(v.code), byte(min(max(v.attemptsLeft, 0), 255))}
}

func parseVerdict(p []byte) (verdict, error) {
	if len(p) != verdictLen {
		return verdict{}, fmt.Errorf("verdict: %w: %d bytes, want %d", errMalformed, len(p), verdictLen)
	}
	v := verdict{code: verdictCode(p[0]), attemptsLeft: int(p[1])}
	if v.code > verdictBusy {
		return verdict{}, fmt.Errorf("verdict: %w: unknown code %d", errMalformed, v.code)
	}
	return v, nil
}
