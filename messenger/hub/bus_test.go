package hub_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/hub/bustest"
)

func TestMemBus(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Backend {
		// Two hubs in one process may share one MemBus.
		b := hub.NewMemBus()
		t.Cleanup(func() { b.Close() })
		return bustest.Backend{Node: func(*testing.T) hub.Bus { return b }}
	})
}

func TestAggregate(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{nil, messenger.StateOffline},
		{[]string{messenger.StateAway}, messenger.StateAway},
		{[]string{messenger.StateAway, messenger.StateOnline}, messenger.StateOnline},
		{[]string{messenger.StateBusy, messenger.StateOnline, messenger.StateAway}, messenger.StateBusy},
		{[]string{messenger.StateOnline, messenger.StateBusy}, messenger.StateBusy},
	} {
		if got := hub.Aggregate(c.in); got != c.want {
			t.Errorf("Aggregate(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

// failingBus fails the next `fail` non-offline SetStates of user with
// ErrUnavailable, as a NATS bus does when its write or its echo is lost
// while its node logs a client in (a client moving from a draining node).
type failingBus struct {
	hub.Bus
	user string
	mu   sync.Mutex
	fail int
}

func (b *failingBus) SetState(ctx context.Context, user, device, conn, state string) (string, string, error) {
	b.mu.Lock()
	failing := user == b.user && state != messenger.StateOffline && b.fail > 0
	if failing {
		b.fail--
	}
	b.mu.Unlock()
	if failing {
		return "", "", fmt.Errorf("test: %w", hub.ErrUnavailable)
	}
	return b.Bus.SetState(ctx, user, device, conn, state)
}

// TestHubRetriesLostState: a login's "online" the bus could not take is
// set again once it can, instead of leaving the user offline to every
// contact for as long as the connection lasts (TestClusterDrain: carl,
// back on another node, stayed offline to olga).
func TestHubRetriesLostState(t *testing.T) {
	bus := &failingBus{Bus: hub.NewMemBus(), user: "bob"}
	h := startHub(t, func(c *hub.Config) { c.Bus = bus })
	alice := h.login(t, "alice")
	bob := h.login(t, "bob")
	befriend(t, alice, bob)
	bob.Close()
	next(t, alice, presenceOf("bob", messenger.StateOffline))

	bus.mu.Lock()
	bus.fail = 2
	bus.mu.Unlock()
	bob = h.again(t, bob)
	next(t, alice, presenceOf("bob", messenger.StateOnline))
	if err := bob.SetState(ctxT(t), messenger.StateAway); err != nil {
		t.Fatal(err)
	}
	next(t, alice, presenceOf("bob", messenger.StateAway))
}
