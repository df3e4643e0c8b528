// Package transport is the direct connection between an expert and a novice:
// TCP, then TLS 1.3, then a CPace exchange on the invitation password (package
// pake) bound to that TLS session. What comes out is a Conn that both ends
// know is end-to-end encrypted to someone who knows the password.
//
// # Why TLS without certificates we check
//
// The novice's Listener makes an ephemeral self-signed certificate (Ed25519,
// generated in NewListener, never written anywhere). The expert accepts any
// certificate (InsecureSkipVerify) but its VerifyConnection callback still
// insists on a peer certificate and on the ALPN protocol "assist/1": there is
// no PKI for a novice's laptop, so authentication comes from the PAKE, and
// TLS only provides the encrypted channel. The PAKE is bound to that channel:
// both sides use as CPace's channel identifier
//
//	Context = "assist/1 direct\x00" || ExportKeyingMaterial("EXPORTER-assist-pake-v1", nil, 32)
//
// A machine in the middle that terminates TLS towards each side holds two TLS
// sessions with two different exporter values. Whatever it relays, the two
// ends compute CPace generators from different contexts, their key
// confirmations do not match, and the novice counts a failed attempt: the
// attacker gets at most one online guess of the password per attempt, and
// never the session keys.
//
// # Handshake
//
// After TLS, every message is one pake.WriteMessage frame: a kind byte, a
// 16-bit length, the payload. The kinds live in 0xA1..0xA6 so that a stray
// protocol is recognised at the first byte:
//
//	expert -> novice  0xA1 hello     version (1 byte, 1) | len | invitation id | len | expert's name (UTF-8)
//	novice -> expert  0xA2 refusal   code (1 byte) | human-readable message (UTF-8), then the novice closes
//	               or 0xA3 share     the novice's CPace share (32 bytes)
//	expert -> novice  0xA3 share     the expert's CPace share (32 bytes)
//	novice -> expert  0xA4 confirm   the novice's key confirmation (32 bytes)
//	expert -> novice  0xA4 confirm   the expert's key confirmation (32 bytes)
//	               or 0xA5 failed    (empty) the novice's confirmation did not verify
//	novice -> expert  0xA6 verdict   code (1 byte) | attempts left (1 byte)
//
// The hello travels before anyone is authenticated: a machine in the middle
// can read the invitation ID and the expert's name, neither of which is a
// secret, and the novice must show the name as a claim, not a fact.
//
// Refusal codes: 1 expired, 2 void (too many failed attempts), 3 busy (another
// expert is connected, or the remaining attempts are all in flight), 4 unknown
// invitation, 5 version (or a hello the novice cannot parse), 6 denied (the
// novice said no a moment ago: the invitation rests for a cooldown, and the
// message says how long), 7 closed (the novice said no too many times).
// Refusals cost no attempt. Verdict codes: 0
// ok, 1 wrong password, 2 void (this failure used the last attempt), 3 busy
// (the password was right but another expert got in first). CPace runs with
// the expert as Initiator, the novice as Responder and the invitation ID as
// SessionID. After the verdict "ok" the TLS connection carries the
// application's bytes, unframed.
//
// # Counting failed attempts
//
// The novice's confirmation, sent first, lets its peer test one password
// guess. So from the moment the novice has sent it, the attempt counts as a
// failure unless the expert's confirmation verifies: a wrong tag, a "failed"
// notice, a malformed share, a timeout or a closed connection all count.
// Before that point the peer has learnt only the novice's share, which tells
// it nothing about the password, and a broken connection costs nothing.
// Attempts are reserved under a mutex before the novice sends its share, so
// that failures plus attempts in flight never exceed MaxFailures: an attacker
// who opens many connections at once still gets MaxFailures guesses in all.
// After MaxFailures failures the invitation is void for good.
//
// # One expert at a time
//
// While an authenticated Conn from a Listener is open (including one that
// Accept has not returned yet), new attempts are refused "busy". Closing that
// Conn frees the invitation, and a new expert (or the same one, reconnecting)
// may authenticate. We chose this over "one expert, ever" so that a dropped
// connection does not force the novice to issue a new invitation; expiry and
// the failure limit still bound what an attacker can do.
//
// # Dialing
//
// Dial races TCP and TLS to every address of the invitation but runs the PAKE
// on one connection at a time; see Dial.
package transport
