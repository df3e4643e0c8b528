package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/internal/natstest"
	"github.com/assist-project/assist/internal/pgtest"
	"github.com/assist-project/assist/messenger"
)

// Issue 14 end to end: several real `assist serve` nodes sharing one
// PostgreSQL (--store) and one NATS (--bus), Debian's HAProxy in front
// (internal/lab's Cluster), real CLI clients on either side.

// servedCluster is a running cluster and what it stands on.
type servedCluster struct {
	*lab.Cluster
	PG   *pgtest.Server
	NATS *natstest.Server
	DSN  string
}

// startCluster runs n nodes on a PostgreSQL and a NATS server of the
// test's own (so a test may restart them), each node with --store,
// --bus and --node n1, n2, ...
func startCluster(t *testing.T, n int) *servedCluster {
	t.Helper()
	needClusterServe(t)
	pg := pgtest.Start(t)
	dsn := pg.DB(t)
	ns := natstest.Start(t)
	c := lab.StartCluster(t, lab.ClusterOptions{Nodes: n, Args: func(i int, node *lab.Node) []string {
		return []string{"--store", dsn, "--bus", ns.URL, "--node", node.Name}
	}})
	return &servedCluster{Cluster: c, PG: pg, NATS: ns, DSN: dsn}
}

// needClusterServe skips until this build's assist serve has the flags
// of issue 14 (--store, --bus, --node), which other branches bring.
func needClusterServe(t *testing.T) {
	t.Helper()
	out, _ := exec.Command(lab.AssistBinary(t), "serve", "--help").CombinedOutput()
	for _, f := range []string{"-store", "-bus", "-node"} {
		if !strings.Contains(string(out), f) {
			t.Skipf("assist serve has no %s flag yet (issue 14's store, bus and node parts)", f)
		}
	}
}

// node is node i as a servedProc for the CLI helpers: its own address,
// the cluster's certificate.
func (c *servedCluster) node(i int) *servedProc {
	return &servedProc{URL: c.Nodes[i].URL, Fingerprint: c.Fingerprint}
}

// front is HAProxy as a servedProc.
func (c *servedCluster) front() *servedProc {
	return &servedProc{URL: c.URL, Fingerprint: c.Fingerprint}
}

// TestClusterPairAcrossNodes: contact and device codes work across
// nodes. nora's commands go to node n1 and eddie's to n2 (the server each
// logged in to): `contacts invite` on n1 and `contacts add` on n2 make
// them contacts, each printing the other's real key. Then nora links a
// laptop: `devices add` on n1, `login --code` on n2; the laptop ends
// logged in on n2 with eddie pinned, and lists both devices. A wrong
// device code across the nodes says the code does not match.
func TestClusterPairAcrossNodes(t *testing.T) {
	e2e(t)
	began := time.Now()
	c := startCluster(t, 2)
	t.Logf("the cluster started in %v", time.Since(began).Round(time.Millisecond))
	nora, eddie := newCLIUser(t, "nora"), newCLIUser(t, "eddie")
	nora.login(t, c.node(0))
	eddie.login(t, c.node(1))
	start := time.Now()
	pairCLI(t, nora, eddie)
	t.Logf("contacts across the nodes in %v", time.Since(start).Round(time.Millisecond))

	laptop := newCLIUser(t, "nora")
	n2 := c.Nodes[1].URL
	start = time.Now()
	add := nora.start(t, "devices", "add")
	code := add.expect(`^device code: (\S+)$`)[1]
	if out := laptop.run(t, "login", n2, "--user", "nora", "--code", code); !strings.HasSuffix(out, "logged in: nora on "+n2+"\n") {
		t.Fatalf("login --code on n2 printed %q", out)
	}
	id := add.expect(fmt.Sprintf(`^device added: ([a-z2-7]{12}) \(key %s\)$`, laptop.fingerprint(t)))[1]
	if err := add.wait(); err != nil {
		t.Fatalf("devices add: %v; stderr: %s", err, add.stderr)
	}
	if got, want := laptop.config(t).Contacts, nora.config(t).Contacts; len(got) != 1 || !slices.Equal(got["eddie"].Keys, want["eddie"].Keys) {
		t.Fatalf("the linked device pins %+v, want %+v", got, want)
	}
	t.Logf("device link across the nodes in %v", time.Since(start).Round(time.Millisecond))
	if out := laptop.run(t, "devices"); !strings.Contains(out, id+" online ") || !strings.Contains(out, "(this device)") || strings.Count(out, "\n") != 2 {
		t.Fatalf("the laptop's devices on n2: %q", out)
	}

	add = nora.start(t, "devices", "add")
	code = add.expect(`^device code: (\S+)$`)[1]
	wrong := code[:5] + "0000-0000"
	if wrong == code {
		wrong = code[:5] + "1111-1111"
	}
	phone := newCLIUser(t, "nora")
	start = time.Now()
	if out, err := phone.try(t, "login", n2, "--user", "nora", "--code", wrong); err == nil || !strings.Contains(out, "code does not match") {
		t.Fatalf("login on n2 with a wrong device code of n1: %v %q", err, out)
	}
	t.Logf("a wrong device code across the nodes refused in %v", time.Since(start).Round(time.Millisecond))
	add.kill()
}

// TestClusterMeet: nora (the novice) on node n1, eddie (the expert) on
// n2, carl watching from n3 (each command's --server). Presence crosses
// nodes, nora asks eddie, eddie's request arrives on his node, he
// accepts, and the session starts through the rendezvous signalling of
// two nodes (nora's agent registers on n1, eddie joins on n2, the mesh
// forwards him to the invitation's home): eddie sees nora's desktop
// pixel-exactly. They became contacts through the front (HAProxy), which
// spreads the two sides of each pairing over the nodes.
func TestClusterMeet(t *testing.T) {
	e2e(t)
	c := startCluster(t, 3)
	d := newDesktop(t)
	nora, eddie, carl := newCLIUser(t, "nora"), newCLIUser(t, "eddie"), newCLIUser(t, "carl")
	nora.login(t, c.front(), "--display-name", "Nora Novice")
	eddie.login(t, c.front(), "--display-name", "Eddie Expert")
	carl.login(t, c.front(), "--display-name", "Carl Contact")
	pairCLI(t, nora, eddie)
	pairCLI(t, nora, carl)
	a, b, w := c.Nodes[0].URL, c.Nodes[1].URL, c.Nodes[2].URL

	watch := carl.start(t, "contacts", "--watch", "--server", w)
	watch.expectAll(`^presence: nora offline$`)
	eddieReqs := eddie.start(t, "requests", "--no-browser", "--no-page", "--display", d.Display, "--server", b)
	ask := nora.start(t, "ask", "eddie", "--display", d.Display, "--no-page", "--server", a)
	ask.expect(`^asked: eddie$`)
	watch.expect(`^presence: nora online$`)
	id := eddieReqs.expect(`^request: (\S+) from nora$`)[1]
	eddieReqs.send("accept " + id)
	ask.expect(`^accepted by eddie$`)
	eddieReqs.expect(`^connected to Nora Novice via the rendezvous server \(\S+\)$`)
	rfbAddr := eddieReqs.expect(`^rfb on (127\.0\.0\.1:\d+)$`)[1]
	ask.expect(`^Eddie Expert connected from \S+ through the Assist server$`)
	ask.expect(`^Eddie Expert wants to see your screen\. Allow\? \[y/N\]$`)
	ask.send("y")
	eddieReqs.expect(`^state: viewing`)
	watch.expect(`^presence: nora busy$`)
	lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)
	d.Append(t, 3)
	lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)

	ask.send("q")
	eddieReqs.expect(`^state: ended`)
	if err := ask.wait(); err != nil {
		t.Errorf("ask after the session: %v; stderr: %s", err, ask.stderr)
	}
	watch.expect(`^presence: nora offline$`)
}

// watcher is a messenger client in the test process logged in as a CLI
// user (their device key): it records the presence it is told, and,
// with reconnect, logs in again through its URL whenever the connection
// ends, as the agent does.
type watcher struct {
	t    *testing.T
	name string
	url  string
	fp   string
	key  ed25519.PrivateKey

	mu       sync.Mutex
	c        *messenger.Client
	states   map[string]string
	requests []messenger.Message
	logins   int
	changed  chan struct{} // closed and replaced on every change
	cancel   context.CancelFunc
	done     chan struct{}
}

// watch logs u in from the test process at url; reconnect keeps it
// logged in.
func watch(t *testing.T, u *cliUser, url, fp string, reconnect bool) *watcher {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join(u.dir, identity.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{t: t, name: u.name, url: url, fp: fp, key: ed25519.NewKeyFromSeed(seed),
		states: map[string]string{}, changed: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	c, err := w.login(ctx)
	if err != nil {
		cancel()
		t.Fatalf("%s logs in from the test at %s: %v", u.name, url, err)
	}
	go w.run(ctx, c, reconnect)
	t.Cleanup(func() {
		// A cancelled login fails, so no new connection replaces the
		// closed one.
		cancel()
		w.client().Close()
		<-w.done
	})
	return w
}

func (w *watcher) login(ctx context.Context) (*messenger.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, _, err := messenger.Dial(dctx, w.url, w.fp, w.key, messenger.LoginOptions{})
	if err != nil {
		return nil, err
	}
	cs, _, err := c.Contacts(dctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	w.mu.Lock()
	w.c = c
	w.logins++
	for _, x := range cs {
		w.states[x.User] = x.State
	}
	w.notifyLocked()
	w.mu.Unlock()
	return c, nil
}

func (w *watcher) notifyLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// run reads events until ctx ends; with reconnect, a lost connection is
// dialled again every 200 ms.
func (w *watcher) run(ctx context.Context, c *messenger.Client, reconnect bool) {
	defer close(w.done)
	for {
		for m := range c.Events() {
			w.mu.Lock()
			switch m.Type {
			case messenger.TypePresence:
				w.states[m.User] = m.State
			case messenger.TypeRequest:
				w.requests = append(w.requests, m)
			}
			w.notifyLocked()
			w.mu.Unlock()
		}
		c.Close()
		if ctx.Err() != nil || !reconnect {
			return
		}
		w.t.Logf("%s: connection lost (%v); logging in again", w.name, c.Err())
		for {
			var err error
			if c, err = w.login(ctx); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// client is the current connection.
func (w *watcher) client() *messenger.Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.c
}

// waitFor waits up to d until cond holds on the watcher's state (under
// its lock) and returns how long that took.
func (w *watcher) waitFor(what string, d time.Duration, cond func(w *watcher) bool) time.Duration {
	w.t.Helper()
	start := time.Now()
	deadline := time.After(d)
	for {
		w.mu.Lock()
		ok, ch := cond(w), w.changed
		w.mu.Unlock()
		if ok {
			return time.Since(start)
		}
		select {
		case <-ch:
		case <-deadline:
			w.mu.Lock()
			defer w.mu.Unlock()
			w.t.Fatalf("%s: %s not within %v; presence %v, %d logins", w.name, what, d, w.states, w.logins)
		}
	}
}

func (w *watcher) waitState(user, state string, d time.Duration) time.Duration {
	w.t.Helper()
	return w.waitFor(user+" "+state, d, func(w *watcher) bool { return w.states[user] == state })
}

// whichNode dials through the front and tells which node took the
// connection, from HAProxy's counts (nothing else may connect
// meanwhile).
func whichNode(t *testing.T, c *servedCluster, dial func()) int {
	t.Helper()
	before := c.Proxy.Stats(t)
	dial()
	after := c.Proxy.Stats(t)
	got := -1
	for i, n := range c.Nodes {
		if after[n.Name].Total > before[n.Name].Total {
			if got >= 0 {
				t.Fatalf("two nodes took connections meanwhile: %+v -> %+v", before, after)
			}
			got = i
		}
	}
	if got < 0 {
		t.Fatalf("no node took the connection: %+v -> %+v", before, after)
	}
	return got
}

// TestClusterNodeLoss: three nodes behind HAProxy, everyone through the
// front. nora shows eddie her desktop; olga watches carl (whose client
// logs in again when its connection ends, as the agent does) and dora
// (who, like a machine switched off, does not come back). The node
// holding carl's and dora's connections is killed (SIGKILL) during the
// session: the picture continues; HAProxy takes the node out; carl is
// back through the front on another node within seconds; olga sees dora
// go offline and carl online again within seconds (presence converges);
// every contact is still there, and a new request from olga reaches
// carl; the session ends normally.
func TestClusterNodeLoss(t *testing.T) {
	e2e(t)
	c := startCluster(t, 3)
	d := newDesktop(t)
	front := c.front()
	nora, eddie := newCLIUser(t, "nora"), newCLIUser(t, "eddie")
	olga, carl, dora := newCLIUser(t, "olga"), newCLIUser(t, "carl"), newCLIUser(t, "dora")
	// Everything goes through the front, contact pairings too (their
	// two sides on whichever nodes HAProxy picks).
	for _, u := range []*cliUser{nora, eddie, olga, carl, dora} {
		u.login(t, front)
	}
	pairCLI(t, nora, eddie)
	pairCLI(t, olga, carl)
	pairCLI(t, olga, dora)

	// carl first: the node he lands on is the one to kill; dora is sent
	// straight to it (not through the front), olga to another one.
	var carlW *watcher
	victim := whichNode(t, c, func() { carlW = watch(t, carl, front.URL, c.Fingerprint, true) })
	watch(t, dora, c.Nodes[victim].URL, c.Fingerprint, false)
	olgaW := watch(t, olga, c.Nodes[(victim+1)%3].URL, c.Fingerprint, false)
	olgaW.waitState("carl", messenger.StateOnline, 10*time.Second)
	olgaW.waitState("dora", messenger.StateOnline, 10*time.Second)

	// The session, through the front.
	eddieReqs := eddie.start(t, "requests", "--no-browser", "--no-page", "--display", d.Display, "--server", front.URL)
	ask := nora.start(t, "ask", "eddie", "--display", d.Display, "--no-page", "--server", front.URL)
	ask.expect(`^asked: eddie$`)
	id := eddieReqs.expect(`^request: (\S+) from nora$`)[1]
	eddieReqs.send("accept " + id)
	ask.expect(`^accepted by eddie$`)
	rfbAddr := eddieReqs.expect(`^rfb on (127\.0\.0\.1:\d+)$`)[1]
	ask.expect(`wants to see your screen\. Allow\? \[y/N\]$`)
	ask.send("y")
	eddieReqs.expect(`^state: viewing`)
	lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)
	viewer := lab.DialRFB(t, rfbAddr)

	t.Logf("killing %s, carl's and dora's node", c.Nodes[victim].Name)
	killed := time.Now()
	c.Kill(t, victim)

	// The established session keeps its picture.
	d.Append(t, 3)
	lab.WaitMatch(t, d.X, viewer.Screen, 0, matchTimeout)
	t.Logf("the picture followed the desktop %v after the kill", time.Since(killed).Round(time.Millisecond))

	// carl's client is back through the front, on a survivor.
	carlW.waitFor("logged in again", 10*time.Second, func(w *watcher) bool { return w.logins >= 2 })
	t.Logf("carl logged in again %v after the kill", time.Since(killed).Round(time.Millisecond))
	c.Proxy.WaitBackend(t, c.Nodes[victim].Name, false, 10*time.Second)

	// Presence converges: dora, gone with her node, is offline; carl is
	// online (whatever flaps olga saw meanwhile).
	olgaW.waitState("dora", messenger.StateOffline, 20*time.Second)
	t.Logf("olga saw dora offline %v after the kill", time.Since(killed).Round(time.Millisecond))
	olgaW.waitState("carl", messenger.StateOnline, 10*time.Second)
	// A fresh look (the store and the bus, not the pushed events) agrees.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, _, err := olgaW.client().Contacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, x := range cs {
		got[x.User] = x.State
	}
	if got["carl"] != messenger.StateOnline || got["dora"] != messenger.StateOffline {
		t.Errorf("olga's contacts after the kill: %v, want carl online and dora offline", got)
	}

	// Nothing accepted is lost: the contacts are all there, and a new
	// request crosses the surviving nodes.
	if out := nora.run(t, "contacts", "--server", front.URL); !strings.Contains(out, "eddie ") {
		t.Errorf("nora's contacts after the kill: %q", out)
	}
	if _, err := olgaW.client().Ask(ctx, "carl", messenger.KindHelp); err != nil {
		t.Fatalf("olga asks carl after the kill: %v", err)
	}
	carlW.waitFor("olga's request", 10*time.Second, func(w *watcher) bool {
		for _, m := range w.requests {
			if m.From == "olga" {
				return true
			}
		}
		return false
	})

	// The session ends as always.
	ask.send("q")
	eddieReqs.expect(`^state: ended`)
	if err := ask.wait(); err != nil {
		t.Errorf("ask after the session: %v; stderr: %s", err, ask.stderr)
	}
}

// TestClusterBackendsRestart: two nodes; olga on n1 watches carl on n2.
// PostgreSQL stops: every node's /readyz says 503 (HAProxy takes them
// out), a login is refused with an error, and when PostgreSQL is back the
// nodes are ready again by themselves and a login works. Then NATS stops:
// /readyz says 503; a presence change is either refused as unavailable
// or, if accepted, not lost: when NATS is back olga sees what carl's node
// answered, and presence flows again without restarting anything.
func TestClusterBackendsRestart(t *testing.T) {
	e2e(t)
	c := startCluster(t, 2)
	olga, carl, dora := newCLIUser(t, "olga"), newCLIUser(t, "carl"), newCLIUser(t, "dora")
	for _, u := range []*cliUser{olga, carl, dora} {
		u.login(t, c.node(0))
	}
	pairCLI(t, olga, carl)
	olgaW := watch(t, olga, c.Nodes[0].URL, c.Fingerprint, true)
	carlW := watch(t, carl, c.Nodes[1].URL, c.Fingerprint, true)
	olgaW.waitState("carl", messenger.StateOnline, 10*time.Second)

	ready := func(i int) bool {
		code, _ := c.Nodes[i].Get(t, "/readyz")
		return code == 200
	}
	waitReady := func(want bool, what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for i := range c.Nodes {
			for ready(i) != want {
				if time.Now().After(deadline) {
					t.Fatalf("%s: node %s /readyz still not %v after 30 s; log: %s", what, c.Nodes[i].Name, want, c.Nodes[i].Output())
				}
				time.Sleep(200 * time.Millisecond) // polling /readyz, as HAProxy does
			}
		}
	}
	if c.HealthPath != "/readyz" {
		t.Fatalf("HAProxy checks %s: the nodes serve no /readyz", c.HealthPath)
	}

	// PostgreSQL away.
	if err := c.PG.Stop(); err != nil {
		t.Fatal(err)
	}
	waitReady(false, "PostgreSQL stopped")
	for _, n := range c.Nodes {
		c.Proxy.WaitBackend(t, n.Name, false, 10*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	key, _ := os.ReadFile(filepath.Join(dora.dir, identity.KeyFile))
	if cl, _, err := messenger.Dial(ctx, c.Nodes[0].URL, c.Fingerprint, ed25519.NewKeyFromSeed(key), messenger.LoginOptions{}); err == nil {
		cl.Close()
		t.Error("dora logged in while PostgreSQL was down")
	} else {
		t.Logf("a login while PostgreSQL is down: %v", err)
		checkStoreAway(t, "a login while PostgreSQL is down", err)
	}
	cancel()
	checkStoreAwayCLI(t, dora, c.node(0))
	restarted := time.Now()
	c.PG.Restart(t)
	waitReady(true, "PostgreSQL back")
	t.Logf("the nodes were ready %v after PostgreSQL came back", time.Since(restarted).Round(time.Millisecond))
	for _, n := range c.Nodes {
		c.Proxy.WaitBackend(t, n.Name, true, 10*time.Second)
	}
	watch(t, dora, c.URL, c.Fingerprint, false) // a login works again

	// NATS away.
	c.NATS.Stop()
	waitReady(false, "NATS stopped")
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	err := carlW.client().SetState(ctx, messenger.StateAway)
	cancel()
	want := messenger.StateAway // accepted: it must not be lost
	if err != nil {
		want = messenger.StateOnline
		t.Logf("carl's presence change while NATS is down: %v", err)
		if !messenger.IsCode(err, messenger.CodeUnavailable) && carlW.client().Err() == nil {
			t.Errorf("carl's presence change while NATS is down failed with %v, want code %s (the service is busy)", err, messenger.CodeUnavailable)
		}
	} else {
		t.Logf("carl's presence change while NATS is down was accepted")
	}
	restarted = time.Now()
	c.NATS.Restart(t)
	waitReady(true, "NATS back")
	t.Logf("the nodes were ready %v after NATS came back", time.Since(restarted).Round(time.Millisecond))
	// Presence converges on what carl's node answered, across the nodes.
	olgaW.waitState("carl", want, 20*time.Second)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := carlW.client().SetState(ctx, messenger.StateBusy); err != nil {
		t.Fatalf("carl's presence change after NATS came back: %v", err)
	}
	olgaW.waitState("carl", messenger.StateBusy, 5*time.Second)
}

// TestClusterDrain: SIGTERM to a node behind HAProxy is a drain: its
// /readyz turns 503 so HAProxy takes it out, its messenger clients are
// told to go away and log in again through the front on the other node
// within seconds, and it exits with status 0. olga, on the other node,
// sees carl online at the end.
func TestClusterDrain(t *testing.T) {
	e2e(t)
	c := startCluster(t, 2)
	olga, carl := newCLIUser(t, "olga"), newCLIUser(t, "carl")
	for _, u := range []*cliUser{olga, carl} {
		u.login(t, c.node(0))
	}
	pairCLI(t, olga, carl)
	var carlW *watcher
	victim := whichNode(t, c, func() { carlW = watch(t, carl, c.URL, c.Fingerprint, true) })
	olgaW := watch(t, olga, c.Nodes[1-victim].URL, c.Fingerprint, false)
	olgaW.waitState("carl", messenger.StateOnline, 10*time.Second)

	start := time.Now()
	if err := c.Stop(t, victim, 60*time.Second); err != nil {
		t.Errorf("node %s after SIGTERM: %v (want exit status 0); log: %s", c.Nodes[victim].Name, err, c.Nodes[victim].Output())
	}
	t.Logf("node %s drained and exited in %v", c.Nodes[victim].Name, time.Since(start).Round(time.Millisecond))
	carlW.waitFor("logged in again", 10*time.Second, func(w *watcher) bool { return w.logins >= 2 })
	t.Logf("carl logged in again %v after the SIGTERM", time.Since(start).Round(time.Millisecond))
	c.Proxy.WaitBackend(t, c.Nodes[victim].Name, false, 10*time.Second)
	olgaW.waitState("carl", messenger.StateOnline, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := carlW.client().SetState(ctx, messenger.StateAway); err != nil {
		t.Fatalf("carl's presence change on the other node: %v", err)
	}
	olgaW.waitState("carl", messenger.StateAway, 5*time.Second)
}
