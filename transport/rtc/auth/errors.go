package auth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/assist-project/assist/transport/internal/handshake"
)

// Errors the handshakes return, to test with errors.Is. They come wrapped
// in a *HandshakeError carrying the details. The texts say what to do
// next, so a command-line tool or a web page can show them as they are.
var (
	// ErrWrongPassword: the key confirmation failed. The password differs,
	// or someone in the middle (the signalling server, for one) tampered
	// with the connection: the two look the same by design. The novice's
	// caller counts it as a failed attempt.
	ErrWrongPassword = errors.New("wrong password (or a tampered connection): check the password with the other person, then try again")
	// ErrUnknownInvitation: the peer is not serving this invitation.
	ErrUnknownInvitation = errors.New("the other computer is not serving this invitation: check the invitation, or ask for a new one")
	// ErrVersion: the two ends speak different versions of the handshake.
	ErrVersion = errors.New("the other computer runs an incompatible version of Assist: update Assist on both computers")
	// ErrNotAssist: the peer broke the handshake protocol.
	ErrNotAssist = errors.New("the other end does not speak the Assist handshake")
	// ErrUnreachable: the channel failed, or the peer went away, before the
	// handshake ended. Connection setups use it too, for ICE or DTLS
	// failing.
	ErrUnreachable = errors.New("could not connect to the other computer: check that it is still waiting, or try a TURN relay")
)

// HandshakeError is the error a failed handshake (or, in package
// transport/rtc, a failed connection setup) returns. errors.Is matches both
// Kind and Cause.
type HandshakeError struct {
	// Kind is one of the Err* values of this package (or
	// rtc.ErrSignalling), or nil for a local failure (bad parameters, a
	// cancelled context, pion errors).
	Kind error
	// Stage names the step that failed: "config", "signalling", "ice",
	// "hello", "pake", "verdict".
	Stage string
	// PeerMessage is the peer's explanation of a refusal, as it sent it:
	// validated UTF-8 without control characters, but unauthenticated.
	PeerMessage string
	// AttemptsLeft is, for ErrWrongPassword, how many more wrong passwords
	// the invitation takes, when the novice said so (AttemptsKnown).
	AttemptsLeft  int
	AttemptsKnown bool
	// Cause is the underlying error, if any.
	Cause error
}

func (e *HandshakeError) Error() string {
	var b strings.Builder
	// The prefix predates this package: the error is the WebRTC
	// connection's, wherever the handshake runs.
	b.WriteString("rtc: ")
	if e.Stage != "" {
		b.WriteString(e.Stage)
		b.WriteString(": ")
	}
	switch {
	case e.Kind != nil && e.Cause != nil && strings.HasPrefix(e.Cause.Error(), e.Kind.Error()):
		// The cause already starts with the kind's words.
	case e.Kind != nil:
		b.WriteString(e.Kind.Error())
	default:
		b.WriteString("handshake failed")
	}
	if e.AttemptsKnown && errors.Is(e.Kind, ErrWrongPassword) {
		b.WriteString(handshake.AttemptsNote(e.AttemptsLeft))
	}
	if e.PeerMessage != "" {
		fmt.Fprintf(&b, " (the other computer says: %q)", e.PeerMessage)
	}
	if e.Cause != nil {
		if !strings.HasSuffix(b.String(), ": ") {
			b.WriteString(": ")
		}
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap makes errors.Is see both the kind and the cause.
func (e *HandshakeError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}
