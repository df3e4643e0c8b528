package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestReadyAndDrain: /readyz is ready, then 503 as soon as Drain runs,
// while /healthz stays 200; new signalling connections are refused but
// connected clients carry on (an expert connected before still pairs)
// until Disconnect closes them with "going away", the status on which
// clients connect again.
func TestReadyAndDrain(t *testing.T) {
	ts := startServer(t, "", nil)
	if code, body := ts.get(t, "/readyz"); code != 200 || body != "ok\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	novice := ts.dial(t)
	novice.register("drained", ts.Clock.Now().Add(time.Hour))
	novice.expect(TypeRegistered)
	expert := ts.dialFrom(t, expertAddr)

	ts.Drain()
	if code, body := ts.get(t, "/readyz"); code != 503 || body != "draining\n" {
		t.Errorf("/readyz while draining: %d %q, want 503 draining", code, body)
	}
	if code, _ := ts.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d, want 200", code)
	}
	if _, resp, err := ts.tryDial("127.0.0.3"); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("a new connection while draining: err %v, want HTTP 503", err)
	}
	if v := ts.metric(t, `assist_signal_refused_connections_total{reason="draining"}`); v != "1" {
		t.Errorf("refused for draining = %s, want 1", v)
	}
	expert.join("drained")
	expert.expect(TypePaired)
	novice.expect(TypePaired)

	ts.Disconnect()
	novice.expectDrained()
	expert.expectDrained()
}

// expectDrained checks that p's connection was closed as a draining
// server closes it: going away, saying why.
func (p *peer) expectDrained() {
	p.t.Helper()
	_, err := p.recvRaw()
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != drainReason {
		p.t.Errorf("closed with %v, want going away %q", err, drainReason)
	}
}

// TestReadyChecks: /readyz names the check that fails: the store, or one
// of Config.ReadyChecks.
func TestReadyChecks(t *testing.T) {
	busDown := errors.New("bus down")
	var fail error
	ts := startServer(t, "", func(c *Config) {
		c.ReadyChecks = map[string]func(context.Context) error{"messenger bus": func(context.Context) error { return fail }}
	})
	if code, _ := ts.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz: %d, want 200", code)
	}
	fail = busDown
	if code, body := ts.get(t, "/readyz"); code != 503 || body != "messenger bus unavailable\n" {
		t.Errorf("/readyz with the bus down: %d %q", code, body)
	}
	fail = nil
	ts.Store.Close()
	if code, body := ts.get(t, "/readyz"); code != 503 || body != "store unavailable\n" {
		t.Errorf("/readyz with the store closed: %d %q", code, body)
	}
}

// TestMetricsNodeLabel: with Config.Node, every metric says which node
// it comes from.
func TestMetricsNodeLabel(t *testing.T) {
	ts := startServer(t, "", func(c *Config) { c.Node = "n7" })
	ts.pair(t, "labelled")
	if v := ts.metric(t, `assist_signal_connections{node="n7",role="novice"}`); v != "1" {
		t.Errorf("novices on n7 = %s, want 1", v)
	}
	if v := ts.metric(t, `assist_sessions{node="n7"}`); v != "1" {
		t.Errorf("sessions on n7 = %s, want 1", v)
	}
}
