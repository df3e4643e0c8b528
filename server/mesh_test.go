package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/assist-project/assist/internal/natstest"
	"github.com/assist-project/assist/server/natsmesh"
)

// startNode starts a server joined to the NATS at url as node name, its
// claims living ttl.
func startNode(t *testing.T, url, name string, ttl time.Duration, tweak ...func(*Config)) (*testServer, *natsmesh.Mesh) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := natsmesh.Dial(ctx, url, natsmesh.Config{Node: name, TTL: ttl, Logger: testLogger(t).With("node", name)},
		nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after the server's stop.
	t.Cleanup(m.Close)
	ts := startServer(t, "", func(c *Config) {
		c.Mesh = m
		c.Logger = testLogger(t).With("node", name)
		for _, f := range tweak {
			f(c)
		}
	})
	return ts, m
}

// startTwoNodes starts NATS and two nodes on it, a and b, their claims
// living 3 s; tweak applies to a, the invitations' home in these tests.
// ma is a's end of the mesh.
func startTwoNodes(t *testing.T, tweak ...func(*Config)) (ns *natstest.Server, a, b *testServer, ma *natsmesh.Mesh) {
	t.Helper()
	ns = natstest.Start(t)
	a, ma = startNode(t, ns.URL, "a", 3*time.Second, tweak...)
	b, _ = startNode(t, ns.URL, "b", 3*time.Second)
	return ns, a, b, ma
}

// registerOwned registers id with an owner secret.
func (p *peer) registerOwned(id, owner string, expires time.Time) {
	p.t.Helper()
	p.sendRaw(`{"type":"register","id":"` + id + `","expires":"` + expires.Format(time.RFC3339) + `","owner":"` + owner + `"}`)
}

func (p *peer) relay(session, data string) {
	p.t.Helper()
	p.sendRaw(`{"type":"relay","data":` + data + `,"session":"` + session + `"}`)
}

func (p *peer) expectRelay(data string) {
	p.t.Helper()
	if r := p.expect(TypeRelay); string(r.Data) != data {
		p.t.Fatalf("relayed %s, want %s", r.Data, data)
	}
}

// eventually retries f until it reports true or 15 s pass: for what only
// time brings about (a claim expiring, NATS coming back).
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMeshAcrossNodes: a novice registered on node a and experts joining
// on node b meet, relay both ways, end with bye and peer-left, and wait
// in line, all handled by a (the invitation's home).
func TestMeshAcrossNodes(t *testing.T) {
	_, a, b, _ := startTwoNodes(t)

	novice, expert, e, n := pairVia(t, a, b, "x1")
	if n.From != expertAddr {
		t.Errorf("the novice was told the expert comes from %q, want %q", n.From, expertAddr)
	}
	if !hasTURN(e.ICE) {
		t.Errorf("a pairing of two addresses across nodes got no TURN: %+v", e.ICE)
	}
	// The load balancer may send GET /v1/ice to any node.
	if code, body := b.get(t, "/v1/ice?session="+e.Session); code != 200 || !strings.Contains(body, "turn:") {
		t.Errorf("GET /v1/ice on the expert's node: %d %s", code, body)
	}
	if code, _ := b.get(t, "/v1/ice?session=nosuchsession"); code != 404 {
		t.Errorf("GET /v1/ice for no session: %d, want 404", code)
	}

	expert.relay(e.Session, `{"sdp":"offer"}`)
	novice.expectRelay(`{"sdp":"offer"}`)
	novice.relay(n.Session, `"YW5zd2Vy"`)
	expert.expectRelay(`"YW5zd2Vy"`)
	if got := a.metric(t, `assist_signal_remote_clients{node="a"}`); got != "1" {
		t.Errorf("assist_signal_remote_clients on the home node = %s, want 1", got)
	}

	// A second expert, on b too, waits in line on a.
	second := b.dialFrom(t, "127.0.0.3")
	second.join("x1")
	second.expect(TypeQueued)
	// Only one per address and invitation, wherever it connects.
	third := a.dialFrom(t, "127.0.0.3")
	third.join("x1")
	third.expectError(CodeTooMany)

	expert.sendRaw(`{"type":"bye","reason":"done","session":"` + e.Session + `"}`)
	if r := novice.expect(TypeBye); r.Reason != "done" {
		t.Errorf("bye reason %q, want done", r.Reason)
	}
	e2 := second.expect(TypePaired)
	n2 := novice.expect(TypePaired)
	if e2.Session != n2.Session || e2.Session == e.Session {
		t.Fatalf("second pairing's sessions %q and %q (first %q)", e2.Session, n2.Session, e.Session)
	}
	second.relay(e2.Session, `{"n":2}`)
	novice.expectRelay(`{"n":2}`)
	// A late message of the first pairing reaches nobody.
	expert.relay(e.Session, `{"late":true}`)
	expert.expectError(CodeNotPaired)

	second.ws.Close(websocket.StatusNormalClosure, "")
	novice.expect(TypePeerLeft)

	// The first expert joins again on the same connection.
	expert.join("x1")
	e3 := expert.expect(TypePaired)
	novice.expect(TypePaired)
	expert.relay(e3.Session, `{"n":3}`)
	novice.expectRelay(`{"n":3}`)
	novice.sendRaw(`{"type":"bye","reason":"novice done"}`)
	if r := expert.expect(TypeBye); r.Reason != "novice done" {
		t.Errorf("bye reason %q, want \"novice done\"", r.Reason)
	}

	// An id nobody holds is unknown on every node; the novice leaving
	// frees its id at once.
	x := b.dialFrom(t, "127.0.0.4")
	x.join("nope")
	x.expectError(CodeUnknown)
	novice.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the novice's id forgotten", func() bool {
		y := b.dialFrom(t, "127.0.0.5")
		defer y.ws.CloseNow()
		y.join("x1")
		return y.recv().Code == CodeUnknown
	})
	again := b.dial(t)
	again.register("x1", b.Clock.Now().Add(time.Hour))
	again.expect(TypeRegistered)
	expert.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the remote clients gone", func() bool { return a.metric(t, `assist_signal_remote_clients{node="a"}`) == "0" })
}

// TestMeshHomeDies: when the invitation's home node dies, the experts it
// handled are told to go away; its claims expire by themselves, and the
// novice's agent registers again on another node at once (same owner).
func TestMeshHomeDies(t *testing.T) {
	_, a, b, ma := startTwoNodes(t)
	const owner = "AAAAAAAAAAAAAAAAAAAAAA"

	novice := a.dial(t)
	novice.registerOwned("x2", owner, a.Clock.Now().Add(time.Hour))
	novice.expect(TypeRegistered)
	other := a.dial(t)
	other.register("x3", a.Clock.Now().Add(time.Hour))
	other.expect(TypeRegistered)
	expert := b.dialFrom(t, expertAddr)
	expert.join("x2")
	expert.expect(TypePaired)
	novice.expect(TypePaired)

	// a dies: it can tell nobody anything.
	ma.Close()
	novice.ws.CloseNow()
	other.ws.CloseNow()
	a.stop()
	expert.expectClosed(websocket.StatusGoingAway)

	// Another agent cannot have x3 until a's claim expires...
	squatter := b.dial(t)
	squatter.registerOwned("x3", "BBBBBBBBBBBBBBBBBBBBBB", b.Clock.Now().Add(time.Hour))
	squatter.expectError(CodeTaken)
	// ...but x2's own agent takes it back at once, and experts meet it.
	back := b.dial(t)
	back.registerOwned("x2", owner, b.Clock.Now().Add(time.Hour))
	back.expect(TypeRegistered)
	expert = b.dialFrom(t, expertAddr)
	expert.join("x2")
	expert.expect(TypePaired)
	back.expect(TypePaired)

	eventually(t, "a's claim on x3 expiring", func() bool {
		s := b.dial(t)
		defer s.ws.CloseNow()
		s.register("x3", b.Clock.Now().Add(time.Hour))
		return s.recv().Type == TypeRegistered
	})
}

// TestMeshHomeMoves: the home of an invitation dies, and its agent
// registers it again on another node. Its expert, on that node or on a
// third, is told at once to join again (not after the checks give the dead
// node up: with claims living a minute that takes a minute), and meets the
// agent there. An expert joined to another invitation of the dead node's
// is left to the checks.
func TestMeshHomeMoves(t *testing.T) {
	for _, tc := range []struct {
		name  string
		third bool // the expert is on a node of its own
		// The expert's node's experts forwarded to other nodes at the
		// end, as id@home.
		want []string
	}{
		{"expert on the agent's new node", false, []string{"x3@a"}},
		{"expert on a third node", true, []string{"x2@b", "x3@a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := natstest.Start(t)
			a, ma := startNode(t, ns.URL, "a", time.Minute)
			b, _ := startNode(t, ns.URL, "b", time.Minute)
			e := b
			if tc.third {
				e, _ = startNode(t, ns.URL, "c", time.Minute)
			}
			const owner = "AAAAAAAAAAAAAAAAAAAAAA"

			novice := a.dial(t)
			novice.registerOwned("x2", owner, a.Clock.Now().Add(time.Hour))
			novice.expect(TypeRegistered)
			expert := e.dialFrom(t, expertAddr)
			expert.join("x2")
			expert.expect(TypePaired)
			novice.expect(TypePaired)
			other := a.dial(t)
			other.register("x3", a.Clock.Now().Add(time.Hour))
			other.expect(TypeRegistered)
			bystander := e.dialFrom(t, "127.0.0.3")
			bystander.join("x3")
			bystander.expect(TypePaired)
			other.expect(TypePaired)

			// a dies without a word; x2's agent comes back on b.
			ma.Close()
			novice.ws.CloseNow()
			other.ws.CloseNow()
			a.stop()
			back := b.dial(t)
			back.registerOwned("x2", owner, b.Clock.Now().Add(time.Hour))
			back.expect(TypeRegistered)
			expert.expectClosedWith(websocket.StatusGoingAway, movedMessage)

			expert = e.dialFrom(t, expertAddr)
			expert.join("x2")
			expert.expect(TypePaired)
			back.expect(TypePaired)
			// A "moved" that comes late leaves links to the new home
			// alone.
			e.meshHandle([]byte(`{"op":"moved","from":"b","id":"x2"}`))
			e.mu.Lock()
			var edges []string
			for _, c := range e.mesh.edges {
				edges = append(edges, c.edgeFor+"@"+c.home)
			}
			e.mu.Unlock()
			slices.Sort(edges)
			if !slices.Equal(edges, tc.want) {
				t.Errorf("experts forwarded to other nodes are joined to %q, want %q", edges, tc.want)
			}
		})
	}
}

// TestMeshNATSRestart: NATS restarts under two nodes; they recover by
// themselves, and a novice registered before the restart is found from
// the other node afterwards.
func TestMeshNATSRestart(t *testing.T) {
	ns, a, b, _ := startTwoNodes(t)

	novice, expert, first, _ := pairVia(t, a, b, "x4")
	expert.relay(first.Session, `{"before":true}`)
	novice.expectRelay(`{"before":true}`)

	ns.Stop()
	eventually(t, "a not ready without NATS", func() bool {
		code, body := a.get(t, "/readyz")
		return code == 503 && body == "bus unavailable\n"
	})
	ns.Restart(t)
	eventually(t, "a ready again", func() bool { code, _ := a.get(t, "/readyz"); return code == 200 })

	// The expert leaves; the novice hears of it (from the expert's node,
	// or from its own when the link was given up during the outage).
	expert.ws.Close(websocket.StatusNormalClosure, "")
	novice.expect(TypePeerLeft)
	var late *peer
	var session string
	eventually(t, "an expert on b finding the novice on a after the restart", func() bool {
		p := b.dialFrom(t, "127.0.0.3")
		p.join("x4")
		r := p.recv()
		if r.Type != TypePaired {
			p.ws.CloseNow()
			return false
		}
		late, session = p, r.Session
		return true
	})
	novice.expect(TypePaired)
	late.relay(session, `{"after":true}`)
	novice.expectRelay(`{"after":true}`)
}

func hasTURN(ice []ICEServer) bool {
	for _, s := range ice {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") {
				return true
			}
		}
	}
	return false
}

// TestMeshDeadlineAndDrain: the home node's deadlines bind an expert on
// another node (silent after "paired": bye to both), and when the home
// drains, that expert is told to go away through its own node.
func TestMeshDeadlineAndDrain(t *testing.T) {
	_, a, b, _ := startTwoNodes(t, func(c *Config) { c.ExpertDeadline = 300 * time.Millisecond })

	novice, expert, _, _ := pairVia(t, a, b, "x5")
	for _, p := range []*peer{expert, novice} {
		if r := p.expect(TypeBye); r.Reason != ReasonExpertTimeout {
			t.Errorf("bye reason %q, want %q", r.Reason, ReasonExpertTimeout)
		}
	}

	expert.join("x5")
	e := expert.expect(TypePaired)
	novice.expect(TypePaired)
	expert.relay(e.Session, `{"in":"time"}`)
	novice.expectRelay(`{"in":"time"}`)
	a.Drain()
	a.Disconnect()
	expert.expectDrained()
	novice.expectDrained()
}

// TestMeshGoneTwice: a link is closed only when its node calls it gone at
// two checks in a row; a check that knows it again starts the count anew,
// and edges and remotes with the same id are counted apart.
func TestMeshGoneTwice(t *testing.T) {
	m := &meshState{gone: make(map[string]int)}
	ids := []string{"x", "y"}
	for i, c := range []struct {
		kind        string
		gone, twice []string
	}{
		{"e", []string{"x"}, nil},
		{"r", []string{"x", "y"}, nil},
		{"e", []string{"x", "y"}, []string{"x"}},
		{"e", nil, nil},
		{"e", []string{"y"}, nil},
		{"r", []string{"y"}, []string{"y"}},
	} {
		asked := make(map[string]bool)
		got := m.goneTwice("n", c.kind, ids, c.gone, asked)
		if strings.Join(got, ",") != strings.Join(c.twice, ",") {
			t.Errorf("check %d (%s, gone %v): closes %v, want %v", i, c.kind, c.gone, got, c.twice)
		}
		if len(asked) != 2 || !asked["n\x00"+c.kind+"x"] || !asked["n\x00"+c.kind+"y"] {
			t.Errorf("check %d: asked %v, want both of kind %s", i, asked, c.kind)
		}
	}
	if want := map[string]int{"n\x00ey": 1}; len(m.gone) != 1 || m.gone["n\x00ey"] != 1 {
		t.Errorf("counts left %v, want %v", m.gone, want)
	}
}
