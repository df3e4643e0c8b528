package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
)

// The race of `assist join FILE` (rendezvous.Race), end to end: the real `assist
// serve`, `assist invite --server` (whose file names its direct address and
// the server) and `assist join FILE` on loopback, where both paths work
// unless a test breaks or holds one.

// TestJoinRace: a file whose direct address is dead (it accepts TCP and
// never answers) joins through the server without waiting for the direct
// path to time out; with both paths alive one wins and the other is
// stopped; a wrong password costs the invitation exactly one attempt,
// whichever path gets to try it.
func TestJoinRace(t *testing.T) {
	e2e(t)
	t.Parallel()
	d := newDesktop(t)
	srv := startServe(t, t.TempDir())
	nov := startServerInvite(t, d.Display, srv)
	direct := invitationAddrs(t, nov.File)
	wrong := writePassword(t, nov.Words[0]+"-"+otherWord(nov.Words[1]))
	right := writePassword(t, nov.Password)
	join := func(t *testing.T, file, password string) *lab.LineProc {
		return lab.StartLines(t, nil, lab.AssistBinary(t), "join", "--no-browser", "--name", expertName,
			"--server-fingerprint", srv.Fingerprint, "--password-file", password, file)
	}
	// counted is how many wrong passwords the novice has counted so far.
	counted := 0

	t.Run("dead address", func(t *testing.T) {
		sl := startSilentListener(t)
		p := join(t, withAddrs(t, nov.File, sl.addr), right)
		p.WaitLine(t, `^connected to `+noviceName+` via the rendezvous server \(direct\)$`, lineTimeout)
		p.WaitLine(t, `^path: direct$`, lineTimeout)
		p.WaitLine(t, `^state: viewing`, lineTimeout)
		nov.WaitLine(t, `^`+expertName+` connected from \S+ through the Assist server$`, lineTimeout)
		// The direct path was under way, stuck in TLS, when the server
		// path authenticated, and was stopped then: it did not use up its
		// time (and the server path did not wait for it to give up).
		if sl.accepted() == 0 {
			t.Errorf("the direct path never connected to the dead address")
		}
		waitLogOrder(t, p,
			`msg="join: path authenticated" path=server`,
			`msg="join: path stopped" path=direct err=".*context canceled"`)
		sl.waitClosed(t)
		stop(t, p, "assist join")
		nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	})

	t.Run("both alive", func(t *testing.T) {
		p := join(t, nov.File, right)
		m := p.WaitLine(t, `^connected to `+noviceName+` via (direct 127\.0\.0\.1:\d+|the rendezvous server \(direct\))$`, lineTimeout)
		winner, loser := "direct", "server"
		if strings.HasPrefix(m[1], "the rendezvous server") {
			winner, loser = loser, winner
		}
		t.Logf("won by the %s path", winner)
		p.WaitLine(t, `^path: direct$`, lineTimeout)
		p.WaitLine(t, `^state: viewing`, lineTimeout)
		nov.WaitLine(t, `^`+expertName+` connected from `, lineTimeout)
		// Both paths ran, and the loser ended: stopped once the winner
		// authenticated, or turned away by the novice, who had an expert
		// already.
		waitLogOrder(t, p, `msg="join: path authenticated" path=`+winner)
		waitLogOrder(t, p, `msg="join: path (stopped|failed)" path=`+loser)
		stop(t, p, "assist join")
		nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
		if n := strings.Count(nov.Stdout(), " connected from "); n != 2 {
			t.Errorf("the novice saw %d expert connections in two joins, want 2\n%s", n, nov.Stdout())
		}
	})

	// wrongOnce joins with the wrong password: join must fail once with
	// "wrong password", the novice must count it once (4 left after the
	// first), and a join with the right password must still work.
	wrongOnce := func(t *testing.T, p *lab.LineProc, settled func(t *testing.T)) {
		t.Helper()
		if code := p.WaitExit(t, 60*time.Second); code != 1 {
			t.Fatalf("assist join exited with %d, want 1\n%s", code, p.Output())
		}
		if n := strings.Count(p.Stderr(), "assist join: "); n != 1 {
			t.Errorf("assist join reported %d errors, want 1\n%s", n, p.Stderr())
		}
		wantContains(t, "assist join's error", lastLine(p.Stderr()), "assist join: ", "wrong password")
		logRace(t, p)
		counted++
		waitCounted(t, nov.LineProc, counted)
		if settled != nil {
			settled(t)
		}
		// A later expert with the right password settles whatever the
		// novice had left of the failed join; the count must not move.
		good := join(t, nov.File, right)
		good.WaitLine(t, `^state: viewing`, lineTimeout)
		stop(t, good, "assist join")
		nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
		if n, left := countedAttempts(nov.LineProc); n != counted || left != 5-counted {
			t.Errorf("the novice counted %d wrong passwords (%d left), want %d (%d left)\n%s", n, left, counted, 5-counted, nov.Stderr())
		}
	}

	t.Run("wrong password, server first", func(t *testing.T) {
		// The direct path is held in a proxy until the server path is
		// ready to authenticate, so the server path tries the password
		// while the direct one is alive and free to try it next.
		g := startGateProxy(t, direct)
		attempts := strings.Count(nov.Stderr(), `msg="transport: handshake attempt"`)
		pairings := rtcAttempts(nov.LineProc)
		p := join(t, withAddrs(t, nov.File, g.addr), wrong)
		waitStderr(t, p, `msg="join: path ready to authenticate" path=server`, 1)
		g.open()
		wrongOnce(t, p, func(t *testing.T) {
			// The novice has settled the direct connection too (it logs
			// one line for each): had the direct path tried the
			// password, it would count now.
			waitStderr(t, nov.LineProc, `msg="transport: handshake attempt"`, attempts+g.accepted())
			// And the server path's attempt, which reached the PAKE.
			deadline := time.Now().Add(lineTimeout)
			for rtcAttempts(nov.LineProc) == pairings {
				if time.Now().After(deadline) {
					t.Fatalf("the novice never settled the attempt through the server\n%s", nov.Stderr())
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	})

	t.Run("wrong password", func(t *testing.T) {
		wrongOnce(t, join(t, nov.File, wrong), nil)
	})

	stop(t, nov.LineProc, "assist invite")
}

// invitationAddrs returns the first direct address of an invitation file.
func invitationAddrs(t *testing.T, file string) string {
	t.Helper()
	var inv struct {
		Addrs []string `json:"addrs"`
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &inv); err != nil || len(inv.Addrs) == 0 {
		t.Fatalf("invitation file without addresses (%v):\n%s", err, data)
	}
	return inv.Addrs[0]
}

// withAddrs writes a copy of an invitation file whose direct addresses are
// addrs, and returns its name.
func withAddrs(t *testing.T, file string, addrs ...string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var inv map[string]any
	if err := json.Unmarshal(data, &inv); err != nil {
		t.Fatal(err)
	}
	inv["addrs"] = addrs
	if data, err = json.Marshal(inv); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "changed.assist")
	if err := os.WriteFile(out, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitLogOrder waits until p's log has a line matching each pattern, in
// this order. (The log is read apart from stdout, so it may trail it.)
func waitLogOrder(t *testing.T, p *lab.LineProc, patterns ...string) {
	t.Helper()
	res := make([]*regexp.Regexp, len(patterns))
	for i, pat := range patterns {
		res[i] = regexp.MustCompile(pat)
	}
	inOrder := func(log string) bool {
		k := 0
		for _, l := range strings.Split(log, "\n") {
			if k < len(res) && res[k].MatchString(l) {
				k++
			}
		}
		return k == len(res)
	}
	deadline := time.Now().Add(lineTimeout)
	for !inOrder(p.Stderr()) {
		if time.Now().After(deadline) {
			t.Fatalf("no log lines matching %q in this order\nlog:\n%s", patterns, p.Stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	logRace(t, p)
}

// logRace logs the race's lines of p's log.
func logRace(t *testing.T, p *lab.LineProc) {
	t.Helper()
	for _, l := range strings.Split(p.Stderr(), "\n") {
		if strings.Contains(l, `msg="join: path`) {
			t.Logf("assist join: %s", l)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// countedAttempts counts the wrong passwords the novice counted, on its
// direct port and through the server, and the attempts left it logged
// last (5 before any).
func countedAttempts(p *lab.LineProc) (n, left int) {
	left = 5
	direct := regexp.MustCompile(`msg="transport: handshake attempt".* outcome=wrong_password .*attempts_left=(\d+)`)
	server := regexp.MustCompile(`msg="rendezvous: wrong password".*attempts_left=(\d+)`)
	for _, l := range strings.Split(p.Stderr(), "\n") {
		m := direct.FindStringSubmatch(l)
		if m == nil {
			m = server.FindStringSubmatch(l)
		}
		if m != nil {
			n++
			fmt.Sscan(m[1], &left)
		}
	}
	return n, left
}

// rtcAttempts counts the attempts through the server that the novice
// settled after the PAKE began: counted, or released.
func rtcAttempts(p *lab.LineProc) int {
	log := p.Stderr()
	return strings.Count(log, `msg="rendezvous: wrong password"`) + strings.Count(log, `msg="rendezvous: expert's attempt failed"`)
}

// waitCounted waits until the novice has counted want wrong passwords.
func waitCounted(t *testing.T, p *lab.LineProc, want int) {
	t.Helper()
	deadline := time.Now().Add(lineTimeout)
	for {
		n, left := countedAttempts(p)
		if n > want {
			t.Fatalf("the novice counted %d wrong passwords (%d left), want %d\n%s", n, left, want, p.Stderr())
		}
		if n == want {
			if left != 5-want {
				t.Errorf("the novice has %d attempts left after %d wrong passwords, want %d", left, n, 5-want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the novice counted %d wrong passwords, want %d\n%s", n, want, p.Stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// silentListener accepts TCP connections and never answers: an address
// whose TLS handshake hangs, like one behind a firewall that drops.
type silentListener struct {
	addr string
	ln   net.Listener
	wg   sync.WaitGroup

	mu       sync.Mutex
	conns    []net.Conn
	nAccept  int
	nClosed  int
	changed  chan struct{}
	shutdown bool
}

func startSilentListener(t *testing.T) *silentListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentListener{addr: ln.Addr().String(), ln: ln, changed: make(chan struct{})}
	s.wg.Go(s.serve)
	t.Cleanup(s.close)
	return s
}

func (s *silentListener) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.nAccept++
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Go(func() {
			// Read (and drop) until the peer closes.
			io.Copy(io.Discard, c)
			s.mu.Lock()
			s.nClosed++
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		})
	}
}

func (s *silentListener) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nAccept
}

// waitClosed waits until the peer closed every connection.
func (s *silentListener) waitClosed(t *testing.T) {
	t.Helper()
	timeout := time.After(lineTimeout)
	for {
		s.mu.Lock()
		done, ch := s.nClosed == s.nAccept, s.changed
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("assist join left %d of %d connections to the dead address open", s.nAccept-s.nClosed, s.nAccept)
		}
	}
}

func (s *silentListener) close() {
	s.ln.Close()
	s.mu.Lock()
	s.shutdown = true
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// gateProxy forwards TCP connections to target, but only once opened:
// until then it holds them, accepted and silent.
type gateProxy struct {
	addr   string
	ln     net.Listener
	gate   chan struct{}
	once   sync.Once
	closed chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	conns    []net.Conn
	nAccepts int
}

// accepted is how many connections the proxy accepted.
func (g *gateProxy) accepted() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nAccepts
}

func startGateProxy(t *testing.T, target string) *gateProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gateProxy{addr: ln.Addr().String(), ln: ln, gate: make(chan struct{}), closed: make(chan struct{})}
	g.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !g.track(c) {
				return
			}
			g.mu.Lock()
			g.nAccepts++
			g.mu.Unlock()
			g.wg.Go(func() { g.forward(c, target) })
		}
	})
	t.Cleanup(g.close)
	return g
}

// track remembers c for close; false once closed.
func (g *gateProxy) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.closed:
		c.Close()
		return false
	default:
	}
	g.conns = append(g.conns, c)
	return true
}

func (g *gateProxy) forward(c net.Conn, target string) {
	defer c.Close()
	select {
	case <-g.gate:
	case <-g.closed:
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	if !g.track(up) {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); up.Close(); done <- struct{}{} }()
	go func() { io.Copy(c, up); c.Close(); done <- struct{}{} }()
	<-done
	<-done
}

func (g *gateProxy) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gateProxy) close() {
	g.mu.Lock()
	close(g.closed)
	for _, c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.ln.Close()
	g.wg.Wait()
}
