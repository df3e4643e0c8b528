package rtc

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestBeforeAuth: the hook runs once the data channel is open and before
// the handshake; done gets the handshake's outcome; a refused turn closes
// the connection before any password is tried, so the novice counts
// nothing.
func TestBeforeAuth(t *testing.T) {
	for _, tc := range []struct {
		name     string
		password string
		refuse   error
		// wantDone is the outcome done must get; nil with refuse set
		// means done must not be called.
		wantDone error
	}{
		{name: "authenticated", password: testPassword},
		{name: "wrong password", password: "not-the-password", wantDone: ErrWrongPassword},
		{name: "refused", password: testPassword, refuse: errors.New("another path settled it")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			es, ns := sigPair()
			ecfg := testConfig(t)
			ecfg.Password = tc.password
			var calls, dones int
			var outcome error
			ecfg.BeforeAuth = func(ctx context.Context) (func(error), error) {
				calls++
				if tc.refuse != nil {
					return nil, tc.refuse
				}
				return func(err error) { dones++; outcome = err }, nil
			}
			e, n := connectPair(t, ctx, es, ns, ecfg, testConfig(t))
			if calls != 1 {
				t.Errorf("BeforeAuth called %d times, want 1", calls)
			}
			switch {
			case tc.refuse != nil:
				if !errors.Is(e.err, tc.refuse) || dones != 0 {
					t.Errorf("Dial: %v (done called %d times), want the hook's error and no done", e.err, dones)
				}
				// The novice saw the channel close before any hello: no
				// password was tried, nothing to count.
				if n.err == nil || errors.Is(n.err, ErrWrongPassword) {
					t.Errorf("Accept: %v, want a failure that is not a wrong password", n.err)
				}
			case tc.wantDone == nil:
				if e.err != nil || n.err != nil || dones != 1 || outcome != nil {
					t.Errorf("Dial: %v, Accept: %v, done %d times with %v; want success, done once with nil", e.err, n.err, dones, outcome)
				}
			default:
				if !errors.Is(e.err, tc.wantDone) || dones != 1 || !errors.Is(outcome, tc.wantDone) {
					t.Errorf("Dial: %v, done %d times with %v; want %v once", e.err, dones, outcome, tc.wantDone)
				}
			}
		})
	}
}
