package transport

import (
	"fmt"
	"unicode/utf8"

	"github.com/assist-project/assist/pake"
	"github.com/assist-project/assist/transport/internal/handshake"
)

// ProtocolVersion is the handshake version this package speaks, the first
// byte of the hello.
const ProtocolVersion = handshake.Version

// Frame kinds of the handshake (see the package documentation).
const (
	kindHello   = handshake.KindHello
	kindRefusal = handshake.KindRefusal
	kindShare   = handshake.KindShare
	kindConfirm = handshake.KindConfirm
	kindFailed  = handshake.KindFailed
	kindVerdict = handshake.KindVerdict
)

// Limits of the handshake messages. They keep what an unauthenticated peer
// can make us allocate to a few hundred bytes.
const (
	// MaxInvitationID is the longest invitation ID, in bytes.
	MaxInvitationID = handshake.MaxInvitationID
	// MaxName is the longest expert display name, in bytes of UTF-8.
	MaxName = handshake.MaxName
	// maxRefusalMessage bounds the human-readable text of a refusal.
	maxRefusalMessage = 512

	maxHello   = handshake.MaxHello
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
var errMalformed = handshake.ErrMalformed

// errUnsupportedVersion is what parseHello returns for a hello whose version
// byte is not ours.
var errUnsupportedVersion = handshake.ErrUnsupportedVersion

// The hello and the checks on what it carries are shared with the WebRTC
// transport.
type hello = handshake.Hello

var (
	parseHello        = handshake.ParseHello
	checkInvitationID = handshake.CheckInvitationID
	checkName         = handshake.CheckName
	checkText         = handshake.CheckText
)

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
