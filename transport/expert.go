package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/assist-project/assist/pake"
)

// dialTLS opens TCP to addr and completes the TLS handshake, within timeout.
// Its errors are *HandshakeError of kind ErrUnreachable (network) or
// ErrNotAssist (the peer does not speak TLS 1.3 with ALPN assist/1).
func dialTLS(ctx context.Context, addr string, timeout time.Duration) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &HandshakeError{Kind: ErrUnreachable, Addr: addr, AttemptsLeft: -1, Cause: err}
	}
	tc := tls.Client(raw, clientTLSConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &HandshakeError{Kind: classifyTLSError(err), Addr: addr, AttemptsLeft: -1, Cause: err}
	}
	return tc, nil
}

// classifyTLSError tells a network failure from a peer that is not Assist.
func classifyTLSError(err error) error {
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &rh), errors.Is(err, errNoALPN), errors.Is(err, errNoPeerCertificate):
		return ErrNotAssist
	case isNetworkError(err):
		return ErrUnreachable
	}
	return ErrNotAssist
}

// expertHandshake runs the expert's side of the handshake on an established
// TLS connection. On success the connection belongs to the returned Conn; on
// failure the caller closes it.
func expertHandshake(ctx context.Context, tc *tls.Conn, addr string, cfg *DialConfig) (*Conn, error) {
	// Cancelling ctx closes the TCP connection under tc, which unblocks
	// whatever read or write the handshake is in.
	stop := context.AfterFunc(ctx, func() { tc.NetConn().Close() })
	defer stop()
	tc.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	res, err := expertExchange(tc, addr, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("transport: %s: %w", addr, ctx.Err())
		}
		return nil, err
	}
	if !stop() {
		return nil, fmt.Errorf("transport: %s: %w", addr, ctx.Err())
	}
	tc.SetDeadline(time.Time{})
	return newConn(tc, res, "", "direct "+addr, nil), nil
}

// expertExchange sends the hello and runs CPace as the initiator. It returns
// the verified result once the novice's verdict is "ok".
func expertExchange(tc *tls.Conn, addr string, cfg *DialConfig) (*pake.Result, error) {
	fail := func(kind error, cause error) error {
		if kind == nil {
			kind = classifyStreamError(cause)
		}
		return &HandshakeError{Kind: kind, Addr: addr, AttemptsLeft: -1, Cause: cause}
	}
	hb, err := hello{Version: ProtocolVersion, InvitationID: cfg.InvitationID, Name: cfg.Name}.Marshal()
	if err != nil {
		return nil, fmt.Errorf("transport: hello: %w", err)
	}
	if err := pake.WriteMessage(tc, kindHello, hb); err != nil {
		return nil, fail(nil, err)
	}

	kind, payload, err := pake.ReadMessage(tc, maxNoviceReply)
	if err != nil {
		return nil, fail(nil, err)
	}
	switch kind {
	case kindRefusal:
		r, err := parseRefusal(payload)
		if err != nil {
			return nil, fail(ErrNotAssist, err)
		}
		return nil, refusalError(addr, r)
	case kindShare:
	default:
		return nil, fail(ErrNotAssist, fmt.Errorf("unexpected message kind 0x%02x in reply to hello", kind))
	}

	bind, err := bindingContext(tc)
	if err != nil {
		return nil, err
	}
	ex, err := pake.New(pake.Config{
		Password:  []byte(cfg.Password),
		Context:   bind,
		SessionID: []byte(cfg.InvitationID),
		Role:      pake.Initiator,
	})
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	res, err := ex.Finish(payload)
	if err != nil {
		// A novice that sends a malformed share is broken or not a novice.
		// It has not seen our share, so this costs no attempt.
		return nil, fail(ErrNotAssist, err)
	}
	if err := pake.WriteMessage(tc, kindShare, ex.Message()); err != nil {
		return nil, fail(nil, err)
	}

	kind, payload, err = pake.ReadMessage(tc, pake.ConfirmationSize)
	if err != nil {
		return nil, fail(nil, err)
	}
	switch kind {
	case kindConfirm:
	case kindVerdict:
		// The novice judged early (it could not use our share).
		v, err := parseVerdict(payload)
		if err != nil {
			return nil, fail(ErrNotAssist, err)
		}
		return nil, verdictError(addr, v, nil)
	default:
		return nil, fail(ErrNotAssist, fmt.Errorf("unexpected message kind 0x%02x instead of a confirmation", kind))
	}
	if verr := res.Verify(payload); verr != nil {
		// Tell the novice at once, so it counts the attempt and answers with
		// the attempts left instead of waiting for its deadline.
		if err := pake.WriteMessage(tc, kindFailed, nil); err != nil {
			return nil, &HandshakeError{Kind: ErrWrongPassword, Addr: addr, AttemptsLeft: -1, Cause: verr}
		}
		v, err := readVerdict(tc)
		if err != nil || v.code == verdictOK || v.code == verdictBusy {
			// No usable verdict: the password was still wrong.
			return nil, &HandshakeError{Kind: ErrWrongPassword, Addr: addr, AttemptsLeft: -1, Cause: verr}
		}
		return nil, verdictError(addr, v, verr)
	}
	if err := pake.WriteMessage(tc, kindConfirm, res.Confirmation()); err != nil {
		return nil, fail(nil, err)
	}
	v, err := readVerdict(tc)
	if err != nil {
		return nil, fail(nil, err)
	}
	if v.code != verdictOK {
		return nil, verdictError(addr, v, nil)
	}
	return res, nil
}

// readVerdict reads the novice's verdict frame.
func readVerdict(tc *tls.Conn) (verdict, error) {
	kind, payload, err := pake.ReadMessage(tc, verdictLen)
	if err != nil {
		return verdict{}, err
	}
	if kind != kindVerdict {
		return verdict{}, fmt.Errorf("%w: kind 0x%02x instead of a verdict", errMalformed, kind)
	}
	return parseVerdict(payload)
}

// verdictError maps a verdict other than ok to the expert's error.
func verdictError(addr string, v verdict, cause error) error {
	switch v.code {
	case verdictBusy:
		return &HandshakeError{Kind: ErrBusy, Addr: addr, AttemptsLeft: -1, Cause: cause}
	case verdictVoid:
		return &HandshakeError{Kind: ErrWrongPassword, Addr: addr, AttemptsLeft: 0, Cause: cause}
	case verdictWrongPassword:
		return &HandshakeError{Kind: ErrWrongPassword, Addr: addr, AttemptsLeft: v.attemptsLeft, Cause: cause}
	}
	return &HandshakeError{Kind: ErrNotAssist, Addr: addr, AttemptsLeft: -1, Cause: fmt.Errorf("unexpected verdict %d", v.code)}
}

// classifyStreamError maps an error reading or writing handshake frames:
// the network failing, or the peer sending something that is not ours.
func classifyStreamError(err error) error {
	if errors.Is(err, pake.ErrFrameTooLarge) || errors.Is(err, errMalformed) || !isNetworkError(err) {
		return ErrNotAssist
	}
	return ErrUnreachable
}
