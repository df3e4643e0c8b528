package transport

import (
	"errors"
	"net"
	"testing"
	"time"
)

func newAttemptListener(t *testing.T, expires time.Time) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(ln, ListenerConfig{InvitationID: "attempts", Password: "pw", Expires: expires, MaxFailures: 3})
	t.Cleanup(func() { l.Close() })
	return l
}

// TestAttempts: attempts from another path share the Listener's failure
// limit and its one-expert-at-a-time rule.
func TestAttempts(t *testing.T) {
	l := newAttemptListener(t, time.Time{})
	a, err := l.ReserveAttempt()
	if err != nil {
		t.Fatal(err)
	}
	if left := a.Fail(); left != 2 {
		t.Errorf("Fail left %d, want 2", left)
	}
	a.Fail() // ended already: no second count
	if got := l.AttemptsLeft(); got != 2 {
		t.Errorf("AttemptsLeft %d after one failure, want 2", got)
	}

	b, _ := l.ReserveAttempt()
	b.Release()
	if got := l.AttemptsLeft(); got != 2 {
		t.Errorf("AttemptsLeft %d after a release, want 2", got)
	}

	c, _ := l.ReserveAttempt()
	if !c.Succeed() {
		t.Fatal("Succeed on a free invitation = false")
	}
	if _, err := l.ReserveAttempt(); !errors.Is(err, ErrBusy) {
		t.Errorf("ReserveAttempt while held: %v, want ErrBusy", err)
	}
	c.Vacate()

	for range 2 {
		a, err := l.ReserveAttempt()
		if err != nil {
			t.Fatal(err)
		}
		a.Fail()
	}
	if !l.Void() {
		t.Error("not void after 3 failures")
	}
	if _, err := l.ReserveAttempt(); !errors.Is(err, ErrVoid) {
		t.Errorf("ReserveAttempt on a void invitation: %v, want ErrVoid", err)
	}
}

// TestAttemptsInFlight: attempts in flight count against the limit, so
// parallel attempts get no more guesses than the limit.
func TestAttemptsInFlight(t *testing.T) {
	l := newAttemptListener(t, time.Time{})
	for range 3 {
		if _, err := l.ReserveAttempt(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.ReserveAttempt(); !errors.Is(err, ErrBusy) {
		t.Errorf("fourth attempt in flight: %v, want ErrBusy", err)
	}
}

func TestAttemptsExpired(t *testing.T) {
	l := newAttemptListener(t, time.Now().Add(-time.Second))
	if _, err := l.ReserveAttempt(); !errors.Is(err, ErrExpired) {
		t.Errorf("ReserveAttempt after expiry: %v, want ErrExpired", err)
	}
}
