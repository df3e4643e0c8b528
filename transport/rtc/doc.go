// Package rtc is the WebRTC connection between an expert and a novice: ICE
// (host, server-reflexive and relayed candidates, TURN over UDP, TCP and TLS,
// TURN through an HTTP CONNECT proxy), DTLS, SCTP, and one data channel, on
// github.com/pion/webrtc/v4. The rendezvous server carries the signalling
// (SDP and ICE candidates) and nothing else; the CPace exchange on the
// invitation password (package pake) runs inside the data channel, bound to
// both ends' DTLS certificates. What comes out is a Conn that both ends know
// is end-to-end encrypted to someone who knows the password.
//
// # Signalling
//
// Signalling messages are small JSON objects (see signal), at most
// MaxSignalMessage bytes, parsed strictly: unknown fields, unknown types,
// trailing data, oversized SDP or candidates, more than 64 candidates, an
// offer to the expert or a second answer all end the attempt with
// ErrSignalling. The expert (Dial) sends the offer, the novice (Accept) the
// answer; both trickle their candidates. The signalling path is not trusted
// with anything: it sees the SDP (DTLS fingerprints, ICE credentials,
// addresses), never the password, the PAKE or the data.
//
// # Why a hostile signalling server gets no session
//
// The data channel is negotiated out of band (negotiated, id 0, reliable
// and ordered) and detached, so Conn reads and writes bytes. Once it is open
// both ends run the handshake of package transport inside it, with CPace's
// channel identifier
//
//	Context = "assist/1 webrtc\x00" || SHA-256(expert's DTLS certificate) || SHA-256(novice's DTLS certificate)
//
// Each end takes its own fingerprint from the certificate it generated (a
// fresh ECDSA P-256 certificate per connection) and the peer's from the
// certificate the peer actually presented in the DTLS handshake
// (DTLSTransport.GetRemoteCertificate), not from the SDP. A server that
// rewrites the fingerprints in the SDP without terminating DTLS breaks DTLS
// (pion checks the certificate against the SDP fingerprint). A server that
// terminates DTLS towards each end with PeerConnections of its own, and
// relays the data channel between them, leaves each end with the server's
// certificate as its peer's: the two Contexts differ, the key confirmations
// do not match, and both ends get ErrWrongPassword. The server learns, per
// attempt, whether one guessed password was right, and nothing else.
//
// # Handshake
//
// Inside the data channel every message is a pake.WriteMessage frame, with
// the kinds and order of package transport:
//
//	expert -> novice  0xA1 hello     version (1 byte, 1) | len | invitation id | len | expert's name (UTF-8)
//	novice -> expert  0xA2 refusal   code (4 unknown invitation, 5 version) | message (UTF-8), then the novice closes
//	               or 0xA3 share     the novice's CPace share (32 bytes)
//	expert -> novice  0xA3 share     the expert's CPace share (32 bytes)
//	novice -> expert  0xA4 confirm   the novice's key confirmation (32 bytes)
//	expert -> novice  0xA4 confirm   the expert's key confirmation (32 bytes)
//	               or 0xA5 failed    (empty) the novice's confirmation did not verify
//	novice -> expert  0xA6 verdict   code (1 byte: 0 ok, 1 wrong password)
//
// CPace runs with the expert as Initiator, the novice as Responder and the
// invitation ID as SessionID. After the verdict "ok" the data channel
// carries the application's bytes.
//
// # Counting failed attempts
//
// Unlike transport.Listener, Accept serves one attempt and counts nothing:
// the caller (which holds the invitation and talks to the rendezvous server)
// counts every Accept error that wraps ErrWrongPassword, and voids the
// invitation after a few. Accept returns ErrWrongPassword whenever the peer
// may have tested a guess: from the moment the novice sent its key
// confirmation, anything but a verified confirmation from the expert (a
// wrong one, a "failed" notice, a timeout, a closed channel) counts.
//
// # Paths
//
// Conn.Path names the selected ICE candidate pair: "direct" (host to host),
// "punched" (a server- or peer-reflexive candidate, UDP through NAT),
// "relay-udp", "relay-tcp" or "relay-tls" (through TURN; the transport our
// end uses to reach the relay).
//
// # ICE restarts
//
// An authenticated Conn keeps its signalling: when the network path
// breaks, the expert restarts ICE and the novice answers, and the session
// above goes on without a new handshake (see restart.go). Conn.Resignal
// hands it a new signalling path after the old one died; Conn.Resumed
// reports the path after each restart.
package rtc
