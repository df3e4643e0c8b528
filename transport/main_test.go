package transport

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testID       = "inv-7-crayon"
	testPassword = "harbor-lantern-42"
	testName     = "Alice (expert)"
)

// logSink collects a Listener's log lines and lets a test wait for one: the
// Listener logs an attempt once it has settled it, so a line is the
// synchronisation point between a test and the novice's goroutines.
type logSink struct {
	mu    sync.Mutex
	all   bytes.Buffer
	lines chan string
}

func newLogSink() *logSink { return &logSink{lines: make(chan string, 256)} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.all.Write(p)
	s.mu.Unlock()
	select {
	case s.lines <- string(p):
	default:
	}
	return len(p), nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all.String()
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitOutcome waits for the next attempt line with the given outcome,
// skipping others.
func (s *logSink) waitOutcome(t *testing.T, outcome string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		select {
		case line := <-s.lines:
			if strings.Contains(line, `"outcome":"`+outcome+`"`) {
				return line
			}
		case <-ctx.Done():
			t.Fatalf("no log line with outcome %q; log so far:\n%s", outcome, s)
			return ""
		}
	}
}

// newTestListener serves an invitation on a free loopback port. cfg's zero
// fields get the test invitation's values.
func newTestListener(t *testing.T, cfg ListenerConfig) (*Listener, *logSink) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InvitationID == "" {
		cfg.InvitationID = testID
	}
	if cfg.Password == "" {
		cfg.Password = testPassword
	}
	sink := newLogSink()
	if cfg.Logger == nil {
		cfg.Logger = sink.logger()
	}
	l := NewListener(ln, cfg)
	t.Cleanup(func() { l.Close() })
	return l, sink
}

func dialConfig(password string) DialConfig {
	return DialConfig{InvitationID: testID, Password: password, Name: testName}
}

type acceptResult struct {
	c   *Conn
	err error
}

// acceptAsync runs one Accept in the background. The connection it returns
// is closed at cleanup.
func acceptAsync(t *testing.T, l *Listener) <-chan acceptResult {
	t.Helper()
	ch := make(chan acceptResult, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var got *Conn
	go func() {
		defer close(done)
		c, err := l.Accept(ctx)
		got = c
		ch <- acceptResult{c, err}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if got != nil {
			got.Close()
		}
	})
	return ch
}

// mustDial dials and fails the test on error; the connection is closed at
// cleanup.
func mustDial(t *testing.T, addrs []string, cfg DialConfig) *Conn {
	t.Helper()
	c, err := Dial(t.Context(), addrs, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantHandshakeError checks err's kind and returns its details.
func wantHandshakeError(t *testing.T, err, kind error) *HandshakeError {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want %v", err, kind)
	}
	var he *HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("error %v is not a *HandshakeError", err)
	}
	return he
}

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// tcpServer runs handle on every connection to a fresh loopback listener
// until cleanup, which closes the listener and every connection and waits
// for the handlers.
func tcpServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { handle(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// tcpServerDial opens a raw TCP connection to addr.
func tcpServerDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newListenerRaw is NewListener on a free port with cfg exactly as given.
func newListenerRaw(t testing.TB, cfg ListenerConfig) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(ln, cfg)
	t.Cleanup(func() { l.Close() })
	return l
}
