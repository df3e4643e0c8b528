package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/server"
)

// The probes speak the signalling protocol themselves, with
// github.com/coder/websocket, rather than through server.Client: they need
// to choose the source address (each loopback address plays one client of
// the internet), see the HTTP status of a refused upgrade, and read
// answers the client package does not know (a hardened server's new
// message types and error codes are counted, not treated as failures).

// endpoint is the server under test.
type endpoint struct {
	wsURL string // wss://HOST:PORT/v1/signal
	host  string // HOST:PORT
	tls   *tls.Config
}

// newEndpoint checks that serverURL is https on a loopback address (the
// probes flood what they talk to: never anything but this machine) and
// pins its certificate to fingerprint.
func newEndpoint(serverURL, fingerprint string) (*endpoint, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want https://127.0.0.1:PORT, as assist serve prints it", serverURL)
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil || !ip.IsLoopback() || !ip.Is4() {
		return nil, fmt.Errorf("server URL %q: the probes only run against a server on an IPv4 loopback address (127.0.0.0/8)", serverURL)
	}
	if fingerprint == "" {
		return nil, errors.New("no server fingerprint: pass -fingerprint sha256:HEX as assist serve prints it")
	}
	conf := server.PinnedTLSConfig(fingerprint)
	// Websockets are HTTP/1.1: no ALPN, so the server never picks h2.
	conf.NextProtos = nil
	return &endpoint{wsURL: "wss://" + u.Host + "/v1/signal", host: u.Host, tls: conf}, nil
}

// loopback returns the IPv4 loopback address 127.a.b.c for the three low
// bytes; it panics on a value out of range (a programming error).
func loopback(a, b, c int) string {
	for _, v := range []int{a, b, c} {
		if v < 0 || v > 255 {
			panic("loopback: byte out of range")
		}
	}
	return fmt.Sprintf("127.%d.%d.%d", a, b, c)
}

// dialer opens signalling connections from one loopback source address.
type dialer struct {
	src    string
	ep     *endpoint
	tr     *http.Transport
	client *http.Client
}

// from returns a dialer whose connections come from the loopback address
// src, resuming TLS sessions as any client library would (which keeps the
// floods' own CPU down, and is what an attacker would do too).
func (e *endpoint) from(src string) (*dialer, error) {
	ip, err := netip.ParseAddr(src)
	if err != nil || !ip.IsLoopback() || !ip.Is4() {
		return nil, fmt.Errorf("source address %q: want an IPv4 loopback address", src)
	}
	nd := &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IP(ip.AsSlice())},
		Timeout:   10 * time.Second,
	}
	conf := e.tls.Clone()
	conf.ClientSessionCache = tls.NewLRUClientSessionCache(16)
	tr := &http.Transport{
		DialContext:         nd.DialContext,
		TLSClientConfig:     conf,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &dialer{src: src, ep: e, tr: tr, client: &http.Client{Transport: tr}}, nil
}

// refusedError is an upgrade the server answered with an HTTP status
// other than 101.
type refusedError struct{ status int }

func (e *refusedError) Error() string { return "refused with HTTP " + strconv.Itoa(e.status) }

// dial opens one signalling websocket. A refused upgrade is a
// *refusedError.
func (d *dialer) dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, d.ep.wsURL, &websocket.DialOptions{HTTPClient: d.client})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &refusedError{status: resp.StatusCode}
		}
		return nil, fmt.Errorf("dial %s from %s: %w", d.ep.wsURL, d.src, err)
	}
	ws.SetReadLimit(1 << 20)
	return ws, nil
}

// close forgets the dialer's idle connections.
func (d *dialer) close() { d.tr.CloseIdleConnections() }

// dialKind names the outcome of a dial for the tallies: "http-429",
// "dial-error", "timeout".
func dialKind(err error) string {
	var re *refusedError
	switch {
	case errors.As(err, &re):
		return "http-" + strconv.Itoa(re.status)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "dial-error"
}

// peer is one open signalling connection with its reader.
type peer struct {
	ws   *websocket.Conn
	in   chan server.Message // received messages; see reader
	done chan struct{}       // closed when the reader has stopped
	err  error               // why the reader stopped; read after done

	// dropped counts messages the owner did not take in time (the
	// probes that merely hold a connection never read it).
	dropped atomic.Int64
	once    sync.Once
}

// peerQueue is how many received messages wait for the owner; more are
// dropped and counted.
const peerQueue = 64

// dialPeer dials and starts the reader.
func (d *dialer) dialPeer(ctx context.Context) (*peer, error) {
	ws, err := d.dial(ctx)
	if err != nil {
		return nil, err
	}
	return startPeer(ws), nil
}

func startPeer(ws *websocket.Conn) *peer {
	p := &peer{ws: ws, in: make(chan server.Message, peerQueue), done: make(chan struct{})}
	go p.read()
	return p
}

// read delivers messages until the connection ends. It never blocks on the
// owner: a full queue drops the message (and counts it).
func (p *peer) read() {
	defer close(p.done)
	for {
		typ, b, err := p.ws.Read(context.Background())
		if err != nil {
			p.err = err
			return
		}
		m := parseServerMessage(typ, b)
		select {
		case p.in <- m:
		default:
			p.dropped.Add(1)
		}
	}
}

// parseServerMessage decodes one message from the server; what is not a
// JSON object in a text message comes back with Type "?unparseable".
func parseServerMessage(typ websocket.MessageType, b []byte) server.Message {
	var m server.Message
	if typ != websocket.MessageText || json.Unmarshal(b, &m) != nil || m.Type == "" {
		return server.Message{Type: typeUnparseable}
	}
	return m
}

// typeUnparseable marks a server message that could not be read.
const typeUnparseable = "?unparseable"

// errClosed is returned by recv once the connection has ended.
var errClosed = errors.New("connection closed")

// recv returns the next message, errClosed (wrapping the reader's error)
// once the connection has ended and every message was taken, or ctx's
// error.
func (p *peer) recv(ctx context.Context) (server.Message, error) {
	select {
	case m := <-p.in:
		return m, nil
	case <-ctx.Done():
		return server.Message{}, ctx.Err()
	case <-p.done:
		select {
		case m := <-p.in:
			return m, nil
		default:
		}
		return server.Message{}, fmt.Errorf("%w: %w", errClosed, p.err)
	}
}

// send writes one message.
func (p *peer) send(ctx context.Context, m server.Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("send %s: %w", m.Type, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("send %s: %w", m.Type, err)
	}
	return nil
}

// closed reports whether the connection has ended.
func (p *peer) closed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// close drops the connection at once and waits for the reader.
func (p *peer) close() {
	p.once.Do(func() { p.ws.CloseNow() })
	<-p.done
}

// workerConn is one probe worker's connection: dialled when the worker
// has none (or the last one ended), dropped when it breaks. pause waits
// between tries, so a server that refuses is not spun against.
type workerConn struct {
	d    *dialer
	wait time.Duration
	p    *peer
}

// get returns the worker's open connection, dialling one if needed; fresh
// says it was just dialled. A failed dial returns its error after a pause
// (at once when ctx has ended).
func (w *workerConn) get(ctx context.Context) (p *peer, fresh bool, err error) {
	if w.p != nil && w.p.closed() {
		w.drop()
	}
	if w.p != nil {
		return w.p, false, nil
	}
	p, err = w.d.dialPeer(ctx)
	if err != nil {
		w.pause(ctx)
		return nil, false, err
	}
	w.p = p
	return p, true, nil
}

// drop closes the connection; the next get dials a new one.
func (w *workerConn) drop() {
	if w.p != nil {
		w.p.close()
		w.p = nil
	}
}

// handOver gives the connection to the caller to keep open (a
// registration held); the next get dials a new one.
func (w *workerConn) handOver() *peer {
	p := w.p
	w.p = nil
	return p
}

// pause waits w.wait, or until ctx ends.
func (w *workerConn) pause(ctx context.Context) {
	select {
	case <-time.After(w.wait):
	case <-ctx.Done():
	}
}

// registerMsg is a novice's registration of id for an hour.
func registerMsg(id string) server.Message {
	return server.Message{Type: server.TypeRegister, ID: id, Expires: time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
}

// kind names a server message for the tallies: its type, and for errors
// the code ("error:unknown"). Names from the server are cleaned and
// bounded, so a hostile or newer server cannot flood the report.
func kind(m server.Message) string {
	if m.Type == server.TypeError {
		return "error:" + clean(m.Code)
	}
	if m.Type == typeUnparseable {
		return m.Type
	}
	return clean(m.Type)
}

// recvKind names why recv failed: "closed" or "timeout".
func recvKind(err error) string {
	if errors.Is(err, errClosed) {
		return "closed"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "recv-error"
}

// clean keeps [a-z0-9_-] of s, other bytes as '?', at most 32 of them.
func clean(s string) string {
	if s == "" {
		return "(empty)"
	}
	const maxLen = 32
	b := []byte(s)
	if len(b) > maxLen {
		b = b[:maxLen]
	}
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '?'
		}
	}
	return string(b)
}

// turnEntries counts the TURN URLs (turn: and turns:) of a "paired"
// message's ICE servers that come with a username and a credential.
func turnEntries(ice []server.ICEServer) (withCreds, without int) {
	for _, s := range ice {
		for _, u := range s.URLs {
			if !isTURN(u) {
				continue
			}
			if s.Username != "" && s.Credential != "" {
				withCreds++
			} else {
				without++
			}
		}
	}
	return withCreds, without
}

func isTURN(u string) bool {
	u = strings.ToLower(u)
	return strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:")
}
