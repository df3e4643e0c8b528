package pairing

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/assist-project/assist/pake"
)

// MaxMessage bounds a relayed message of the exchange.
const MaxMessage = 1024

// Steps of the exchange, the "step" member of each message.
const (
	stepShare   = "share"
	stepConfirm = "confirm"
	stepID      = "id"
)

// macSize is the length of an identity's HMAC-SHA256.
const macSize = 32

// message is one relayed message. Which members are present depends on Step:
//
//	{"step":"share","v":B64(32)}             the CPace share
//	{"step":"confirm","v":B64(32)}           the key confirmation
//	{"step":"id","key":B64(32),"user":U,"display":D,"mac":B64(32)}
//
// B64 is base64url without padding.
type message struct {
	Step    string `json:"step"`
	V       string `json:"v,omitempty"`
	Key     string `json:"key,omitempty"`
	User    string `json:"user,omitempty"`
	Display string `json:"display,omitempty"`
	MAC     string `json:"mac,omitempty"`
}

// errMalformed wraps every parse failure.
var errMalformed = errors.New("pairing: malformed message from the peer")

// parsed is a checked message.
type parsed struct {
	step string
	v    []byte // share or confirmation
	id   Info
	mac  []byte
}

// parseMessage checks a relayed message strictly: a JSON object of at most
// MaxMessage bytes, no unknown, duplicate or misplaced members, values of the
// right size and shape. want is the step expected next.
func parseMessage(data []byte, want string) (parsed, error) {
	if len(data) > MaxMessage {
		return parsed{}, fmt.Errorf("%w: %d bytes", errMalformed, len(data))
	}
	if err := noDuplicates(data); err != nil {
		return parsed{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m message
	if err := dec.Decode(&m); err != nil {
		return parsed{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if dec.More() {
		return parsed{}, fmt.Errorf("%w: data after the object", errMalformed)
	}
	if m.Step != want {
		return parsed{}, fmt.Errorf("%w: got step %q, want %q", errMalformed, m.Step, want)
	}
	p := parsed{step: m.Step}
	var err error
	switch m.Step {
	case stepShare, stepConfirm:
		if m.Key != "" || m.User != "" || m.Display != "" || m.MAC != "" {
			return parsed{}, fmt.Errorf("%w: %s with identity members", errMalformed, m.Step)
		}
		size := pake.MessageSize
		if m.Step == stepConfirm {
			size = pake.ConfirmationSize
		}
		if p.v, err = decodeB64(m.V, size); err != nil {
			return parsed{}, fmt.Errorf("%w: %s: %v", errMalformed, m.Step, err)
		}
	case stepID:
		if m.V != "" {
			return parsed{}, fmt.Errorf("%w: id with a v member", errMalformed)
		}
		key, err := decodeB64(m.Key, ed25519.PublicKeySize)
		if err != nil {
			return parsed{}, fmt.Errorf("%w: key: %v", errMalformed, err)
		}
		p.id = Info{Key: ed25519.PublicKey(key), User: m.User, Display: m.Display}
		if err := p.id.check(); err != nil {
			return parsed{}, fmt.Errorf("%w: %v", errMalformed, err)
		}
		if p.mac, err = decodeB64(m.MAC, macSize); err != nil {
			return parsed{}, fmt.Errorf("%w: mac: %v", errMalformed, err)
		}
	default:
		return parsed{}, fmt.Errorf("%w: unknown step %q", errMalformed, m.Step)
	}
	return p, nil
}

// noDuplicates refuses an object with a member twice: encoding/json keeps
// the last, and two parsers of one message must never disagree.
func noDuplicates(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := tok.(string)
		if seen[k] {
			return fmt.Errorf("member %q twice", k)
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
	}
	return nil
}

// encodeMessage marshals m; it cannot fail for these types.
func encodeMessage(m message) []byte {
	b, _ := json.Marshal(m)
	return b
}

var b64 = base64.RawURLEncoding.Strict()

// decodeB64 decodes base64url without padding of exactly n bytes.
func decodeB64(s string, n int) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64url without padding")
	}
	if len(b) != n {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), n)
	}
	return b, nil
}

// Info is who a device says it is: its key, its account's user name and
// display name.
type Info struct {
	Key     ed25519.PublicKey
	User    string
	Display string
}

// check applies the messenger's rules for names (MESSENGER.md): user 1..32
// of [a-z0-9._-] starting with a letter or digit; display 1..64 printable
// characters.
func (i Info) check() error {
	if len(i.Key) != ed25519.PublicKeySize {
		return errors.New("key is not an Ed25519 public key")
	}
	if err := CheckUser(i.User); err != nil {
		return err
	}
	return CheckDisplay(i.Display)
}

// CheckUser checks an account name: 1 to 32 of a-z, 0-9, '.', '_' and '-',
// starting with a letter or digit.
func CheckUser(u string) error {
	if len(u) == 0 || len(u) > 32 {
		return fmt.Errorf("user name %q: want 1 to 32 characters", u)
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("user name %q: use a-z, 0-9, '.', '_' and '-', starting with a letter or digit", u)
		}
	}
	return nil
}

// CheckDisplay checks a display name as the messenger server does
// (messenger.ValidText): 1 to 64 printable characters (letters, marks,
// numbers, punctuation, symbols, spaces), no bidirectional controls, no
// space at either end.
func CheckDisplay(d string) error {
	n := utf8.RuneCountInString(d)
	if n == 0 || n > 64 || !utf8.ValidString(d) || strings.TrimSpace(d) != d {
		return fmt.Errorf("display name: want 1 to 64 characters, no space at either end")
	}
	for _, r := range d {
		if r != ' ' && !unicode.IsGraphic(r) || unicode.Is(unicode.Bidi_Control, r) {
			return fmt.Errorf("display name %q: has a control or invisible character", d)
		}
	}
	return nil
}
