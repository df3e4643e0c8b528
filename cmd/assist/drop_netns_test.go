package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
)

// dropFor is how long TestRendezvousNetworkDrop cuts the novice off:
// longer than ICE's time to "failed" (5 s disconnected + 25 s), after which
// the connection would be over without an ICE restart, and shorter than
// rtc.MaxOutage, after which it is over by design.
const dropFor = 35 * time.Second

// TestRendezvousNetworkDrop: a session set up through `assist serve`
// between two routers (network namespaces) survives the novice's network
// going away for 35 s, on a hole-punched path (cone NATs) and on a path
// relayed by the server's TURN (symmetric NATs). The expert restarts ICE
// (its log and the novice's say so, with the path after the restart),
// over the pairing at the server, or over a new one if the server dropped
// the novice's WebSocket meanwhile. Afterwards the novice was not asked
// anything again, both ends still say "controlling", and the very same VNC
// connection on the expert's side shows what changed on the desktop,
// during the drop and after.
func TestRendezvousNetworkDrop(t *testing.T) {
	e2e(t)
	lab.NeedNetns(t)
	t.Parallel()
	lab.AssistBinary(t) // build once, before the parallel subtests
	for _, tc := range []struct {
		name string
		nat  lab.NATMode
		path string // what `assist join` prints
	}{
		{"punched", lab.Cone, "punched"},
		{"relayed", lab.Symmetric, "relay-udp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testNetworkDrop(t, tc.nat, tc.path)
		})
	}
}

// testNetworkDrop runs TestRendezvousNetworkDrop with both NATs in mode,
// expecting the expert to report wantPath.
func testNetworkDrop(t *testing.T, mode lab.NATMode, wantPath string) {
	d := newDesktop(t)
	n := lab.NewNet(t)
	n.SetNATMode(t, n.NAT1, mode)
	n.SetNATMode(t, n.NAT2, mode)
	bin := lab.AssistBinary(t)
	// Debug logs show rtc's connection states, which tell whether the
	// drop was long enough to be noticed.
	debugLog := []string{"ASSIST_LOG=debug"}
	in := func(ns string, args ...string) []string {
		return append([]string{"netns", "exec", ns, bin}, args...)
	}

	// The server on its public address, with its embedded STUN/TURN.
	srv := lab.StartLines(t, nil, "ip", in(n.Internet, "serve",
		"--listen", lab.ServerAddr+":8443", "--data", t.TempDir(),
		"--public-url", "https://"+lab.ServerAddr+":8443",
		"--turn-listen", lab.ServerAddr+":3478", "--turns-listen", lab.ServerAddr+":5349")...)
	url := srv.WaitLine(t, `^listening on (https://\S+)$`, lineTimeout)[1]
	fp := srv.WaitLine(t, `^fingerprint: (sha256:[0-9a-f]{64})$`, lineTimeout)[1]
	serverFlags := []string{"--server", url, "--server-fingerprint", fp}

	// --allow control: any question the novice sees is one too many.
	nov := lab.StartLines(t, debugLog, "ip", in(n.Novice, append([]string{"invite",
		"--file", filepath.Join(t.TempDir(), "help.assist"), "--display", d.Display, "--name", noviceName,
		"--listen", ":0", "--no-portmap", "--allow", "control"}, serverFlags...)...)...)
	code := nov.WaitLine(t, `^code: ([0-9]+-[a-z]+-[a-z]+)$`, lineTimeout)[1]
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)

	exp := lab.StartLines(t, debugLog, "ip", in(n.Expert, append(append([]string{"join",
		"--no-browser", "--name", expertName, "--request-control"}, serverFlags...), code)...)...)
	if path := exp.WaitLine(t, `^path: (\S+)$`, lineTimeout)[1]; path != wantPath {
		t.Fatalf("assist join connected via %q, want %q\n%s", path, wantPath, exp.Output())
	}
	rfbAddr := exp.WaitLine(t, `^rfb on (\S+)$`, lineTimeout)[1]
	exp.WaitLine(t, `^state: controlling`, lineTimeout)
	nov.WaitLine(t, `^state: controlling`, lineTimeout)

	c := n.DialRFB(t, n.Expert, rfbAddr)
	lab.WaitMatch(t, d.X, c.Screen, 0, matchTimeout)

	// The viewer waits for the next change, so the novice's agent sends
	// it as soon as it happens: during the drop, into the void. SCTP then
	// retransmits it with exponential backoff (RTO 1 s doubling, capped by
	// pion at 60 s) until the path is back.
	if err := c.RequestUpdate(true); err != nil {
		t.Fatalf("incremental update request: %v", err)
	}
	// Everything between the novice and the internet, both ways: the
	// WebRTC path and the signalling connection to the server alike.
	n.Run(t, n.NAT1, "iptables", "-I", "FORWARD", "1", "-j", "DROP")
	t.Logf("novice cut off for %v", dropFor)
	time.Sleep(2 * time.Second)
	d.Append(t, 3)
	time.Sleep(dropFor - 2*time.Second)
	n.Run(t, n.NAT1, "iptables", "-D", "FORWARD", "-j", "DROP")
	back := time.Now()
	t.Log("novice back online")

	// The update sent during the drop reaches the same VNC connection,
	// then one for a change made now. SCTP retransmits it on its own
	// schedule (the timeout doubles up to the 5 s cap rtc sets), so that
	// takes a few seconds after the path is back.
	if err := c.ReadUpdate(75 * time.Second); err != nil {
		t.Fatalf("the update sent during the drop never arrived: %v\nassist join:\n%s\nassist invite:\n%s", err, exp.Output(), nov.Output())
	}
	t.Logf("the change made during the drop reached the viewer %v after the network came back", time.Since(back).Round(time.Millisecond))
	lab.WaitMatch(t, d.X, c.Screen, 0, 25*time.Second)
	d.Append(t, 3)
	lab.WaitMatch(t, d.X, c.Screen, 0, 25*time.Second)
	// ICE noticed the drop, gave up on the old path, and an ICE restart
	// brought the connection back: the expert offered it, the novice
	// answered it, and both logged the path after it, the novice's in its
	// audit line.
	ends := []struct {
		name string
		proc *lab.LineProc
	}{{"assist invite", nov}, {"assist join", exp}}
	for _, e := range ends {
		deadline := time.Now().Add(15 * time.Second)
		for !iceWent(e.proc, "disconnected", "connected") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if !iceWent(e.proc, "disconnected", "connected") {
			t.Errorf("%s's log does not show its connection disconnected by the drop, then connected again\n%s", e.name, e.proc.Stderr())
		}
	}
	for _, w := range []struct {
		proc *lab.LineProc
		name string
		re   string
	}{
		{exp, "assist join", `msg="rtc: ICE restart offered"`},
		{nov, "assist invite", `msg="rtc: ICE restart offered by the peer"`},
		{exp, "assist join", `msg="rtc: connection back" .*ice_restart=true (path=\S+ after=\S+)`},
		{nov, "assist invite", `msg="rtc: connection back" .*ice_restart=true (path=\S+ after=\S+)`},
		{exp, "assist join", `msg="rendezvous: connection resumed after an ICE restart" .*path=(\S+)`},
		{nov, "assist invite", `msg="rendezvous: connection resumed after an ICE restart" .*path=(\S+)`},
	} {
		m := regexp.MustCompile(w.re).FindStringSubmatch(w.proc.Stderr())
		if m == nil {
			t.Errorf("%s's log has no line matching %s\n%s", w.name, w.re, w.proc.Stderr())
			continue
		}
		if len(m) > 1 {
			t.Logf("%s: after the ICE restart: %s", w.name, m[1])
		}
	}

	// Both ends tell their user, on stdout, that the connection is back:
	// the expert with the path, the novice in plain words.
	exp.WaitLine(t, `^resumed: path (direct|punched|relay-udp|relay-tcp|relay-tls) \(ICE restart\)$`, 15*time.Second)
	nov.WaitLine(t, `^the connection to `+expertName+` is back$`, 15*time.Second)

	for _, p := range ends {
		if exited, err := p.proc.Exited(); exited {
			t.Errorf("%s exited (%v) after the network came back\n%s", p.name, err, p.proc.Output())
			continue
		}
		var states []string
		for _, l := range p.proc.Lines() {
			if s, ok := strings.CutPrefix(l, "state: "); ok {
				states = append(states, s)
			}
		}
		if len(states) == 0 || !strings.HasPrefix(states[len(states)-1], "controlling") {
			t.Errorf("%s's states went %q: the session did not stay under control\n%s", p.name, states, p.proc.Output())
		}
		for _, s := range states {
			if strings.HasPrefix(s, "ended") {
				t.Errorf("%s's states went %q\n%s", p.name, states, p.proc.Output())
			}
		}
	}
	question := regexp.MustCompile(`Allow\? \[y/N\]$`)
	for _, l := range nov.Lines() {
		if question.MatchString(l) {
			t.Errorf("the novice was asked %q after allowing control in advance\n%s", l, nov.Output())
		}
	}
	if m := regexp.MustCompile(`(?m)^`+expertName+` connected from .*$`).FindAllString(nov.Stdout(), -1); len(m) != 1 {
		t.Errorf("the novice saw %d expert connections %q, want the one from before the drop", len(m), m)
	}
	stop(t, exp, "assist join")
	stop(t, nov, "assist invite")
}

// iceWent reports whether p's debug log shows its rtc connection going
// through states, in this order (other states may come between).
func iceWent(p *lab.LineProc, states ...string) bool {
	for _, l := range strings.Split(p.Stderr(), "\n") {
		if len(states) > 0 && strings.Contains(l, `msg="rtc: connection state"`) && strings.HasSuffix(l, " state="+states[0]) {
			states = states[1:]
		}
	}
	return len(states) == 0
}
