package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// Message types of the signalling protocol (see the package documentation).
const (
	TypeRegister   = "register"
	TypeJoin       = "join"
	TypeRelay      = "relay"
	TypeBye        = "bye"
	TypeRegistered = "registered"
	TypePaired     = "paired"
	TypePeerLeft   = "peer-left"
	TypeError      = "error"
	// TypeQueued tells an expert that it waits in line: the novice is
	// paired with another expert. "paired" follows when it is its turn.
	TypeQueued = "queued"
)

// Error codes of the signalling protocol's "error" messages.
const (
	CodeMalformed   = "malformed"
	CodeTooLarge    = "too-large"
	CodeRateLimited = "rate-limited"
	CodeInvalid     = "invalid"
	CodeUnexpected  = "unexpected"
	CodeTaken       = "taken"
	CodeTooMany     = "too-many"
	CodeUnknown     = "unknown"
	// CodeExpired answers a registration whose expiry has passed; joins
	// no longer get it (they get CodeUnknown), but clients may meet it
	// from older servers.
	CodeExpired = "expired"
	// CodeOffline is no longer sent (a join for an invitation whose
	// novice is away gets CodeUnknown); reserved, as older servers sent
	// it.
	CodeOffline   = "offline"
	CodeBusy      = "busy"
	CodeNotPaired = "not-paired"
	CodeInternal  = "internal"
	// CodeUnavailable: the server cannot reach its database (a
	// PostgreSQL restart); nothing was decided, and the same request
	// works once it is back.
	CodeUnavailable = "unavailable"
)

// storeAwayMessage is CodeUnavailable's message.
const storeAwayMessage = "the server cannot reach its database: try again in a minute"

// ReasonAuthFailed is the "bye" reason a client sends when the PAKE failed;
// the server counts it as a failed authentication.
const ReasonAuthFailed = "auth-failed"

// ReasonExpertTimeout is the reason of the "bye" the server sends both
// sides when the expert sent no relay message within the deadline after
// "paired" (Config.ExpertDeadline).
const ReasonExpertTimeout = "timeout: the expert sent nothing"

// Limits on fields of client messages.
const (
	MaxIDLen     = 64
	MaxReasonLen = 256
	// MinOwnerLen and MaxOwnerLen bound a registration's "owner": 22
	// characters of [A-Za-z0-9_-] are 128 bits in base64url.
	MinOwnerLen = 22
	MaxOwnerLen = 64
)

// Signal is one parsed client-to-server message. Only the fields of its Type
// are set.
type Signal struct {
	Type    string
	ID      string    // register, join
	Expires time.Time // register
	// Owner, on register, is the agent's secret for the id (see
	// MinOwnerLen): only the same secret registers a stored id again
	// before it expires. "" when not given.
	Owner  string
	Data   json.RawMessage // relay: the exact bytes of the "data" value
	Reason string          // bye
	// Session, on relay and bye, names the pairing the message belongs
	// to; one for a pairing that is over is dropped (error "not-paired")
	// rather than reaching the agent's next peer.
	Session string
}

// SignalError is a protocol error: Code is one of the Code constants and
// Message explains it to a person.
type SignalError struct {
	Code    string
	Message string
}

func (e *SignalError) Error() string { return "signal: " + e.Code + ": " + e.Message }

func malformed(format string, args ...any) *SignalError {
	return &SignalError{Code: CodeMalformed, Message: fmt.Sprintf(format, args...)}
}

// fieldsByType lists, for each client message type, its members and
// whether each is required.
var fieldsByType = map[string]map[string]bool{
	TypeRegister: {"type": true, "id": true, "expires": true, "owner": false},
	TypeJoin:     {"type": true, "id": true},
	TypeRelay:    {"type": true, "data": true, "session": false},
	TypeBye:      {"type": true, "reason": false, "session": false},
}

// ParseSignal parses one client message strictly: exactly one JSON object,
// member names matched exactly (encoding/json alone would accept "TYPE" and
// ignore unknown members), every member of the right JSON type, no unknown
// or duplicate members. Errors are *SignalError with code "malformed".
func ParseSignal(b []byte) (Signal, error) {
	// WebSocket text must be UTF-8 (RFC 6455 section 8.1), and browsers
	// drop a connection that receives anything else: relaying it would let
	// one end break the other's.
	if !utf8.Valid(b) {
		return Signal{}, malformed("not valid UTF-8")
	}
	var members map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&members); err != nil {
		return Signal{}, malformed("not a JSON object: %v", err)
	}
	if members == nil {
		return Signal{}, malformed("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return Signal{}, malformed("trailing data after the JSON object")
	}
	if err := checkDuplicates(b, len(members)); err != nil {
		return Signal{}, err
	}
	var s Signal
	if err := stringMember(members, "type", &s.Type); err != nil {
		return Signal{}, err
	}
	fields, ok := fieldsByType[s.Type]
	if !ok {
		return Signal{}, malformed("unknown message type %q: want register, join, relay or bye", s.Type)
	}
	for name := range members {
		if _, ok := fields[name]; !ok {
			return Signal{}, malformed("unknown member %q in a %s message", name, s.Type)
		}
	}
	for name, required := range fields {
		if _, ok := members[name]; required && !ok {
			return Signal{}, malformed("a %s message needs %q", s.Type, name)
		}
	}
	if _, ok := members["session"]; ok {
		if err := stringMember(members, "session", &s.Session); err != nil {
			return Signal{}, err
		}
	}
	switch s.Type {
	case TypeRegister, TypeJoin:
		if err := stringMember(members, "id", &s.ID); err != nil {
			return Signal{}, err
		}
		if err := ValidateID(s.ID); err != nil {
			return Signal{}, err
		}
		if s.Type == TypeRegister {
			var exp string
			if err := stringMember(members, "expires", &exp); err != nil {
				return Signal{}, err
			}
			t, err := time.Parse(time.RFC3339, exp)
			if err != nil {
				return Signal{}, malformed("\"expires\" is not an RFC 3339 time: %q", exp)
			}
			s.Expires = t
			if _, ok := members["owner"]; ok {
				if err := stringMember(members, "owner", &s.Owner); err != nil {
					return Signal{}, err
				}
				if !validOwner(s.Owner) {
					return Signal{}, malformed("\"owner\" must be %d to %d characters of [A-Za-z0-9_-]", MinOwnerLen, MaxOwnerLen)
				}
			}
		}
	case TypeRelay:
		d := bytes.TrimSpace(members["data"])
		if string(d) == "null" {
			return Signal{}, malformed("\"data\" must not be null")
		}
		s.Data = d
	case TypeBye:
		if _, ok := members["reason"]; ok {
			if err := stringMember(members, "reason", &s.Reason); err != nil {
				return Signal{}, err
			}
			if len(s.Reason) > MaxReasonLen {
				return Signal{}, malformed("\"reason\" is longer than %d bytes", MaxReasonLen)
			}
		}
	}
	return s, nil
}

// stringMember decodes members[name], which must be a JSON string.
func stringMember(members map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := members[name]
	if !ok {
		return malformed("missing %q", name)
	}
	if err := json.Unmarshal(raw, dst); err != nil || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) {
		return malformed("%q must be a string", name)
	}
	return nil
}

// checkDuplicates reports a member given twice, which a map silently
// collapses; want is how many distinct members the map holds.
func checkDuplicates(b []byte, want int) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return malformed("not a JSON object: %v", err)
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil { // member name
			return malformed("not a JSON object: %v", err)
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return malformed("not a JSON object: %v", err)
		}
		n++
	}
	if n != want {
		return malformed("a member appears more than once")
	}
	return nil
}

// ValidateID checks an invitation look-up id: 1 to MaxIDLen characters of
// [a-z0-9-].
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return malformed("the invitation id must be 1 to %d characters long", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return malformed("the invitation id may only hold a-z, 0-9 and '-'")
		}
	}
	return nil
}

// Outgoing messages. Relay messages are assembled by hand (relayMessage) so
// the data bytes pass through untouched.
type (
	registeredMsg struct {
		Type    string `json:"type"`
		ID      string `json:"id"`
		Expires string `json:"expires"`
	}
	pairedMsg struct {
		Type    string      `json:"type"`
		Session string      `json:"session"`
		ICE     []ICEServer `json:"ice"`
		// From, to the novice only: the expert's IP address.
		From string `json:"from,omitempty"`
	}
	byeMsg struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	}
	errorMsg struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
)

var (
	peerLeftMsg = []byte(`{"type":"peer-left"}`)
	queuedMsg   = []byte(`{"type":"queued"}`)
)

// relayMessage wraps data, already validated JSON, without re-encoding it.
func relayMessage(data []byte) []byte {
	const head, tail = `{"type":"relay","data":`, `}`
	m := make([]byte, 0, len(head)+len(data)+len(tail))
	m = append(m, head...)
	m = append(m, data...)
	return append(m, tail...)
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own message structs of strings reach here, which always
		// encode; answer something well-formed all the same.
		return []byte(`{"type":"error","code":"internal","message":"the server could not encode its reply"}`)
	}
	return b
}

// validOwner reports whether s is a well-formed registration secret.
func validOwner(s string) bool {
	if len(s) < MinOwnerLen || len(s) > MaxOwnerLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
