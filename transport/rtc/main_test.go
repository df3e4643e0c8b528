package rtc

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"github.com/pion/webrtc/v4"
	"io"
	"log/slog"
	"os"
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

// chanSignaler is one end of an in-memory signalling pipe.
type chanSignaler struct {
	in  <-chan []byte
	out chan<- []byte
}

func (s *chanSignaler) Send(ctx context.Context, msg []byte) error {
	select {
	case s.out <- bytes.Clone(msg):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *chanSignaler) Recv(ctx context.Context) ([]byte, error) {
	select {
	case m, ok := <-s.in:
		if !ok {
			return nil, io.EOF
		}
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sigPair returns the two ends of a signalling pipe.
func sigPair() (*chanSignaler, *chanSignaler) {
	a, b := make(chan []byte, 256), make(chan []byte, 256)
	return &chanSignaler{in: a, out: b}, &chanSignaler{in: b, out: a}
}

// funcSignaler lets a test rewrite or inspect what passes.
type funcSignaler struct {
	Signaler
	send func([]byte) []byte
	recv func([]byte) []byte
}

func (s *funcSignaler) Send(ctx context.Context, msg []byte) error {
	if s.send != nil {
		msg = s.send(msg)
	}
	return s.Signaler.Send(ctx, msg)
}

func (s *funcSignaler) Recv(ctx context.Context) ([]byte, error) {
	m, err := s.Signaler.Recv(ctx)
	if err == nil && s.recv != nil {
		m = s.recv(m)
	}
	return m, err
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("RTC_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func testConfig(t *testing.T) Config {
	return Config{Password: testPassword, InvitationID: testID, Name: testName, IncludeLoopback: true, Logger: testLogger(t)}
}

type result struct {
	c   *Conn
	err error
}

// connectPair runs Dial and Accept against each other through the given
// signalers.
func connectPair(t *testing.T, ctx context.Context, es, ns Signaler, ecfg, ncfg Config) (expert, novice result) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		expert.c, expert.err = Dial(ctx, es, ecfg)
	}()
	go func() {
		defer wg.Done()
		novice.c, novice.err = Accept(ctx, ns, ncfg)
	}()
	wg.Wait()
	for _, r := range []result{expert, novice} {
		if r.c != nil {
			t.Cleanup(func() { r.c.Close() })
		}
	}
	return expert, novice
}

func mustConnect(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	es, ns := sigPair()
	e, n := connectPair(t, ctx, es, ns, testConfig(t), testConfig(t))
	if e.err != nil || n.err != nil {
		t.Fatalf("Dial: %v\nAccept: %v", e.err, n.err)
	}
	return e.c, n.c
}

func TestConnectDirect(t *testing.T) {
	e, n := mustConnect(t)
	if got := e.Path(); got != PathDirect {
		t.Errorf("expert Path = %q, want %q", got, PathDirect)
	}
	if got := n.Path(); got != PathDirect {
		t.Errorf("novice Path = %q, want %q; pair %v; peer's hosts %v", got, PathDirect, n.selectedPair(), n.remoteHosts.m)
	}
	if got := n.PeerName(); got != testName {
		t.Errorf("novice PeerName = %q, want %q", got, testName)
	}
	if got := e.PeerName(); got != "" {
		t.Errorf("expert PeerName = %q, want empty", got)
	}
	if !bytes.Equal(e.SessionKey("test", 32), n.SessionKey("test", 32)) {
		t.Error("session keys differ")
	}
	if e.LocalAddr().String() != n.RemoteAddr().String() {
		t.Errorf("expert local %v, novice sees remote %v", e.LocalAddr(), n.RemoteAddr())
	}
	// 1 MiB both ways at once.
	exchange(t, e, n, 1<<20)
}

// exchange sends size random bytes each way concurrently and checks them.
func exchange(t *testing.T, a, b *Conn, size int) {
	t.Helper()
	da, db := make([]byte, size), make([]byte, size)
	rand.Read(da)
	rand.Read(db)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	send := func(c *Conn, d []byte) {
		defer wg.Done()
		if _, err := c.Write(d); err != nil {
			errs <- err
		}
	}
	recv := func(c *Conn, want []byte) {
		defer wg.Done()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil {
			errs <- err
			return
		}
		if !bytes.Equal(got, want) {
			errs <- errors.New("received bytes differ from those sent")
		}
	}
	wg.Add(4)
	go send(a, da)
	go send(b, db)
	go recv(b, da)
	go recv(a, db)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRFBSizedTransfer sends one uncompressed 1920x1080 BGRX frame, the
// largest single update RFB makes, from the novice to the expert.
func TestRFBSizedTransfer(t *testing.T) {
	e, n := mustConnect(t)
	frame := make([]byte, 1920*1080*4)
	rand.Read(frame)
	errc := make(chan error, 1)
	go func() {
		_, err := n.Write(frame)
		errc <- err
	}()
	got := make([]byte, len(frame))
	if _, err := io.ReadFull(e, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, frame) {
		t.Fatal("frame corrupted")
	}
	// Closing one end gives the other io.EOF (or a closed-stream error).
	n.Close()
	if _, err := e.Read(make([]byte, 1)); err == nil {
		t.Error("Read after the peer closed succeeded")
	}
}

func BenchmarkThroughput(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	es, ns := sigPair()
	cfg := Config{Password: testPassword, InvitationID: testID, IncludeLoopback: true}
	var n *Conn
	var nerr error
	done := make(chan struct{})
	go func() { n, nerr = Accept(ctx, ns, cfg); close(done) }()
	e, err := Dial(ctx, es, cfg)
	<-done
	if err != nil || nerr != nil {
		b.Fatal(err, nerr)
	}
	defer e.Close()
	defer n.Close()
	buf := make([]byte, 256<<10)
	go io.Copy(io.Discard, e)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := n.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSCTPWindowFloor checks that SCTP's congestion window never starts or
// falls below sctpMinWindow, so that random loss cannot hold a session
// below the rate its multiplexer paces it at. Right after the handshake
// pion's own window would be about four packets.
func TestSCTPWindowFloor(t *testing.T) {
	e, n := mustConnect(t)
	for _, c := range []struct {
		name string
		conn *Conn
	}{{"expert", e}, {"novice", n}} {
		found := false
		for _, s := range c.conn.pc.GetStats() {
			st, ok := s.(webrtc.SCTPTransportStats)
			if !ok {
				continue
			}
			found = true
			if st.CongestionWindow < sctpMinWindow {
				t.Errorf("%s: SCTP congestion window %d bytes, want at least %d", c.name, st.CongestionWindow, sctpMinWindow)
			}
		}
		if !found {
			t.Errorf("%s: no SCTP transport in the connection's stats", c.name)
		}
	}
	exchange(t, e, n, 1<<20)
}
