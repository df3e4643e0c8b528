package rtc

import (
	"errors"

	"github.com/assist-project/assist/transport/rtc/auth"
)

// Errors Dial and Accept return, to test with errors.Is. They wrap them in a
// *HandshakeError carrying the details. The texts say what to do next, so a
// command-line tool can print them as they are. All but ErrSignalling are
// package auth's, where the handshake lives.
var (
	// ErrWrongPassword: the key confirmation failed. The password differs,
	// or someone in the middle (the signalling server, for one) tampered
	// with the connection: the two look the same by design. Accept returns
	// it too; the novice's caller counts it as a failed attempt.
	ErrWrongPassword = auth.ErrWrongPassword
	// ErrUnknownInvitation: the peer is not serving this invitation.
	ErrUnknownInvitation = auth.ErrUnknownInvitation
	// ErrVersion: the two ends speak different versions of the handshake.
	ErrVersion = auth.ErrVersion
	// ErrNotAssist: the peer broke the handshake protocol.
	ErrNotAssist = auth.ErrNotAssist
	// ErrSignalling: a signalling message was malformed, oversized, or out
	// of place. The rendezvous server (or the peer) is broken or hostile.
	ErrSignalling = errors.New("bad signalling message from the rendezvous server")
	// ErrUnreachable: no network path between the two ends was found (ICE
	// or DTLS failed), or the peer went away before the handshake ended.
	ErrUnreachable = auth.ErrUnreachable
)

// HandshakeError is the error Dial and Accept return when they could not set
// up an authenticated connection. errors.Is matches both Kind and Cause.
// Stage is one of "config", "signalling", "ice", "hello", "pake",
// "verdict".
type HandshakeError = auth.HandshakeError
