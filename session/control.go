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
//	{"type":"features","features":["release","files"]}    each side's first message
//
// Feature negotiation. Each side's first control message is Features:
// the parts of the protocol it implements that came after the first
// version (Feature). A side sends a message of a feature only when the
// peer announced it too; a peer that announces nothing (or never sends
// Features) gets the first version's messages only. A control or chat
// message of a type this side does not know (a newer peer's) is ignored
// with a debug log (ErrUnknownMessage): it neither ends the session nor
// changes anything. A new message therefore needs a new type, and a new
// member of an old type needs a feature, since the old types stay strict.
//
// Decoding is strict, because the peer may be hostile and a lenient
// parser is an ambiguity waiting to be exploited: member names must match
// exactly (encoding/json alone matches them case-insensitively), may not
// repeat, must belong to the message's type, and nothing may follow the
// object.

// MaxChat bounds the text of one chat message.
const MaxChat = 4 << 10

// Message is a control or chat message: Request, Release, Decision,
// StateUpdate, Chat, End or Features.
type Message interface {
	messageType() string
	validate() error
}

// Request is the expert asking for one right.
type Request struct {
	Right Rights
}

// Release is the expert giving a right back (only control: "Give back
// control"). It is sent only to a novice that announced FeatureRelease.
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

// Feature is a part of the session protocol that came after its first
// version; a set of them is their bitwise or.
type Feature uint32

// The features this version knows.
const (
	// FeatureRelease: the release message ("Give back control").
	FeatureRelease Feature = 1 << iota
	// FeatureFiles: the files right and the files channel.
	FeatureFiles
)

// OurFeatures is what this version implements and announces.
const OurFeatures = FeatureRelease | FeatureFiles

var featureNames = []struct {
	f    Feature
	name string
}{{FeatureRelease, "release"}, {FeatureFiles, "files"}}

// MaxFeatures bounds the names one Features message may carry.
const MaxFeatures = 32

// Has reports whether f holds every feature of g.
func (f Feature) Has(g Feature) bool { return f&g == g }

// String lists the features' names joined by "+", or "none".
func (f Feature) String() string {
	var parts []string
	for _, n := range featureNames {
		if f.Has(n.f) {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// Announce is each side's first control message: the features it
// implements. Names this version does not know are dropped when decoding
// (a newer peer's); they must still be well formed.
type Announce struct {
	Features Feature
}

// ErrUnknownMessage is wrapped by the error of DecodeMessage for a
// well-formed JSON object whose type this version does not know: a newer
// peer's message, to be ignored.
var ErrUnknownMessage = errors.New("unknown message type")

func (Request) messageType() string     { return "request" }
func (Release) messageType() string     { return "release" }
func (Decision) messageType() string    { return "decision" }
func (StateUpdate) messageType() string { return "state" }
func (Chat) messageType() string        { return "chat" }
func (End) messageType() string         { return "end" }
func (Announce) messageType() string    { return "features" }

func (m Announce) validate() error {
	if m.Features&^OurFeatures != 0 {
		return fmt.Errorf("unknown features %#x", uint32(m.Features&^OurFeatures))
	}
	return nil
}

// validFeatureName accepts 1 to 32 bytes of lower-case letters, digits
// and inner hyphens: the grammar of every feature name, known or not.
func validFeatureName(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// parseFeatures checks a features list and keeps the names this version
// knows.
func parseFeatures(names []string) (Feature, error) {
	if len(names) > MaxFeatures {
		return 0, fmt.Errorf("%d features, max %d", len(names), MaxFeatures)
	}
	seen := make(map[string]bool, len(names))
	var f Feature
	for _, name := range names {
		if !validFeatureName(name) {
			return 0, fmt.Errorf("bad feature name %q", truncate(name, 32))
		}
		if seen[name] {
			return 0, fmt.Errorf("repeated feature %q", name)
		}
		seen[name] = true
		for _, n := range featureNames {
			if n.name == name {
				f |= n.f
			}
		}
	}
	return f, nil
}

func (f Feature) names() []string {
	out := []string{} // never null on the wire
	for _, n := range featureNames {
		if f.Has(n.f) {
			out = append(out, n.name)
		}
	}
	return out
}

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
	// Features is a pointer so that an empty list is still sent.
	Features *[]string `json:"features,omitempty"`
}

var messageKeys = map[string]struct{ required, optional []string }{
	"request":  {required: []string{"type", "right"}},
	"release":  {required: []string{"type", "right"}},
	"decision": {required: []string{"type", "right", "allow"}},
	"state":    {required: []string{"type", "state", "rights"}, optional: []string{"reason"}},
	"chat":     {required: []string{"type", "text"}},
	"end":      {required: []string{"type", "reason"}},
	"features": {required: []string{"type", "features"}},
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
	case Announce:
		names := m.Features.names()
		w.Features = &names
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
	typ, err := typeOf(b)
	if err != nil {
		return nil, err
	}
	if _, ok := messageKeys[typ]; !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownMessage, truncate(typ, 32))
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
	case "features":
		var f Feature
		if err = nonNull(w.Features); err == nil {
			f, err = parseFeatures(*w.Features)
		}
		m = Announce{Features: f}
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

// typeOf returns the "type" member of b, which must be exactly one JSON
// object with exactly one "type" member, a string. The other members are
// skipped unread: they are for objectKeys to judge once the type is known.
func typeOf(b []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", errors.New("not a JSON object")
	}
	typ, found := "", false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		k, ok := t.(string)
		if !ok {
			return "", errors.New("bad member name")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "", err
		}
		if k != "type" {
			continue
		}
		if found {
			return "", errors.New(`repeated member "type"`)
		}
		if err := json.Unmarshal(v, &typ); err != nil || v[0] != '"' {
			return "", errors.New(`"type" is not a string`)
		}
		found = true
	}
	if _, err := dec.Token(); err != nil {
		return "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("data after the object")
	}
	if !found {
		return "", errors.New(`no "type" member`)
	}
	return typ, nil
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
	"rights": true, "reason": true, "text": true, "features": true}

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
// peer is not speaking this protocol. An error wrapping ErrUnknownMessage
// is a newer peer's message: the caller ignores it and reads on.
func ReceiveMessage(ch *Channel) (Message, error) {
	b, err := ch.ReadMessage()
	if err != nil {
		return nil, err
	}
	return DecodeMessage(b)
}
