package transport

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/assist-project/assist/pake"
)

// Outcomes of an attempt, as logged by the Listener (key "outcome").
const (
	outcomeAuthenticated = "authenticated"
	outcomeWrongPassword = "wrong_password"
	// outcomeAbandoned: the peer went away or timed out after it had our
	// confirmation; it counts as a failure.
	outcomeAbandoned = "abandoned_after_confirmation"
	outcomeBadShare  = "bad_share"
	outcomeExpired   = "refused_expired"
	outcomeVoid      = "refused_void"
	outcomeBusy      = "refused_busy"
	outcomeUnknown   = "refused_unknown_invitation"
	outcomeVersion   = "refused_version"
	outcomeDenied    = "refused_novice_said_no"
	outcomeClosed    = "refused_closed_by_novice"
	outcomeNotAssist = "not_assist"
	outcomeNetwork   = "network_error"
	outcomeInternal  = "internal_error"
)

// serve runs one handshake on a freshly accepted connection and, if it
// authenticates, queues the connection for Accept.
func (l *Listener) serve(raw net.Conn) {
	remote := raw.RemoteAddr().String()
	// Close unblocks every read and write of a handshake; the deadline bounds
	// the whole handshake, so a peer that stalls only ever holds its own
	// goroutine, and only for HandshakeTimeout.
	stop := context.AfterFunc(l.ctx, func() { raw.Close() })
	defer stop()
	deadline := time.Now().Add(l.cfg.HandshakeTimeout)
	raw.SetDeadline(time.Now().Add(min(l.cfg.StartTimeout, l.cfg.HandshakeTimeout)))
	tc := tls.Server(raw, l.tlsCfg)
	c := l.handshake(tc, remote, deadline)
	if c == nil {
		tc.Close()
		return
	}
	if !stop() {
		// Close raced with the end of the handshake and closed raw.
		c.Close()
		return
	}
	tc.SetDeadline(time.Time{})
	select {
	case l.ready <- c:
	default:
		// Unreachable: a ready connection holds the invitation, so no
		// second one can authenticate behind it. Never block, though.
		c.Close()
	}
}

// handshake authenticates the expert on tc, or logs why not and returns nil.
// Until the expert's share it runs under StartTimeout, then until deadline.
func (l *Listener) handshake(tc *tls.Conn, remote string, deadline time.Time) *Conn {
	if err := tc.Handshake(); err != nil {
		l.logAttempt(slog.LevelInfo, remote, classifyPeerError(err), "stage", "tls", "err", err)
		return nil
	}
	if tc.ConnectionState().NegotiatedProtocol != alpnProtocol {
		l.logAttempt(slog.LevelInfo, remote, outcomeNotAssist, "stage", "tls", "err", errNoALPN)
		return nil
	}
	kind, payload, err := pake.ReadMessage(tc, maxHello)
	if err != nil {
		l.logAttempt(slog.LevelInfo, remote, classifyPeerError(err), "stage", "hello", "err", err)
		return nil
	}
	if kind != kindHello {
		l.logAttempt(slog.LevelInfo, remote, outcomeNotAssist, "stage", "hello", "kind", kind)
		return nil
	}
	h, err := parseHello(payload)
	switch {
	case errors.Is(err, errUnsupportedVersion):
		l.refuse(tc, remote, refuseVersion, outcomeVersion,
			fmt.Sprintf("this computer speaks Assist handshake version %d, not %d", ProtocolVersion, h.Version))
		return nil
	case err != nil:
		l.refuse(tc, remote, refuseVersion, outcomeVersion, "this computer could not read the hello (version mismatch?)")
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(h.InvitationID), []byte(l.cfg.InvitationID)) != 1 {
		l.refuse(tc, remote, refuseUnknown, outcomeUnknown, "this computer is not serving that invitation")
		return nil
	}
	a, left := l.reserve()
	if r := l.refusedByNovice(a, left); r != nil {
		code, outcome := refuseDenied, outcomeDenied
		if a == deniedClosed {
			code, outcome = refuseClosed, outcomeClosed
		}
		l.refuse(tc, remote, code, outcome, r.Message)
		return nil
	}
	switch a {
	case deniedExpired:
		l.refuse(tc, remote, refuseExpired, outcomeExpired,
			"the invitation expired at "+l.cfg.Expires.UTC().Format(time.RFC3339))
		return nil
	case deniedVoid:
		l.refuse(tc, remote, refuseVoid, outcomeVoid, "too many wrong passwords were tried on this invitation")
		return nil
	case deniedBusy:
		l.refuse(tc, remote, refuseBusy, outcomeBusy, "another expert is connected or connecting")
		return nil
	}
	return l.authenticate(tc, remote, h, deadline)
}

// authenticate runs the PAKE for an attempt reserve admitted, and settles
// the attempt: release, fail or succeed, exactly once.
func (l *Listener) authenticate(tc *tls.Conn, remote string, h hello, deadline time.Time) *Conn {
	bind, err := bindingContext(tc)
	if err != nil {
		l.release()
		l.logAttempt(slog.LevelError, remote, outcomeInternal, "stage", "pake", "err", err)
		return nil
	}
	ex, err := pake.New(pake.Config{
		Password:  []byte(l.cfg.Password),
		Context:   bind,
		SessionID: []byte(h.InvitationID),
		Role:      pake.Responder,
	})
	if err != nil {
		l.release()
		l.logAttempt(slog.LevelError, remote, outcomeInternal, "stage", "pake", "err", err)
		return nil
	}
	// Until the peer has our confirmation it has learnt nothing about the
	// password (a CPace share is uniformly random to anyone who does not
	// know it), so a connection lost here does not count.
	if err := pake.WriteMessage(tc, kindShare, ex.Message()); err != nil {
		l.release()
		l.logAttempt(slog.LevelInfo, remote, outcomeNetwork, "stage", "share", "err", err)
		return nil
	}
	kind, share, err := pake.ReadMessage(tc, pake.MessageSize)
	if err != nil {
		l.release()
		l.logAttempt(slog.LevelInfo, remote, classifyPeerError(err), "stage", "share", "err", err)
		return nil
	}
	if kind != kindShare {
		l.release()
		l.logAttempt(slog.LevelInfo, remote, outcomeNotAssist, "stage", "share", "kind", kind)
		return nil
	}
	// The PAKE has started: the rest has the whole handshake's time.
	tc.SetDeadline(deadline)
	res, err := ex.Finish(share)
	if err != nil {
		// Not a guess, but only a broken or hostile peer sends it: count it,
		// as package pake advises.
		left := l.fail()
		l.sendVerdict(tc, verdictFor(left), left)
		l.logAttempt(slog.LevelWarn, remote, outcomeBadShare, "err", err)
		return nil
	}
	// From here on the attempt counts unless the expert proves it knows the
	// password: our confirmation lets its sender test one guess.
	if err := pake.WriteMessage(tc, kindConfirm, res.Confirmation()); err != nil {
		left := l.fail()
		l.logAttempt(slog.LevelWarn, remote, outcomeAbandoned, "stage", "confirm", "err", err, "attempts_left", left)
		return nil
	}
	kind, tag, err := pake.ReadMessage(tc, pake.ConfirmationSize)
	if err != nil {
		left := l.fail()
		l.logAttempt(slog.LevelWarn, remote, outcomeAbandoned, "stage", "confirm", "err", err, "attempts_left", left)
		return nil
	}
	if kind != kindConfirm {
		// kindFailed: the expert could not verify our confirmation. Any
		// other kind is a broken peer; same treatment.
		left := l.fail()
		l.sendVerdict(tc, verdictFor(left), left)
		l.logAttempt(slog.LevelWarn, remote, outcomeWrongPassword, "expert_reported_failure", kind == kindFailed, "attempts_left", left)
		return nil
	}
	if err := res.Verify(tag); err != nil {
		left := l.fail()
		l.sendVerdict(tc, verdictFor(left), left)
		l.logAttempt(slog.LevelWarn, remote, outcomeWrongPassword, "attempts_left", left)
		return nil
	}

	c := newConn(tc, res, h.Name, "direct "+remote, nil)
	c.onClose = func() { l.vacate(c) }
	if !l.succeed(c) {
		l.sendVerdict(tc, verdictBusy, 0)
		l.logAttempt(slog.LevelInfo, remote, outcomeBusy, "stage", "verdict")
		return nil
	}
	if err := pake.WriteMessage(tc, kindVerdict, verdict{code: verdictOK, attemptsLeft: l.AttemptsLeft()}.marshal()); err != nil {
		l.vacate(c)
		l.logAttempt(slog.LevelInfo, remote, outcomeNetwork, "stage", "verdict", "err", err)
		return nil
	}
	l.logAttempt(slog.LevelInfo, remote, outcomeAuthenticated, "expert", h.Name)
	return c
}

// verdictFor is the verdict of a failed attempt that left left attempts.
func verdictFor(left int) verdictCode {
	if left == 0 {
		return verdictVoid
	}
	return verdictWrongPassword
}

// sendVerdict tells the expert how its attempt ended. It is best effort: the
// attempt is settled whether or not the expert hears about it.
func (l *Listener) sendVerdict(tc *tls.Conn, code verdictCode, left int) {
	_ = pake.WriteMessage(tc, kindVerdict, verdict{code: code, attemptsLeft: left}.marshal())
}

// refuse sends a refusal and logs it.
func (l *Listener) refuse(tc *tls.Conn, remote string, code refusalCode, outcome, message string) {
	err := pake.WriteMessage(tc, kindRefusal, refusal{code: code, message: message}.marshal())
	args := []any{"reason", message}
	if err != nil {
		args = append(args, "err", err)
	}
	l.logAttempt(slog.LevelInfo, remote, outcome, args...)
}

// logAttempt writes the one log line of an attempt. Callers pass only
// public facts: never the password, a share, a confirmation or a key.
func (l *Listener) logAttempt(level slog.Level, remote, outcome string, args ...any) {
	hasLeft := false
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "attempts_left" {
			hasLeft = true
		}
	}
	attrs := append([]any{"remote", remote, "outcome", outcome}, args...)
	if !hasLeft {
		attrs = append(attrs, "attempts_left", l.AttemptsLeft())
	}
	l.log.Log(context.Background(), level, "transport: handshake attempt", attrs...)
}

// classifyPeerError names the outcome of a handshake that broke on err.
func classifyPeerError(err error) string {
	if isNetworkError(err) {
		return outcomeNetwork
	}
	return outcomeNotAssist
}
