package novicepage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/session"
)

// ActionKind is what the novice did on the page.
type ActionKind uint8

// The actions a page can send.
const (
	// ActAnswer answers the pending question (Question, Allow).
	ActAnswer ActionKind = iota + 1
	// ActTakeBack takes control back from the expert.
	ActTakeBack
	// ActEnd ends the current session; the invitation stays open.
	ActEnd
	// ActWithdraw ends any session and withdraws the invitation.
	ActWithdraw
	// ActChat sends Text to the expert.
	ActChat
	// ActClipboard shares the clipboard (Allow) or stops sharing it.
	ActClipboard
	// ActGetHelp makes an invitation (the app only).
	ActGetHelp
	// ActAsk asks the contact User for help (the app only).
	ActAsk
	// ActEmail sends the current invitation by e-mail (the app only).
	ActEmail
	// ActFiles allows files both ways (Allow) or stops them.
	ActFiles
	// ActKeepSharing answers "Still sharing with NAME?" with yes (No is
	// ActEnd).
	ActKeepSharing
	// ActSendFile sends the file at Path to the expert. It comes from the
	// page's upload, never from its WebSocket, and must be answered with
	// Reply.
	ActSendFile
)

// appOnly are the actions only the app's page may send.
var appOnly = map[ActionKind]bool{ActGetHelp: true, ActAsk: true, ActEmail: true}

var actionNames = map[string]ActionKind{
	"answer":    ActAnswer,
	"take_back": ActTakeBack,
	"end":       ActEnd,
	"withdraw":  ActWithdraw,
	"chat":      ActChat,
	"clipboard": ActClipboard,
	"get_help":  ActGetHelp,
	"ask":       ActAsk,
	"email":     ActEmail,
	"files":     ActFiles,
	// keep_sharing takes no fields.
	"keep_sharing": ActKeepSharing,
}

func (k ActionKind) String() string {
	if k == ActSendFile {
		return "send_file"
	}
	for n, v := range actionNames {
		if v == k {
			return n
		}
	}
	return fmt.Sprintf("action(%d)", uint8(k))
}

// MaxChat bounds one chat line from the page, in bytes: what the session
// carries.
const MaxChat = session.MaxChat

// maxMessageBytes is the WebSocket read limit for a page's messages: a
// chat line of MaxChat bytes, JSON-escaped (\uXXXX is 6 bytes a byte at
// worst), fits with room to spare.
const maxMessageBytes = 6*MaxChat + 256

// message is one parsed request from a page.
type message struct {
	Kind     ActionKind
	Question uint64 // ActAnswer
	Allow    bool   // ActAnswer
	Text     string // ActChat
	User     string // ActAsk
	To       string // ActEmail: "" for the mail program to ask
}

var errBadMessage = errors.New("bad message")

// fields lists, per action, the fields besides "type" it requires; no
// other field is accepted.
var fields = map[ActionKind][]string{
	ActAnswer: {"question", "allow"},
	ActChat:   {"text"},
	// The clipboard toggle's new position.
	ActClipboard: {"allow"},
	ActAsk:       {"user"},
	ActEmail:     {"to"},
	// The files toggle's new position.
	ActFiles: {"allow"},
}

// parseMessage decodes and checks one message from a page. Anything but
// exactly one JSON object, with case-sensitive, unrepeated keys, of a
// known type with exactly its fields, is an error: the page is ours, so
// garbage means a bug or an attack. (encoding/json alone matches keys
// case-insensitively and lets a repeated key win silently.)
func parseMessage(data []byte) (message, error) {
	if !utf8.Valid(data) {
		// encoding/json would quietly replace invalid bytes.
		return message{}, fmt.Errorf("%w: not UTF-8", errBadMessage)
	}
	obj, err := strictObject(data)
	if err != nil {
		return message{}, err
	}
	var typ string
	if err := decodeField(obj, "type", &typ); err != nil {
		return message{}, err
	}
	kind, ok := actionNames[typ]
	if !ok {
		return message{}, fmt.Errorf("%w: unknown type %.32q", errBadMessage, typ)
	}
	want := fields[kind]
	if len(obj) != 1+len(want) {
		return message{}, fmt.Errorf("%w: %s takes the fields %q", errBadMessage, typ, want)
	}
	m := message{Kind: kind}
	switch kind {
	case ActAnswer:
		if err := decodeField(obj, "question", &m.Question); err != nil {
			return message{}, err
		}
		if m.Question == 0 {
			return message{}, fmt.Errorf("%w: question 0", errBadMessage)
		}
		if err := decodeField(obj, "allow", &m.Allow); err != nil {
			return message{}, err
		}
	case ActClipboard, ActFiles:
		if err := decodeField(obj, "allow", &m.Allow); err != nil {
			return message{}, err
		}
	case ActAsk:
		if err := decodeField(obj, "user", &m.User); err != nil {
			return message{}, err
		}
		if !messenger.ValidUser(m.User) {
			return message{}, fmt.Errorf("%w: not an account name", errBadMessage)
		}
	case ActEmail:
		if err := decodeField(obj, "to", &m.To); err != nil {
			return message{}, err
		}
		if m.To, err = checkAddress(m.To); err != nil {
			return message{}, err
		}
	case ActChat:
		if err := decodeField(obj, "text", &m.Text); err != nil {
			return message{}, err
		}
		if m.Text, err = checkChat(m.Text); err != nil {
			return message{}, err
		}
	}
	return m, nil
}

// strictObject splits one JSON object into its raw values by key,
// refusing repeated keys and anything after the object.
func strictObject(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", errBadMessage)
	}
	obj := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadMessage, err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: bad key", errBadMessage)
		}
		if _, dup := obj[key]; dup {
			return nil, fmt.Errorf("%w: key %.32q repeated", errBadMessage, key)
		}
		if len(obj) == 4 {
			return nil, fmt.Errorf("%w: too many fields", errBadMessage)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadMessage, err)
		}
		obj[key] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, fmt.Errorf("%w: unterminated object", errBadMessage)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the object", errBadMessage)
	}
	return obj, nil
}

// decodeField decodes obj[key] into v, which must be present and not
// null (encoding/json would leave v as it was).
func decodeField(obj map[string]json.RawMessage, key string, v any) error {
	raw, ok := obj[key]
	if !ok {
		return fmt.Errorf("%w: no %q", errBadMessage, key)
	}
	if string(raw) == "null" {
		return fmt.Errorf("%w: %q is null", errBadMessage, key)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %q: %v", errBadMessage, key, err)
	}
	return nil
}

// checkChat accepts what the session's chat carries, as one line with the
// spaces around it trimmed.
func checkChat(text string) (string, error) {
	text, err := session.CheckChatLine(text)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBadMessage, err)
	}
	return text, nil
}

// maxAddress bounds an e-mail address (RFC 5321's path limit).
const maxAddress = 254

// checkAddress accepts "" or one line that may be an e-mail address; the
// sender checks it properly (mailer.ParseAddress).
func checkAddress(to string) (string, error) {
	to = strings.TrimSpace(to)
	if len(to) > maxAddress || strings.ContainsFunc(to, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("%w: not an e-mail address", errBadMessage)
	}
	return to, nil
}
