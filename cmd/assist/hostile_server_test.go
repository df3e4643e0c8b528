package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/rendezvous"
	"github.com/assist-project/assist/server"
)

// The hostile rendezvous server (issue 4): a WebSocket proxy that speaks the
// real signalling protocol to the clients (package server's parser and
// message types) and passes it to a real `assist serve` behind it, so
// pairing, registration and failure counting are the real server's. On the
// way back to the clients a test-chosen tamper function sees every message
// and delivers what it likes: rewritten SDP, a man in the middle with
// PeerConnections of its own, replays of an earlier pairing, malformed,
// oversized and unknown messages. No production code has a hook for this.

// hostileServer is the proxy. Its URL and Fingerprint are what the clients
// are given; they never talk to the real server directly.
type hostileServer struct {
	t                *testing.T
	URL, Fingerprint string
	up               *servedProc

	mu     sync.Mutex
	tamper tamperFunc
	conns  map[*proxyConn]struct{}
	// received[session][role] is every relay the real server sent to that
	// side of that pairing, as rtc signalling messages: what a replay
	// replays.
	received map[string]map[string][][]byte
	wg       sync.WaitGroup
}

// tamperFunc sees each message the real server sends to c and decides what
// c's client gets instead (passThrough delivers it unchanged).
type tamperFunc func(c *proxyConn, m server.Message)

func passThrough(c *proxyConn, m server.Message) { c.deliver(m) }

// proxyConn is one client's connection, spliced to its own connection to
// the real server.
type proxyConn struct {
	h   *hostileServer
	ws  *websocket.Conn
	up  *server.Client
	wmu sync.Mutex

	mu      sync.Mutex
	role    string // "novice" or "expert", from the first request
	session string // of the last "paired"
}

func (c *proxyConn) state() (role, session string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.role, c.session
}

// deliverRaw writes one WebSocket text message to the client, as is.
func (c *proxyConn) deliverRaw(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.ws.Write(ctx, websocket.MessageText, b)
}

func (c *proxyConn) deliver(m server.Message) {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // our own message
	}
	c.deliverRaw(b)
}

// relay delivers an rtc signalling message the way the real server relays
// the peer's: base64 in a JSON string.
func (c *proxyConn) relay(msg []byte) {
	data, _ := json.Marshal(base64.StdEncoding.EncodeToString(msg))
	c.deliver(server.Message{Type: server.TypeRelay, Data: data})
}

// startHostile starts the proxy in front of up.
func startHostile(t *testing.T, up *servedProc) *hostileServer {
	t.Helper()
	h := &hostileServer{t: t, up: up, tamper: passThrough, conns: make(map[*proxyConn]struct{}),
		received: make(map[string]map[string][][]byte)}
	cert, err := server.LoadOrCreateCert(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	go hs.ServeTLS(ln, "", "")
	h.URL, h.Fingerprint = "https://"+ln.Addr().String(), server.CertFingerprint(cert)
	t.Cleanup(func() {
		hs.Close()
		// Hijacked WebSocket connections outlive the http.Server.
		h.mu.Lock()
		for c := range h.conns {
			c.ws.CloseNow()
			c.up.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h
}

func (h *hostileServer) setTamper(f tamperFunc) {
	h.mu.Lock()
	h.tamper = f
	h.mu.Unlock()
}

// recorded returns what the real server relayed to role in session.
func (h *hostileServer) recorded(session, role string) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.received[session][role]...)
}

// sessions returns the pairings seen so far, in no order.
func (h *hostileServer) sessions() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var s []string
	for id := range h.received {
		s = append(s, id)
	}
	return s
}

func (h *hostileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/signal" {
		http.NotFound(w, r)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	up, err := server.DialSignal(ctx, h.up.URL, h.up.Fingerprint)
	cancel()
	if err != nil {
		ws.Close(websocket.StatusInternalError, "upstream")
		return
	}
	c := &proxyConn{h: h, ws: ws, up: up}
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
	}()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := up.Recv(context.Background())
			var se *server.SignalError
			if err != nil && !errors.As(err, &se) {
				ws.Close(websocket.StatusGoingAway, "upstream closed")
				return
			}
			h.fromServer(c, m)
		}
	}()
	for {
		_, b, err := ws.Read(context.Background())
		if err != nil {
			break
		}
		sig, err := server.ParseSignal(b)
		if err != nil {
			h.t.Errorf("hostile server: a client sent a message the real server would refuse: %v: %q", err, b)
			break
		}
		c.mu.Lock()
		switch sig.Type {
		case server.TypeRegister:
			c.role = "novice"
		case server.TypeJoin:
			c.role = "expert"
		}
		c.mu.Unlock()
		m := server.Message{Type: sig.Type, ID: sig.ID, Session: sig.Session, Data: sig.Data, Reason: sig.Reason}
		if sig.Type == server.TypeRegister {
			m.Expires = sig.Expires.UTC().Format(time.RFC3339)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = up.Send(ctx, m)
		cancel()
		if err != nil {
			break
		}
	}
	up.Close()
	ws.CloseNow()
	<-done
}

// fromServer records m and hands it to the tamper function.
func (h *hostileServer) fromServer(c *proxyConn, m server.Message) {
	if m.Type == server.TypePaired {
		c.mu.Lock()
		c.session = m.Session
		c.mu.Unlock()
	}
	role, session := c.state()
	h.mu.Lock()
	if m.Type == server.TypeRelay && session != "" {
		if msg, ok := decodeRelay(m.Data); ok {
			if h.received[session] == nil {
				h.received[session] = make(map[string][][]byte)
			}
			h.received[session][role] = append(h.received[session][role], msg)
		}
	}
	tamper := h.tamper
	h.mu.Unlock()
	tamper(c, m)
}

// decodeRelay returns the rtc signalling message a relay carries.
func decodeRelay(data json.RawMessage) ([]byte, bool) {
	var s string
	if json.Unmarshal(data, &s) != nil {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

// rtcSignal is rtc's signalling message (transport/rtc/signal.go), as a
// server sees it: it is not encrypted, only authenticated end to end by
// the PAKE's binding to the DTLS certificates.
type rtcSignal struct {
	Type          string  `json:"type"`
	SDP           string  `json:"sdp,omitempty"`
	Candidate     string  `json:"candidate,omitempty"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
}

var sdpFingerprint = regexp.MustCompile(`a=fingerprint:sha-256 [0-9A-F:]+`)

// rewriteFingerprints announces a certificate of the server's in every
// offer and answer, without terminating DTLS itself.
func rewriteFingerprints(c *proxyConn, m server.Message) {
	if msg, ok := decodeRelay(m.Data); ok && m.Type == server.TypeRelay {
		var s rtcSignal
		if json.Unmarshal(msg, &s) == nil && (s.Type == "offer" || s.Type == "answer") {
			b := make([]byte, 32)
			rand.Read(b)
			h := strings.ToUpper(hex.EncodeToString(b))
			var fp []string
			for i := 0; i < len(h); i += 2 {
				fp = append(fp, h[i:i+2])
			}
			s.SDP = sdpFingerprint.ReplaceAllString(s.SDP, "a=fingerprint:sha-256 "+strings.Join(fp, ":"))
			out, _ := json.Marshal(s)
			c.relay(out)
			return
		}
	}
	c.deliver(m)
}

// replayTo plays, to role's client, what that side received in an earlier
// pairing, right after "paired" and before the live messages.
func replayTo(role string, old [][]byte) tamperFunc {
	return func(c *proxyConn, m server.Message) {
		c.deliver(m)
		if r, _ := c.state(); r == role && m.Type == server.TypePaired {
			for _, msg := range old {
				c.relay(msg)
			}
		}
	}
}

// injectAfterPaired delivers bad, as is, to role's client right after its
// "paired", then lets everything through.
func injectAfterPaired(role string, bad []byte) tamperFunc {
	return func(c *proxyConn, m server.Message) {
		c.deliver(m)
		if r, _ := c.state(); r == role && m.Type == server.TypePaired {
			c.deliverRaw(bad)
		}
	}
}

// mitm terminates WebRTC towards both ends with PeerConnections of its
// own and relays the data channel between them: the PAKE's messages pass
// through it in the clear. It records what the expert sent in the data
// channel; with replay set it plays those frames of an earlier pairing to
// the novice instead of relaying the live expert's.
type mitm struct {
	t      *testing.T
	replay [][]byte

	mu       sync.Mutex
	sessions map[string]*mitmSession
	// fromExpert is every data-channel message an expert sent, in order.
	fromExpert [][]byte
}

// mitmSession is the man in the middle of one pairing.
type mitmSession struct {
	m *mitm
	// toExpert is the fake novice the expert talks to; toNovice the fake
	// expert the novice talks to.
	toExpert, toNovice *mitmPeer
	closeOnce          sync.Once
}

// mitmPeer is one of the mitm's PeerConnections and its data channel.
type mitmPeer struct {
	pc     *webrtc.PeerConnection
	dc     *webrtc.DataChannel
	opened chan struct{}
	conn   chan *proxyConn // the client it faces, once "paired" reached it
	msgs   chan []byte     // data-channel messages for it to send
	done   chan struct{}   // closed when the mitm hangs up
}

// queue has p send b in its data channel, unless the mitm hung up.
func (p *mitmPeer) queue(b []byte) {
	select {
	case p.msgs <- b:
	case <-p.done:
	}
}

func newMITM(t *testing.T, replay [][]byte) *mitm {
	return &mitm{t: t, replay: replay, sessions: make(map[string]*mitmSession)}
}

func (m *mitm) recordedFromExpert() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]byte(nil), m.fromExpert...)
}

func (m *mitm) newPeer() *mitmPeer {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		m.t.Errorf("mitm: %v", err)
		return nil
	}
	negotiated, id := true, uint16(0)
	dc, err := pc.CreateDataChannel("assist", &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &id})
	if err != nil {
		m.t.Errorf("mitm: %v", err)
	}
	p := &mitmPeer{pc: pc, dc: dc, opened: make(chan struct{}), conn: make(chan *proxyConn, 1),
		msgs: make(chan []byte, 64), done: make(chan struct{})}
	dc.OnOpen(func() {
		close(p.opened)
		go func() {
			for {
				select {
				case b := <-p.msgs:
					if dc.Send(b) != nil {
						return
					}
				case <-p.done:
					return
				}
			}
		}()
	})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		s := rtcSignal{Type: "end-of-candidates"}
		if c != nil {
			init := c.ToJSON()
			s = rtcSignal{Type: "candidate", Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex}
		}
		p.send(s)
	})
	return p
}

// send relays an rtc signalling message to the client p faces.
func (p *mitmPeer) send(s rtcSignal) {
	b, _ := json.Marshal(s)
	go func() {
		select {
		case c := <-p.conn:
			p.conn <- c
			c.relay(b)
		case <-time.After(30 * time.Second):
		}
	}()
}

func (s *mitmSession) close() {
	s.closeOnce.Do(func() {
		for _, p := range []*mitmPeer{s.toExpert, s.toNovice} {
			close(p.done)
			go p.pc.Close()
		}
	})
}

// session returns the mitm of one pairing, creating it (and the offer to
// the novice) on first use.
func (m *mitm) session(id string) *mitmSession {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[id]; s != nil {
		return s
	}
	s := &mitmSession{m: m, toExpert: m.newPeer(), toNovice: m.newPeer()}
	m.sessions[id] = s
	m.t.Cleanup(s.close)
	s.toExpert.dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		m.mu.Lock()
		m.fromExpert = append(m.fromExpert, msg.Data)
		m.mu.Unlock()
		if m.replay == nil {
			s.toNovice.queue(msg.Data)
		}
	})
	n := 0
	s.toNovice.dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		if m.replay == nil {
			s.toExpert.queue(msg.Data)
			return
		}
		// One replayed frame for each of the novice's; when they run
		// out, hang up on both.
		n++
		if n < len(m.replay) {
			s.toNovice.queue(m.replay[n])
			return
		}
		time.AfterFunc(time.Second, s.close)
	})
	if m.replay != nil {
		go func() {
			select {
			case <-s.toNovice.opened:
				s.toNovice.queue(m.replay[0])
			case <-s.toNovice.done:
			}
		}()
	}
	offer, err := s.toNovice.pc.CreateOffer(nil)
	if err == nil {
		s.toNovice.send(rtcSignal{Type: "offer", SDP: offer.SDP})
		err = s.toNovice.pc.SetLocalDescription(offer)
	}
	if err != nil {
		m.t.Errorf("mitm: offer: %v", err)
	}
	return s
}

// tamper swallows every relay between the two ends and answers it itself.
func (m *mitm) tamper(c *proxyConn, msg server.Message) {
	role, session := c.state()
	if msg.Type == server.TypeBye || msg.Type == server.TypePeerLeft || session == "" {
		c.deliver(msg)
		return
	}
	s := m.session(session)
	me := s.toNovice // the fake peer facing c
	if role == "expert" {
		me = s.toExpert
	}
	switch msg.Type {
	case server.TypePaired:
		c.deliver(msg)
		select {
		case me.conn <- c:
		default:
		}
		return
	case server.TypeRelay:
	default:
		c.deliver(msg)
		return
	}
	b, ok := decodeRelay(msg.Data)
	var sig rtcSignal
	if !ok || json.Unmarshal(b, &sig) != nil {
		return
	}
	// A relay to the novice came from the expert, for the fake novice.
	peer := s.toExpert
	if role == "expert" {
		peer = s.toNovice
	}
	switch sig.Type {
	case "offer":
		if err := peer.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sig.SDP}); err != nil {
			m.t.Errorf("mitm: offer: %v", err)
			return
		}
		answer, err := peer.pc.CreateAnswer(nil)
		if err != nil {
			m.t.Errorf("mitm: answer: %v", err)
			return
		}
		peer.send(rtcSignal{Type: "answer", SDP: answer.SDP})
		peer.pc.SetLocalDescription(answer)
	case "answer":
		peer.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sig.SDP})
	case "candidate":
		peer.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: sig.Candidate, SDPMid: sig.SDPMid, SDPMLineIndex: sig.SDPMLineIndex})
	}
}

// wrongPasswordLogs counts the novice's counted failed attempts through the
// server, and returns the last "attempts_left" it logged.
func wrongPasswordLogs(p *lab.LineProc) (n int, left string) {
	re := regexp.MustCompile(`msg="rendezvous: wrong password".*attempts_left=(\d+)`)
	for _, l := range strings.Split(p.Stderr(), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			n++
			left = m[1]
		}
	}
	return n, left
}

// TestHostileServer: a rendezvous server that tampers with the signalling
// gets no session. The real `assist invite --server` and `assist join`
// meet through a proxy in front of a real `assist serve` that, in turn,
// rewrites the DTLS fingerprints, puts PeerConnections of its own in the
// middle, replays an earlier pairing's signalling and PAKE messages, and
// sends malformed, oversized and unknown messages. Every attempt fails
// with a clear error on the expert's side; the novice's agent keeps
// running, counts only the attempts in which a password could have been
// tested, and an honest pairing through the same server works afterwards.
func TestHostileServer(t *testing.T) {
	e2e(t)
	t.Parallel()
	d := newDesktop(t)
	real := startServe(t, t.TempDir())
	h := startHostile(t, real)
	nov := startServerInvite(t, d.Display, &servedProc{URL: h.URL, Fingerprint: h.Fingerprint})
	serverFlags := []string{"--server", h.URL, "--server-fingerprint", h.Fingerprint}
	join := func(t *testing.T) *lab.LineProc {
		return lab.StartLines(t, nil, lab.AssistBinary(t), append(append([]string{"join", "--no-browser", "--name", expertName}, serverFlags...), nov.Code)...)
	}

	// An honest pairing first, whose signalling the server keeps.
	p := join(t)
	p.WaitLine(t, `^state: viewing`, lineTimeout)
	nov.WaitLine(t, `^`+expertName+` connected from `, lineTimeout)
	stop(t, p, "assist join")
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	honest := h.sessions()
	if len(honest) != 1 {
		t.Fatalf("the honest join made pairings %q, want one", honest)
	}
	noSessionIDs(t, honest, map[string]*lab.LineProc{"assist invite": nov.LineProc, "assist join": p})

	// failed joins through the hostile server: it must fail with a last
	// line holding want, the novice must keep running and see no expert,
	// and its count of failed attempts must be counted, as logged.
	counted := 0
	failed := func(t *testing.T, countsAttempt bool, want ...string) {
		t.Helper()
		msg := joinCodeFails(t, nil, append(serverFlags, nov.Code)...)
		t.Logf("assist join: %s", msg)
		wantContains(t, "assist join's error", msg, want...)
		if exited, err := nov.Exited(); exited {
			t.Fatalf("assist invite exited (%v)\n%s", err, nov.Output())
		}
		if n := strings.Count(nov.Stdout(), " connected from "); n != 1 {
			t.Fatalf("the novice saw %d experts, want only the honest one\n%s", n, nov.Output())
		}
		if countsAttempt {
			counted++
		}
		// The novice settles its side of the attempt after the expert
		// gave up (at most its own handshake timeout later).
		deadline := time.Now().Add(rendezvous.RTCTimeout + 5*time.Second)
		for {
			n, left := wrongPasswordLogs(nov.LineProc)
			if n == counted && (n == 0 || left == fmt.Sprint(5-n)) {
				break
			}
			if n > counted || time.Now().After(deadline) {
				t.Fatalf("the novice counted %d failed attempts (%s left), want %d\n%s", n, left, counted, nov.Stderr())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	t.Run("fingerprints rewritten", func(t *testing.T) {
		// DTLS checks the certificate against the SDP's fingerprint.
		h.setTamper(rewriteFingerprints)
		failed(t, false, "could not connect to the other computer")
	})
	var recorded [][]byte
	t.Run("man in the middle", func(t *testing.T) {
		m := newMITM(t, nil)
		h.setTamper(m.tamper)
		// Both ends saw the mitm's certificate as their peer's: the PAKE's
		// bindings differ. The novice cannot tell this from a wrong
		// password, so it counts.
		failed(t, true, "wrong password (or a tampered connection)")
		recorded = m.recordedFromExpert()
	})
	t.Run("PAKE replayed", func(t *testing.T) {
		if len(recorded) < 2 {
			t.Skipf("the man in the middle recorded %d messages of the expert", len(recorded))
		}
		// The frames the expert sent through the mitm, played to the
		// novice in a new pairing: hello, share, and whatever came last.
		h.setTamper(newMITM(t, recorded).tamper)
		failed(t, true, "wrong password (or a tampered connection)")
	})
	t.Run("signalling replayed", func(t *testing.T) {
		// The honest pairing's offer and candidates, to the novice, before
		// the live ones.
		h.setTamper(replayTo("novice", h.recorded(honest[0], "novice")))
		failed(t, false, "ended the attempt", "bad signalling message")
	})
	for _, tc := range []struct {
		name, to string
		msg      []byte
		want     []string
	}{
		{"relay not a string", "novice", []byte(`{"type":"relay","data":{"sdp":1}}`), []string{"ended the attempt", "bad signalling message"}},
		{"relay not base64", "expert", []byte(`{"type":"relay","data":"%%%"}`), []string{"bad signalling message", "not base64"}},
		{"oversized signal", "expert", relayOf(append([]byte(`{"type":"offer","sdp":"v=0`), append(make([]byte, 70<<10), `"}`...)...)), []string{"bad signalling message", "max 65536"}},
		{"not JSON", "expert", []byte(`{"type":"relay","data":`), []string{"bad signalling message"}},
		{"unknown type", "expert", []byte(`{"type":"frobnicate"}`), []string{"bad signalling message", `unknown message type "frobnicate"`}},
		{"unknown code", "expert", []byte(`{"type":"error","code":"frobnicated","message":"\u001b[2Jboom"}`), []string{"bad signalling message", `error "frobnicated": [2Jboom`}},
		{"over the read limit", "novice", relayOf(make([]byte, 1<<20)), []string{"left the rendezvous server"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.setTamper(injectAfterPaired(tc.to, tc.msg))
			registered := strings.Count(nov.Stderr(), `msg="rendezvous server: registered again"`)
			failed(t, false, tc.want...)
			if tc.to == "novice" && strings.Contains(tc.name, "limit") {
				// The novice's connection closed over it: it registers
				// again.
				waitStderr(t, nov.LineProc, `msg="rendezvous server: registered again"`, registered+1)
			}
		})
	}

	t.Run("honest again", func(t *testing.T) {
		h.setTamper(passThrough)
		p := join(t)
		p.WaitLine(t, `^state: viewing`, lineTimeout)
		nov.WaitLine(t, `^`+expertName+` connected from `, lineTimeout)
		stop(t, p, "assist join")
		nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	})
	// The real server counted the failed authentications the novice
	// reported, and nothing else.
	_, body, err := lab.GetPinned(real.URL+"/metrics", real.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("assist_failed_authentications_total %d", counted); !strings.Contains(body, want+"\n") {
		t.Errorf("the server's metrics lack %q:\n%s", want, grepLines(body, "assist_failed"))
	}
	if strings.Contains(nov.Stderr(), nov.Password) {
		t.Errorf("the password appears in the novice's log")
	}
	noSessionIDs(t, h.sessions(), map[string]*lab.LineProc{"assist invite": nov.LineProc})
	stop(t, nov.LineProc, "assist invite")
}

// noSessionIDs checks that none of the server's session ids appears in
// the programs' logs: a session id fetches TURN credentials.
func noSessionIDs(t *testing.T, ids []string, procs map[string]*lab.LineProc) {
	t.Helper()
	for _, id := range ids {
		for name, p := range procs {
			if id != "" && strings.Contains(p.Stderr(), id) {
				t.Errorf("the session id %s appears in the log of %s:\n%s", id, name, grepLines(p.Stderr(), id))
			}
		}
	}
}

// waitStderr waits until p's stderr holds sub n times.
func waitStderr(t *testing.T, p *lab.LineProc, sub string, n int) {
	t.Helper()
	deadline := time.Now().Add(lineTimeout)
	for strings.Count(p.Stderr(), sub) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q does not appear %d times in the log:\n%s", sub, n, p.Stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// relayOf is a relay message carrying msg as the real server would.
func relayOf(msg []byte) []byte {
	data, _ := json.Marshal(base64.StdEncoding.EncodeToString(msg))
	b, _ := json.Marshal(server.Message{Type: server.TypeRelay, Data: data})
	return b
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
