package portmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a method whose outcome the test controls: try blocks until the
// test sends an outcome (or ctx ends, when honourCtx).
type fake struct {
	name      string
	outcome   chan fakeOutcome
	honourCtx bool

	mu      sync.Mutex
	removed []netip.AddrPort
	renews  int
	renew   func(n int) (netip.AddrPort, time.Duration, error)
	removal chan netip.AddrPort
}

type fakeOutcome struct {
	ext      string
	lifetime time.Duration
	err      error
}

func newFake(name string) *fake {
	return &fake{name: name, outcome: make(chan fakeOutcome, 1), removal: make(chan netip.AddrPort, 4)}
}

func (f *fake) method() method {
	return method{name: f.name, what: "Fake " + f.name, try: f.try}
}

func (f *fake) try(ctx context.Context, _ request) (*lease, error) {
	var o fakeOutcome
	if f.honourCtx {
		select {
		case o = <-f.outcome:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	} else {
		o = <-f.outcome
	}
	if o.err != nil {
		return nil, o.err
	}
	ext := netip.MustParseAddrPort(o.ext)
	return &lease{
		method:   f.name,
		external: ext,
		lifetime: o.lifetime,
		renew: func(context.Context) (netip.AddrPort, time.Duration, error) {
			f.mu.Lock()
			f.renews++
			n := f.renews
			f.mu.Unlock()
			if f.renew != nil {
				return f.renew(n)
			}
			return ext, o.lifetime, nil
		},
		remove: func(context.Context) error {
			f.mu.Lock()
			f.removed = append(f.removed, ext)
			f.mu.Unlock()
			f.removal <- ext
			return nil
		},
	}, nil
}

func (f *fake) removedList() []netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]netip.AddrPort(nil), f.removed...)
}

func testRequest() request {
	return request{proto: "tcp", internalPort: 5900, lifetime: time.Hour, description: "t", log: slog.New(slog.DiscardHandler)}
}

func TestRaceFirstWinsLoserRemoved(t *testing.T) {
	for _, tc := range []struct {
		name          string
		loserExt      string
		loserRemoved  bool
		winnerRemoved bool
	}{
		{name: "different mapping", loserExt: "203.0.113.1:40000", loserRemoved: true},
		// Both protocols on one router made one forwarding: deleting the
		// loser's would delete the winner's.
		{name: "same mapping", loserExt: "203.0.113.1:5900", loserRemoved: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFake("a"), newFake("b")
			a.outcome <- fakeOutcome{ext: "203.0.113.1:5900"}
			m, err := race(context.Background(), testRequest(), []method{a.method(), b.method()})
			if err != nil {
				t.Fatal(err)
			}
			if m.Method() != "a" || m.External() != netip.MustParseAddrPort("203.0.113.1:5900") {
				t.Fatalf("got %s %s, want a 203.0.113.1:5900", m.Method(), m.External())
			}
			b.outcome <- fakeOutcome{ext: tc.loserExt} // succeeds after the race
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if got := len(b.removedList()); got != map[bool]int{true: 1, false: 0}[tc.loserRemoved] {
				t.Errorf("loser removed %d times, want removed=%v", got, tc.loserRemoved)
			}
			if got := a.removedList(); len(got) != 1 {
				t.Errorf("winner removed %v, want once by Close", got)
			}
		})
	}
}

func TestRaceFirstFailureThenSuccess(t *testing.T) {
	a, b := newFake("a"), newFake("b")
	a.outcome <- fakeOutcome{err: errors.New("refused")}
	b.outcome <- fakeOutcome{ext: "203.0.113.1:5900"}
	m, err := race(context.Background(), testRequest(), []method{a.method(), b.method()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Method() != "b" {
		t.Fatalf("Method() = %s, want b", m.Method())
	}
}

func TestRaceCancelRemovesLateSuccess(t *testing.T) {
	a := newFake("a") // ignores ctx, like the NAT-PMP library
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := race(ctx, testRequest(), []method{a.method()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("race(cancelled) = %v, want context.Canceled", err)
	}
	a.outcome <- fakeOutcome{ext: "203.0.113.1:5900"}
	select {
	case got := <-a.removal:
		if got != netip.MustParseAddrPort("203.0.113.1:5900") {
			t.Errorf("removed %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a mapping made after Map gave up was not removed")
	}
}

func TestRaceDiscoveryTimeout(t *testing.T) {
	old := discoveryTimeout
	discoveryTimeout = 50 * time.Millisecond
	defer func() { discoveryTimeout = old }()
	a := newFake("a")
	a.honourCtx = true
	_, err := race(context.Background(), testRequest(), []method{a.method()})
	var pe *Error
	if !errors.As(err, &pe) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("race = %v, want *Error wrapping the discovery deadline", err)
	}
}

func TestErrorMessage(t *testing.T) {
	upnpSilent := &noAnswerError{where: "SSDP from 192.168.1.20"}
	natpmpSilent := fmt.Errorf("external address: %w", &noAnswerError{where: "gateway 192.168.1.1"})
	for _, tc := range []struct {
		name string
		err  *Error
		want string
	}{
		{
			name: "nothing answered",
			err: &Error{Proto: "tcp", Port: 5900, Tried: []Attempt{
				{Method: "upnp", What: "UPnP IGD", Err: upnpSilent},
				{Method: "natpmp", What: "NAT-PMP", Err: natpmpSilent},
			}},
			want: "portmap: no router answered UPnP IGD (SSDP from 192.168.1.20) or NAT-PMP (gateway 192.168.1.1): " +
				"the router may have port mapping turned off; a rendezvous server (assist serve) works without it",
		},
		{
			name: "a router refused",
			err: &Error{Proto: "tcp", Port: 5900, Tried: []Attempt{
				{Method: "upnp", What: "UPnP IGD", Err: errors.New("192.168.1.1:5000: AddPortMapping: 606 Action not authorized")},
				{Method: "natpmp", What: "NAT-PMP", Err: natpmpSilent},
			}},
			want: "portmap: could not map tcp port 5900: UPnP IGD: 192.168.1.1:5000: AddPortMapping: 606 Action not authorized; " +
				"NAT-PMP: external address: gateway 192.168.1.1: no answer; a rendezvous server (assist serve) works without it",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !errors.Is(tc.err, ErrNoAnswer) {
				t.Error("errors.Is(err, ErrNoAnswer) = false")
			}
		})
	}
}

func TestRenewal(t *testing.T) {
	oldRetry := minRenewRetry
	minRenewRetry = time.Millisecond
	defer func() { minRenewRetry = oldRetry }()

	a := newFake("a")
	moved := netip.MustParseAddrPort("203.0.113.2:6000")
	renewed := make(chan int, 16)
	a.renew = func(n int) (netip.AddrPort, time.Duration, error) {
		defer func() { renewed <- n }()
		switch n {
		case 1:
			return netip.AddrPort{}, 0, errors.New("router rebooting")
		default:
			return moved, 20 * time.Millisecond, nil
		}
	}
	a.outcome <- fakeOutcome{ext: "203.0.113.1:5900", lifetime: 20 * time.Millisecond}
	m, err := race(context.Background(), testRequest(), []method{a.method()})
	if err != nil {
		t.Fatal(err)
	}
	// A failure, then successes: renewal goes on after an error.
	for want := 1; want <= 3; want++ {
		select {
		case n := <-renewed:
			if n != want {
				t.Fatalf("renewal %d, want %d", n, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("renewal %d never came", want)
		}
	}
	if m.External() != moved {
		t.Errorf("External() = %s after the router moved the mapping, want %s", m.External(), moved)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err2 := m.Close(); err2 != nil {
		t.Fatalf("second Close = %v", err2)
	}
	if got := a.removedList(); len(got) != 1 {
		t.Fatalf("removed %v, want once", got)
	}
}

func TestMapArguments(t *testing.T) {
	for _, tc := range []struct {
		proto string
		port  int
		want  string
	}{
		{"sctp", 5900, "protocol"},
		{"tcp", 0, "out of range"},
		{"udp", 70000, "out of range"},
	} {
		_, err := Map(context.Background(), tc.proto, tc.port, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Map(%s, %d) = %v, want an error about %s", tc.proto, tc.port, err, tc.want)
		}
	}
}
