// Package auth is the handshake that authenticates the two ends of an
// Assist WebRTC data channel: CPace on the invitation password (package
// pake), bound to both ends' DTLS certificates, with the frames, order and
// verdicts of the direct transport's handshake.
//
// It needs nothing but a byte stream and the two certificate fingerprints,
// so the same code runs over pion's data channel (package transport/rtc) and
// over a browser's RTCDataChannel (the expert's web app, cmd/assist-wasm,
// built for GOOS=js). It has no dependency on pion for that reason.
//
// # Binding
//
// CPace's channel identifier is
//
//	BindingContext = "assist/1 webrtc\x00" || SHA-256(expert's DTLS certificate) || SHA-256(novice's DTLS certificate)
//
// Each end must take its own fingerprint from the certificate it generated
// and the peer's from the certificate DTLS actually authenticated (pion's
// GetRemoteCertificate, or in a browser the remote description's
// a=fingerprint, which the browser's DTLS enforces). A signalling server
// that terminates DTLS towards both ends leaves them with different
// contexts, so their key confirmations fail: it gets ErrWrongPassword, not a
// session. See package transport/rtc for the full argument.
//
// # Messages
//
// Every message is a pake.WriteMessage frame:
//
//	expert -> novice  0xA1 hello     version (1 byte, 1) | len | invitation id | len | expert's name (UTF-8)
//	novice -> expert  0xA2 refusal   code (4 unknown invitation, 5 version) | message (UTF-8), then the novice closes
//	               or 0xA3 share     the novice's CPace share (32 bytes)
//	expert -> novice  0xA3 share     the expert's CPace share (32 bytes)
//	novice -> expert  0xA4 confirm   the novice's key confirmation (32 bytes)
//	expert -> novice  0xA4 confirm   the expert's key confirmation (32 bytes)
//	               or 0xA5 failed    (empty) the novice's confirmation did not verify
//	novice -> expert  0xA6 verdict   code (1 byte: 0 ok, 1 wrong password)
//	novice -> expert  0xA7 attempts  after a wrong-password verdict, in the same write: how many
//	                                 wrong passwords the invitation still takes (1 byte). Optional:
//	                                 older novices do not send it, older experts never read it.
//
// CPace runs with the expert as Initiator, the novice as Responder and the
// invitation ID as SessionID.
package auth
