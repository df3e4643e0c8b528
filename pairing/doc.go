// Package pairing confirms two devices' keys to each other with a short code
// read from one person to the other, over a relay that neither trusts (the
// messenger server), and derives the password of the sessions between two
// paired devices.
//
// # The code
//
// A code is PAIRID-SECRET, printed 4-4-4 ("K7M2-9XQT-ABCD"): PAIRID is 4
// Crockford base32 symbols chosen by the server to find the pairing, SECRET 8
// symbols (40 bits) made by the opening device and never sent to the server.
//
// # The exchange (Run)
//
// Over the relay, each side sends three messages (JSON objects, see
// message.go), without waiting for the peer except where it needs its input:
//
//  1. its CPace share (package pake; password SECRET, sid "assist/1 pair "
//     PAIRID, channel identifier "assist/1 pair\x00" purpose; the opener is the
//     Responder),
//  2. its key confirmation,
//  3. its identity {key, user, display} with an HMAC-SHA256 under a key
//     derived from the CPace session key for its direction.
//
// A relay that does not know SECRET gets one online guess per exchange and
// fails the confirmation; one that changes an identity (substitutes a key)
// fails the HMAC; one that relays between two exchanges with different
// PAIRIDs or purposes fails the confirmation, since both are in CPace's
// inputs. Either side then gets an error and nothing is pinned.
//
// # Device certificates (SignDevice, Trusted)
//
// A device linked to an account by another device carries that device's
// signature over "assist/1 device\x00" user 0x00 newKey. A contact's device
// is trusted for a session if its key is pinned, or if a chain of such
// certificates leads to it from a pinned key.
//
// # Session secrets (SessionSecret)
//
// Two paired devices need no code for a session: both compute the same
// password from their own private key and the other's pinned public key
// (X25519 of the keys in Montgomery form, as age does for ssh-ed25519),
// which the server cannot.
//
// The package does no I/O of its own (the caller provides the Channel) and
// builds for js/wasm.
package pairing
