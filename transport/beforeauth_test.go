package transport

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// hookRecorder is a DialConfig.BeforeAuth that records its calls and the
// outcomes reported to done.
type hookRecorder struct {
	refuse error // returned instead of a turn, when set

	mu       sync.Mutex
	calls    int
	outcomes []error
	holding  bool // between a granted turn and its done
	overlaps int  // calls while a turn was held
}

func (h *hookRecorder) hook(ctx context.Context) (func(error), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.holding {
		h.overlaps++
	}
	if h.refuse != nil {
		return nil, h.refuse
	}
	h.holding = true
	return func(err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.holding = false
		h.outcomes = append(h.outcomes, err)
	}, nil
}

func TestBeforeAuth(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{})
	addr := l.Addr().String()

	t.Run("wrong password", func(t *testing.T) {
		var h hookRecorder
		cfg := dialConfig("harbor-lantern-43")
		cfg.BeforeAuth = h.hook
		_, err := Dial(t.Context(), []string{addr}, cfg)
		wantHandshakeError(t, err, ErrWrongPassword)
		if h.calls != 1 || len(h.outcomes) != 1 || !errors.Is(h.outcomes[0], ErrWrongPassword) {
			t.Errorf("hook called %d times, outcomes %v; want once, wrong password", h.calls, h.outcomes)
		}
	})

	t.Run("refused turn", func(t *testing.T) {
		refusal := errors.New("another path settled it")
		h := hookRecorder{refuse: refusal}
		cfg := dialConfig(testPassword)
		cfg.BeforeAuth = h.hook
		left := l.AttemptsLeft()
		_, err := Dial(t.Context(), []string{addr}, cfg)
		if !errors.Is(err, refusal) {
			t.Errorf("Dial: %v, want the hook's error", err)
		}
		if len(h.outcomes) != 0 {
			t.Errorf("done called after a refused turn: %v", h.outcomes)
		}
		if got := l.AttemptsLeft(); got != left {
			t.Errorf("a refused turn cost an attempt: %d left, want %d", got, left)
		}
	})

	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cfg := dialConfig(testPassword)
		cfg.BeforeAuth = func(ctx context.Context) (func(error), error) {
			cancel()
			<-ctx.Done()
			return nil, ctx.Err()
		}
		if _, err := Dial(ctx, []string{addr}, cfg); !errors.Is(err, context.Canceled) {
			t.Errorf("Dial: %v, want context.Canceled", err)
		}
	})

	t.Run("one turn per connection, none at once", func(t *testing.T) {
		// Three routes whose TLS completes together: one PAKE, with the
		// turn, and spares that are never authenticated.
		var h hookRecorder
		accepted := acceptAsync(t, l)
		cfg := dialConfig(testPassword)
		cfg.BeforeAuth = h.hook
		mustDial(t, gatedRoutes(t, addr, 3), cfg)
		if r := <-accepted; r.err != nil {
			t.Fatal(r.err)
		}
		if h.calls != 1 || h.overlaps != 0 || len(h.outcomes) != 1 || h.outcomes[0] != nil {
			t.Errorf("hook called %d times (%d overlapping), outcomes %v; want once, authenticated", h.calls, h.overlaps, h.outcomes)
		}
	})

	t.Run("handed on after a network failure", func(t *testing.T) {
		// The first address hangs up after the hello; Dial reports that
		// to done and asks again for the next address.
		// The novice's route is held until then, so the order is sure.
		var h hookRecorder
		gate := make(chan struct{})
		var once sync.Once
		accepted := acceptAsync(t, l)
		cfg := dialConfig(testPassword)
		cfg.BeforeAuth = func(ctx context.Context) (func(error), error) {
			done, err := h.hook(ctx)
			if err != nil {
				return nil, err
			}
			return func(err error) { done(err); once.Do(func() { close(gate) }) }, nil
		}
		mustDial(t, []string{hangUpAfterHello(t), forwarder(t, addr, gate, nil)}, cfg)
		if r := <-accepted; r.err != nil {
			t.Fatal(r.err)
		}
		if h.calls != 2 || len(h.outcomes) != 2 || !errors.Is(h.outcomes[0], ErrUnreachable) || h.outcomes[1] != nil {
			t.Errorf("hook called %d times, outcomes %v; want twice, unreachable then authenticated", h.calls, h.outcomes)
		}
	})
}
