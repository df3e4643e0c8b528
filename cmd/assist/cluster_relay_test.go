package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/internal/natstest"
	"github.com/assist-project/assist/internal/pgtest"
)

// Issue 14, relayed: the nodes run their embedded TURN servers, and a
// novice and an expert who cannot reach each other meet across two nodes
// through the relay of one.

// startRelayCluster runs n nodes on the host like startCluster, but
// listening on the lab's link to the host (so the lab's ends reach them)
// with each node's own embedded TURN over UDP and TCP on a port of its own
// at that address. No --ice-server: a node then hands clients its own
// relay (the warning it logs says so), which is what an operator's
// --ice-server turn:THIS-NODE... does. HAProxy's front listens there too,
// and sends the PROXY protocol: without it every client would be the
// balancer's address, and two ends on one address get no TURN.
func startRelayCluster(t *testing.T, n int, h lab.HostLink) *servedCluster {
	t.Helper()
	needClusterServe(t)
	pg := pgtest.Start(t)
	dsn := pg.DB(t)
	ns := natstest.Start(t)
	c := lab.StartCluster(t, lab.ClusterOptions{Nodes: n, Host: h.Addr, SendProxy: true, Args: func(i int, node *lab.Node) []string {
		return []string{"--store", dsn, "--bus", ns.URL, "--node", node.Name,
			"--turn-listen", h.Addr + ":0", "--turns-listen", "off",
			"--proxy-protocol", "--proxy-from", lab.ProxySource}
	}})
	for _, node := range c.Nodes {
		if !slices.ContainsFunc(node.ICE(), func(u string) bool { return strings.HasPrefix(u, "turn:"+h.Addr+":") }) {
			t.Fatalf("node %s hands clients %q: no TURN of its own at %s", node.Name, node.ICE(), h.Addr)
		}
	}
	return &servedCluster{Cluster: c, PG: pg, NATS: ns, DSN: dsn}
}

// startIn starts assist ARGS as u inside network namespace ns.
func (u *cliUser) startIn(t *testing.T, ns string, args ...string) *proc {
	t.Helper()
	cmd := u.cmd(t, args...)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Path, cmd.Args = ip, append([]string{"ip", "netns", "exec", ns}, cmd.Args...)
	return startProc(t, u.name+" (in "+ns+"): assist "+strings.Join(args, " "), cmd)
}

// expectWithin is expect with a deadline of d.
func (p *proc) expectWithin(re string, d time.Duration) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(d)
	var seen []string
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("%s ended before printing %q; printed %q; stderr: %s", p.name, re, seen, p.stderr)
			}
			seen = append(seen, l)
			p.all = append(p.all, l)
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			p.t.Fatalf("%s: no line %q in %v; printed %q; stderr: %s", p.name, re, d, seen, p.stderr)
		}
	}
}

// rest reads the process's remaining lines until it exits, at most d,
// and returns them with its exit error.
func (p *proc) rest(d time.Duration) ([]string, error) {
	p.t.Helper()
	timeout := time.After(d)
	var seen []string
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				err := <-p.done
				p.done <- err
				return seen, err
			}
			seen = append(seen, l)
			p.all = append(p.all, l)
		case <-timeout:
			p.t.Fatalf("%s still running %v later; printed %q; stderr: %s", p.name, d, seen, p.stderr)
		}
	}
}

// relaySockets counts the UDP sockets process pid has bound to addr: its
// TURN listener and one per live allocation.
func relaySockets(t *testing.T, pid int, addr string) int {
	t.Helper()
	out, err := exec.Command("ss", "-H", "-u", "-a", "-n", "-p", "src", addr).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	return strings.Count(string(out), fmt.Sprintf("pid=%d,", pid))
}

// relayLab is a NAT lab whose ends sit behind symmetric NATs (no direct
// or hole-punched path between them, only a relay), linked to the host
// where a relay cluster of n nodes runs, and a desktop.
type relayLab struct {
	n *lab.Net
	h lab.HostLink
	c *servedCluster
	d *desktop
}

func startRelayLab(t *testing.T, nodes int) *relayLab {
	t.Helper()
	lab.NeedNetns(t)
	lab.Need(t, "ss")
	n := lab.NewNet(t)
	n.SetNATMode(t, n.NAT1, lab.Symmetric)
	n.SetNATMode(t, n.NAT2, lab.Symmetric)
	h := n.LinkHost(t)
	return &relayLab{n: n, h: h, c: startRelayCluster(t, nodes, h), d: newDesktop(t)}
}

// meet has nora (asking with --server novice, from the novice's side)
// and eddie (accepting with --server expert, from the expert's side)
// meet; nora says yes, and eddie sees her desktop over a relay. It
// returns both commands, eddie's viewer and his path.
func (l *relayLab) meet(t *testing.T, novice, expert string) (ask, reqs *proc, viewer *lab.RawClient, path string) {
	t.Helper()
	nora, eddie := newCLIUser(t, "nora"), newCLIUser(t, "eddie")
	nora.login(t, l.c.node(0), "--display-name", "Nora Novice")
	eddie.login(t, l.c.node(0), "--display-name", "Eddie Expert")
	pairCLI(t, nora, eddie)
	reqs = eddie.startIn(t, l.n.Expert, "requests", "--no-browser", "--no-page", "--display", l.d.Display, "--server", expert)
	ask = nora.startIn(t, l.n.Novice, "ask", "eddie", "--display", l.d.Display, "--no-page", "--server", novice)
	ask.expect(`^asked: eddie$`)
	id := reqs.expect(`^request: (\S+) from nora$`)[1]
	reqs.send("accept " + id)
	ask.expect(`^accepted by eddie$`)
	reqs.expect(`^connected to Nora Novice via the rendezvous server`)
	path = reqs.expectWithin(`^path: (\S+)$`, 30*time.Second)[1]
	if !strings.HasPrefix(path, "relay-") {
		t.Fatalf("eddie's path is %s, want a relay (both ends behind symmetric NATs)", path)
	}
	rfbAddr := reqs.expect(`^rfb on (127\.0\.0\.1:\d+)$`)[1]
	// The nodes see eddie at his side's translated address.
	ask.expect(`^Eddie Expert connected from ` + regexp.QuoteMeta(l.h.ExpertSeenAs) + ` through the Assist server$`)
	ask.expect(`^Eddie Expert wants to see your screen\. Allow\? \[y/N\]$`)
	ask.send("y")
	reqs.expect(`^state: viewing`)
	viewer = l.n.DialRFB(t, l.n.Expert, rfbAddr)
	lab.WaitMatch(t, l.d.X, viewer.Screen, 0, matchTimeout)
	t.Logf("eddie sees nora's desktop over %s", path)
	return ask, reqs, viewer, path
}

// relayNode is the one node whose TURN holds allocations (the others
// hold none), and how many UDP sockets each node has.
func (l *relayLab) relayNode(t *testing.T) (int, []int) {
	t.Helper()
	relay := -1
	var socks []int
	for i, node := range l.c.Nodes {
		n := 0
		if node.Running() {
			n = relaySockets(t, node.Pid(), l.h.Addr)
		}
		socks = append(socks, n)
		if n > 1 {
			if relay >= 0 {
				t.Fatalf("UDP sockets per node at %s: %v: two nodes relay", l.h.Addr, socks)
			}
			relay = i
		}
	}
	return relay, socks
}

// TestClusterRelayMeet: nora (the novice) behind a symmetric NAT, eddie
// (the expert) behind another, so no direct or hole-punched path exists
// and only a relay joins them. Two nodes on PostgreSQL and NATS, each with
// its own TURN. nora asks from n1 (her agent registers there: n1 is the
// pairing's home), eddie accepts on n2 (the mesh forwards his join to n1),
// and both get the home's ICE list, so the media goes through n1's TURN
// (n1 holds the allocations, n2 none); eddie sees nora's desktop
// pixel-exactly. Killing n2, eddie's own node, does not touch the
// picture. Then n2 comes back and n1, the relay, is killed, and nora's
// agent, which knows only n1, cannot register anywhere else: the relayed
// path is gone, and the session ends on both sides by itself, each
// saying the connection was lost, once rtc.MaxOutage (60 s) passes
// without a path. (With a balancer to come back through, the session
// moves to another relay: TestClusterRelayFailover.)
func TestClusterRelayMeet(t *testing.T) {
	e2e(t)
	l := startRelayLab(t, 2)
	c, d := l.c, l.d
	ask, eddieReqs, viewer, _ := l.meet(t, c.Nodes[0].URL, c.Nodes[1].URL)

	// The home's relay carries it: n1 holds allocations, n2 none.
	relay, socks := l.relayNode(t)
	t.Logf("UDP sockets at %s per node: %v (each node's TURN listener is one)", l.h.Addr, socks)
	if relay != 0 || socks[1] != 1 {
		t.Fatalf("UDP sockets at %s: n1 (the home) %d, n2 %d; want allocations on n1 (at least 2) and none on n2 (1, its listener)", l.h.Addr, socks[0], socks[1])
	}

	// n2 (eddie's signalling and messenger node, no relay) dies: the
	// picture goes on through n1's relay.
	killed := time.Now()
	c.Kill(t, 1)
	d.Append(t, 3)
	lab.WaitMatch(t, d.X, viewer.Screen, 0, matchTimeout)
	t.Logf("n2 killed: the picture followed the desktop %v later", time.Since(killed).Round(time.Millisecond))

	// n2 back, n1 (the relay and nora's node) dies: no path is left.
	c.Restart(t, 1)
	killed = time.Now()
	c.Kill(t, 0)
	ended := eddieReqs.expectWithin(`^state: ended \(the connection to the novice was lost\)$`, 120*time.Second)[0]
	t.Logf("n1 (the relay) killed: eddie's session ended %v later: %q", time.Since(killed).Round(time.Second), ended)
	// nora's side ends too, saying why, and her one contact session
	// being over, assist ask exits.
	lines, err := ask.rest(30 * time.Second)
	t.Logf("nora's assist ask then printed %q and ended: %v", lines, err)
	if !slices.Contains(lines, "state: ended (the connection to Eddie Expert was lost)") {
		t.Errorf("nora's assist ask printed %q after the relay died; want %q", lines, "state: ended (the connection to Eddie Expert was lost)")
	}
	if err != nil {
		t.Errorf("nora's assist ask after the relay died: %v (want exit status 0: the session ended, nothing failed); stderr: %s", err, ask.stderr)
	}
}

// TestClusterRelayFailover: as TestClusterRelayMeet, but nora and eddie
// reach the service through HAProxy, as clients do. The node whose TURN
// relays the session (the pairing's home) is killed: nora's agent
// registers again through the balancer on the survivor, eddie joins it
// again, both take the new pairing's ICE list (the survivor's TURN) for
// their ICE restart, and the session goes on through the survivor's
// relay: eddie's picture follows the desktop again, within rtc.MaxOutage.
func TestClusterRelayFailover(t *testing.T) {
	e2e(t)
	l := startRelayLab(t, 2)
	c, d := l.c, l.d
	ask, eddieReqs, viewer, _ := l.meet(t, c.URL, c.URL)
	relay, socks := l.relayNode(t)
	if relay < 0 {
		t.Fatalf("UDP sockets at %s per node: %v: no node relays", l.h.Addr, socks)
	}
	t.Logf("UDP sockets at %s per node: %v: %s relays", l.h.Addr, socks, c.Nodes[relay].Name)

	killed := time.Now()
	c.Kill(t, relay)
	resumed := eddieReqs.expectWithin(`^resumed: path (\S+) \(ICE restart\)$`, 90*time.Second)[1]
	t.Logf("%s (the relay) killed: eddie's session resumed over %s %v later", c.Nodes[relay].Name, resumed, time.Since(killed).Round(time.Millisecond))
	d.Append(t, 3)
	lab.WaitMatch(t, d.X, viewer.Screen, 0, matchTimeout)
	survivor, socks := l.relayNode(t)
	if survivor != 1-relay {
		t.Fatalf("UDP sockets at %s per node after the kill: %v; want allocations on %s", l.h.Addr, socks, c.Nodes[1-relay].Name)
	}
	t.Logf("the picture follows the desktop through %s's relay", c.Nodes[survivor].Name)

	ask.send("q")
	eddieReqs.expect(`^state: ended`)
	if err := ask.wait(); err != nil {
		t.Errorf("ask after the session: %v; stderr: %s", err, ask.stderr)
	}
}
