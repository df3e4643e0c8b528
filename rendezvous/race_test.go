package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/assist-project/assist/transport"
	"github.com/assist-project/assist/transport/rtc"
)

// Outcomes of a PAKE as the two transports report them.
var (
	directWrong   = &transport.HandshakeError{Kind: transport.ErrWrongPassword, AttemptsLeft: 4}
	rtcWrong      = &rtc.HandshakeError{Kind: rtc.ErrWrongPassword, Stage: "pake"}
	directVanish  = &transport.HandshakeError{Kind: transport.ErrUnreachable, AttemptsLeft: -1}
	rtcVanish     = &rtc.HandshakeError{Kind: rtc.ErrUnreachable, Stage: "pake"}
	directUnknown = &transport.HandshakeError{Kind: transport.ErrUnknownInvitation, AttemptsLeft: -1}
)

// takeAsync takes the turn in a goroutine and delivers the outcome.
func takeAsync(ctx context.Context, turn *authTurn) <-chan error {
	ch := make(chan error, 1)
	go func() {
		done, err := turn.take(ctx)
		if done != nil {
			defer done(errors.New("the test's second holder gives the turn back"))
		}
		ch <- err
	}()
	return ch
}

func TestAuthTurn(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		name string
		// outcome is the first holder's PAKE outcome.
		outcome error
		// handsOn: the waiting path gets the turn afterwards; otherwise
		// ErrOtherPath.
		handsOn bool
	}{
		{"authenticated", nil, false},
		{"wrong password, direct", directWrong, false},
		{"wrong password, rtc", rtcWrong, false},
		{"wrong password, wrapped", fmt.Errorf("rendezvous: %w", rtcWrong), false},
		{"void", &transport.HandshakeError{Kind: transport.ErrVoid}, false},
		{"expired", &transport.HandshakeError{Kind: transport.ErrExpired}, false},
		{"peer vanished, direct", directVanish, true},
		{"peer vanished, rtc", rtcVanish, true},
		{"not this invitation", directUnknown, true},
		{"busy", &transport.HandshakeError{Kind: transport.ErrBusy}, true},
		{"cancelled", context.Canceled, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			turn := newAuthTurn()
			done, err := turn.take(context.Background())
			if err != nil {
				t.Fatalf("first take: %v", err)
			}
			waiting := takeAsync(context.Background(), turn)
			done(tc.outcome)
			done(nil) // a second call changes nothing
			err = <-waiting
			switch {
			case tc.handsOn && err != nil:
				t.Errorf("the waiting path got %v, want the turn", err)
			case !tc.handsOn && !errors.Is(err, ErrOtherPath):
				t.Errorf("the waiting path got %v, want ErrOtherPath", err)
			}
			if _, err := turn.take(context.Background()); !tc.handsOn && !errors.Is(err, ErrOtherPath) {
				t.Errorf("a later take got %v, want ErrOtherPath", err)
			}
		})
	}
}

func TestAuthTurnWaitCancelled(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	turn := newAuthTurn()
	done, err := turn.take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiting := takeAsync(ctx, turn)
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Errorf("take with a cancelled context: %v", err)
	}
	done(directVanish)
	// The turn is free again.
	again, err := turn.take(context.Background())
	if err != nil {
		t.Fatalf("take after the holder gave up: %v", err)
	}
	again(nil)
}

// fakePath is a path whose steps the test drives. It counts its PAKEs.
type fakePath struct {
	name string
	// ready, when not nil, holds the path back before its PAKE until
	// closed (its connection set-up).
	ready chan struct{}
	// atTurn is closed when the path got the turn (or was refused it).
	atTurn chan struct{}
	// outcome is its PAKE's; nil authenticates.
	outcome error
	// setupErr fails the path before it reaches the turn.
	setupErr error
	pakes    atomic.Int32
	closed   atomic.Bool
}

func newFakePath(name string, outcome error) *fakePath {
	return &fakePath{name: name, outcome: outcome, atTurn: make(chan struct{})}
}

func (f *fakePath) path() Path {
	return Path{Name: f.name, What: "the " + f.name + " path", Dial: func(ctx context.Context, beforeAuth AuthHook) (*Joined, error) {
		if f.ready != nil {
			select {
			case <-f.ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if f.setupErr != nil {
			return nil, f.setupErr
		}
		done, err := beforeAuth(ctx)
		// Only now: a path the test holds back until this one "holds the
		// turn" must not be able to take it first.
		close(f.atTurn)
		if err != nil {
			return nil, err
		}
		f.pakes.Add(1)
		done(f.outcome)
		if f.outcome != nil {
			return nil, f.outcome
		}
		c1, c2 := net.Pipe()
		c2.Close()
		return &Joined{Conn: c1, Via: f.name, Path: f.name, End: func() { f.closed.Store(true) }}, nil
	}}
}

func TestRacePaths(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	log := slog.New(slog.DiscardHandler)

	t.Run("the first to authenticate wins, the other is stopped", func(t *testing.T) {
		fast, slow := newFakePath("server", nil), newFakePath("direct", nil)
		slow.ready = make(chan struct{}) // never ready: set-up hangs
		j, err := Race(context.Background(), log, []Path{slow.path(), fast.path()})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if j.Path != "server" || slow.pakes.Load() != 0 {
			t.Errorf("won by %q with %d PAKEs on the slow path", j.Path, slow.pakes.Load())
		}
	})

	t.Run("a path waiting for the turn is stopped by the winner", func(t *testing.T) {
		first, second := newFakePath("direct", nil), newFakePath("server", nil)
		second.ready = make(chan struct{})
		// The second path is ready once the first one holds the turn.
		first.ready = make(chan struct{})
		go func() { <-first.atTurn; close(second.ready) }()
		close(first.ready)
		j, err := Race(context.Background(), log, []Path{first.path(), second.path()})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if got := first.pakes.Load() + second.pakes.Load(); got != 1 {
			t.Errorf("%d PAKEs ran, want 1", got)
		}
	})

	for name, wrong := range map[string]error{"direct": directWrong, "rtc": rtcWrong} {
		t.Run("a refused password ends the race, "+name, func(t *testing.T) {
			first, second := newFakePath("direct", wrong), newFakePath("server", nil)
			second.ready = make(chan struct{})
			go func() { <-first.atTurn; close(second.ready) }()
			_, err := Race(context.Background(), log, []Path{first.path(), second.path()})
			if err != wrong {
				t.Errorf("race: %v, want %v", err, wrong)
			}
			if n := second.pakes.Load(); n != 0 {
				t.Errorf("the second path ran %d PAKEs with the refused password", n)
			}
		})
	}

	t.Run("a network failure hands the turn on", func(t *testing.T) {
		first, second := newFakePath("direct", directVanish), newFakePath("server", nil)
		second.ready = make(chan struct{})
		go func() { <-first.atTurn; close(second.ready) }()
		j, err := Race(context.Background(), log, []Path{first.path(), second.path()})
		if err != nil {
			t.Fatal(err)
		}
		j.Close()
		if j.Path != "server" || !second.closed.Load() {
			t.Errorf("won by %q (closed: %v), want the server path", j.Path, second.closed.Load())
		}
	})

	t.Run("the caller cancels", func(t *testing.T) {
		a, b := newFakePath("direct", nil), newFakePath("server", nil)
		a.ready, b.ready = make(chan struct{}), make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Race(ctx, log, []Path{a.path(), b.path()}); !errors.Is(err, context.Canceled) {
			t.Errorf("race: %v, want context.Canceled", err)
		}
	})
}

func TestRaceErrors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	log := slog.New(slog.DiscardHandler)
	serverDown := errors.New("rendezvous server: connection refused")
	for _, tc := range []struct {
		name      string
		direct    error // nil: no direct path
		server    error // nil: no server path
		want      []string
		wantIs    error
		notWanted string
	}{
		{name: "direct only", direct: directUnknown, wantIs: transport.ErrUnknownInvitation, want: []string{"not serving this invitation"}},
		{name: "direct unreachable only", direct: directVanish, wantIs: transport.ErrUnreachable},
		{name: "server only", server: serverDown, wantIs: serverDown},
		{name: "dead addresses and the server down", direct: directVanish, server: serverDown,
			wantIs: serverDown, notWanted: "use the rendezvous server"},
		{name: "both telling", direct: directUnknown, server: serverDown, wantIs: transport.ErrUnknownInvitation,
			want: []string{"no way to the novice worked", "the direct path: ", "the server path: rendezvous server: connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var paths []Path
			for _, p := range []struct {
				name string
				err  error
			}{{"direct", tc.direct}, {"server", tc.server}} {
				if p.err != nil {
					f := newFakePath(p.name, nil)
					f.setupErr = p.err
					paths = append(paths, f.path())
				}
			}
			_, err := Race(context.Background(), log, paths)
			if !errors.Is(err, tc.wantIs) {
				t.Errorf("race: %v, want one that is %v", err, tc.wantIs)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("race: %q lacks %q", err, w)
				}
			}
			if tc.notWanted != "" && strings.Contains(err.Error(), tc.notWanted) {
				t.Errorf("race: %q says %q", err, tc.notWanted)
			}
		})
	}
	if _, err := Race(context.Background(), log, nil); err == nil {
		t.Error("a race of no paths succeeded")
	}
}
