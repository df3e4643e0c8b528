// Package bustest is the test suite every hub.Bus implementation must
// pass: MemBus and natsbus. Call Run from the implementation's tests with
// a function that starts a fresh backend per test.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
)

// Backend is what several servers' buses share (one MemBus, a NATS
// server or cluster), started afresh for one test.
type Backend struct {
	// Node opens the bus of one more server on the backend; it is closed
	// by t.Cleanup. A MemBus backend returns the same bus every time.
	Node func(t *testing.T) hub.Bus
	// Kill, if set, ends node's link to the backend at once, as a
	// server's death would: no state is set offline.
	Kill func(t *testing.T, node hub.Bus)
	// Stop and Start, if set, stop the backend (every node loses it) and
	// start it again with its data, as an operator's restart would.
	Stop, Start func(t *testing.T)
	// Survives says Stop leaves the service up (one server of a NATS
	// cluster): the buses may stay ready throughout.
	Survives bool
}

// timeout bounds every wait of the suite: expiries, reconnects.
const timeout = 30 * time.Second

// Run runs the suite; the parts that need Kill or Stop are skipped for a
// backend without them.
func Run(t *testing.T, start func(t *testing.T) Backend) {
	t.Run("Deliveries", func(t *testing.T) { testDeliveries(t, start(t).Node(t)) })
	t.Run("States", func(t *testing.T) { testStates(t, start(t).Node(t)) })
	t.Run("AcrossNodes", func(t *testing.T) { testAcrossNodes(t, start(t)) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, start(t)) })
	t.Run("Restart", func(t *testing.T) { testRestart(t, start(t)) })
	t.Run("Nodes", func(t *testing.T) { testNodes(t, start(t)) })
}

// testNodes, for a bus that implements hub.Nodes: pair ids are claimed
// once across nodes until released or expired, node messages arrive in
// order, asks are answered, and asking a node that is gone says so.
func testNodes(t *testing.T, be Backend) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a, ok := be.Node(t).(hub.Nodes)
	if !ok {
		t.Skip("the bus serves one server: its pairings are its own")
	}
	bBus := be.Node(t)
	b := bBus.(hub.Nodes)
	if a.Node() == b.Node() || a.Node() == "" {
		t.Fatalf("node names %q and %q", a.Node(), b.Node())
	}

	// Claims.
	claim := func(n hub.Nodes, id string, ttl time.Duration, want bool) {
		t.Helper()
		got, err := n.ClaimPair(ctx, id, ttl)
		if err != nil || got != want {
			t.Fatalf("node %s claims %s: %v, %v; want %v", n.Node(), id, got, err, want)
		}
	}
	home := func(id, want string) {
		t.Helper()
		if got, err := b.PairHome(ctx, id); err != nil || got != want {
			t.Fatalf("home of %s: %q, %v; want %q", id, got, err, want)
		}
	}
	home("ABCD", "")
	claim(a, "ABCD", time.Minute, true)
	claim(b, "ABCD", time.Minute, false)
	claim(a, "ABCD", time.Minute, false) // create-only: one pairing per id
	home("ABCD", a.Node())
	if err := b.ReleasePair(ctx, "ABCD"); err != nil { // not b's: nothing happens
		t.Fatal(err)
	}
	home("ABCD", a.Node())
	if err := a.ReleasePair(ctx, "ABCD"); err != nil {
		t.Fatal(err)
	}
	home("ABCD", "")
	claim(b, "ABCD", time.Minute, true)
	home("ABCD", b.Node())
	// A claim expires with its TTL (its node died holding it).
	claim(a, "WXYZ", time.Second, true)
	for deadline := time.Now().Add(timeout); ; {
		ok, err := b.ClaimPair(ctx, "WXYZ", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a claim with a TTL of 1 s still held after 30 s")
		}
		time.Sleep(100 * time.Millisecond) // no event tells of an expiry
	}
	home("WXYZ", b.Node())

	// Messages, in order; asks answered.
	got := make(chan string, 100)
	stop, err := b.ListenNodes(func(m []byte) []byte {
		if string(m) == "ping" {
			return []byte("pong")
		}
		got <- string(m)
		return append([]byte("re: "), m...)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// In a NATS cluster, b's interest reaches a's server a moment after
	// b's: once a ping is answered, it has.
	for i := 0; ; i++ {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := a.AskNode(pctx, b.Node(), []byte("ping"))
		cancel()
		if err == nil {
			break
		}
		if i == 30 {
			t.Fatalf("node %s never answered: %v", b.Node(), err)
		}
		time.Sleep(100 * time.Millisecond) // no event tells of the interest's arrival
	}
	for i := range 50 {
		if err := a.SendNode(b.Node(), fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ans, err := a.AskNode(ctx, b.Node(), []byte("ask"))
	if err != nil || string(ans) != "re: ask" {
		t.Fatalf("ask: %q, %v", ans, err)
	}
	for i := range 51 {
		want := fmt.Sprintf("m%d", i)
		if i == 50 {
			want = "ask"
		}
		select {
		case m := <-got:
			if m != want {
				t.Fatalf("message %d: %q, want %q", i, m, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d did not come", i)
		}
	}

	// A node that is gone. Its going may reach the backend just after
	// an ask: asked again (with a short wait), it is gone.
	gone := func(what string) {
		t.Helper()
		var err error
		for range 10 {
			actx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = a.AskNode(actx, b.Node(), []byte("ask"))
			cancel()
			if errors.Is(err, hub.ErrNodeGone) {
				return
			}
		}
		t.Fatalf("asking %s: %v, want ErrNodeGone", what, err)
	}
	stop()
	gone("a node that stopped listening")
	if be.Kill != nil {
		stop2, err := b.ListenNodes(func([]byte) []byte { return []byte("here") })
		if err != nil {
			t.Fatal(err)
		}
		defer stop2()
		// In a NATS cluster the new subscription's interest reaches a's
		// server a moment later: until then b is "gone".
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := a.AskNode(ctx, b.Node(), nil)
			if err == nil {
				break
			}
			if !errors.Is(err, hub.ErrNodeGone) || time.Now().After(deadline) {
				t.Fatalf("asking a node listening again: %v", err)
			}
			time.Sleep(20 * time.Millisecond) // no signal for interest reaching another server
		}
		be.Kill(t, bBus)
		gone("a dead node")
	}
}

// inbox collects deliveries; a remote bus delivers asynchronously, so
// tests wait for them.
type inbox struct {
	mu   sync.Mutex
	got  []hub.Delivery
	wake chan struct{}
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{}, 1)} }

func (b *inbox) deliver(d hub.Delivery) {
	b.mu.Lock()
	b.got = append(b.got, d)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// wait returns the first n deliveries, failing after 10 s.
func (b *inbox) wait(t *testing.T, n int) []hub.Delivery {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		b.mu.Lock()
		if len(b.got) >= n {
			got := append([]hub.Delivery(nil), b.got[:n]...)
			b.mu.Unlock()
			return got
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-timer.C:
			t.Fatalf("%d deliveries within 10 s, want %d", len(b.got), n)
		}
	}
}

func (b *inbox) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got)
}

func testDeliveries(t *testing.T, bus hub.Bus) {
	ctx := context.Background()
	alice1, alice2, bob := newInbox(), newInbox(), newInbox()
	cancel1, err := bus.Subscribe("alice", alice1.deliver)
	if err != nil {
		t.Fatal(err)
	}
	cancel2, err := bus.Subscribe("alice", alice2.deliver)
	if err != nil {
		t.Fatal(err)
	}
	cancelBob, err := bus.Subscribe("bob", bob.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer cancelBob()
	d := hub.Delivery{User: "alice", Msg: []byte(`{"type":"presence"}`), Device: "dev", Except: []string{"c1"}, Close: true}
	if err := bus.Publish(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, in := range []*inbox{alice1, alice2} {
		got := in.wait(t, 1)[0]
		if got.User != d.User || string(got.Msg) != string(d.Msg) || got.Device != d.Device || len(got.Except) != 1 || got.Except[0] != "c1" || !got.Close {
			t.Errorf("delivered %+v, want %+v", got, d)
		}
	}
	// Deliveries for one user keep their order.
	for i := 0; i < 20; i++ {
		if err := bus.Publish(ctx, hub.Delivery{User: "alice", Msg: []byte{byte('a' + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, got := range alice1.wait(t, 21)[1:] {
		if got.Msg[0] != byte('a'+i) {
			t.Fatalf("delivery %d is %q", i, got.Msg)
		}
	}
	// After cancel, nothing more; other subscribers still get theirs.
	cancel1()
	if err := bus.Publish(ctx, hub.Delivery{User: "alice", Msg: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	// alice2's copy arriving means alice1's would have too.
	alice2.wait(t, 22)
	cancel2()
	if n := alice1.len(); n != 21 {
		t.Errorf("a cancelled subscription got %d deliveries, want 21", n)
	}
	if n := bob.len(); n != 0 {
		t.Errorf("bob got alice's deliveries: %d", n)
	}
}

func testStates(t *testing.T, bus hub.Bus) {
	ctx := context.Background()
	w := watch(t, bus)
	seen := 0
	step := func(user, device, conn, state, wantBefore, wantAfter string) {
		t.Helper()
		b, a, err := bus.SetState(ctx, user, device, conn, state)
		if err != nil || a != wantAfter {
			t.Fatalf("SetState(%s %s %s) = %s, %s, %v; want %s after", user, conn, state, b, a, err, wantAfter)
		}
		switch {
		case b != a:
			// The caller announces it.
			if b != wantBefore {
				t.Fatalf("SetState(%s %s %s) = %s, %s; want %s, %s", user, conn, state, b, a, wantBefore, wantAfter)
			}
		case wantBefore != wantAfter:
			// The bus reports it to every node, in order.
			got := w.wait(t, seen+1)[seen]
			seen++
			if got != (hub.StateChange{User: user, Before: wantBefore, After: wantAfter}) {
				t.Fatalf("SetState(%s %s %s): WatchStates reported %+v; want %s, %s", user, conn, state, got, wantBefore, wantAfter)
			}
		}
	}
	step("alice", "d1", "c1", messenger.StateAway, messenger.StateOffline, messenger.StateAway)
	step("alice", "d1", "c2", messenger.StateOnline, messenger.StateAway, messenger.StateOnline)
	step("alice", "d2", "c3", messenger.StateBusy, messenger.StateOnline, messenger.StateBusy)
	step("bob", "d9", "c9", messenger.StateOnline, messenger.StateOffline, messenger.StateOnline)
	states, err := bus.States(ctx, []string{"alice", "bob", "carol"})
	if err != nil || states["alice"] != messenger.StateBusy || states["bob"] != messenger.StateOnline || states["carol"] != messenger.StateOffline {
		t.Errorf("States = %v, %v", states, err)
	}
	on, err := bus.OnlineDevices(ctx, "alice")
	if err != nil || len(on) != 2 || !on["d1"] || !on["d2"] {
		t.Errorf("OnlineDevices = %v, %v", on, err)
	}
	step("alice", "d2", "c3", messenger.StateOffline, messenger.StateBusy, messenger.StateOnline)
	step("alice", "d1", "c2", messenger.StateOffline, messenger.StateOnline, messenger.StateAway)
	if on, _ := bus.OnlineDevices(ctx, "alice"); len(on) != 1 || !on["d1"] {
		t.Errorf("OnlineDevices after d2 left = %v", on)
	}
	step("alice", "d1", "c1", messenger.StateOffline, messenger.StateAway, messenger.StateOffline)
	if on, _ := bus.OnlineDevices(ctx, "alice"); len(on) != 0 {
		t.Errorf("OnlineDevices with nobody connected = %v", on)
	}
	// A change is reported once, and only if SetState did not return it.
	bus.SetState(ctx, "zoe", "d", "z", messenger.StateOnline)
	if b, a, _ := bus.SetState(ctx, "zoe", "d", "z", messenger.StateOffline); b == a {
		w.wait(t, seen+2)
		seen += 2
	}
	if l := w.list(); len(l) != seen {
		t.Errorf("WatchStates reported %v, want %d changes", l, seen)
	}
}

// changes collects a bus's WatchStates reports.
type changes struct {
	mu   sync.Mutex
	got  []hub.StateChange
	wake chan struct{}
}

func watch(t *testing.T, bus hub.Bus) *changes {
	c := &changes{wake: make(chan struct{}, 1)}
	t.Cleanup(bus.WatchStates(func(sc hub.StateChange) {
		c.mu.Lock()
		c.got = append(c.got, sc)
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}))
	return c
}

// wait returns the first n changes reported, failing after timeout.
func (c *changes) wait(t *testing.T, n int) []hub.StateChange {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if l := c.list(); len(l) >= n {
			return l[:n]
		}
		select {
		case <-c.wake:
		case <-deadline.C:
			t.Fatalf("state changes reported %v, want %d", c.list(), n)
		}
	}
}

func (c *changes) list() []hub.StateChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]hub.StateChange(nil), c.got...)
}

// waitFor waits until the last change reported for each user in want is
// want's.
func (c *changes) waitFor(t *testing.T, want map[string]string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		last := make(map[string]string)
		for _, sc := range c.list() {
			last[sc.User] = sc.After
		}
		done := true
		for u, s := range want {
			if last[u] != s {
				done = false
			}
		}
		if done {
			return
		}
		select {
		case <-c.wake:
		case <-deadline.C:
			t.Fatalf("state changes reported %v, want the last ones %v", c.list(), want)
		}
	}
}

// eventually polls cond: another node's view of the states follows the
// bucket with no event a test can wait on.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantStates(ctx context.Context, bus hub.Bus, want map[string]string) func() error {
	return func() error {
		users := make([]string, 0, len(want))
		for u := range want {
			users = append(users, u)
		}
		got, err := bus.States(ctx, users)
		if err != nil {
			return err
		}
		for u, s := range want {
			if got[u] != s {
				return fmt.Errorf("states = %v, want %v", got, want)
			}
		}
		return nil
	}
}

// publishUntil publishes d until in has n deliveries: in a NATS cluster a
// new subscription reaches the other servers a moment later. Returns
// how many were published.
func publishUntil(t *testing.T, bus hub.Bus, d hub.Delivery, in *inbox, n int) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	sent := 0
	for in.len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery across nodes within %v", timeout)
		}
		if err := bus.Publish(context.Background(), d); err == nil {
			sent++
		}
		select {
		case <-in.wake:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return sent
}

// testAcrossNodes: a delivery published on one server reaches the
// connections of another, in order, and each sees the other's states.
func testAcrossNodes(t *testing.T, be Backend) {
	ctx := context.Background()
	a, b := be.Node(t), be.Node(t)
	watchB := watch(t, b)
	alice := newInbox()
	cancel, err := a.Subscribe("alice", alice.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	publishUntil(t, b, hub.Delivery{User: "alice", Msg: []byte("hello")}, alice, 1)
	for i := 0; i < 20; i++ {
		if err := b.Publish(ctx, hub.Delivery{User: "alice", Msg: []byte{byte('a' + i)}, Device: "d1", Except: []string{"x"}}); err != nil {
			t.Fatal(err)
		}
	}
	// Of the "hello"s, those published before the subscription reached
	// b's server are lost and later ones may still be on their way: only
	// the 20 count.
	var got []hub.Delivery
	for n := 1; len(got) < 20; n++ {
		got = got[:0]
		for _, d := range alice.wait(t, n) {
			if string(d.Msg) != "hello" {
				got = append(got, d)
			}
		}
	}
	for i, d := range got {
		if d.User != "alice" || d.Msg[0] != byte('a'+i) || d.Device != "d1" || len(d.Except) != 1 || d.Except[0] != "x" {
			t.Fatalf("delivery %d across nodes is %+v", i, d)
		}
	}
	// A user name with characters NATS subjects reserve.
	odd := newInbox()
	cancelOdd, err := a.Subscribe("al.ice>*", odd.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer cancelOdd()
	publishUntil(t, b, hub.Delivery{User: "al.ice>*", Msg: []byte("odd")}, odd, 1)
	for _, d := range alice.wait(t, alice.len()) {
		if d.User != "alice" {
			t.Errorf("alice got %q's delivery %+v", d.User, d)
		}
	}

	// Every change is announced once: by the caller of the SetState that
	// returned it, or else by every node, each to its own connections,
	// in the same order.
	watchA := watch(t, a)
	var reported []hub.StateChange // changes no SetState returned
	step := func(bus hub.Bus, user, device, conn, state, wantBefore, wantAfter string) {
		t.Helper()
		bf, af, err := bus.SetState(ctx, user, device, conn, state)
		if err != nil || af != wantAfter || bf != af && bf != wantBefore {
			t.Fatalf("SetState(%s %s %s) = %s, %s, %v; want %s, %s", user, conn, state, bf, af, err, wantBefore, wantAfter)
		}
		if bf == af && wantBefore != wantAfter {
			reported = append(reported, hub.StateChange{User: user, Before: wantBefore, After: wantAfter})
		}
	}
	step(a, "alice", "d1", "a-1", messenger.StateAway, messenger.StateOffline, messenger.StateAway)
	eventually(t, "node B sees alice away", wantStates(ctx, b, map[string]string{"alice": messenger.StateAway}))
	step(b, "alice", "d2", "b-1", messenger.StateBusy, messenger.StateAway, messenger.StateBusy)
	eventually(t, "node A sees alice busy", wantStates(ctx, a, map[string]string{"alice": messenger.StateBusy}))
	eventually(t, "node A sees both devices", func() error {
		on, err := a.OnlineDevices(ctx, "alice")
		if err != nil || len(on) != 2 || !on["d1"] || !on["d2"] {
			return fmt.Errorf("OnlineDevices = %v, %v", on, err)
		}
		return nil
	})
	step(a, "alice", "d1", "a-1", messenger.StateOffline, messenger.StateBusy, messenger.StateBusy)
	step(b, "alice", "d2", "b-1", messenger.StateOffline, messenger.StateBusy, messenger.StateOffline)
	eventually(t, "node A sees alice offline", wantStates(ctx, a, map[string]string{"alice": messenger.StateOffline}))
	for name, w := range map[string]*changes{"A": watchA, "B": watchB} {
		if got := w.wait(t, len(reported)); !slices.Equal(got, reported) || len(w.list()) != len(reported) {
			t.Errorf("node %s's WatchStates reported %v, want %v", name, w.list(), reported)
		}
	}
}

// testExpiry: a server dies without setting its connections offline;
// their states expire, and the other servers are told.
func testExpiry(t *testing.T, be Backend) {
	if be.Kill == nil {
		t.Skip("this backend has no server to lose: its states die with it")
	}
	ctx := context.Background()
	a, b := be.Node(t), be.Node(t)
	watchB := watch(t, b)
	for _, s := range [][4]string{
		{"alice", "d1", "a-1", messenger.StateOnline},
		{"alice", "d1", "a-2", messenger.StateBusy},
		{"bob", "d2", "a-3", messenger.StateAway},
	} {
		if _, _, err := a.SetState(ctx, s[0], s[1], s[2], s[3]); err != nil {
			t.Fatal(err)
		}
	}
	// carol is on the surviving server: she stays.
	if _, _, err := b.SetState(ctx, "carol", "d3", "b-1", messenger.StateOnline); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node B sees node A's states", wantStates(ctx, b, map[string]string{"alice": messenger.StateBusy, "bob": messenger.StateAway}))
	be.Kill(t, a)
	watchB.waitFor(t, map[string]string{"alice": messenger.StateOffline, "bob": messenger.StateOffline})
	if err := wantStates(ctx, b, map[string]string{"alice": messenger.StateOffline, "bob": messenger.StateOffline, "carol": messenger.StateOnline})(); err != nil {
		t.Error(err)
	}
	if on, err := b.OnlineDevices(ctx, "alice"); err != nil || len(on) != 0 {
		t.Errorf("OnlineDevices of a dead server's user = %v, %v", on, err)
	}
	for _, sc := range watchB.list() {
		if sc.User == "carol" && sc.After == messenger.StateOffline {
			t.Errorf("a live server's user was reported offline: %v", sc)
		}
	}
	// Her server's heartbeat kept carol past the others' expiry.
	if _, _, err := b.SetState(ctx, "carol", "d3", "b-1", messenger.StateOffline); err != nil {
		t.Fatal(err)
	}
}

// testRestart: while the backend is away a bus says so (hub.ErrUnavailable)
// instead of accepting work it cannot carry; when the backend is back,
// the bus recovers by itself with its connections' states.
func testRestart(t *testing.T, be Backend) {
	if be.Stop == nil {
		t.Skip("this backend cannot stop")
	}
	ctx := context.Background()
	a, b := be.Node(t), be.Node(t)
	if _, _, err := a.SetState(ctx, "alice", "d1", "a-1", messenger.StateBusy); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.SetState(ctx, "dave", "d4", "a-4", messenger.StateOnline); err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(ctx); err != nil {
		t.Fatalf("Ready before the restart: %v", err)
	}
	be.Stop(t)
	if !be.Survives {
		eventually(t, "Ready says unavailable", func() error {
			if err := a.Ready(ctx); !errors.Is(err, hub.ErrUnavailable) {
				return fmt.Errorf("ready = %v", err)
			}
			return nil
		})
		if _, _, err := a.SetState(ctx, "bob", "d2", "a-2", messenger.StateOnline); !errors.Is(err, hub.ErrUnavailable) {
			t.Errorf("SetState while the backend is away: %v, want ErrUnavailable", err)
		}
		if err := a.Publish(ctx, hub.Delivery{User: "alice", Msg: []byte("x")}); !errors.Is(err, hub.ErrUnavailable) {
			t.Errorf("Publish while the backend is away: %v, want ErrUnavailable", err)
		}
	}
	// dave leaves while the backend is away: his state may not be
	// written, but it must not outlive him.
	_, _, err := a.SetState(ctx, "dave", "d4", "a-4", messenger.StateOffline)
	if err != nil && !errors.Is(err, hub.ErrUnavailable) {
		t.Errorf("SetState offline while the backend is away: %v", err)
	}
	be.Start(t)
	for _, n := range []hub.Bus{a, b} {
		eventually(t, "Ready after the restart", func() error { return n.Ready(ctx) })
	}
	eventually(t, "node B sees alice again, and dave gone", wantStates(ctx, b, map[string]string{"alice": messenger.StateBusy, "dave": messenger.StateOffline}))
	alice := newInbox()
	cancel, err := b.Subscribe("alice", alice.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	publishUntil(t, a, hub.Delivery{User: "alice", Msg: []byte("back")}, alice, 1)
	if bf, af, err := a.SetState(ctx, "alice", "d1", "a-1", messenger.StateOffline); err != nil || bf != messenger.StateBusy && bf != af || af != messenger.StateOffline {
		t.Errorf("SetState after the restart = %s, %s, %v", bf, af, err)
	}
}
