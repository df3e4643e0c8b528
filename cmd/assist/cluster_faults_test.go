package main

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/messenger"
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
// ("allowed viewing"); every chain verifies.
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
	agent.expect(`^session ended: \S+$`)
	offer.expect(`^audit: uploaded to entry \d+$`)
	offer.wait()
	// The agent's connection died with its node: it logs in again
	// through the front and uploads what the server does not hold yet.
	agent.expect(`^agent: pc-1 online$`)
	agent.expect(`^audit: uploaded to entry \d+$`)

	trail := dana.run(t, "audit", "--org", "acme")
	for _, want := range []string{
		`server: dana offered help to Mel M on pc-1`, `server: Mel M on pc-1 accepted dana's offer`,
		`dana started helping Mel M on pc-1 (paired by the server)`,
		`[novice `, `[expert `, `allowed viewing`,
	} {
		if !strings.Contains(trail, want) {
			t.Errorf("assist audit --org acme after the kill lacks %q:\n%s", want, trail)
		}
	}
	ok := dana.run(t, "audit", "verify", "--org", "acme")
	for _, want := range []string{"ok: the server (", "ok: pc-1 (", "ok: dana ("} {
		if !strings.Contains(ok, want) {
			t.Errorf("verify --org after the kill lacks %q:\n%s", want, ok)
		}
	}
}
