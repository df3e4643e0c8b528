package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Control and chat messages are JSON objects, one per frame, with a
// "type" member naming the message:
//
//	{"type":"request","right":"control"}                 expert asks for a right
//	{"type":"release","right":"control"}                 expert gives control back
//	{"type":"decision","right":"control","allow":false}  novice answers
//	{"type":"state","state":"viewing","rights":"view","reason":"..."}
//	{"type":"chat","text":"..."}
//	{"type":"end","reason":"..."}
//
// Decoding is strict, because the peer may be hostile and a lenient
// parser is an ambiguity waiting to be exploited: member names must match
// exactly (encoding/json alone matches them case-insensitively), may not
// repeat, must belong to the message's type, and nothing may follow the
// object.

// MaxChat bounds the text of one chat message.
const MaxChat = 4 << 10

// Message is a control or chat message: Request, Release, Decision,
// StateUpdate, Chat or End.
type Message interface {
	messageType() string
	validate() error
}

// Request is the expert asking for one right.
type Request struct {
	Right Rights
}

// Release is the expert giving a right back (only control: "Give back
// control"). A novice older than this message ends the session on it.
type Release struct {
	Right Rights
}

// Decision is the novice's answer to a Request.
type Decision struct {
	Right Rights
	Allow bool
}

// StateUpdate tells the expert where the session stands; the novice's
// agent sends one for every consent Event.
type StateUpdate struct {
	State  State
	Rights Rights
	Reason string
}

// Chat is one chat message; it travels on ChannelChat.
type Chat struct {
	Text string
}

// End says the session is over and why.
type End struct {
	Reason string
}

func (Request) messageType() string     { return "request" }
func (Release) messageType() string     { return "release" }
func (Decision) messageType() string    { return "decision" }
func (StateUpdate) messageType() string { return "state" }
func (Chat) messageType() string        { return "chat" }
func (End) messageType() string         { return "end" }

func validRight(r Rights) error {
	if bits.OnesCount8(uint8(r)) != 1 || r > RightFiles {
		return fmt.Errorf("right %q: want exactly one of view, control, clipboard, files", r)
	}
	return nil
}

func (m Request) validate() error  { return validRight(m.Right) }
func (m Decision) validate() error { return validRight(m.Right) }
func (m Release) validate() error {
	if m.Right != RightControl {
		return fmt.Errorf("only control can be given back, not %s", m.Right)
	}
	return nil
}

func (m StateUpdate) validate() error {
	if int(m.State) >= len(stateNames) {
		return fmt.Errorf("invalid state %d", m.State)
	}
	want := rightsOf(m.State, m.Rights)
	if m.Rights != want {
		return fmt.Errorf("rights %s do not match state %s", m.Rights, m.State)
	}
	if err := checkText(m.Reason, MaxReason, false); err != nil {
		return fmt.Errorf("reason: %w", err)
	}
	return nil
}

// CheckChatLine trims the spaces around text and checks that what is left
// is one line the chat channel carries: not empty, at most MaxChat bytes,
// valid UTF-8, no control characters but tabs, no bidirectional overrides.
// Pages whose chat input is one line check with it before SendChat, so a
// bad line is refused where it was typed.
func CheckChatLine(text string) (string, error) {
	text = strings.TrimSpace(text)
	if strings.ContainsAny(text, "\n\u2028\u2029") {
		return "", errors.New("chat line: more than one line")
	}
	// A page's JSON turns a lone surrogate into U+FFFD: the text was not
	// what the user typed.
	if strings.ContainsRune(text, utf8.RuneError) {
		return "", errors.New("chat line: invalid character U+FFFD")
	}
	if err := (Chat{Text: text}).validate(); err != nil {
		return "", err
	}
	return text, nil
}

func (m Chat) validate() error {
	if m.Text == "" {
		return errors.New("empty chat text")
	}
	if err := checkText(m.Text, MaxChat, true); err != nil {
		return fmt.Errorf("chat text: %w", err)
	}
	return nil
}

func (m End) validate() error {
	if m.Reason == "" {
		return errors.New("end without a reason")
	}
	if err := checkText(m.Reason, MaxReason, false); err != nil {
		return fmt.Errorf("reason: %w", err)
	}
	return nil
}

// StateUpdateOf turns a consent Event into the message that tells the
// expert about it.
func StateUpdateOf(ev Event) StateUpdate {
	return StateUpdate{State: ev.To, Rights: ev.Rights, Reason: ev.Reason}
}

// MarshalText encodes r as its names joined by "+", or "none".
func (r Rights) MarshalText() ([]byte, error) {
	if r&^(RightView|RightControl|RightClipboard|RightFiles) != 0 {
		return nil, fmt.Errorf("session: unknown rights %#x", uint8(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText accepts exactly what MarshalText produces, in any order,
// without repeats.
func (r *Rights) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "none" {
		*r = 0
		return nil
	}
	var out Rights
	for part := range strings.SplitSeq(s, "+") {
		var found Rights
		for _, n := range rightNames {
			if part == n.name {
				found = n.r
			}
		}
		if found == 0 || out&found != 0 {
			return fmt.Errorf("session: bad rights %q", truncate(s, 64))
		}
		out |= found
	}
	*r = out
	return nil
}

// wire is every member any message may have; which ones a message must
// and may carry is in messageKeys.
type wire struct {
	Type   string  `json:"type"`
	Right  *Rights `json:"right,omitempty"`
	Allow  *bool   `json:"allow,omitempty"`
	State  *State  `json:"state,omitempty"`
	Rights *Rights `json:"rights,omitempty"`
	Reason *string `json:"reason,omitempty"`
	Text   *string `json:"text,omitempty"`
}

var messageKeys = map[string]struct{ required, optional []string }{
	"request":  {required: []string{"type", "right"}},
	"release":  {required: []string{"type", "right"}},
	"decision": {required: []string{"type", "right", "allow"}},
	"state":    {required: []string{"type", "state", "rights"}, optional: []string{"reason"}},
	"chat":     {required: []string{"type", "text"}},
	"end":      {required: []string{"type", "reason"}},
}

// EncodeMessage validates m and encodes it.
func EncodeMessage(m Message) ([]byte, error) {
	if m == nil {
		return nil, errors.New("session: encode: nil message")
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("session: encode %s: %w", m.messageType(), err)
	}
	w := wire{Type: m.messageType()}
	switch m := m.(type) {
	case Request:
		w.Right = &m.Right
	case Release:
		w.Right = &m.Right
	case Decision:
		w.Right, w.Allow = &m.Right, &m.Allow
	case StateUpdate:
		w.State, w.Rights = &m.State, &m.Rights
		if m.Reason != "" {
			w.Reason = &m.Reason
		}
	case Chat:
		w.Text = &m.Text
	case End:
		w.Reason = &m.Reason
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("session: encode %s: %w", w.Type, err)
	}
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("session: encode %s: %d bytes exceeds %d", w.Type, len(b), MaxMessage)
	}
	return b, nil
}

// DecodeMessage parses and validates one message.
func DecodeMessage(b []byte) (Message, error) {
	m, err := decodeMessage(b)
	if err != nil {
		return nil, fmt.Errorf("session: decode message: %w", err)
	}
	return m, nil
}

func decodeMessage(b []byte) (Message, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("%d bytes exceeds %d", len(b), MaxMessage)
	}
	keys, err := objectKeys(b)
	if err != nil {
		return nil, err
	}
	var w wire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, err
	}
	spec, ok := messageKeys[w.Type]
	if !ok {
		return nil, fmt.Errorf("unknown type %q", truncate(w.Type, 32))
	}
	for _, k := range spec.required {
		if !keys[k] {
			return nil, fmt.Errorf("%s: missing %q", w.Type, k)
		}
		delete(keys, k)
	}
	for _, k := range spec.optional {
		delete(keys, k)
	}
	for k := range keys {
		return nil, fmt.Errorf("%s: unexpected %q", w.Type, k)
	}
	var m Message
	switch w.Type {
	case "request":
		m, err = Request{Right: deref(w.Right)}, nonNull(w.Right)
	case "release":
		m, err = Release{Right: deref(w.Right)}, nonNull(w.Right)
	case "decision":
		m, err = Decision{Right: deref(w.Right), Allow: deref(w.Allow)}, errors.Join(nonNull(w.Right), nonNull(w.Allow))
	case "state":
		m, err = StateUpdate{State: deref(w.State), Rights: deref(w.Rights), Reason: deref(w.Reason)},
			errors.Join(nonNull(w.State), nonNull(w.Rights))
	case "chat":
		m, err = Chat{Text: deref(w.Text)}, nonNull(w.Text)
	case "end":
		m, err = End{Reason: deref(w.Reason)}, nonNull(w.Reason)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.Type, err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", w.Type, err)
	}
	return m, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func nonNull[T any](p *T) error {
	if p == nil {
		return errors.New("null member")
	}
	return nil
}

// objectKeys checks that b is exactly one JSON object whose member names
// are known, exact and unique, and returns them.
func objectKeys(b []byte) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	keys := make(map[string]bool)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := t.(string)
		if !ok {
			return nil, errors.New("bad member name")
		}
		if !knownKeys[k] {
			return nil, fmt.Errorf("unknown member %q", truncate(k, 32))
		}
		if keys[k] {
			return nil, fmt.Errorf("repeated member %q", k)
		}
		keys[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return keys, nil
}

var knownKeys = map[string]bool{"type": true, "right": true, "allow": true, "state": true,
	"rights": true, "reason": true, "text": true}

// SendMessage encodes m and writes it as one message on ch.
func SendMessage(ch *Channel, m Message) error {
	b, err := EncodeMessage(m)
	if err != nil {
		return err
	}
	if err := ch.WriteMessage(b); err != nil {
		return fmt.Errorf("session: send %s: %w", m.messageType(), err)
	}
	return nil
}

// ReceiveMessage reads and decodes the next message on ch. A malformed
// message is an error; the caller should end the session, since the
// peer is not speaking this protocol.
func ReceiveMessage(ch *Channel) (Message, error) {
	b, err := ch.ReadMessage()
	if err != nil {
		return nil, err
	}
	return DecodeMessage(b)
}
