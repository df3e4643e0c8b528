package auth

import (
	"github.com/assist-project/assist/pake"
	"github.com/assist-project/assist/transport/internal/handshake"
)

// Version is the handshake version, the first byte of the hello: the same
// handshake as the direct transport's.
const Version = handshake.Version

// Frame kinds: the same values and order as the direct transport (package
// transport), so a trace reads the same.
const (
	kindHello    = handshake.KindHello
	kindRefusal  = handshake.KindRefusal
	kindShare    = handshake.KindShare
	kindConfirm  = handshake.KindConfirm
	kindFailed   = handshake.KindFailed
	kindVerdict  = handshake.KindVerdict
	kindAttempts = handshake.KindAttempts
)

// Limits of the handshake messages.
const (
	maxRefusal     = handshake.MaxRefusal
	verdictLen     = 1
	maxNoviceReply = max(maxRefusal, pake.MessageSize)
)

// Refusal codes: the novice will not run the PAKE.
const (
	refuseUnknown = handshake.RefuseUnknown
	refuseVersion = handshake.RefuseVersion
)

// Verdict codes: the novice's last word.
const (
	verdictOK            byte = 0
	verdictWrongPassword byte = 1
)

var (
	errMalformed   = handshake.ErrMalformed
	marshalRefusal = handshake.MarshalRefusal
	parseRefusal   = handshake.ParseRefusal
)
