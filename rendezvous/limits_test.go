package rendezvous

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/server"
)

// inProcessServer runs a rendezvous server in the test, configured by
// tweak, and returns its URL and certificate fingerprint.
func inProcessServer(t *testing.T, tweak func(*server.Config)) (url, fingerprint string) {
	t.Helper()
	dir := t.TempDir()
	cert, err := server.LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := server.OpenSQLite(context.Background(), filepath.Join(dir, "assist.db"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Store: st, ICEServers: []string{"stun:127.0.0.1:3478"}, Logger: slog.New(slog.DiscardHandler)}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hs.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		st.Close()
	})
	return hs.URL, server.CertFingerprint(cert)
}

// rawDialFrom opens a signalling WebSocket from the loopback address src
// (Linux routes all of 127/8 to lo): a client at another address.
func rawDialFrom(t *testing.T, url, fp, src string) *websocket.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	tr := &http.Transport{TLSClientConfig: server.PinnedTLSConfig(fp), DialContext: d.DialContext}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(url, "https")+"/v1/signal", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

// TestRendezvousLimitsAdvice: what the agents make of the server's
// answers of issue 8: a registration over the address's allowance fails
// with an error that says so and when to try again; an unknown number gets
// the one advice for unknown, expired and offline; a join while another
// expert is paired waits in line, beyond signalTimeout, and is paired when
// the other pairing ends.
func TestRendezvousLimitsAdvice(t *testing.T) {
	url, fp := inProcessServer(t, func(c *server.Config) { c.RegisterBurst = 1; c.ExpertDeadline = time.Hour })
	ctx := context.Background()
	r := &Novice{url: url, fingerprint: fp, expires: time.Now().Add(time.Hour), log: slog.New(slog.DiscardHandler)}
	sc, err := r.register(ctx, "1234")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.close()
	_, err = r.register(ctx, "5678")
	var se *server.SignalError
	if err == nil || !errors.As(err, &se) || se.Code != server.CodeTooMany ||
		!strings.Contains(err.Error(), "refuses more invitations from this network") || !strings.Contains(err.Error(), "try again in") {
		t.Errorf("second registration: %v, want a too-many error that says when to try again", err)
	}

	c, err := dialSignal(ctx, url, fp)
	if err != nil {
		t.Fatal(err)
	}
	_, err = joinInLine(ctx, c, "9999")
	c.Close()
	if msg := joinError(url, err).Error(); !strings.Contains(msg, "no invitation is waiting under this number") {
		t.Errorf("unknown number: %q", msg)
	}

	// One expert paired (from another address: one entry per address and
	// invitation); the next waits in line, longer than signalTimeout
	// would allow, until the first one leaves.
	first := rawDialFrom(t, url, fp, "127.0.0.2")
	firstSend := func(msg string) {
		if err := first.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	firstSend(`{"type":"join","id":"1234"}`)
	if _, b, err := first.Read(ctx); err != nil || !strings.Contains(string(b), `"paired"`) {
		t.Fatalf("first expert: %s, %v", b, err)
	}
	second, err := dialSignal(ctx, url, fp)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	type result struct {
		m   server.Message
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := joinInLine(ctx, second, "1234")
		done <- result{m, err}
	}()
	// The novice sees the first pairing, with where the expert is.
	m, err := sc.next(ctx)
	if err != nil || m.Type != server.TypePaired || m.From.String() != "127.0.0.2" {
		t.Fatalf("novice: %+v, %v; want paired from 127.0.0.2", m, err)
	}
	select {
	case res := <-done:
		t.Fatalf("the second join ended while the first was paired: %+v, %v", res.m, res.err)
	case <-time.After(signalTimeout + 2*time.Second):
	}
	firstSend(`{"type":"bye","reason":"done"}`)
	select {
	case res := <-done:
		if res.err != nil || res.m.Type != server.TypePaired {
			t.Fatalf("second join: %+v, %v; want paired", res.m, res.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the second join was not paired after the first pairing ended")
	}
}

// TestJoinRegistered: a join with WaitRegistered keeps trying while the
// server does not know the id, and is paired once the novice registers it;
// without, the first "unknown" is the answer; and a novice who never comes
// is reported as such once the wait is over.
func TestJoinRegistered(t *testing.T) {
	url, fp := inProcessServer(t, nil)
	ctx := context.Background()
	const sid = "r-abcdefghijklmnopqrstuvwxyz"

	if _, _, err := joinRegistered(ctx, url, fp, sid, 0); err == nil || !strings.Contains(err.Error(), "no invitation is waiting") {
		t.Errorf("without a wait: %v, want the unknown-number advice", err)
	}
	if _, _, err := joinRegistered(ctx, url, fp, sid, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not come to the rendezvous server") {
		t.Errorf("nobody registers: %v", err)
	}

	type result struct {
		c   *server.Client
		m   server.Message
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, m, err := joinRegistered(ctx, url, fp, sid, 20*time.Second)
		done <- result{c, m, err}
	}()
	// The novice registers once the join has missed (the server counts
	// its "unknown" answers), so the wait is what pairs them.
	before := unknownAnswers(t, url, fp)
	for unknownAnswers(t, url, fp) == before {
		time.Sleep(20 * time.Millisecond)
	}
	owner, err := server.NewOwner()
	if err != nil {
		t.Fatal(err)
	}
	r := &Novice{url: url, fingerprint: fp, expires: time.Now().Add(time.Hour), owner: owner, log: slog.New(slog.DiscardHandler)}
	sc, err := r.register(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.close()
	res := <-done
	if res.err != nil || res.m.Type != server.TypePaired {
		t.Fatalf("join while the novice registers: %+v, %v", res.m, res.err)
	}
	res.c.Close()
}

// unknownAnswers is how many "unknown" answers the server gave (its
// metrics, which answer loopback).
func unknownAnswers(t *testing.T, url, fp string) string {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: server.PinnedTLSConfig(fp)}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, `assist_signal_errors_total{code="unknown"} `); ok {
			return v
		}
	}
	return "0"
}
