package rendezvous

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/transport"
	"github.com/assist-project/assist/transport/rtc"
)

// The race of `assist join FILE`: the invitation's direct addresses and
// the rendezvous server are tried at once, and the first path to
// authenticate wins. Every path runs its own PAKE, and every PAKE is one of
// the invitation's few password attempts, so the paths take turns for that
// step (authTurn): connection set-up (TCP and TLS; signalling, ICE, DTLS and
// the data channel) runs concurrently, the password attempts one at a time.
// A wrong password therefore costs one attempt, not one per path.

// AuthHook is transport.DialConfig.BeforeAuth and rtc.Config.BeforeAuth:
// a path calls it just before its PAKE, and calls done with the outcome.
type AuthHook = func(ctx context.Context) (done func(err error), err error)

// ErrOtherPath is what a path waiting for the turn gets once another
// path's attempt settled the join.
var ErrOtherPath = errors.New("another path settled the password attempt first")

// authTurn lets the paths of one join run their password attempts one at
// a time. A path takes the turn just before its PAKE (take is an
// AuthHook) and reports the outcome with done. An authenticated path, or a
// password the novice refused, settles the join: every other path, waiting
// or still connecting, is then refused the turn. Any other failure (the
// network, a peer that is not this invitation's novice) hands the turn on.
type authTurn struct {
	// slot holds a token while a path runs its PAKE.
	slot chan struct{}
	// over is closed when the join is settled; only the path holding
	// slot closes it, before it frees slot.
	over chan struct{}
	once sync.Once
}

func newAuthTurn() *authTurn {
	return &authTurn{slot: make(chan struct{}, 1), over: make(chan struct{})}
}

// take waits for the turn. It fails with ErrOtherPath once the join is
// settled, or with ctx's error. On success the caller runs its PAKE and
// calls done once with the outcome (nil: authenticated); later calls of
// done do nothing.
func (t *authTurn) take(ctx context.Context) (done func(err error), err error) {
	if t.settled() {
		return nil, ErrOtherPath
	}
	select {
	case t.slot <- struct{}{}:
	case <-t.over:
		return nil, ErrOtherPath
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// The previous holder may have settled the join just before it freed
	// the slot, and select picks among ready cases at random.
	if t.settled() {
		<-t.slot
		return nil, ErrOtherPath
	}
	var once sync.Once
	return func(err error) {
		once.Do(func() {
			if err == nil || settles(err) {
				t.once.Do(func() { close(t.over) })
			}
			<-t.slot
		})
	}, nil
}

// settled reports whether a path authenticated or the password was refused.
func (t *authTurn) settled() bool {
	select {
	case <-t.over:
		return true
	default:
		return false
	}
}

// settles reports whether a failed attempt ends the join whichever path it
// came by: a password the novice refused (trying it on another path would
// spend another of the invitation's attempts on the same mistake), or an
// invitation that takes no attempt any more.
func settles(err error) bool {
	for _, kind := range []error{transport.ErrWrongPassword, rtc.ErrWrongPassword, transport.ErrVoid, transport.ErrExpired, transport.ErrDenied, transport.ErrClosed} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// Path is one way to the novice.
type Path struct {
	// Name is the path's name in log lines: "direct" or "server".
	Name string
	// What names the path in errors: "the invitation's addresses".
	What string
	// Dial sets up and authenticates the connection; it must call
	// beforeAuth before its PAKE (as transport.DialConfig.BeforeAuth or
	// rtc.Config.BeforeAuth), and return when ctx ends.
	Dial func(ctx context.Context, beforeAuth AuthHook) (*Joined, error)
}

// Joined is an authenticated connection to the novice.
type Joined struct {
	Conn net.Conn
	// Via ends the "connected to NAME via ..." line.
	Via string
	// Path is the "path:" line's: direct, punched, relay-udp...
	Path string
	// End ends the pairing at the rendezvous server (nil for a direct
	// connection); call it when the session is over.
	End func()
	// Paths delivers the path after each ICE restart or change of
	// pair (nil for a direct connection).
	Paths <-chan rtc.PathChange
}

// Close closes the connection and ends the pairing, if any.
func (j *Joined) Close() {
	j.Conn.Close()
	if j.End != nil {
		j.End()
	}
}

// Race runs every path at once and returns the first to
// authenticate, after stopping the others and waiting for them. A refused
// password, from whichever path, ends the race with that error; when every
// path fails otherwise, the error says how each failed.
//
// No path gets a head start: measured on one machine, the direct path is
// ready for its PAKE after 2-6 ms and the server path after 20-30 ms; in the
// network lab, a direct path through a mapped port after 50-60 ms and the
// server path after 200 ms or more. A LAN only widens that gap.
func Race(ctx context.Context, log *slog.Logger, paths []Path) (*Joined, error) {
	if len(paths) == 0 {
		return nil, errors.New("the invitation names neither an address nor a rendezvous server: ask for a new invitation")
	}
	turn := newAuthTurn()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type outcome struct {
		i   int
		j   *Joined
		err error
	}
	// Buffered for every path, so no path's goroutine outlives the race
	// waiting to hand its outcome over.
	out := make(chan outcome, len(paths))
	start := time.Now()
	for i, p := range paths {
		go func() {
			log.Debug("join: trying a path", "path", p.Name)
			hook := func(ctx context.Context) (func(error), error) {
				// For the audit of a race, and to measure which path is
				// ready first.
				log.Info("join: path ready to authenticate", "path", p.Name, "after", time.Since(start).Round(time.Millisecond))
				return turn.take(ctx)
			}
			j, err := p.Dial(rctx, hook)
			out <- outcome{i: i, j: j, err: err}
		}()
	}

	var (
		won     *Joined
		refused error
		errs    = make([]error, len(paths))
	)
	for range paths {
		o := <-out
		name := paths[o.i].Name
		switch {
		case o.err == nil && won == nil && refused == nil:
			won = o.j
			log.Info("join: path authenticated", "path", name, "after", time.Since(start).Round(time.Millisecond))
			cancel()
		case o.err == nil:
			// Cannot happen, as the turn lets one path authenticate;
			// never keep two connections, though.
			o.j.Close()
		default:
			errs[o.i] = o.err
			if won != nil || refused != nil || errors.Is(o.err, ErrOtherPath) {
				// Stopped by the race, whatever it says.
				log.Info("join: path stopped", "path", name, "err", o.err)
				continue
			}
			log.Info("join: path failed", "path", name, "err", o.err)
			if refused == nil && won == nil && settles(o.err) {
				refused = o.err
				cancel()
			}
		}
	}
	switch {
	case won != nil:
		return won, nil
	case refused != nil:
		return nil, refused
	case ctx.Err() != nil:
		return nil, ctx.Err()
	}
	return nil, raceError(paths, errs)
}

// raceError sums up the failures of every path. A direct path that found
// no address answering says nothing the other paths' failures do not, so
// it is left out when there are others.
func raceError(paths []Path, errs []error) error {
	var kept []pathError
	for i, err := range errs {
		if errors.Is(err, transport.ErrUnreachable) && len(errs) > 1 {
			continue
		}
		kept = append(kept, pathError{what: paths[i].What, err: err})
	}
	switch len(kept) {
	case 0:
		// Every path was a direct one that found no address.
		return errs[0]
	case 1:
		return kept[0].err
	}
	return raceErrors(kept)
}

// pathError is how one path failed.
type pathError struct {
	what string
	err  error
}

// raceErrors is how several paths failed.
type raceErrors []pathError

func (e raceErrors) Error() string {
	msgs := make([]string, len(e))
	for i, pe := range e {
		msgs[i] = pe.what + ": " + pe.err.Error()
	}
	return "no way to the novice worked: " + strings.Join(msgs, "; ")
}

func (e raceErrors) Unwrap() []error {
	errs := make([]error, len(e))
	for i, pe := range e {
		errs[i] = pe.err
	}
	return errs
}
