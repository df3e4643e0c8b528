package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/pgtest"
	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/assist-project/assist/internal/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.M(m), natstest.LeakOptions()...)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testServer is a Server behind a loopback HTTPS listener with its
// self-signed certificate from dir.
type testServer struct {
	*Server
	URL         string // https://127.0.0.1:PORT
	Fingerprint string
	Store       *SQLiteStore
	Clock       *clock
	http        *httptest.Server
	client      *http.Client

	fromMu sync.Mutex
	from   map[string]*http.Client // by source address, for dialFrom
}

// startServer starts a server on dir (a fresh temp dir if empty); tweak
// may adjust the configuration. Everything stops in t.Cleanup.
func startServer(t testing.TB, dir string, tweak func(*Config)) *testServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cert, err := LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenSQLite(context.Background(), filepath.Join(dir, "assist.db"))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	cfg := Config{
		Store:      st,
		ICEServers: []string{"stun:relay.test:3478", "turn:relay.test:3478?transport=udp"},
		Now:        clk.Now,
		Logger:     testLogger(t),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hs.StartTLS()
	fp := CertFingerprint(cert)
	ts := &testServer{Server: srv, URL: hs.URL, Fingerprint: fp, Store: st, Clock: clk, http: hs,
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: PinnedTLSConfig(fp)}}}
	t.Cleanup(ts.stop)
	return ts
}

var stopMu sync.Mutex

// stop shuts the server down; safe to call twice.
func (ts *testServer) stop() {
	stopMu.Lock()
	defer stopMu.Unlock()
	if ts.http == nil {
		return
	}
	ts.Server.Close()
	ts.http.Close()
	ts.Store.Close()
	ts.client.CloseIdleConnections()
	ts.fromMu.Lock()
	for _, c := range ts.from {
		c.CloseIdleConnections()
	}
	ts.fromMu.Unlock()
	ts.http = nil
}

func (ts *testServer) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := ts.client.Get(ts.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// metric returns the value of one sample line of /metrics, e.g.
// `assist_signal_connections{role="novice"}`.
func (ts *testServer) metric(t *testing.T, sample string) string {
	t.Helper()
	_, body := ts.get(t, "/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s:\n%s", sample, body)
	return ""
}

// peer is a test signalling client.
type peer struct {
	t  *testing.T
	ws *websocket.Conn
}

func (ts *testServer) dial(t *testing.T) *peer {
	t.Helper()
	return ts.dialFrom(t, "")
}

// dialFrom connects from the loopback address src, e.g. "127.0.0.2" (Linux
// routes all of 127/8 to lo), so that a test can have clients at distinct
// addresses; "" is the default, 127.0.0.1.
func (ts *testServer) dialFrom(t *testing.T, src string) *peer {
	t.Helper()
	ws, resp, err := ts.tryDial(src)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial from %q: %v (HTTP %d)", src, err, status)
	}
	p := &peer{t: t, ws: ws}
	t.Cleanup(func() { ws.CloseNow() })
	return p
}

// tryDial opens a signalling connection from src ("" for the default),
// returning the HTTP response of a refused upgrade.
func (ts *testServer) tryDial(src string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "wss" + strings.TrimPrefix(ts.URL, "https") + "/v1/signal"
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: ts.clientFrom(src)})
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(1 << 20)
	return ws, resp, nil
}

// clientFrom returns an HTTP client whose connections come from src.
func (ts *testServer) clientFrom(src string) *http.Client {
	if src == "" {
		return ts.client
	}
	ts.fromMu.Lock()
	defer ts.fromMu.Unlock()
	if c := ts.from[src]; c != nil {
		return c
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: PinnedTLSConfig(ts.Fingerprint), DialContext: d.DialContext}}
	if ts.from == nil {
		ts.from = make(map[string]*http.Client)
	}
	ts.from[src] = c
	return c
}

func (p *peer) sendRaw(msg string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		p.t.Fatalf("send %.80s: %v", msg, err)
	}
}

// recvRaw returns the next message's bytes. The deadline only stops a
// broken test from hanging.
func (p *peer) recvRaw() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, b, err := p.ws.Read(ctx)
	return b, err
}

type reply struct {
	Type    string          `json:"type"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Session string          `json:"session"`
	Reason  string          `json:"reason"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
	ICE     []ICEServer     `json:"ice"`
	From    string          `json:"from"`
}

func (p *peer) recv() reply {
	p.t.Helper()
	b, err := p.recvRaw()
	if err != nil {
		p.t.Fatalf("recv: %v", err)
	}
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		p.t.Fatalf("recv %s: %v", b, err)
	}
	return r
}

func (p *peer) expect(typ string) reply {
	p.t.Helper()
	r := p.recv()
	if r.Type != typ {
		p.t.Fatalf("got %+v, want a %q message", r, typ)
	}
	return r
}

func (p *peer) expectError(code string) reply {
	p.t.Helper()
	r := p.recv()
	if r.Type != TypeError || r.Code != code {
		p.t.Fatalf("got %+v, want error %q", r, code)
	}
	if r.Message == "" {
		p.t.Errorf("error %q has no message", code)
	}
	return r
}

// expectClosed waits for the server to close the connection with status.
func (p *peer) expectClosed(status websocket.StatusCode) {
	p.t.Helper()
	b, err := p.recvRaw()
	if err == nil {
		p.t.Fatalf("got %s, want the connection closed with %v", b, status)
	}
	if got := websocket.CloseStatus(err); got != status {
		p.t.Fatalf("connection ended with %v (%v), want %v", got, err, status)
	}
}

// expectClosedWith is expectClosed that also wants reason.
func (p *peer) expectClosedWith(status websocket.StatusCode, reason string) {
	p.t.Helper()
	b, err := p.recvRaw()
	if err == nil {
		p.t.Fatalf("got %s, want the connection closed with %v", b, status)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != status || ce.Reason != reason {
		p.t.Fatalf("connection ended with %v, want %v (%q)", err, status, reason)
	}
}

func (p *peer) register(id string, expires time.Time) {
	p.t.Helper()
	p.sendRaw(`{"type":"register","id":"` + id + `","expires":"` + expires.Format(time.RFC3339) + `"}`)
}

func (p *peer) join(id string) { p.t.Helper(); p.sendRaw(`{"type":"join","id":"` + id + `"}`) }

// expertAddr is where pair's experts come from: an address of their own,
// as in real life, so that pairings get TURN credentials.
const expertAddr = "127.0.0.2"

// pair connects a registered novice and a joined expert on id.
func (ts *testServer) pair(t *testing.T, id string) (novice, expert *peer, session string) {
	t.Helper()
	novice, expert, e, _ := pairVia(t, ts, ts, id)
	return novice, expert, e.Session
}

// pairVia registers a novice for id on home and joins an expert to it on
// via (home itself, or another node of the mesh); e and n are what the
// expert and the novice were told ("paired").
func pairVia(t *testing.T, home, via *testServer, id string) (novice, expert *peer, e, n reply) {
	t.Helper()
	novice = home.dial(t)
	novice.register(id, home.Clock.Now().Add(time.Hour))
	novice.expect(TypeRegistered)
	expert = via.dialFrom(t, expertAddr)
	expert.join(id)
	e = expert.expect(TypePaired)
	n = novice.expect(TypePaired)
	if e.Session == "" || e.Session != n.Session {
		t.Fatalf("sessions %q and %q, want the same non-empty one", e.Session, n.Session)
	}
	return novice, expert, e, n
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
