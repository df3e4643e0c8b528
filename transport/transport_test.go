package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHandshakeSuccess(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{})
	accepted := acceptAsync(t, l)
	addr := l.Addr().String()
	expert := mustDial(t, []string{addr}, dialConfig(testPassword))
	r := <-accepted
	if r.err != nil {
		t.Fatalf("Accept: %v", r.err)
	}
	novice := r.c

	if got := novice.PeerName(); got != testName {
		t.Errorf("novice PeerName = %q, want %q", got, testName)
	}
	if got := expert.PeerName(); got != "" {
		t.Errorf("expert PeerName = %q, want empty", got)
	}
	if got, want := expert.Path(), "direct "+addr; got != want {
		t.Errorf("expert Path = %q, want %q", got, want)
	}
	if got, want := novice.Path(), "direct "+expert.LocalAddr().String(); got != want {
		t.Errorf("novice Path = %q, want %q", got, want)
	}
	if !bytes.Equal(expert.SessionKey("test", 32), novice.SessionKey("test", 32)) {
		t.Error("session keys differ")
	}
	if bytes.Equal(expert.SessionKey("a", 32), expert.SessionKey("b", 32)) {
		t.Error("different labels gave the same key")
	}
	if got := l.AttemptsLeft(); got != DefaultMaxFailures {
		t.Errorf("AttemptsLeft = %d after a success, want %d", got, DefaultMaxFailures)
	}

	// Application bytes flow both ways, unframed.
	errc := make(chan error, 1)
	go func() {
		_, err := expert.Write([]byte("hello novice"))
		errc <- err
	}()
	buf := make([]byte, len("hello novice"))
	if _, err := io.ReadFull(novice, buf); err != nil || string(buf) != "hello novice" {
		t.Fatalf("novice read %q, %v", buf, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := novice.Write([]byte("hi expert"))
		errc <- err
	}()
	buf = make([]byte, len("hi expert"))
	if _, err := io.ReadFull(expert, buf); err != nil || string(buf) != "hi expert" {
		t.Fatalf("expert read %q, %v", buf, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestWrongPassword(t *testing.T) {
	l, sink := newTestListener(t, ListenerConfig{})
	addr := l.Addr().String()
	_, err := Dial(t.Context(), []string{addr}, dialConfig("harbor-lantern-43"))
	he := wantHandshakeError(t, err, ErrWrongPassword)
	if he.AttemptsLeft != 4 {
		t.Errorf("expert sees %d attempts left, want 4", he.AttemptsLeft)
	}
	if he.Addr != addr {
		t.Errorf("error Addr = %q, want %q", he.Addr, addr)
	}
	if !strings.Contains(err.Error(), "4 attempts left") {
		t.Errorf("error %q does not say how many attempts are left", err)
	}
	sink.waitOutcome(t, outcomeWrongPassword)
	if got := l.AttemptsLeft(); got != 4 {
		t.Errorf("novice AttemptsLeft = %d, want 4", got)
	}

	// The right password still works afterwards.
	accepted := acceptAsync(t, l)
	mustDial(t, []string{addr}, dialConfig(testPassword))
	if r := <-accepted; r.err != nil {
		t.Fatal(r.err)
	}
}

func TestVoidAfterMaxFailures(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{})
	addrs := []string{l.Addr().String()}
	for i := range DefaultMaxFailures {
		_, err := Dial(t.Context(), addrs, dialConfig("guess"))
		he := wantHandshakeError(t, err, ErrWrongPassword)
		if want := DefaultMaxFailures - 1 - i; he.AttemptsLeft != want {
			t.Errorf("attempt %d: %d attempts left, want %d", i+1, he.AttemptsLeft, want)
		}
	}
	if !l.Void() {
		t.Fatal("invitation not void after 5 failures")
	}
	_, err := Dial(t.Context(), addrs, dialConfig(testPassword))
	he := wantHandshakeError(t, err, ErrVoid)
	if he.PeerMessage == "" {
		t.Error("refusal carries no message from the novice")
	}
	if got := l.AttemptsLeft(); got != 0 {
		t.Errorf("AttemptsLeft = %d, want 0", got)
	}
}

func TestMaxFailuresConfig(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{MaxFailures: 2})
	addrs := []string{l.Addr().String()}
	for range 2 {
		_, err := Dial(t.Context(), addrs, dialConfig("guess"))
		wantHandshakeError(t, err, ErrWrongPassword)
	}
	_, err := Dial(t.Context(), addrs, dialConfig(testPassword))
	wantHandshakeError(t, err, ErrVoid)
}

// TestConcurrentGuessesAreBounded: however many attempts run at once, the
// invitation never judges more than MaxFailures of them.
func TestConcurrentGuessesAreBounded(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{})
	addrs := []string{l.Addr().String()}
	const n = 12
	var wrong, other atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := Dial(context.Background(), addrs, dialConfig("guess"))
			switch {
			case errors.Is(err, ErrWrongPassword):
				wrong.Add(1)
			case errors.Is(err, ErrBusy), errors.Is(err, ErrVoid):
				other.Add(1)
			default:
				t.Errorf("unexpected error %v", err)
			}
		})
	}
	wg.Wait()
	if got := wrong.Load(); got > DefaultMaxFailures {
		t.Errorf("%d wrong-password verdicts, limit is %d", got, DefaultMaxFailures)
	}
	if wrong.Load()+other.Load() != n {
		t.Errorf("wrong %d + refused %d != %d", wrong.Load(), other.Load(), n)
	}
	// Keep guessing until void: the total is exactly the limit.
	for !l.Void() {
		_, err := Dial(t.Context(), addrs, dialConfig("guess"))
		if !errors.Is(err, ErrWrongPassword) && !errors.Is(err, ErrVoid) {
			t.Fatalf("unexpected error %v", err)
		}
		if errors.Is(err, ErrWrongPassword) {
			wrong.Add(1)
		}
	}
	if got := wrong.Load(); got != DefaultMaxFailures {
		t.Errorf("%d wrong-password verdicts in all, want exactly %d", got, DefaultMaxFailures)
	}
}

func TestExpiry(t *testing.T) {
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var now atomic.Pointer[time.Time]
	now.Store(&start)
	l, sink := newTestListener(t, ListenerConfig{
		Expires: start.Add(time.Hour),
		Now:     func() time.Time { return *now.Load() },
	})
	addrs := []string{l.Addr().String()}

	accepted := acceptAsync(t, l)
	c := mustDial(t, addrs, dialConfig(testPassword))
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.c.Close()
	c.Close()

	later := start.Add(time.Hour)
	now.Store(&later)
	_, err := Dial(t.Context(), addrs, dialConfig(testPassword))
	he := wantHandshakeError(t, err, ErrExpired)
	if !strings.Contains(he.PeerMessage, "2026-05-01T13:00:00Z") {
		t.Errorf("refusal message %q does not give the expiry", he.PeerMessage)
	}
	sink.waitOutcome(t, outcomeExpired)
	if got := l.AttemptsLeft(); got != DefaultMaxFailures {
		t.Errorf("a refusal cost an attempt: %d left", got)
	}
}

func TestNoExpiryWhenZero(t *testing.T) {
	far := time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)
	l, _ := newTestListener(t, ListenerConfig{Now: func() time.Time { return far }})
	accepted := acceptAsync(t, l)
	mustDial(t, []string{l.Addr().String()}, dialConfig(testPassword))
	if r := <-accepted; r.err != nil {
		t.Fatal(r.err)
	}
}

func TestBusyWhileConnected(t *testing.T) {
	l, sink := newTestListener(t, ListenerConfig{})
	addrs := []string{l.Addr().String()}

	accepted := acceptAsync(t, l)
	first := mustDial(t, addrs, dialConfig(testPassword))
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}

	_, err := Dial(t.Context(), addrs, dialConfig(testPassword))
	wantHandshakeError(t, err, ErrBusy)
	sink.waitOutcome(t, outcomeBusy)

	// The expert leaves; the novice's application sees EOF and closes.
	first.Close()
	if _, err := r.c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("novice read after expert left: %v, want EOF", err)
	}
	r.c.Close()

	accepted = acceptAsync(t, l)
	mustDial(t, addrs, dialConfig(testPassword))
	if r := <-accepted; r.err != nil {
		t.Fatal(r.err)
	}
	if got := l.AttemptsLeft(); got != DefaultMaxFailures {
		t.Errorf("busy refusals cost attempts: %d left", got)
	}
}

// TestBusyBeforeAccept: an authenticated connection the application has not
// accepted yet holds the invitation too.
func TestBusyBeforeAccept(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{})
	addrs := []string{l.Addr().String()}
	mustDial(t, addrs, dialConfig(testPassword))
	_, err := Dial(t.Context(), addrs, dialConfig(testPassword))
	wantHandshakeError(t, err, ErrBusy)
	c, err := l.Accept(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestUnknownInvitation(t *testing.T) {
	l, sink := newTestListener(t, ListenerConfig{})
	cfg := dialConfig(testPassword)
	cfg.InvitationID = "inv-other"
	_, err := Dial(t.Context(), []string{l.Addr().String()}, cfg)
	wantHandshakeError(t, err, ErrUnknownInvitation)
	sink.waitOutcome(t, outcomeUnknown)
	if got := l.AttemptsLeft(); got != DefaultMaxFailures {
		t.Errorf("unknown invitation cost an attempt: %d left", got)
	}
}

func TestListenerClose(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{})
	// A handshake in progress when Close is called must end too (goleak
	// checks): a peer that connects and says nothing.
	stalled := tcpServerDial(t, l.Addr().String())
	defer stalled.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(t.Context()); !errors.Is(err, ErrListenerClosed) {
		t.Fatalf("Accept after Close: %v, want ErrListenerClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestListenerBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ListenerConfig
	}{
		{"no password", ListenerConfig{InvitationID: testID}},
		{"bad id", ListenerConfig{InvitationID: "has space", Password: testPassword}},
		{"long id", ListenerConfig{InvitationID: strings.Repeat("x", MaxInvitationID+1), Password: testPassword}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Logger set so newTestListener keeps the empty fields.
			tc.cfg.Logger = newLogSink().logger()
			if tc.cfg.InvitationID == testID {
				tc.cfg.Password = ""
			}
			l := newListenerRaw(t, tc.cfg)
			if _, err := l.Accept(t.Context()); err == nil || errors.Is(err, ErrListenerClosed) {
				t.Fatalf("Accept with %s: %v, want a configuration error", tc.name, err)
			}
		})
	}
}

func TestDialBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs []string
		cfg   DialConfig
	}{
		{"no address", nil, dialConfig(testPassword)},
		{"no password", []string{"127.0.0.1:1"}, dialConfig("")},
		{"no id", []string{"127.0.0.1:1"}, DialConfig{Password: testPassword}},
		{"control in name", []string{"127.0.0.1:1"}, DialConfig{InvitationID: testID, Password: testPassword, Name: "a\x1b[2Jb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Dial(t.Context(), tc.addrs, tc.cfg); err == nil {
				t.Fatal("Dial accepted a bad configuration")
			}
		})
	}
}
