package main

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/internal/natstest"
	"github.com/assist-project/assist/internal/pgtest"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub/natsbus"
	"github.com/assist-project/assist/server/natsmesh"
)

// Issue 14's faults beyond one node's loss: a three-server NATS cluster
// losing a server, the audit trail after a node's loss, and what clients
// are told while PostgreSQL is away.

// checkStoreAway fails the test unless err is the messenger's answer while
// its database is away: code unavailable (clients retry, as for the bus),
// and a message that says so in plain words.
func checkStoreAway(t *testing.T, what string, err error) {
	t.Helper()
	var e *messenger.Error
	if !errors.As(err, &e) || e.Code != messenger.CodeUnavailable || !strings.Contains(e.Message, "cannot reach its database") {
		t.Errorf("%s: %v; want code %s saying the server cannot reach its database", what, err, messenger.CodeUnavailable)
	}
}

// checkStoreAwayCLI runs `assist contacts` as u against srv while the
// database is away: it fails, and says why and what to do.
func checkStoreAwayCLI(t *testing.T, u *cliUser, srv *servedProc) {
	t.Helper()
	out, err := u.try(t, "contacts", "--server", srv.URL)
	if err == nil || !strings.Contains(out, "cannot reach its database: try again in a minute") {
		t.Errorf("assist contacts while PostgreSQL is down: %v, output %q; want a failure saying the server cannot reach its database", err, out)
	}
	t.Logf("assist contacts while PostgreSQL is down: %s", strings.TrimSpace(out))
}

// TestClusterAuditNodeLoss: an organisation on a three-node cluster.
// Its machine pc-1 (an enrolled agent, connected through the front) is
// offered help by dana from another node, accepts and allows viewing;
// then the node holding the agent's connection, the session's home on
// the messenger side, is killed. The picture goes on, the agent is back
// through the front, and once the session ends the organisation's trail
// holds everything accepted before the kill: the server's entries of the
// offer, its acceptance and the pairing (written by the nodes before the
// kill), and the machine's and the helper's own chains with the consent
// ("allowed viewing"); every chain verifies. Then the same with the
// helper's node killed.
func TestClusterAuditNodeLoss(t *testing.T) {
	e2e(t)
	c := startCluster(t, 3)
	d := newDesktop(t)
	front := c.front()
	op := newCLIUser(t, "operator")
	org := func(args ...string) string {
		t.Helper()
		return op.run(t, append([]string{"org"}, append(args, "--store", c.DSN)...)...)
	}
	org("create", "acme", "--display-name", "ACME IT")
	org("policy", "acme", "--timeout", "30s", "--rights", "view,control")
	dana := newCLIUser(t, "dana")
	dana.login(t, front, "--display-name", "Dana")
	org("add", "acme", "dana", "--role", "admin")
	tok := regexp.MustCompile(`(?m)^token: (\S+)$`).FindStringSubmatch(org("token", "acme", "--uses", "1"))
	if tok == nil {
		t.Fatal("assist org token printed no token")
	}
	pc := newCLIUser(t, "pc-1")
	if out := pc.run(t, "agent", "enroll", front.URL, tok[1], "--id", "pc-1", "--name", "Front desk", "--user", "Mel M"); !strings.Contains(out, "enrolled: pc-1 on ") {
		t.Fatalf("enroll printed %q", out)
	}
	var agent *proc
	victim := whichNode(t, c, func() {
		agent = startProc(t, "pc-1: assist agent", pc.cmd(t, "agent", "--display", d.Display, "--no-page", "--notify", "off"))
		agent.expect(`^agent: pc-1 online$`)
	})
	other := c.Nodes[(victim+1)%3]

	offer := dana.start(t, "offer", "pc-1", "--no-browser", "--server", other.URL)
	offer.expect(`^offered: pc-1$`)
	agent.expect(`^offer: \S+ from dana$`)
	agent.send("y")
	offer.expect(`^accepted by Mel M$`)
	agent.expect(`wants to see your screen\. Allow\? \[y/N\]`)
	agent.send("y")
	viewer := lab.DialRFB(t, offer.expect(`^rfb on (\S+)$`)[1])
	lab.WaitMatch(t, d.X, viewer.Screen, 0, matchTimeout)

	t.Logf("killing %s, the agent's node", c.Nodes[victim].Name)
	c.Kill(t, victim)
	d.Append(t, 3)
	lab.WaitMatch(t, d.X, viewer.Screen, 0, matchTimeout)
	offer.interrupt()
	offer.expect(`^audit: uploaded to entry \d+$`)
	offer.wait()
	// The agent's connection died with its node: it uploads on a fresh
	// one through the front, at the session's end or once back online.
	agent.expect(`^audit: uploaded to entry \d+$`)
	checkTrail(t, dana, 1)
	// Until HAProxy has marked the dead node down it may try it first
	// and then another: whichNode would see two nodes take the offer.
	c.Proxy.WaitBackend(t, c.Nodes[victim].Name, false, 20*time.Second)

	// Again, now losing the helper's node: dana offers through the front.
	var next *proc
	victim = whichNode(t, c, func() {
		next = dana.start(t, "offer", "pc-1", "--no-browser", "--server", front.URL)
		next.expect(`^offered: pc-1$`)
	})
	agent.expect(`^offer: \S+ from dana$`)
	agent.send("y")
	next.expect(`^accepted by Mel M$`)
	agent.expect(`wants to see your screen\. Allow\? \[y/N\]`)
	agent.send("y")
	viewer = lab.DialRFB(t, next.expect(`^rfb on (\S+)$`)[1])
	lab.WaitMatch(t, d.X, viewer.Screen, 0, matchTimeout)
	t.Logf("killing %s, dana's node", c.Nodes[victim].Name)
	c.Kill(t, victim)
	d.Append(t, 3)
	lab.WaitMatch(t, d.X, viewer.Screen, 0, matchTimeout)
	next.interrupt()
	next.expect(`^audit: uploaded to entry \d+$`)
	next.wait()
	agent.expect(`^audit: uploaded to entry \d+$`)
	checkTrail(t, dana, 2)
}

// checkTrail checks, as the organisation's admin dana, that acme's trail
// holds sessions sessions between dana and pc-1, each with the server's
// entries of the offer, its acceptance and the pairing, and the
// machine's consent, and that every chain verifies.
func checkTrail(t *testing.T, dana *cliUser, sessions int) {
	t.Helper()
	trail := dana.run(t, "audit", "--org", "acme")
	for _, want := range []string{
		`server: dana offered help to Mel M on pc-1`, `server: Mel M on pc-1 accepted dana's offer`,
		`dana started helping Mel M on pc-1 (paired by the server)`, `Mel M allowed viewing`,
	} {
		if n := strings.Count(trail, want); n != sessions {
			t.Errorf("assist audit --org acme after %d kills has %q %d times, want %d:\n%s", sessions, want, n, sessions, trail)
		}
	}
	for _, want := range []string{`[novice `, `[expert `} {
		if !strings.Contains(trail, want) {
			t.Errorf("assist audit --org acme lacks %q:\n%s", want, trail)
		}
	}
	ok := dana.run(t, "audit", "verify", "--org", "acme")
	for _, want := range []string{"ok: the server (", "ok: pc-1 (", "ok: dana ("} {
		if !strings.Contains(ok, want) {
			t.Errorf("verify --org after the kill lacks %q:\n%s", want, ok)
		}
	}
}

// TestClusterNATSServerLoss: three nodes on a three-server NATS cluster,
// each node given all three URLs in --bus. The buckets are replicated
// three times (the nodes chose it themselves). nora (n1) shows eddie (n2)
// her desktop; olga (n3) watches carl (n1). The NATS server with the
// most client connections, made the leader of the presence and
// signalling buckets, is shut down during the session: the picture goes
// on, every node is ready again, carl's presence change reaches olga,
// olga's request reaches carl across nodes, and after the session a new
// one between nora and eddie is set up through the signalling of two
// nodes again.
func TestClusterNATSServerLoss(t *testing.T) {
	e2e(t)
	needClusterServe(t)
	pg := pgtest.Start(t)
	dsn := pg.DB(t)
	ns := natstest.Cluster(t, 3)
	var urls []string
	for _, s := range ns {
		urls = append(urls, s.URL)
	}
	bus := strings.Join(urls, ",")
	c := &servedCluster{PG: pg, DSN: dsn, Cluster: lab.StartCluster(t, lab.ClusterOptions{Nodes: 3, Args: func(i int, node *lab.Node) []string {
		return []string{"--store", dsn, "--bus", bus, "--node", node.Name}
	}})}
	nc, err := nats.Connect(bus)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	streams := []string{"KV_" + natsbus.DefaultBucket, "KV_" + natsmesh.DefaultBucket, "KV_" + natsmesh.AgreeBucket}
	for _, s := range streams {
		if r := streamInfo(t, js, s).Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3 on a three-server NATS cluster", s, r)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	d := newDesktop(t)
	nora, eddie, olga, carl := newCLIUser(t, "nora"), newCLIUser(t, "eddie"), newCLIUser(t, "olga"), newCLIUser(t, "carl")
	for _, u := range []*cliUser{nora, eddie, olga, carl} {
		u.login(t, c.node(0))
	}
	pairCLI(t, nora, eddie)
	pairCLI(t, olga, carl)
	a, b := c.Nodes[0].URL, c.Nodes[1].URL
	carlW := watch(t, carl, a, c.Fingerprint, true)
	olgaW := watch(t, olga, c.Nodes[2].URL, c.Fingerprint, true)
	olgaW.waitState("carl", messenger.StateOnline, 10*time.Second)

	var eddieReqs *proc
	session := func() (*proc, *lab.RawClient) {
		t.Helper()
		// assist requests ends with the session it accepted.
		eddieReqs = eddie.start(t, "requests", "--no-browser", "--no-page", "--display", d.Display, "--server", b)
		ask := nora.start(t, "ask", "eddie", "--display", d.Display, "--no-page", "--server", a)
		ask.expect(`^asked: eddie$`)
		id := eddieReqs.expect(`^request: (\S+) from nora$`)[1]
		eddieReqs.send("accept " + id)
		ask.expect(`^accepted by eddie$`)
		rfbAddr := eddieReqs.expect(`^rfb on (127\.0\.0\.1:\d+)$`)[1]
		ask.expect(`wants to see your screen\. Allow\? \[y/N\]$`)
		ask.send("y")
		eddieReqs.expect(`^state: viewing`)
		v := lab.DialRFB(t, rfbAddr)
		lab.WaitMatch(t, d.X, v.Screen, 0, matchTimeout)
		return ask, v
	}
	endSession := func(ask *proc) {
		t.Helper()
		ask.send("q")
		eddieReqs.expect(`^state: ended`)
		if err := ask.wait(); err != nil {
			t.Errorf("ask after the session: %v; stderr: %s", err, ask.stderr)
		}
	}
	ask, viewer := session()

	// The victim: the NATS server most nodes' connections use, leading
	// the presence and signalling buckets.
	victim := 0
	for i, s := range ns {
		if s.Clients() > ns[victim].Clients() {
			victim = i
		}
	}
	for _, s := range streams[:2] {
		leadOn(t, nc, js, s, ns[victim].Name())
	}
	t.Logf("shutting down NATS server %s (%d clients), leader of %v", ns[victim].Name(), ns[victim].Clients(), streams[:2])
	stopped := time.Now()
	ns[victim].Stop()

	// The established session keeps its picture.
	d.Append(t, 3)
	lab.WaitMatch(t, d.X, viewer.Screen, 0, matchTimeout)
	// Every node serves again.
	for _, n := range c.Nodes {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if code, _ := n.Get(t, "/readyz"); code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s not ready 30 s after the NATS server stopped; log: %s", n.Name, n.Output())
			}
			time.Sleep(200 * time.Millisecond) // polling /readyz, as HAProxy does
		}
	}
	t.Logf("all nodes ready %v after the NATS server stopped", time.Since(stopped).Round(time.Millisecond))

	// Presence keeps flowing across nodes: a client told "unavailable"
	// tries again, as the agent does.
	retry := func(what string, f func(ctx context.Context) error) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := f(ctx)
			cancel()
			if err == nil {
				return
			}
			if !messenger.IsCode(err, messenger.CodeUnavailable) || time.Now().After(deadline) {
				t.Fatalf("%s after the NATS server stopped: %v", what, err)
			}
			t.Logf("%s: %v; trying again", what, err)
			time.Sleep(500 * time.Millisecond) // a client's back-off
		}
	}
	changed := time.Now()
	retry("carl's presence change", func(ctx context.Context) error { return carlW.client().SetState(ctx, messenger.StateAway) })
	olgaW.waitState("carl", messenger.StateAway, 20*time.Second)
	t.Logf("olga saw carl away %v after he changed it (%v after the NATS server stopped)",
		time.Since(changed).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	// A request crosses nodes.
	retry("olga's request to carl", func(ctx context.Context) error {
		_, err := olgaW.client().Ask(ctx, "carl", messenger.KindHelp)
		return err
	})
	carlW.waitFor("olga's request", 10*time.Second, func(w *watcher) bool {
		for _, m := range w.requests {
			if m.From == "olga" {
				return true
			}
		}
		return false
	})

	// The session ends as always, and a new one crosses two nodes'
	// signalling again (the directory of homes lost its leader).
	endSession(ask)
	ask, _ = session()
	endSession(ask)
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s.CachedInfo()
}

// leadOn makes server the leader of stream: it asks the present leader
// to step down in its favour until it is.
func leadOn(t *testing.T, nc *nats.Conn, js jetstream.JetStream, stream, server string) {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"placement": map[string]any{"preferred": server}})
	deadline := time.Now().Add(30 * time.Second)
	for {
		info := streamInfo(t, js, stream)
		if info.Cluster != nil && info.Cluster.Leader == server {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s: leader %+v, not %s, after 30 s", stream, info.Cluster, server)
		}
		if _, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, 5*time.Second); err != nil {
			t.Logf("stream %s: step down: %v", stream, err)
		}
		// NATS announces no election to clients; look again.
		time.Sleep(200 * time.Millisecond)
	}
}
