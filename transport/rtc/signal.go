package rtc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Signaler is the message pipe between the two ends while they set up the
// connection: in production the rendezvous server relays it. It is opaque and
// untrusted: it may drop, reorder, replay, forge or rewrite messages. The
// worst it can do is make the connection fail (see the package
// documentation).
//
// Dial and Accept call Send from one goroutine and Recv from another,
// concurrently; each call must return promptly once ctx is done. Each message
// given to Send must arrive as one message from the peer's Recv.
type Signaler interface {
	Send(ctx context.Context, msg []byte) error
	Recv(ctx context.Context) ([]byte, error)
}

// Limits on signalling messages. An SDP without candidates (they trickle
// separately) is one or two kilobytes; the bounds leave room for browsers'
// longer ones while keeping what a hostile server can make us parse small.
const (
	// MaxSignalMessage is the largest signalling message accepted, in bytes.
	MaxSignalMessage = 64 << 10
	// maxSDP bounds the SDP of an offer or an answer.
	maxSDP = 32 << 10
	// maxCandidate bounds one ICE candidate line.
	maxCandidate = 1 << 10
	// maxSDPMid bounds the media id a candidate names.
	maxSDPMid = 32
	// maxRemoteCandidates bounds the candidates we accept from one peer: each
	// one costs connectivity checks to an address the server chose.
	maxRemoteCandidates = 64
)

// Signal message types.
const (
	typeOffer     = "offer"
	typeAnswer    = "answer"
	typeCandidate = "candidate"
	// typeEnd says the sender has gathered all its candidates.
	typeEnd = "end-of-candidates"
)

// signal is one signalling message, encoded as a JSON object:
//
//	{"type":"offer","sdp":"v=0..."}
//	{"type":"answer","sdp":"v=0..."}
//	{"type":"candidate","candidate":"candidate:...","sdpMid":"0","sdpMLineIndex":0}
//	{"type":"end-of-candidates"}
//
// Fields that do not belong to the type must be absent.
type signal struct {
	Type          string  `json:"type"`
	SDP           string  `json:"sdp,omitempty"`
	Candidate     string  `json:"candidate,omitempty"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
}

func (s signal) marshal() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// parseSignal parses one signalling message strictly: one JSON object, no
// unknown or duplicate-purpose fields, a known type, bounded sizes. Every
// error wraps ErrSignalling.
func parseSignal(b []byte) (signal, error) {
	if len(b) > MaxSignalMessage {
		return signal{}, fmt.Errorf("%w: message is %d bytes, max %d", ErrSignalling, len(b), MaxSignalMessage)
	}
	if !utf8.Valid(b) {
		return signal{}, fmt.Errorf("%w: message is not valid UTF-8", ErrSignalling)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s signal
	if err := dec.Decode(&s); err != nil {
		return signal{}, fmt.Errorf("%w: %w", ErrSignalling, err)
	}
	if dec.More() {
		return signal{}, fmt.Errorf("%w: trailing data after the JSON object", ErrSignalling)
	}
	if _, err := dec.Token(); err == nil {
		return signal{}, fmt.Errorf("%w: trailing data after the JSON object", ErrSignalling)
	}
	if err := s.check(); err != nil {
		return signal{}, err
	}
	return s, nil
}

// check enforces which fields each type carries and their bounds.
func (s signal) check() error {
	hasCand := s.Candidate != "" || s.SDPMid != nil || s.SDPMLineIndex != nil
	switch s.Type {
	case typeOffer, typeAnswer:
		if hasCand {
			return fmt.Errorf("%w: %s carries candidate fields", ErrSignalling, s.Type)
		}
		if s.SDP == "" {
			return fmt.Errorf("%w: %s without sdp", ErrSignalling, s.Type)
		}
		if len(s.SDP) > maxSDP {
			return fmt.Errorf("%w: sdp is %d bytes, max %d", ErrSignalling, len(s.SDP), maxSDP)
		}
		if !strings.HasPrefix(s.SDP, "v=0") {
			return fmt.Errorf("%w: sdp does not start with v=0", ErrSignalling)
		}
	case typeCandidate:
		if s.SDP != "" {
			return fmt.Errorf("%w: candidate carries an sdp", ErrSignalling)
		}
		if s.Candidate == "" {
			return fmt.Errorf("%w: empty candidate", ErrSignalling)
		}
		if len(s.Candidate) > maxCandidate {
			return fmt.Errorf("%w: candidate is %d bytes, max %d", ErrSignalling, len(s.Candidate), maxCandidate)
		}
		if err := checkLine(s.Candidate); err != nil {
			return fmt.Errorf("%w: candidate: %w", ErrSignalling, err)
		}
		if s.SDPMid != nil {
			if len(*s.SDPMid) > maxSDPMid {
				return fmt.Errorf("%w: sdpMid is %d bytes, max %d", ErrSignalling, len(*s.SDPMid), maxSDPMid)
			}
			if err := checkLine(*s.SDPMid); err != nil {
				return fmt.Errorf("%w: sdpMid: %w", ErrSignalling, err)
			}
		}
	case typeEnd:
		if hasCand || s.SDP != "" {
			return fmt.Errorf("%w: %s carries fields", ErrSignalling, s.Type)
		}
	case "":
		return fmt.Errorf("%w: message without a type", ErrSignalling)
	default:
		return fmt.Errorf("%w: unknown message type %q", ErrSignalling, truncate(s.Type, 32))
	}
	return nil
}

// checkLine refuses control characters (line breaks above all): a candidate
// goes into SDP-like parsers, where a line break would smuggle in a new
// attribute.
func checkLine(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return errors.New("control character")
		}
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
