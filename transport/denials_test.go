package transport

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for ListenerConfig.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestDenialCooldown: after the novice says no, every expert is turned away
// for the cooldown, on the Listener's port and on another path, in words
// that say how long, and the refusal costs no attempt. After the cooldown
// experts may ask again.
func TestDenialCooldown(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	l, sink := newTestListener(t, ListenerConfig{Now: clock.Now})
	addrs := []string{l.Addr().String()}

	if closed := l.Denied(); closed {
		t.Fatal("one no closed the invitation")
	}
	_, err := Dial(t.Context(), addrs, dialConfig(testPassword))
	he := wantHandshakeError(t, err, ErrDenied)
	if want := "The person you are helping said no. You can ask again in about 2 minutes."; he.PeerMessage != want {
		t.Errorf("refusal says %q, want %q", he.PeerMessage, want)
	}
	sink.waitOutcome(t, outcomeDenied)
	_, err = l.ReserveAttempt()
	var re *RefusedError
	if !errors.Is(err, ErrDenied) || !errors.As(err, &re) || !strings.HasPrefix(err.Error(), DeniedPrefix) {
		t.Errorf("ReserveAttempt during the cooldown: %v, want a RefusedError for ErrDenied", err)
	}
	if got := l.AttemptsLeft(); got != DefaultMaxFailures {
		t.Errorf("AttemptsLeft %d after refusals, want %d: a refusal must cost no attempt", got, DefaultMaxFailures)
	}

	clock.add(90 * time.Second)
	if _, err := l.ReserveAttempt(); err == nil || err.Error() != "The person you are helping said no. You can ask again in about 30 seconds." {
		t.Errorf("30 s before the end of the cooldown: %v", err)
	}
	clock.add(31 * time.Second)
	acceptAsync(t, l)
	mustDial(t, addrs, dialConfig(testPassword))
}

// TestThirdDenialCloses: the third no closes the invitation for every path.
func TestThirdDenialCloses(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	l, sink := newTestListener(t, ListenerConfig{Now: clock.Now, DenyCooldown: time.Second})
	addrs := []string{l.Addr().String()}
	for i := 1; i <= 2; i++ {
		if l.Denied() || l.Closed() {
			t.Fatalf("closed after %d noes", i)
		}
		clock.add(time.Second)
	}
	if !l.Denied() || !l.Closed() {
		t.Fatal("the third no did not close the invitation")
	}
	clock.add(time.Hour) // no cooldown ends a closed invitation
	_, err := Dial(t.Context(), addrs, dialConfig(testPassword))
	he := wantHandshakeError(t, err, ErrClosed)
	if want := ClosedMessage(3); he.PeerMessage != want {
		t.Errorf("refusal says %q, want %q", he.PeerMessage, want)
	}
	sink.waitOutcome(t, outcomeClosed)
	if _, err := l.ReserveAttempt(); !errors.Is(err, ErrClosed) || err.Error() != ClosedMessage(3) {
		t.Errorf("ReserveAttempt on a closed invitation: %v", err)
	}
	if got := l.AttemptsLeft(); got != DefaultMaxFailures {
		t.Errorf("AttemptsLeft %d, want %d", got, DefaultMaxFailures)
	}
}

func TestRefusalTexts(t *testing.T) {
	tests := []struct{ got, want string }{
		{DeniedMessage(2 * time.Minute), "The person you are helping said no. You can ask again in about 2 minutes."},
		{DeniedMessage(61 * time.Second), "The person you are helping said no. You can ask again in about 2 minutes."},
		{DeniedMessage(time.Minute), "The person you are helping said no. You can ask again in about 1 minute."},
		{DeniedMessage(1500 * time.Millisecond), "The person you are helping said no. You can ask again in about 2 seconds."},
		{DeniedMessage(0), "The person you are helping said no. You can ask again in about 1 second."},
		{DeniedMessage(59500 * time.Millisecond), "The person you are helping said no. You can ask again in about 1 minute."},
		{DeniedMessage(59 * time.Second), "The person you are helping said no. You can ask again in about 59 seconds."},
		{ClosedMessage(3), "The person you are helping said no three times, so this invitation is closed. Ask them for a new one if they still want help."},
		{ClosedMessage(1), "The person you are helping said no once, so this invitation is closed. Ask them for a new one if they still want help."},
		{ClosedMessage(7), "The person you are helping said no 7 times, so this invitation is closed. Ask them for a new one if they still want help."},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestStalledStartFreesTheInvitation: peers that stall before the PAKE
// really starts (silent, after TLS, after the hello, which reserves an
// attempt) are cut off after StartTimeout, not HandshakeTimeout, so
// stallers holding every attempt in flight lock an expert out for seconds,
// not for good; none of them costs an attempt.
func TestStalledStartFreesTheInvitation(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{MaxFailures: 1, StartTimeout: 300 * time.Millisecond, HandshakeTimeout: 10 * time.Minute})
	addr := l.Addr().String()
	conns := stallers(t, addr) // the last one holds the only attempt
	if _, err := Dial(t.Context(), []string{addr}, dialConfig(testPassword)); !errors.Is(err, ErrBusy) {
		t.Fatalf("Dial while a staller holds the attempt: %v, want ErrBusy", err)
	}
	for _, c := range conns {
		// The novice closes each; our own deadline ending the copy first
		// means the novice waited for HandshakeTimeout.
		c.SetReadDeadline(time.Now().Add(time.Minute))
		buf := make([]byte, 512)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the novice kept a stalled peer past StartTimeout")
			}
			break
		}
	}
	if got := l.AttemptsLeft(); got != 1 {
		t.Errorf("stallers cost attempts: %d left", got)
	}
	accepted := acceptAsync(t, l)
	mustDial(t, []string{addr}, dialConfig(testPassword))
	if r := <-accepted; r.err != nil {
		t.Fatal(r.err)
	}
}
