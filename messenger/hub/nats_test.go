package hub_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/natstest"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/hub/natsbus"
)

// openNATSBus opens a bus on the NATS at url with a short TTL.
func openNATSBus(t *testing.T, url string) *natsbus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := natsbus.Open(ctx, natsbus.Config{URL: url, TTL: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestHubsOnNATS: two hubs sharing a store and a NATS bus, as two
// servers would. Presence and requests cross from one to the other, and
// when one server dies without a word its users' presence expires and
// the other tells their contacts.
func TestHubsOnNATS(t *testing.T) {
	srv := natstest.Start(t)
	busA, busB := openNATSBus(t, srv.URL), openNATSBus(t, srv.URL)
	a := startHub(t, func(c *hub.Config) { c.Bus = busA })
	b := startHub(t, func(c *hub.Config) { c.Bus = busB; c.Store = a.Store })
	ctx := ctxT(t)

	// Befriended on A (across nodes: TestPairAcrossNodes), then bob moves
	// to B.
	alice := a.login(t, "alice")
	bobA := a.login(t, "bob")
	befriend(t, alice, bobA)
	bob := b.again(t, bobA)
	bobA.Close()

	if err := bob.SetState(ctx, messenger.StateBusy); err != nil {
		t.Fatal(err)
	}
	next(t, alice, presenceOf("bob", messenger.StateBusy))
	if err := alice.SetState(ctx, messenger.StateAway); err != nil {
		t.Fatal(err)
	}
	next(t, bob, presenceOf("alice", messenger.StateAway))
	cs, _, err := bob.Contacts(ctx)
	if err != nil || len(cs) != 1 || cs[0].State != messenger.StateAway {
		t.Fatalf("bob's contacts on B: %+v, %v", cs, err)
	}

	asked, err := alice.Ask(ctx, "bob", messenger.KindHelp)
	if err != nil {
		t.Fatal(err)
	}
	req := next(t, bob, ofType(messenger.TypeRequest))
	if req.Request != asked.Request || req.From != "alice" {
		t.Fatalf("bob on B got %+v for %+v", req, asked)
	}
	if _, err := bob.Answer(ctx, req.Request, true); err != nil {
		t.Fatal(err)
	}
	if m := next(t, alice, ofType(messenger.TypeAccepted)); m.Request != asked.Request {
		t.Fatalf("alice got %+v", m)
	}

	// Server B loses its bus at once, as if it died: nobody sets bob
	// offline, his state expires and A tells alice.
	busB.Close()
	next(t, alice, presenceOf("bob", messenger.StateOffline))
	cs, _, err = alice.Contacts(ctx)
	if err != nil || len(cs) != 1 || cs[0].State != messenger.StateOffline {
		t.Fatalf("alice's contacts after B died: %+v, %v", cs, err)
	}
}

// TestHubWithoutNATS: while NATS is away the hub refuses new connections
// and answers every message "unavailable" (try again) instead of
// accepting what it could not deliver; when NATS is back it serves again
// by itself.
func TestHubWithoutNATS(t *testing.T) {
	srv := natstest.Start(t)
	h := startHub(t, func(c *hub.Config) { c.Bus = openNATSBus(t, srv.URL) })
	alice := h.login(t, "alice")
	bob := h.login(t, "bob")
	befriend(t, alice, bob)
	if err := h.Ready(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	deadline := time.Now().Add(wait)
	for h.Ready(ctxT(t)) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Ready with NATS stopped")
		}
		time.Sleep(10 * time.Millisecond) // the client notices the close in a moment; no event to wait on
	}
	_, err := alice.Ask(ctxT(t), "bob", messenger.KindHelp)
	isCode(t, err, messenger.CodeUnavailable)
	if _, _, err := alice.Contacts(ctxT(t)); !messenger.IsCode(err, messenger.CodeUnavailable) {
		t.Errorf("contacts without NATS: %v", err)
	}
	if _, _, err := h.dial(t, newKey(t), messenger.LoginOptions{User: "carol"}); err == nil || !strings.Contains(err.Error(), "busy") || !strings.Contains(err.Error(), "try again") {
		t.Errorf("a new connection without NATS: %v, want refused as busy", err)
	}

	srv.Restart(t)
	for h.Ready(ctxT(t)) != nil {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatal("not Ready after NATS came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	asked, err := alice.Ask(ctxT(t), "bob", messenger.KindHelp)
	if err != nil {
		t.Fatal(err)
	}
	if m := next(t, bob, ofType(messenger.TypeRequest)); m.Request != asked.Request {
		t.Fatalf("bob got %+v", m)
	}
	h.login(t, "carol")
}

// stalledStore holds its hub's look-ups of user's contacts once stalling
// is set, until release is closed: a server slow to announce a presence
// change.
type stalledStore struct {
	hub.Store
	user     string
	stalling atomic.Bool
	release  chan struct{}
}

func (s *stalledStore) Contacts(ctx context.Context, user string) ([]hub.Account, error) {
	if user == s.user && s.stalling.Load() {
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.Contacts(ctx, user)
}

// TestHubsOnNATSPresenceOrder: bob moves from server A to server B (as a
// client of a draining server does) while A is slow to announce: alice,
// on a third server, still hears offline then online, in the order the
// bus took them, and is not left with a stale offline. Announced by the
// servers that made them, A's late "offline" would come after B's
// "online".
func TestHubsOnNATSPresenceOrder(t *testing.T) {
	srv := natstest.Start(t)
	c := startHub(t, func(cfg *hub.Config) { cfg.Bus = openNATSBus(t, srv.URL) })
	stalled := &stalledStore{Store: c.Store, user: "bob", release: make(chan struct{})}
	var once sync.Once
	unstall := func() { once.Do(func() { close(stalled.release) }) }
	t.Cleanup(unstall)
	a := startHub(t, func(cfg *hub.Config) { cfg.Bus = openNATSBus(t, srv.URL); cfg.Store = stalled })
	b := startHub(t, func(cfg *hub.Config) { cfg.Bus = openNATSBus(t, srv.URL); cfg.Store = c.Store })

	alice := c.login(t, "alice")
	bobC := c.login(t, "bob")
	befriend(t, alice, bobC)
	bobA := a.again(t, bobC)
	bobC.Close()
	// bob is online all along (C, then A): no change yet. A stalls from
	// here on.
	stalled.stalling.Store(true)
	bobA.Close()
	bobB := b.again(t, bobA)
	next(t, alice, presenceOf("bob", messenger.StateOffline))
	next(t, alice, presenceOf("bob", messenger.StateOnline))
	unstall()
	// Whatever A sends now, bob's last word is his own.
	if err := bobB.SetState(ctxT(t), messenger.StateAway); err != nil {
		t.Fatal(err)
	}
	next(t, alice, presenceOf("bob", messenger.StateAway))
}

// TestHubKeepsStateWithoutNATS: a "state" has no answer, so a client
// cannot hear it refused: one sent while NATS is away is kept and set
// once NATS is back, and contacts hear of it, instead of being dropped.
func TestHubKeepsStateWithoutNATS(t *testing.T) {
	srv := natstest.Start(t)
	h := startHub(t, func(c *hub.Config) { c.Bus = openNATSBus(t, srv.URL) })
	alice := h.login(t, "alice")
	bob := h.login(t, "bob")
	befriend(t, alice, bob)

	srv.Stop()
	deadline := time.Now().Add(wait)
	for h.Ready(ctxT(t)) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Ready with NATS stopped")
		}
		time.Sleep(10 * time.Millisecond) // the client notices the close in a moment; no event to wait on
	}
	if err := bob.SetState(ctxT(t), messenger.StateAway); err != nil {
		t.Fatal(err)
	}
	// Answered after the state, on the same connection: the hub has
	// handled the state by now.
	if _, _, err := bob.Contacts(ctxT(t)); !messenger.IsCode(err, messenger.CodeUnavailable) {
		t.Fatalf("contacts without NATS: %v, want unavailable", err)
	}

	srv.Restart(t)
	next(t, alice, presenceOf("bob", messenger.StateAway))
	cs, _, err := alice.Contacts(ctxT(t))
	if err != nil || len(cs) != 1 || cs[0].State != messenger.StateAway {
		t.Fatalf("alice's contacts after NATS came back: %+v, %v", cs, err)
	}
}
