package rtc

import (
	"github.com/assist-project/assist/transport/internal/handshake"
)

// ProtocolVersion is the handshake version this package speaks, the first
// byte of the hello: the same handshake as the direct transport's.
const ProtocolVersion = handshake.Version

// Frame kinds inside the data channel (for the tests that play a hostile
// peer; the handshake itself is package auth's).
const (
	kindHello   = handshake.KindHello
	kindRefusal = handshake.KindRefusal
	kindShare   = handshake.KindShare
)

// Limits of the handshake messages.
const (
	// MaxInvitationID is the longest invitation ID, in bytes.
	MaxInvitationID = handshake.MaxInvitationID
	// MaxName is the longest expert display name, in bytes of UTF-8.
	MaxName = handshake.MaxName
)

// The hello and the checks on what it carries are shared with the direct
// transport.
type hello = handshake.Hello

var (
	parseHello        = handshake.ParseHello
	checkInvitationID = handshake.CheckInvitationID
	checkName         = handshake.CheckName
)
