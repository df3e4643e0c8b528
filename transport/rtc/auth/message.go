package auth

import (
	"fmt"
	"unicode/utf8"

	"github.com/assist-project/assist/pake"
	"github.com/assist-project/assist/transport/internal/handshake"
)

// Version is the handshake version, the first byte of the hello: the same
// handshake as the direct transport's.
const Version = handshake.Version

// Frame kinds: the same values and order as the direct transport (package
// transport), so a trace reads the same.
const (
	kindHello   = handshake.KindHello
	kindRefusal = handshake.KindRefusal
	kindShare   = handshake.KindShare
	kindConfirm = handshake.KindConfirm
	kindFailed  = handshake.KindFailed
	kindVerdict = handshake.KindVerdict
)

// Limits of the handshake messages.
const (
	maxRefusalMessage = 512
	maxRefusal        = 1 + maxRefusalMessage
	verdictLen        = 1
	maxNoviceReply    = max(maxRefusal, pake.MessageSize)
)

// Refusal codes: the novice will not run the PAKE.
const (
	refuseUnknown byte = 4
	refuseVersion byte = 5
)

// Verdict codes: the novice's last word.
const (
	verdictOK            byte = 0
	verdictWrongPassword byte = 1
)

var errMalformed = handshake.ErrMalformed

// marshalRefusal encodes a refusal: code, then a human-readable message
// cut to maxRefusalMessage bytes at a rune boundary.
func marshalRefusal(code byte, msg string) []byte {
	if len(msg) > maxRefusalMessage {
		msg = msg[:maxRefusalMessage]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	return append([]byte{code}, msg...)
}

func parseRefusal(p []byte) (code byte, msg string, err error) {
	if len(p) < 1 {
		return 0, "", fmt.Errorf("refusal: %w: empty", errMalformed)
	}
	if len(p)-1 > maxRefusalMessage {
		return 0, "", fmt.Errorf("refusal: %w: message is %d bytes, max %d", errMalformed, len(p)-1, maxRefusalMessage)
	}
	msg = string(p[1:])
	if err := handshake.CheckText(msg); err != nil {
		return 0, "", fmt.Errorf("refusal: %w: %w", errMalformed, err)
	}
	return p[0], msg, nil
}
