package webview

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/assist-project/assist/session"
)

// Message types a page sends.
const (
	msgChat           = "chat"
	msgRequestControl = "request_control"
	// msgRequestClipboard asks the novice to share clipboards.
	msgRequestClipboard = "request_clipboard"
	// msgGiveBack hands control back to the novice.
	msgGiveBack = "give_back_control"
	// msgLeave ends the session from the expert's side (Leave).
	msgLeave = "leave"
)

// maxMessageBytes is the WebSocket read limit for a page's messages: a
// chat line of maxChatBytes, JSON-escaped, fits with room to spare.
const maxMessageBytes = 6*maxChatBytes + 256

// message is one request from a page.
type message struct {
	Type string
	Text string // chat only
}

// wireMessage is the JSON form; Text is a pointer to tell a missing field
// from an empty one.
type wireMessage struct {
	Type string  `json:"type"`
	Text *string `json:"text"`
}

var errBadMessage = errors.New("bad message")

// parseMessage decodes and checks one message from a page. Anything but
// exactly one JSON object of a known type with exactly its fields is an
// error: the page is ours, so garbage means a bug or an attack.
func parseMessage(data []byte) (message, error) {
	if !utf8.Valid(data) {
		// encoding/json would quietly replace invalid bytes.
		return message{}, fmt.Errorf("%w: not UTF-8", errBadMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w wireMessage
	if err := dec.Decode(&w); err != nil {
		return message{}, fmt.Errorf("%w: %v", errBadMessage, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return message{}, fmt.Errorf("%w: data after the object", errBadMessage)
	}
	switch w.Type {
	case msgRequestControl:
		if w.Text != nil {
			return message{}, fmt.Errorf("%w: request_control takes no text", errBadMessage)
		}
		return message{Type: msgRequestControl}, nil
	case msgRequestClipboard:
		if w.Text != nil {
			return message{}, fmt.Errorf("%w: request_clipboard takes no text", errBadMessage)
		}
		return message{Type: msgRequestClipboard}, nil
	case msgGiveBack:
		if w.Text != nil {
			return message{}, fmt.Errorf("%w: give_back_control takes no text", errBadMessage)
		}
		return message{Type: msgGiveBack}, nil
	case msgLeave:
		if w.Text != nil {
			return message{}, fmt.Errorf("%w: leave takes no text", errBadMessage)
		}
		return message{Type: msgLeave}, nil
	case msgChat:
		if w.Text == nil {
			return message{}, fmt.Errorf("%w: chat without text", errBadMessage)
		}
		text, err := checkChat(*w.Text)
		if err != nil {
			return message{}, err
		}
		return message{Type: msgChat, Text: text}, nil
	default:
		return message{}, fmt.Errorf("%w: unknown type %.32q", errBadMessage, w.Type)
	}
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
