package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/assist-project/assist/transport/internal/handshake"
)

// Errors Dial returns, to test with errors.Is. Each says what to do next, so
// a command-line tool can print it as is. Dial wraps them in a
// *HandshakeError that carries the details (the address, attempts left, the
// novice's own words).
var (
	// ErrWrongPassword: the novice did not accept the password (or a machine
	// in the middle tampered with the connection, which looks the same).
	ErrWrongPassword = errors.New("wrong password: check it with the person who sent the invitation, then try again")
	// ErrExpired: the invitation's time is up.
	ErrExpired = errors.New("the invitation has expired: ask for a new invitation")
	// ErrVoid: the invitation saw too many wrong passwords and no longer
	// accepts any.
	ErrVoid = errors.New("the invitation is void after too many wrong passwords: ask for a new invitation")
	// ErrBusy: another expert is connected (or authenticating) on this
	// invitation.
	ErrBusy = errors.New("another expert is connected to this invitation: try again when they have left")
	// ErrDenied: the novice said no to an expert a moment ago, and the
	// invitation turns every expert away for a while (ListenerConfig.
	// DenyCooldown). It costs no attempt. The novice's message
	// (HandshakeError.PeerMessage, or CoolingDownError) says how long.
	ErrDenied = errors.New("the person you are helping said no: you can ask again in a few minutes")
	// ErrClosed: the novice said no too many times (ListenerConfig.
	// MaxDenials); the invitation accepts nobody any more.
	ErrClosed = errors.New("the person you are helping said no too many times, so the invitation is closed: ask them for a new invitation if they still want help")
	// ErrUnknownInvitation: the address answered with Assist, but it is not
	// serving this invitation (an old address, or another novice).
	ErrUnknownInvitation = errors.New("the computer at this address is not serving this invitation: check the invitation, or ask for a new one")
	// ErrVersion: the two ends speak different versions of the handshake.
	ErrVersion = errors.New("the novice runs an incompatible version of Assist: update Assist on both computers")
	// ErrUnreachable: no address of the invitation answered in time.
	ErrUnreachable = errors.New("no address of the invitation answered: check that the novice is still waiting for you and that no firewall blocks the connection, or use the rendezvous server")
	// ErrNotAssist: something answered but does not speak this protocol.
	ErrNotAssist = errors.New("the address answered but is not an Assist invitation: check the invitation's address and port")
)

// HandshakeError is the error Dial returns when it could not authenticate.
// errors.Is matches both Kind and Cause.
type HandshakeError struct {
	// Kind is one of the Err* values of this package.
	Kind error
	// Addr is the address that gave this answer ("" when no address did,
	// as with ErrUnreachable).
	Addr string
	// AttemptsLeft is, for ErrWrongPassword, how many more wrong passwords
	// the invitation accepts before it is void; -1 when the novice did not
	// say.
	AttemptsLeft int
	// PeerMessage is the novice's explanation of a refusal, as it sent it.
	// It is validated UTF-8 without control characters, but it comes from
	// an unauthenticated peer: show it as the novice's words, not ours.
	PeerMessage string
	// Cause is the underlying error, if any.
	Cause error
}

func (e *HandshakeError) Error() string {
	var b strings.Builder
	b.WriteString("transport: ")
	if e.Addr != "" {
		b.WriteString(e.Addr)
		b.WriteString(": ")
	}
	switch {
	case e.Kind == nil:
		b.WriteString("handshake failed")
	case e.Kind == ErrUnreachable && e.Addr != "":
		// One address of several: the cause says it all, and the advice
		// belongs to the error that sums up every address.
		b.WriteString("unreachable")
	default:
		b.WriteString(e.Kind.Error())
	}
	if errors.Is(e.Kind, ErrWrongPassword) {
		if e.AttemptsLeft >= 0 {
			b.WriteString(handshake.AttemptsNote(e.AttemptsLeft))
		}
	}
	if e.PeerMessage != "" {
		fmt.Fprintf(&b, " (the novice says: %q)", e.PeerMessage)
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	return b.String()
}

// Unwrap makes errors.Is see both the kind and the cause.
func (e *HandshakeError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}

// definitive reports whether an error from one address is the novice's
// answer about this invitation, the same whichever address we reach it by,
// so Dial should stop and return it. Not definitive: network failures,
// something that is not Assist, or an Assist that serves another invitation
// (an old LAN address may now belong to someone else).
func definitive(err error) bool {
	for _, k := range []error{ErrWrongPassword, ErrExpired, ErrVoid, ErrBusy, ErrVersion, ErrDenied, ErrClosed} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// isNetworkError reports whether err is the network failing (refused, reset,
// closed, timed out) rather than the peer saying something we do not
// understand.
func isNetworkError(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		return false
	}
	// crypto/tls reports TLS alerts as *net.OpError too: those are the peer
	// (or we) rejecting the protocol, not the network failing.
	return opErr.Op != "remote error" && opErr.Op != "local error"
}

// refusalError maps a novice's refusal to the expert's error.
func refusalError(addr string, r refusal) *HandshakeError {
	e := &HandshakeError{Addr: addr, AttemptsLeft: -1, PeerMessage: r.message}
	switch r.code {
	case refuseExpired:
		e.Kind = ErrExpired
	case refuseVoid:
		e.Kind = ErrVoid
	case refuseBusy:
		e.Kind = ErrBusy
	case refuseUnknown:
		e.Kind = ErrUnknownInvitation
	case refuseDenied:
		e.Kind = ErrDenied
	case refuseClosed:
		e.Kind = ErrClosed
	default:
		// refuseVersion, or a code from a newer novice we cannot read.
		e.Kind = ErrVersion
	}
	return e
}

// DeniedPrefix starts every refusal of an expert while the invitation
// cools down after a no (DeniedMessage): the expert's tools recognise it
// in a rendezvous server's "bye" reason, which is free text.
const DeniedPrefix = "The person you are helping said no."

// DeniedMessage is what an expert is told while the invitation cools down
// after the novice said no, with left to go.
func DeniedMessage(left time.Duration) string {
	return DeniedPrefix + " You can ask again in about " + roughly(left) + "."
}

// ClosedMessage is what an expert is told once the novice's noes (n of
// them) closed the invitation.
func ClosedMessage(n int) string {
	times := fmt.Sprintf("%d times", n)
	switch n {
	case 1:
		times = "once"
	case 2:
		times = "twice"
	case 3:
		times = "three times"
	}
	return "The person you are helping said no " + times + ", so this invitation is closed. Ask them for a new one if they still want help."
}

// roughly says d in words, rounded up: "2 minutes", "1 minute", "30 seconds".
func roughly(d time.Duration) string {
	n, unit := max(int64((d+time.Second-1)/time.Second), 1), "second"
	if n >= 60 {
		n, unit = (n+59)/60, "minute"
	}
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// RefusedError is a refusal in words for the expert (DeniedMessage,
// ClosedMessage): errors.Is matches its Kind, ErrDenied or ErrClosed. A
// caller that relays refusals as text (the rendezvous path's "bye") sends
// Message.
type RefusedError struct {
	Kind    error
	Message string
}

func (e *RefusedError) Error() string { return e.Message }

// Unwrap returns Kind.
func (e *RefusedError) Unwrap() error { return e.Kind }
