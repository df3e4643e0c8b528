package main

import (
	"errors"

	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/transport/rtc/auth"
)

// Error kinds the page tells apart (Error.kind): it shows each its own
// advice.
const (
	kindBadCode           = "bad-code"
	kindWrongPassword     = "wrong-password"
	kindUnknownInvitation = "unknown-invitation"
	kindVersion           = "version"
	kindNotAssist         = "not-assist"
	kindUnreachable       = "unreachable"
	kindFailed            = "failed"
)

// errorKind names the kind of a connect failure for the page.
func errorKind(err error) string {
	for _, k := range []struct {
		err  error
		kind string
	}{
		{invitation.ErrBadCode, kindBadCode},
		{auth.ErrWrongPassword, kindWrongPassword},
		{auth.ErrUnknownInvitation, kindUnknownInvitation},
		{auth.ErrVersion, kindVersion},
		{auth.ErrNotAssist, kindNotAssist},
		{auth.ErrUnreachable, kindUnreachable},
		{errBadDescription, kindNotAssist},
	} {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return kindFailed
}

// attemptsLeft is how many wrong codes the invitation still takes after
// a wrong one, when the novice said so.
func attemptsLeft(err error) (int, bool) {
	var he *auth.HandshakeError
	if !errors.As(err, &he) || !he.AttemptsKnown || !errors.Is(err, auth.ErrWrongPassword) {
		return 0, false
	}
	return he.AttemptsLeft, true
}
