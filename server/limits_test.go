package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The tests of issue 8: one address must not be able to fill the server,
// harvest codes, hold a code, fill the store or take the relay. Clients
// at distinct addresses come from distinct loopback addresses (dialFrom).

// TestConnsPerAddress: one address gets MaxConnsPerAddress connections and
// then HTTP 429 before any upgrade, while pairings from other addresses
// go on working; a closed connection makes room again.
func TestConnsPerAddress(t *testing.T) {
	ts := startServer(t, "", func(c *Config) { c.PendingTimeout = time.Minute })
	const flooder = "127.0.0.3"
	var held []*websocket.Conn
	for range 64 { // the default
		ws, _, err := ts.tryDial(flooder)
		if err != nil {
			t.Fatalf("connection %d from one address refused: %v", len(held)+1, err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		held = append(held, ws)
	}
	_, resp, err := ts.tryDial(flooder)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("connection 65 from one address: %v, %+v; want HTTP 429", err, resp)
	}
	if v := ts.metric(t, `assist_signal_refused_connections_total{reason="per-address"}`); v != "1" {
		t.Errorf("refused connections = %s, want 1", v)
	}

	// Others are served meanwhile.
	novice, expert, _ := ts.pair(t, "during-the-flood")
	expert.sendRaw(`{"type":"relay","data":"hi"}`)
	novice.expect(TypeRelay)

	// Room again once one closes (the server notices asynchronously).
	held[0].Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws, _, err := ts.tryDial(flooder)
		if err == nil {
			ws.CloseNow()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after one connection closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPendingTimeout: a connection that neither registers nor joins (or
// whose join was refused) is closed after PendingTimeout; registered
// novices and experts waiting in line are not.
func TestPendingTimeout(t *testing.T) {
	ts := startServer(t, "", func(c *Config) { c.PendingTimeout = 300 * time.Millisecond })
	novice, expert, _ := ts.pair(t, "kept")
	waiting := ts.dialFrom(t, "127.0.0.4")
	waiting.join("kept")
	waiting.expect(TypeQueued)

	idle := ts.dial(t)
	refused := ts.dial(t)
	refused.join("nobody")
	refused.expectError(CodeUnknown)
	for _, p := range []*peer{idle, refused} {
		_, err := p.recvRaw()
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "register or join within 300ms" {
			t.Errorf("idle connection ended with %v, want status 1008 \"register or join within 300ms\"", err)
		}
	}
	// Those that did something are still there.
	novice.sendRaw(`{"type":"relay","data":1}`)
	expert.expect(TypeRelay)
	waiting.sendRaw(`{"type":"bye"}`)
	waiting.expectError(CodeNotPaired)
}

// TestDeadlineTimerEarly: a timer that fires before its deadline (armed a
// moment before the deadline was taken, or moved since) waits for the
// rest instead of forgetting the deadline: the abuse probe once found an
// idle connection still open long after PendingTimeout.
func TestDeadlineTimerEarly(t *testing.T) {
	ts := startServer(t, "", nil) // the default 10 s: only the early timer can close it in time
	idle := ts.dial(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		ts.mu.Lock()
		var c *client
		for k := range ts.clients {
			c = k
		}
		if c != nil {
			c.deadlineAt = time.Now().Add(100 * time.Millisecond)
			c.timer.Reset(0) // fires before deadlineAt
		}
		ts.mu.Unlock()
		if c != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never registered the connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err := idle.recvRaw()
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation {
		t.Fatalf("idle connection ended with %v, want status 1008 at the moved deadline", err)
	}
}

// TestRegisterOwner: a novice that registered its id with an owner secret
// keeps it while away: nobody else registers that id before it expires
// (the squatting hole), the novice itself does, and after expiry anyone
// may.
func TestRegisterOwner(t *testing.T) {
	ts := startServer(t, "", nil)
	exp := ts.Clock.Now().Add(time.Hour)
	registerAs := func(p *peer, id, owner string) {
		p.t.Helper()
		msg := `{"type":"register","id":"` + id + `","expires":"` + exp.Format(time.RFC3339) + `"`
		if owner != "" {
			msg += `,"owner":"` + owner + `"`
		}
		p.sendRaw(msg + "}")
	}
	const mine, theirs = "mine-mine-mine-mine-mine", "theirs-theirs-theirs-theirs"

	novice := ts.dial(t)
	registerAs(novice, "42", mine)
	novice.expect(TypeRegistered)
	novice.ws.Close(websocket.StatusNormalClosure, "")
	// Wait until the server has let go of the connection, so what answers
	// below is the stored owner, not a connected novice.
	deadline := time.Now().Add(5 * time.Second)
	for ts.metric(t, `assist_signal_connections{role="novice"}`) != "0" {
		if time.Now().After(deadline) {
			t.Fatal("the server did not notice the novice leaving")
		}
		time.Sleep(10 * time.Millisecond)
	}

	squatter := ts.dialFrom(t, "127.0.0.7")
	registerAs(squatter, "42", theirs)
	if r := squatter.expectError(CodeTaken); !strings.Contains(r.Message, "belongs to another agent") {
		t.Errorf("squatter with another owner: %q", r.Message)
	}
	registerAs(squatter, "42", "")
	squatter.expectError(CodeTaken)

	back := ts.dial(t)
	registerAs(back, "42", mine)
	back.expect(TypeRegistered)
	back.ws.Close(websocket.StatusNormalClosure, "")

	// Expired, the id is free for anyone (a short code's number is reused).
	ts.Clock.Add(2 * time.Hour)
	exp = ts.Clock.Now().Add(time.Hour)
	later := ts.dialFrom(t, "127.0.0.8")
	for {
		registerAs(later, "42", theirs)
		r := later.recv()
		if r.Type == TypeRegistered {
			break
		}
		// "taken" while the server still holds the closed connection.
		if r.Code != CodeTaken || time.Now().After(deadline.Add(5*time.Second)) {
			t.Fatalf("registering an expired id: %+v", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRegisterLimits: an address registers RegisterBurst invitations,
// then one per RegisterEvery, and keeps at most MaxNovicesPerAddress
// connected; the refusal ("too-many") says when to try again and keeps
// the connection open. Other addresses are not affected.
func TestRegisterLimits(t *testing.T) {
	t.Run("rate", func(t *testing.T) {
		ts := startServer(t, "", nil)
		exp := ts.Clock.Now().Add(time.Hour)
		for i := range 10 {
			n := ts.dial(t)
			n.register(fmt.Sprintf("r-%d", i), exp)
			n.expect(TypeRegistered)
		}
		n := ts.dial(t)
		n.register("r-10", exp)
		if r := n.expectError(CodeTooMany); !strings.Contains(r.Message, "try again in 60s") {
			t.Errorf("refusal %q does not say when to try again", r.Message)
		}
		// The refusal answers the same whether the id is taken or not.
		n.register("r-0", exp)
		n.expectError(CodeTooMany)
		// Another address is not affected.
		other := ts.dialFrom(t, "127.0.0.2")
		other.register("r-other", exp)
		other.expect(TypeRegistered)
		// A minute later, one more; the refused connection stayed open.
		ts.Clock.Add(time.Minute)
		n.register("r-10", exp)
		n.expect(TypeRegistered)
		if _, err := ts.Store.Invitation(context.Background(), "r-11"); err == nil {
			t.Error("a refused registration was stored")
		}
	})
	t.Run("live", func(t *testing.T) {
		ts := startServer(t, "", func(c *Config) { c.RegisterBurst = 100 })
		exp := ts.Clock.Now().Add(time.Hour)
		var live []*peer
		for i := range 20 {
			n := ts.dial(t)
			n.register(fmt.Sprintf("l-%d", i), exp)
			n.expect(TypeRegistered)
			live = append(live, n)
		}
		n := ts.dial(t)
		n.register("l-20", exp)
		if r := n.expectError(CodeTooMany); !strings.Contains(r.Message, "live already") {
			t.Errorf("refusal %q", r.Message)
		}
		// One ends: room for another (once the server noticed).
		live[0].ws.Close(websocket.StatusNormalClosure, "")
		for {
			n.register("l-20", exp)
			if r := n.recv(); r.Type == TypeRegistered {
				break
			} else if r.Code != CodeTooMany {
				t.Fatalf("got %+v, want registered or too-many", r)
			}
		}
	})
}

// TestJoinMissLimit: an address's joins that find nothing are limited
// (burst 10, then one per 6 s); while that is spent, every join from it is
// refused before the look-up, for a live code too, so the answer says
// nothing. Joins that hit cost nothing from it, and others are served.
func TestJoinMissLimit(t *testing.T) {
	ts := startServer(t, "", nil)
	novice := ts.dial(t)
	novice.register("4242", ts.Clock.Now().Add(time.Hour))
	novice.expect(TypeRegistered)

	// A help desk behind one address joins real codes again and again.
	desk := ts.dialFrom(t, "127.0.0.5")
	for range 15 {
		desk.join("4242")
		desk.expect(TypePaired)
		novice.expect(TypePaired)
		desk.sendRaw(`{"type":"bye","reason":"done"}`)
		novice.expect(TypeBye)
	}

	prober := ts.dialFrom(t, "127.0.0.3")
	for i := range 10 {
		prober.join(fmt.Sprintf("%d", 1000+i))
		prober.expectError(CodeUnknown)
	}
	// Spent: even the live code is refused, with the same answer as a
	// dead one.
	prober.join("4242")
	live := prober.expectError(CodeTooMany)
	prober.join("9999")
	dead := prober.expectError(CodeTooMany)
	if live.Message != dead.Message || !strings.Contains(live.Message, "try again in 6s") {
		t.Errorf("refusals differ or do not say when: %q, %q", live.Message, dead.Message)
	}
	// The help desk still has its 10 misses, and others join.
	for i := range 10 {
		desk.join(fmt.Sprintf("%d", 2000+i))
		desk.expectError(CodeUnknown)
	}
	e := ts.dialFrom(t, "127.0.0.2")
	e.join("4242")
	e.expect(TypePaired)
	novice.expect(TypePaired)
	e.sendRaw(`{"type":"bye"}`)
	novice.expect(TypeBye)
	// Six seconds later, one more try for the prober.
	ts.Clock.Add(6 * time.Second)
	prober.join("4242")
	prober.expect(TypePaired)
	novice.expect(TypePaired)
	prober.sendRaw(`{"type":"bye"}`)
	novice.expect(TypeBye)

	// All joins together are bounded too: 30 at once.
	flood := ts.dialFrom(t, "127.0.0.9")
	for range 30 {
		flood.join("4242")
		flood.expect(TypePaired)
		novice.expect(TypePaired)
		flood.sendRaw(`{"type":"bye"}`)
		novice.expect(TypeBye)
	}
	flood.join("4242")
	flood.expectError(CodeTooMany)
}

// TestJoinAnswersTellNothing: a join for an id never registered, one whose
// invitation expired while its novice is connected, and one stored with
// no novice connected get the very same answer.
func TestJoinAnswersTellNothing(t *testing.T) {
	ts := startServer(t, "", nil)
	ctx := context.Background()
	now := ts.Clock.Now()
	if err := ts.Store.PutInvitation(ctx, Invitation{ID: "2222", Expires: now.Add(time.Hour), Created: now, Seen: now}); err != nil {
		t.Fatal(err)
	}
	n := ts.dial(t)
	n.register("3333", now.Add(time.Minute))
	n.expect(TypeRegistered)
	ts.Clock.Add(2 * time.Minute)

	e := ts.dialFrom(t, "127.0.0.2")
	var answers []string
	for _, id := range []string{"1111", "2222", "3333"} {
		e.join(id)
		b, err := e.recvRaw()
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, string(b))
	}
	want := `{"type":"error","code":"unknown","message":"` + unknownMessage + `"}`
	for i, a := range answers {
		if a != want {
			t.Errorf("answer %d: %s, want %s", i, a, want)
		}
	}
}

// TestQueue: an expert that pairs and sends nothing loses the pairing
// after ExpertDeadline, and the expert waiting in line is paired at once;
// one entry per address and invitation; the line is bounded, and a wait
// in it too.
func TestQueue(t *testing.T) {
	ts := startServer(t, "", func(c *Config) {
		c.ExpertDeadline = 200 * time.Millisecond
		c.QueueTimeout = 2 * time.Second
		c.MaxQueue = 2
	})
	novice := ts.dial(t)
	novice.register("5555", ts.Clock.Now().Add(time.Hour))
	novice.expect(TypeRegistered)
	// Connected before the clock starts ticking.
	holder := ts.dialFrom(t, "127.0.0.3")
	real := ts.dialFrom(t, "127.0.0.2")
	second := ts.dialFrom(t, "127.0.0.3")
	third := ts.dialFrom(t, "127.0.0.4")
	fourth := ts.dialFrom(t, "127.0.0.6")

	holder.join("5555")
	holder.expect(TypePaired)
	novice.expect(TypePaired)
	// The real expert waits in line instead of being turned away.
	real.join("5555")
	real.expect(TypeQueued)
	// A second connection of the holder's address cannot queue too.
	second.join("5555")
	second.expectError(CodeTooMany)

	// The holder sends nothing: after the deadline both sides get bye,
	// and the real expert is paired.
	if r := holder.expect(TypeBye); r.Reason != ReasonExpertTimeout {
		t.Errorf("holder's bye reason %q", r.Reason)
	}
	if r := novice.expect(TypeBye); r.Reason != ReasonExpertTimeout {
		t.Errorf("novice's bye reason %q", r.Reason)
	}
	n := novice.expect(TypePaired)
	r := real.expect(TypePaired)
	if n.Session != r.Session || n.From != "127.0.0.2" {
		t.Fatalf("novice paired with %+v, expert with %+v", n, r)
	}
	// An expert that relays keeps its pairing past the deadline.
	real.sendRaw(`{"type":"relay","data":"offer"}`)
	novice.expect(TypeRelay)

	// The holder comes back: it waits in line like anyone. The line holds
	// two; a third is turned away.
	holder.join("5555")
	holder.expect(TypeQueued)
	third.join("5555")
	third.expect(TypeQueued)
	fourth.join("5555")
	fourth.expectError(CodeBusy)

	// The real expert's session goes on; after QueueTimeout those in line
	// are told "busy", and the real expert is still paired.
	holder.expectError(CodeBusy)
	third.expectError(CodeBusy)
	novice.sendRaw(`{"type":"relay","data":"answer"}`)
	if r := real.expect(TypeRelay); string(r.Data) != `"answer"` {
		t.Errorf("relay %s", r.Data)
	}

	// When the pairing ends, the next in line goes at once.
	holder.join("5555")
	holder.expect(TypeQueued)
	real.sendRaw(`{"type":"bye","reason":"done"}`)
	novice.expect(TypeBye)
	novice.expect(TypePaired)
	holder.expect(TypePaired)
}

// TestPruneUnconnected: an invitation whose novice is not connected is
// forgotten after UnconnectedTTL; a connected one is kept however long;
// one stored before the server started counts from the start.
func TestPruneUnconnected(t *testing.T) {
	ts := startServer(t, "", nil)
	ctx := context.Background()
	now := ts.Clock.Now()
	// From an earlier run of the server (the schema's zero).
	if err := ts.Store.PutInvitation(ctx, Invitation{ID: "old", Expires: now.Add(24 * time.Hour), Created: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	stays := ts.dial(t)
	stays.register("stays", now.Add(24*time.Hour))
	stays.expect(TypeRegistered)
	gone := ts.dial(t)
	gone.register("gone", now.Add(24*time.Hour))
	gone.expect(TypeRegistered)
	gone.ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return ts.novices["gone"] == nil
	})

	exists := func(id string) bool {
		_, err := ts.Store.Invitation(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	ts.Clock.Add(9 * time.Minute)
	ts.pruneOnce(ctx)
	for _, id := range []string{"old", "stays", "gone"} {
		if !exists(id) {
			t.Errorf("%s forgotten after 9 minutes", id)
		}
	}
	// Within a minute after the ten: the pruner dates a departure by its
	// last look.
	ts.Clock.Add(3 * time.Minute)
	ts.pruneOnce(ctx)
	for id, want := range map[string]bool{"old": false, "gone": false, "stays": true} {
		if got := exists(id); got != want {
			t.Errorf("after 12 minutes %s exists: %v, want %v", id, got, want)
		}
	}
	ts.Clock.Add(time.Hour)
	ts.pruneOnce(ctx)
	if !exists("stays") {
		t.Error("the invitation of a connected novice was forgotten")
	}
}

// TestTURNRules: TURN credentials only for two distinct addresses, and
// for at most MaxRelaysPerAddress live pairings per address; GET /v1/ice
// follows the pairing's lot.
func TestTURNRules(t *testing.T) {
	// Experts here never relay; their pairings must outlive the test.
	ts := startServer(t, "", func(c *Config) { c.ExpertDeadline = time.Hour })
	hasTURN := func(ice []ICEServer) bool {
		for _, s := range ice {
			for _, u := range s.URLs {
				if strings.HasPrefix(u, "turn") {
					return true
				}
			}
			if s.Username != "" || s.Credential != "" {
				return true
			}
		}
		return false
	}
	iceTURN := func(session string) bool {
		code, body := ts.get(t, "/v1/ice?session="+session)
		if code != 200 {
			t.Fatalf("/v1/ice: %d %s", code, body)
		}
		return strings.Contains(body, "turn:") || strings.Contains(body, "credential")
	}
	exp := ts.Clock.Now().Add(time.Hour)

	// Self-pairing: same address, no TURN.
	n := ts.dialFrom(t, "127.0.0.7")
	n.register("self", exp)
	n.expect(TypeRegistered)
	e := ts.dialFrom(t, "127.0.0.7")
	e.join("self")
	pe, pn := e.expect(TypePaired), n.expect(TypePaired)
	if hasTURN(pe.ICE) || hasTURN(pn.ICE) || iceTURN(pe.Session) || len(pe.ICE) != 1 {
		t.Errorf("a pairing on one address got TURN: %+v / %+v", pe.ICE, pn.ICE)
	}
	if pn.From != "127.0.0.7" || pe.From != "" {
		t.Errorf("from: novice %q, expert %q", pn.From, pe.From)
	}

	// One expert address with five novices elsewhere: four get TURN.
	var sessions []string
	var experts []*peer
	for i := range 5 {
		id := fmt.Sprintf("t-%d", i)
		n := ts.dialFrom(t, fmt.Sprintf("127.0.1.%d", i+1))
		n.register(id, exp)
		n.expect(TypeRegistered)
		e := ts.dialFrom(t, "127.0.0.8")
		e.join(id)
		p := e.expect(TypePaired)
		n.expect(TypePaired)
		if got, want := hasTURN(p.ICE), i < 4; got != want || iceTURN(p.Session) != want {
			t.Errorf("pairing %d: TURN %v, want %v: %+v", i, got, want, p.ICE)
		}
		sessions = append(sessions, p.Session)
		experts = append(experts, e)
	}
	// One of the four ends: the next pairing gets TURN again.
	experts[0].sendRaw(`{"type":"bye"}`)
	waitFor(t, func() bool { code, _ := ts.get(t, "/v1/ice?session="+sessions[0]); return code == 404 })
	n = ts.dialFrom(t, "127.0.1.9")
	n.register("t-again", exp)
	n.expect(TypeRegistered)
	e = ts.dialFrom(t, "127.0.0.8")
	e.join("t-again")
	if p := e.expect(TypePaired); !hasTURN(p.ICE) {
		t.Errorf("after a pairing ended, no TURN: %+v", p.ICE)
	}
}

// TestHSTS: every HTTPS answer carries Strict-Transport-Security.
func TestHSTS(t *testing.T) {
	ts := startServer(t, "", nil)
	for _, path := range []string{"/healthz", "/v1/ice?session=x", "/metrics", "/nothing"} {
		resp, err := ts.client.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Errorf("%s: Strict-Transport-Security %q", path, got)
		}
	}
}

// TestMetricsLoopbackOnly: /metrics answers loopback clients only, unless
// MetricsPublic.
func TestMetricsLoopbackOnly(t *testing.T) {
	for _, public := range []bool{false, true} {
		ts := startServer(t, "", func(c *Config) { c.MetricsPublic = public })
		for remote, loopback := range map[string]bool{
			"127.0.0.1:4000": true, "[::1]:4000": true, "127.0.0.9:1": true,
			"192.0.2.7:4000": false, "[2001:db8::1]:4000": false, "[::ffff:192.0.2.7]:1": false,
		} {
			r := httptest.NewRequest("GET", "/metrics", nil)
			r.RemoteAddr = remote
			w := httptest.NewRecorder()
			ts.ServeHTTP(w, r)
			want := http.StatusOK
			if !loopback && !public {
				want = http.StatusForbidden
			}
			if w.Code != want || (want == http.StatusOK && !strings.Contains(w.Body.String(), "assist_sessions")) {
				t.Errorf("public %v, /metrics from %s: %d, want %d", public, remote, w.Code, want)
			}
		}
	}
}

// TestFreeMemory: after many connections closed, the pruner gives memory
// back to the system.
func TestFreeMemory(t *testing.T) {
	var logs syncBuf
	ts := startServer(t, "", func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ts.mu.Lock()
	ts.connsHigh = freeMemoryDrop - 1
	ts.mu.Unlock()
	ts.pruneOnce(context.Background())
	if strings.Contains(logs.String(), "returned memory") {
		t.Fatal("memory returned after fewer connections closed than freeMemoryDrop")
	}
	ts.mu.Lock()
	ts.connsHigh = freeMemoryDrop
	ts.mu.Unlock()
	ts.pruneOnce(context.Background())
	if !strings.Contains(logs.String(), "returned memory") {
		t.Fatal("memory not returned after freeMemoryDrop connections closed")
	}
}

// waitFor polls cond until it holds; there is no event to wait on for
// what the server does after a connection closes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAddrSweep: the accounting of an address is forgotten once it has
// nothing live and its allowances are whole again, so the table does not
// grow with every address ever seen.
func TestAddrSweep(t *testing.T) {
	ts := startServer(t, "", nil)
	n := ts.dialFrom(t, "127.0.0.21")
	n.register("sweep", ts.Clock.Now().Add(time.Hour))
	n.expect(TypeRegistered)
	e := ts.dialFrom(t, "127.0.0.22")
	e.join("nothing")
	e.expectError(CodeUnknown)
	n.ws.Close(websocket.StatusNormalClosure, "")
	e.ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool {
		ts.limits.mu.Lock()
		defer ts.limits.mu.Unlock()
		for _, st := range ts.limits.addrs {
			if st.conns > 0 || st.novices > 0 {
				return false
			}
		}
		return true
	})
	ts.pruneOnce(context.Background())
	if got := ts.limits.tracked(); got != 2 {
		t.Errorf("right after: %d addresses tracked, want 2 (their allowances are not whole yet)", got)
	}
	ts.Clock.Add(time.Minute)
	ts.pruneOnce(context.Background())
	if got := ts.limits.tracked(); got != 0 {
		t.Errorf("a minute later: %d addresses tracked, want 0", got)
	}
}

// TestNoSessionInLogs: session ids authorise GET /v1/ice (TURN
// credentials), so they never reach the server's logs at INFO or above.
func TestNoSessionInLogs(t *testing.T) {
	var logs syncBuf
	ts := startServer(t, "", func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		c.ExpertDeadline = 100 * time.Millisecond
	})
	novice, expert, s1 := ts.pair(t, "logged")
	expert.sendRaw(`{"type":"relay","data":1}`)
	novice.expect(TypeRelay)
	expert.sendRaw(`{"type":"bye","reason":"done"}`)
	novice.expect(TypeBye)
	expert.join("logged")
	s2 := expert.expect(TypePaired).Session
	novice.expect(TypePaired)
	novice.expect(TypeBye) // the expert sent nothing: timeout
	expert.expect(TypeBye)
	expert.join("logged")
	s3 := expert.expect(TypePaired).Session
	novice.expect(TypePaired)
	expert.ws.Close(websocket.StatusNormalClosure, "")
	novice.expect(TypePeerLeft)
	novice.ws.Close(websocket.StatusNormalClosure, "")
	ts.stop()
	out := logs.String()
	for _, s := range []string{s1, s2, s3} {
		if strings.Contains(out, s) {
			t.Errorf("session id %s in the log:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "signal: paired") || !strings.Contains(out, "signal: peer left") {
		t.Errorf("the log lacks the pairing's events:\n%s", out)
	}
}

// TestNoMessengerIDInLogs: a messenger session's id (the SID of an accepted
// request) is the capability to pair with that novice's device, so the
// server's logs name it by its tag; an invitation's id is still logged in
// full (the novice hands it out anyway).
func TestNoMessengerIDInLogs(t *testing.T) {
	var logs syncBuf
	ts := startServer(t, "", func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	for _, id := range []string{"r-abcdefghijklmnopqrstuvwxyz", "plain-invitation"} {
		novice, expert, _ := ts.pair(t, id)
		expert.ws.Close(websocket.StatusNormalClosure, "")
		novice.expect(TypePeerLeft)
		novice.ws.Close(websocket.StatusNormalClosure, "")
	}
	ts.stop()
	out := logs.String()
	if strings.Contains(out, "abcdefghijklmnopqrstuvwxyz") {
		t.Errorf("a messenger session id in the log:\n%s", out)
	}
	for _, want := range []string{"id_tag=" + SessionTag("r-abcdefghijklmnopqrstuvwxyz"), "id=plain-invitation"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}
