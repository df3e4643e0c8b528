package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/pake"
)

// blackHole accepts TCP and never says a word.
func blackHole(t *testing.T) string {
	return tcpServer(t, drain)
}

// forwarder relays TCP to target, as another route to the same novice (a
// LAN and a port-mapped address, say). If gate is not nil, relaying waits
// until it is closed.
func forwarder(t *testing.T, target string, gate <-chan struct{}, arrived func()) string {
	return tcpServer(t, func(c net.Conn) {
		defer c.Close()
		if arrived != nil {
			arrived()
		}
		if gate != nil {
			<-gate
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer up.Close()
		var wg sync.WaitGroup
		wg.Go(func() {
			io.Copy(up, c)
			up.Close()
		})
		io.Copy(c, up)
		c.Close()
		wg.Wait()
	})
}

// gatedRoutes returns n routes to target whose connections are all held
// until each route has one, so that their TLS handshakes finish together
// and Dial has spare connections while it runs the PAKE.
func gatedRoutes(t *testing.T, target string, n int) []string {
	gate := make(chan struct{})
	var mu sync.Mutex
	count := 0
	arrived := func() {
		mu.Lock()
		defer mu.Unlock()
		if count++; count == n {
			close(gate)
		}
	}
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = forwarder(t, target, gate, arrived)
	}
	return addrs
}

// hangUpAfterHello speaks TLS with ALPN assist/1, reads the hello and hangs
// up: a novice that crashes mid-handshake.
func hangUpAfterHello(t *testing.T) string {
	cert, err := newCertificate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tcpServer(t, func(c net.Conn) {
		defer c.Close()
		tc := tls.Server(c, serverTLSConfig(cert))
		if tc.Handshake() != nil {
			return
		}
		pake.ReadMessage(tc, maxHello)
	})
}

func TestHappyEyeballs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before func(t *testing.T) []string
	}{
		{"black hole and closed port first", func(t *testing.T) []string {
			return []string{blackHole(t), closedPort(t)}
		}},
		{"not assist first", func(t *testing.T) []string {
			return []string{tcpServer(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.9\r\n")); drain(c) })}
		}},
		{"novice hangs up mid-handshake first", func(t *testing.T) []string {
			return []string{hangUpAfterHello(t)}
		}},
		{"other invitation first", func(t *testing.T) []string {
			other, _ := newTestListener(t, ListenerConfig{InvitationID: "inv-someone-else"})
			return []string{other.Addr().String()}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTestListener(t, ListenerConfig{})
			real := l.Addr().String()
			addrs := append(tc.before(t), real)
			accepted := acceptAsync(t, l)
			c := mustDial(t, addrs, dialConfig(testPassword))
			if got, want := c.Path(), "direct "+real; got != want {
				t.Errorf("Path = %q, want %q", got, want)
			}
			if r := <-accepted; r.err != nil {
				t.Fatal(r.err)
			}
			if got := l.AttemptsLeft(); got != DefaultMaxFailures {
				t.Errorf("AttemptsLeft = %d, want %d", got, DefaultMaxFailures)
			}
		})
	}
}

// TestOneAttemptPerDial: several routes to the same novice, all connected
// at once: the PAKE runs on one of them only, so one typo costs one attempt,
// and the spare connections cost nothing.
func TestOneAttemptPerDial(t *testing.T) {
	l, sink := newTestListener(t, ListenerConfig{})
	real := l.Addr().String()
	_, err := Dial(t.Context(), gatedRoutes(t, real, 3), dialConfig("typo"))
	he := wantHandshakeError(t, err, ErrWrongPassword)
	if he.AttemptsLeft != DefaultMaxFailures-1 {
		t.Errorf("expert sees %d attempts left, want %d", he.AttemptsLeft, DefaultMaxFailures-1)
	}
	sink.waitOutcome(t, outcomeWrongPassword)

	accepted := acceptAsync(t, l)
	mustDial(t, gatedRoutes(t, real, 3), dialConfig(testPassword))
	if r := <-accepted; r.err != nil {
		t.Fatal(r.err)
	}
	if got := l.AttemptsLeft(); got != DefaultMaxFailures-1 {
		t.Errorf("novice AttemptsLeft = %d, want %d", got, DefaultMaxFailures-1)
	}
}

// TestDefinitiveAnswerWins: an address that gives the novice's answer beats
// addresses that did not answer.
func TestDefinitiveAnswerWins(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{})
	_, err := Dial(t.Context(), []string{closedPort(t), l.Addr().String(), closedPort(t)}, dialConfig("typo"))
	wantHandshakeError(t, err, ErrWrongPassword)
}

func TestDialUnreachable(t *testing.T) {
	_, err := Dial(t.Context(), []string{closedPort(t), closedPort(t)}, dialConfig(testPassword))
	he := wantHandshakeError(t, err, ErrUnreachable)
	if he.Addr != "" {
		t.Errorf("Addr = %q, want empty for a summary of every address", he.Addr)
	}
	if strings.Count(err.Error(), "unreachable") != 2 {
		t.Errorf("error does not list both addresses: %v", err)
	}
}

func TestDialPerAddressTimeout(t *testing.T) {
	cfg := dialConfig(testPassword)
	cfg.PerAddressTimeout = 100 * time.Millisecond
	_, err := Dial(t.Context(), []string{blackHole(t)}, cfg)
	wantHandshakeError(t, err, ErrUnreachable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the timeout", err)
	}
}

func TestDialContext(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := Dial(ctx, []string{blackHole(t), blackHole(t)}, dialConfig(testPassword))
		wantHandshakeError(t, err, ErrUnreachable)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not wrap the deadline", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := Dial(ctx, []string{blackHole(t)}, dialConfig(testPassword))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
	t.Run("cancel during PAKE", func(t *testing.T) {
		// A novice that completes TLS, reads the hello and then waits
		// forever: cancelling must end Dial.
		cert, err := newCertificate(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		gotHello := make(chan struct{}, 1)
		addr := tcpServer(t, func(c net.Conn) {
			defer c.Close()
			tc := tls.Server(c, serverTLSConfig(cert))
			if tc.Handshake() != nil {
				return
			}
			pake.ReadMessage(tc, maxHello)
			gotHello <- struct{}{}
			drain(tc)
		})
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-gotHello
			cancel()
		}()
		_, err = Dial(ctx, []string{addr}, dialConfig(testPassword))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
}
