// Package bustest is the test suite every hub.Bus implementation must
// pass: MemBus today, NATS next. Call Run from the implementation's tests
// with a function that opens a fresh bus (closed by t.Cleanup).
package bustest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
)

// Run runs the suite.
func Run(t *testing.T, open func(t *testing.T) hub.Bus) {
	t.Run("Deliveries", func(t *testing.T) { testDeliveries(t, open(t)) })
	t.Run("States", func(t *testing.T) { testStates(t, open(t)) })
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
	step := func(user, device, conn, state, wantBefore, wantAfter string) {
		t.Helper()
		b, a, err := bus.SetState(ctx, user, device, conn, state)
		if err != nil || b != wantBefore || a != wantAfter {
			t.Fatalf("SetState(%s %s %s) = %s, %s, %v; want %s, %s", user, conn, state, b, a, err, wantBefore, wantAfter)
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
}
