package auth

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/assist-project/assist/pake"
	"github.com/assist-project/assist/transport/internal/handshake"
)

// contextLabel starts CPace's channel identifier; the two DTLS certificate
// fingerprints follow, the expert's first.
const contextLabel = "assist/1 webrtc\x00"

// BindingContext builds the PAKE's channel identifier from both ends' DTLS
// certificate fingerprints (SHA-256 of the DER certificate, 32 bytes each).
func BindingContext(expertFP, noviceFP []byte) []byte {
	b := make([]byte, 0, len(contextLabel)+len(expertFP)+len(noviceFP))
	b = append(b, contextLabel...)
	b = append(b, expertFP...)
	return append(b, noviceFP...)
}

// Params is what a handshake needs besides the channel and the binding.
type Params struct {
	// InvitationID names the invitation (1..255 bytes of printable
	// ASCII); it is CPace's session id.
	InvitationID string
	// Password is the invitation password.
	Password string
	// Name is the expert's display name shown to the novice (at most 255
	// bytes, no control characters). Only Expert sends it.
	Name string
	// AttemptFailed, if set, is called by Novice when the expert's attempt
	// failed as a wrong password (a counted attempt): it counts the attempt
	// and returns how many the invitation has left, which Novice tells the
	// expert right after its verdict. Nil tells the expert nothing, as
	// novices older than this message do.
	AttemptFailed func() (left int)
}

// Expert runs the expert's side of the handshake on rw, the data channel's
// byte stream, bound to bind (see BindingContext). It returns the verified
// PAKE result once the novice's verdict is "ok". Errors are
// *HandshakeError.
//
// Expert does not close rw or set deadlines: the caller bounds the
// handshake by closing rw.
func Expert(rw io.ReadWriter, p Params, bind []byte) (*pake.Result, error) {
	fail := func(kind error, stage string, cause error) error {
		if kind == nil {
			kind = classifyStreamError(cause)
		}
		return &HandshakeError{Kind: kind, Stage: stage, Cause: cause}
	}
	if p.Password == "" {
		return nil, &HandshakeError{Stage: "config", Cause: errors.New("empty password")}
	}
	hb, err := handshake.Hello{Version: Version, InvitationID: p.InvitationID, Name: p.Name}.Marshal()
	if err != nil {
		return nil, &HandshakeError{Stage: "config", Cause: err}
	}
	if err := pake.WriteMessage(rw, kindHello, hb); err != nil {
		return nil, fail(nil, "hello", err)
	}
	kind, payload, err := pake.ReadMessage(rw, maxNoviceReply)
	if err != nil {
		return nil, fail(nil, "hello", err)
	}
	switch kind {
	case kindRefusal:
		code, msg, err := parseRefusal(payload)
		if err != nil {
			return nil, fail(ErrNotAssist, "hello", err)
		}
		e := &HandshakeError{Kind: ErrVersion, Stage: "hello", PeerMessage: msg}
		if code == refuseUnknown {
			e.Kind = ErrUnknownInvitation
		}
		return nil, e
	case kindShare:
	default:
		return nil, fail(ErrNotAssist, "hello", fmt.Errorf("unexpected message kind 0x%02x in reply to hello", kind))
	}

	ex, err := pake.New(pake.Config{
		Password:  []byte(p.Password),
		Context:   bind,
		SessionID: []byte(p.InvitationID),
		Role:      pake.Initiator,
	})
	if err != nil {
		return nil, &HandshakeError{Stage: "pake", Cause: err}
	}
	res, err := ex.Finish(payload)
	if err != nil {
		return nil, fail(ErrNotAssist, "pake", err)
	}
	if err := pake.WriteMessage(rw, kindShare, ex.Message()); err != nil {
		return nil, fail(nil, "pake", err)
	}
	kind, payload, err = pake.ReadMessage(rw, pake.ConfirmationSize)
	if err != nil {
		return nil, fail(nil, "pake", err)
	}
	switch kind {
	case kindConfirm:
	case kindVerdict:
		return nil, verdictError(payload, nil)
	default:
		return nil, fail(ErrNotAssist, "pake", fmt.Errorf("unexpected message kind 0x%02x instead of a confirmation", kind))
	}
	if verr := res.Verify(payload); verr != nil {
		// Tell the novice at once, so it settles the attempt now rather than
		// at its deadline; its verdict adds nothing we need.
		e := &HandshakeError{Kind: ErrWrongPassword, Stage: "pake", Cause: verr}
		if err := pake.WriteMessage(rw, kindFailed, nil); err == nil {
			if _, _, err := pake.ReadMessage(rw, verdictLen); err == nil {
				e.AttemptsLeft, e.AttemptsKnown = readAttempts(rw)
			}
		}
		return nil, e
	}
	if err := pake.WriteMessage(rw, kindConfirm, res.Confirmation()); err != nil {
		return nil, fail(nil, "pake", err)
	}
	kind, payload, err = pake.ReadMessage(rw, verdictLen)
	if err != nil {
		return nil, fail(nil, "verdict", err)
	}
	if kind != kindVerdict {
		return nil, fail(ErrNotAssist, "verdict", fmt.Errorf("unexpected message kind 0x%02x instead of a verdict", kind))
	}
	if err := verdictError(payload, nil); err != nil {
		var he *HandshakeError
		if errors.As(err, &he) && he.Kind == ErrWrongPassword {
			he.AttemptsLeft, he.AttemptsKnown = readAttempts(rw)
		}
		return nil, err
	}
	return res, nil
}

// readAttempts reads what may follow a wrong-password verdict: how many
// attempts the invitation has left. An older novice sends nothing and
// closes the channel, which ends the read; anything else but a
// well-formed count is as good as no count.
func readAttempts(r io.Reader) (left int, ok bool) {
	kind, payload, err := pake.ReadMessage(r, handshake.AttemptsLen)
	if err != nil || kind != kindAttempts {
		return 0, false
	}
	left, err = handshake.ParseAttempts(payload)
	return left, err == nil
}

// wrongPassword sends the verdict of a counted attempt and, when the
// caller counts attempts, how many are left, in one write: a channel
// that carries messages then carries both in one, so the expert has the
// count as soon as the verdict.
func wrongPassword(w io.Writer, p Params) {
	var b bytes.Buffer
	pake.WriteMessage(&b, kindVerdict, []byte{verdictWrongPassword})
	if p.AttemptFailed != nil {
		pake.WriteMessage(&b, kindAttempts, handshake.MarshalAttempts(p.AttemptFailed()))
	}
	w.Write(b.Bytes())
}

// verdictError maps the novice's verdict to nil (ok) or the expert's error.
func verdictError(p []byte, cause error) error {
	if len(p) != verdictLen {
		return &HandshakeError{Kind: ErrNotAssist, Stage: "verdict", Cause: fmt.Errorf("%w: verdict is %d bytes, want %d", errMalformed, len(p), verdictLen)}
	}
	switch p[0] {
	case verdictOK:
		return nil
	case verdictWrongPassword:
		return &HandshakeError{Kind: ErrWrongPassword, Stage: "verdict", Cause: cause}
	}
	return &HandshakeError{Kind: ErrNotAssist, Stage: "verdict", Cause: fmt.Errorf("%w: unknown verdict %d", errMalformed, p[0])}
}

// Novice runs the novice's side on rw, bound to bind. It returns the
// verified PAKE result and the expert's name (its claim, valid UTF-8
// without control characters). From the moment the novice has sent its key
// confirmation (which lets the peer test one password guess), every failure
// wraps ErrWrongPassword, so the caller counts it as a failed attempt.
// Errors are *HandshakeError.
func Novice(rw io.ReadWriter, p Params, bind []byte) (*pake.Result, string, error) {
	fail := func(kind error, stage string, cause error) error {
		if kind == nil {
			kind = classifyStreamError(cause)
		}
		return &HandshakeError{Kind: kind, Stage: stage, Cause: cause}
	}
	if p.Password == "" {
		return nil, "", &HandshakeError{Stage: "config", Cause: errors.New("empty password")}
	}
	kind, payload, err := pake.ReadMessage(rw, handshake.MaxHello)
	if err != nil {
		return nil, "", fail(nil, "hello", err)
	}
	if kind != kindHello {
		return nil, "", fail(ErrNotAssist, "hello", fmt.Errorf("unexpected message kind 0x%02x instead of a hello", kind))
	}
	h, err := handshake.ParseHello(payload)
	if err != nil {
		msg := fmt.Sprintf("this computer speaks Assist WebRTC handshake version %d", Version)
		pake.WriteMessage(rw, kindRefusal, marshalRefusal(refuseVersion, msg))
		kind := ErrNotAssist
		if errors.Is(err, handshake.ErrUnsupportedVersion) {
			kind = ErrVersion
		}
		return nil, "", fail(kind, "hello", err)
	}
	if subtle.ConstantTimeCompare([]byte(h.InvitationID), []byte(p.InvitationID)) != 1 {
		pake.WriteMessage(rw, kindRefusal, marshalRefusal(refuseUnknown, "this computer is not serving that invitation"))
		return nil, "", fail(ErrUnknownInvitation, "hello", nil)
	}
	ex, err := pake.New(pake.Config{
		Password:  []byte(p.Password),
		Context:   bind,
		SessionID: []byte(h.InvitationID),
		Role:      pake.Responder,
	})
	if err != nil {
		return nil, "", &HandshakeError{Stage: "pake", Cause: err}
	}
	if err := pake.WriteMessage(rw, kindShare, ex.Message()); err != nil {
		return nil, "", fail(nil, "pake", err)
	}
	kind, payload, err = pake.ReadMessage(rw, pake.MessageSize)
	if err != nil {
		return nil, "", fail(nil, "pake", err)
	}
	if kind != kindShare {
		return nil, "", fail(ErrNotAssist, "pake", fmt.Errorf("unexpected message kind 0x%02x instead of a share", kind))
	}
	res, err := ex.Finish(payload)
	if err != nil {
		// The peer has not seen our confirmation: no guess was tested.
		pake.WriteMessage(rw, kindVerdict, []byte{verdictWrongPassword})
		return nil, "", fail(ErrNotAssist, "pake", err)
	}
	if err := pake.WriteMessage(rw, kindConfirm, res.Confirmation()); err != nil {
		return nil, "", &HandshakeError{Kind: ErrWrongPassword, Stage: "pake", Cause: err}
	}
	// From here on, every failure is a counted attempt.
	kind, payload, err = pake.ReadMessage(rw, pake.ConfirmationSize)
	if err != nil {
		return nil, "", &HandshakeError{Kind: ErrWrongPassword, Stage: "pake", Cause: fmt.Errorf("no confirmation from the expert: %w", err)}
	}
	switch kind {
	case kindConfirm:
	case kindFailed:
		wrongPassword(rw, p)
		return nil, "", &HandshakeError{Kind: ErrWrongPassword, Stage: "pake", Cause: errors.New("the expert's check of our confirmation failed")}
	default:
		return nil, "", &HandshakeError{Kind: ErrWrongPassword, Stage: "pake", Cause: fmt.Errorf("unexpected message kind 0x%02x instead of a confirmation", kind)}
	}
	if err := res.Verify(payload); err != nil {
		wrongPassword(rw, p)
		return nil, "", &HandshakeError{Kind: ErrWrongPassword, Stage: "pake", Cause: err}
	}
	if err := pake.WriteMessage(rw, kindVerdict, []byte{verdictOK}); err != nil {
		return nil, "", fail(nil, "verdict", err)
	}
	return res, h.Name, nil
}

// classifyStreamError maps an error reading or writing handshake frames:
// the peer sending something that is not ours, or the channel failing.
func classifyStreamError(err error) error {
	if errors.Is(err, pake.ErrFrameTooLarge) || errors.Is(err, errMalformed) {
		return ErrNotAssist
	}
	return ErrUnreachable
}
