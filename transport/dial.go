package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// stagger is how long Dial waits before starting each next address, in the
// invitation's order (RFC 8305 suggests 50 to 250 ms between attempts): the
// invitation lists its best address first, and a short head start lets it
// win without costing the others much when it is dead.
const stagger = 50 * time.Millisecond

// DialConfig is what the expert knows of an invitation, plus its own name.
type DialConfig struct {
	// InvitationID is the invitation's public ID.
	InvitationID string
	// Password is the invitation password, exactly as the novice's side
	// holds it. It is never sent and never logged.
	Password string
	// Name is the expert's display name, shown to the novice (at most
	// MaxName bytes of UTF-8, no control characters).
	Name string
	// Logger receives one line per address tried; nil discards them.
	Logger *slog.Logger
	// PerAddressTimeout bounds TCP connect plus TLS handshake on one address
	// (default DefaultPerAddressTimeout).
	PerAddressTimeout time.Duration
	// HandshakeTimeout bounds the PAKE on one connection (default
	// DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// BeforeAuth, if set, is called on a connection whose TLS handshake is
	// complete, just before the hello that starts its password attempt,
	// so that a caller racing several ways to the novice can let one
	// attempt run at a time. It may block until ctx (Dial's) ends. If it
	// returns an error, Dial closes the connection and returns at once
	// with an error that wraps it. Otherwise Dial calls done exactly once with the attempt's
	// outcome: nil when it authenticated, else the error (a
	// *HandshakeError, or ctx's) before Dial moves on to another address.
	BeforeAuth func(ctx context.Context) (done func(err error), err error)
}

// tlsAttempt is the outcome of TCP and TLS to one address.
type tlsAttempt struct {
	addr string
	conn *tls.Conn
	err  error
}

// Dial connects to the novice at one of addrs and authenticates with the
// invitation password.
//
// It races the addresses ("happy eyeballs"): TCP and TLS start on every
// address at once, staggered by 50 ms in the invitation's order. The PAKE,
// however, runs on one connection at a time, the first whose TLS handshake
// completes. Every PAKE run is a password attempt the novice counts: with a
// wrong password, running it on three addresses at once would burn three of
// the invitation's five attempts on a single typo (and the novice would
// answer "busy" to the extra ones anyway). TLS connections that complete
// while a PAKE runs wait, unused, as spares; if the PAKE fails for a network
// reason, or the peer turns out not to be this invitation's novice, Dial
// moves on to the next spare (or waits for the next TLS connection). When one
// authenticates, the others are closed; the novice sees them end before a
// hello, which costs nothing.
//
// A definitive answer from the novice (wrong password, expired, void, busy,
// version) ends Dial at once with that answer: the other addresses lead to
// the same novice. Otherwise, when every address has failed, Dial returns
// the most telling failure: ErrUnknownInvitation, then ErrNotAssist, then
// ErrUnreachable. Errors are *HandshakeError values; test them with
// errors.Is against the Err* variables. If ctx is cancelled Dial returns its
// error; if ctx's deadline passes first, ErrUnreachable wrapping it.
//
// With cfg.BeforeAuth set, every PAKE also waits for the caller's
// permission, so that one password attempt at a time runs across Dial and
// the caller's other ways to the novice.
func Dial(ctx context.Context, addrs []string, cfg DialConfig) (*Conn, error) {
	if len(addrs) == 0 {
		return nil, errors.New("transport: dial: the invitation has no address")
	}
	if err := checkInvitationID(cfg.InvitationID); err != nil {
		return nil, fmt.Errorf("transport: dial: %w", err)
	}
	if cfg.Password == "" {
		return nil, errors.New("transport: dial: empty password")
	}
	if err := checkName(cfg.Name); err != nil {
		return nil, fmt.Errorf("transport: dial: expert %w", err)
	}
	if cfg.PerAddressTimeout <= 0 {
		cfg.PerAddressTimeout = DefaultPerAddressTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "transport")

	ctx, cancel := context.WithCancel(ctx)
	// Buffered for every address, so the connecting goroutines never block
	// and the buffer is the queue of spare connections.
	results := make(chan tlsAttempt, len(addrs))
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		for len(results) > 0 {
			if r := <-results; r.conn != nil {
				r.conn.Close()
			}
		}
	}()
	for i, addr := range addrs {
		wg.Go(func() {
			if i > 0 {
				t := time.NewTimer(time.Duration(i) * stagger)
				defer t.Stop()
				select {
				case <-t.C:
				case <-ctx.Done():
					results <- tlsAttempt{addr: addr, err: ctx.Err()}
					return
				}
			}
			tc, err := dialTLS(ctx, addr, cfg.PerAddressTimeout)
			results <- tlsAttempt{addr: addr, conn: tc, err: err}
		})
	}

	var failures []error
	for range addrs {
		var r tlsAttempt
		select {
		case r = <-results:
		case <-ctx.Done():
			return nil, dialContextError(ctx, failures)
		}
		if r.err != nil {
			log.Debug("transport: address failed", "addr", r.addr, "err", r.err)
			failures = append(failures, r.err)
			continue
		}
		c, err := authenticateOn(ctx, r, &cfg)
		if errors.Is(err, errBeforeAuth) {
			r.conn.Close()
			if ctx.Err() != nil {
				return nil, dialContextError(ctx, failures)
			}
			return nil, err
		}
		if err == nil {
			log.Info("transport: authenticated", "path", c.Path())
			return c, nil
		}
		r.conn.Close()
		log.Info("transport: handshake failed", "addr", r.addr, "err", err)
		if definitive(err) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, dialContextError(ctx, append(failures, err))
		}
		failures = append(failures, err)
	}
	return nil, bestFailure(failures)
}

// errBeforeAuth marks an error of DialConfig.BeforeAuth.
var errBeforeAuth = errors.New("transport: dial: not authenticating")

// authenticateOn runs the handshake on r's connection, inside BeforeAuth's
// turn if there is one.
func authenticateOn(ctx context.Context, r tlsAttempt, cfg *DialConfig) (*Conn, error) {
	if cfg.BeforeAuth == nil {
		return expertHandshake(ctx, r.conn, r.addr, cfg)
	}
	done, err := cfg.BeforeAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBeforeAuth, err)
	}
	c, err := expertHandshake(ctx, r.conn, r.addr, cfg)
	done(err)
	return c, err
}

// dialContextError is Dial's error when its context ends.
func dialContextError(ctx context.Context, failures []error) error {
	err := context.Cause(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return &HandshakeError{Kind: ErrUnreachable, AttemptsLeft: -1, Cause: addrErrors(append(failures, err))}
	}
	return fmt.Errorf("transport: dial: %w", err)
}

// bestFailure picks the error Dial returns when every address failed
// without a definitive answer.
func bestFailure(failures []error) error {
	for _, kind := range []error{ErrUnknownInvitation, ErrNotAssist} {
		for _, err := range failures {
			if errors.Is(err, kind) {
				return err
			}
		}
	}
	return &HandshakeError{Kind: ErrUnreachable, AttemptsLeft: -1, Cause: addrErrors(failures)}
}

// addrErrors is the list of per-address failures, printed on one line.
type addrErrors []error

func (e addrErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e addrErrors) Unwrap() []error { return e }
