package transport

import (
	"fmt"

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
	MaxName    = handshake.MaxName
	maxHello   = handshake.MaxHello
	maxRefusal = handshake.MaxRefusal
	verdictLen = 2
	// maxNoviceReply is the largest frame the expert accepts after its hello.
	maxNoviceReply = max(maxRefusal, pake.MessageSize)
)

// refusalCode says why the novice will not run the PAKE.
type refusalCode byte

const (
	refuseExpired = refusalCode(handshake.RefuseExpired)
	refuseVoid    = refusalCode(handshake.RefuseVoid)
	refuseBusy    = refusalCode(handshake.RefuseBusy)
	refuseUnknown = refusalCode(handshake.RefuseUnknown)
	refuseVersion = refusalCode(handshake.RefuseVersion)
	refuseDenied  = refusalCode(handshake.RefuseDenied)
	refuseClosed  = refusalCode(handshake.RefuseClosed)
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
)

// refusal is the novice's answer to a hello it will not serve.
type refusal struct {
	code    refusalCode
	message string
}

func (r refusal) marshal() []byte { return handshake.MarshalRefusal(byte(r.code), r.message) }

// parseRefusal parses a refusal payload.
func parseRefusal(p []byte) (refusal, error) {
	code, msg, err := handshake.ParseRefusal(p)
	if err != nil {
		return refusal{}, err
	}
	return refusal{code: refusalCode(code), message: msg}, nil
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
