// Package pake authenticates the two ends of an Assist connection with the
// invitation password, and binds that authentication to the encrypted channel
// underneath.
//
// The key exchange is CPace as specified in draft-irtf-cfrg-cpace-21
// (23 April 2026), cipher suite CPACE-RISTR255-SHA512, in the
// initiator-responder setting: the expert is the initiator, the novice the
// responder. The package adds what the draft leaves to the application:
//
//   - channel binding: Config.Context is CPace's channel identifier CI. Callers
//     put a protocol label and the TLS exporter value (or the DTLS
//     fingerprints) there, so a machine that terminates two TLS connections and
//     relays between them sees two different contexts, and the exchange fails;
//   - explicit key confirmation (draft Section 10.4): each side sends
//     Result.Confirmation and checks the peer's with Result.Verify. Only a
//     verified Result yields session keys;
//   - key derivation (draft Section 10.3): Result.SessionKey expands the
//     intermediate session key ISK with HKDF-SHA512. ISK itself never leaves
//     the package.
//
// One Exchange is one password guess: a man in the middle that does not know
// the password learns, per attempt, whether one guessed password was right and
// nothing else. Callers count failed Verify calls and void the invitation
// after a few (ErrWrongPassword).
//
// A typical run, each side over its own stream:
//
//	ex, err := pake.New(pake.Config{Password: pw, Context: ctx, Role: pake.Initiator})
//	pake.WriteMessage(conn, kindShare, ex.Message())
//	_, peer, err := pake.ReadMessage(conn, pake.MessageSize)
//	res, err := ex.Finish(peer)
//	pake.WriteMessage(conn, kindConfirm, res.Confirmation())
//	_, tag, err := pake.ReadMessage(conn, pake.ConfirmationSize)
//	if err := res.Verify(tag); err != nil { ... count a failed attempt ... }
//	key := res.SessionKey("assist/1 control", 32)
//
// Neither Exchange nor Result prints its secrets: both format as
// "pake.Exchange{role: ...}" / "pake.Result{role: ..., verified: ...}".
package pake
