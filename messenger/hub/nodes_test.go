package hub_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/natstest"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/hub/natsbus"
	"github.com/assist-project/assist/pairing"
)

// twoNodes is two hubs sharing a store and a NATS bus, as two servers
// behind a load balancer.
type twoNodes struct {
	a, b       *testHub
	busA, busB *natsbus.Bus
}

func startTwoNodes(t *testing.T, tweak func(*hub.Config)) *twoNodes {
	t.Helper()
	srv := natstest.Start(t)
	n := &twoNodes{busA: openNATSBus(t, srv.URL), busB: openNATSBus(t, srv.URL)}
	n.a = startHub(t, func(c *hub.Config) {
		c.Bus = n.busA
		if tweak != nil {
			tweak(c)
		}
	})
	n.b = startHub(t, func(c *hub.Config) {
		c.Bus = n.busB
		c.Store = n.a.Store
		if tweak != nil {
			tweak(c)
		}
	})
	return n
}

// TestPairAcrossNodes: alice opens a contact pairing on node A, bob
// joins it on node B: each learns the other, their relayed messages
// cross in order both ways, and both hear "contact-added"; the store has
// the contact and presence flows between them.
func TestPairAcrossNodes(t *testing.T) {
	n := startTwoNodes(t, nil)
	alice, bob := n.a.login(t, "alice"), n.b.login(t, "bob")
	ctx := ctxT(t)
	pa, err := alice.PairOpen(ctx, messenger.PurposeContact)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := bob.PairJoin(ctx, pa.ID, messenger.PurposeContact)
	if err != nil {
		t.Fatalf("bob joins alice's pairing from the other node: %v", err)
	}
	if peer, err := pb.Peer(ctx); err != nil || peer.User != "alice" {
		t.Fatalf("joiner's peer = %+v, %v", peer, err)
	}
	if peer, err := pa.Peer(ctx); err != nil || peer.User != "bob" {
		t.Fatalf("opener's peer = %+v, %v", peer, err)
	}
	// Relays keep their order, both ways, interleaved.
	for i := range 5 {
		if err := pa.Send(fmt.Appendf(nil, "a%d", i)); err != nil {
			t.Fatal(err)
		}
		if err := pb.Send(fmt.Appendf(nil, "b%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if b, err := pb.Recv(ctx); err != nil || string(b) != fmt.Sprintf("a%d", i) {
			t.Fatalf("bob's relay %d: %q, %v", i, b, err)
		}
		if b, err := pa.Recv(ctx); err != nil || string(b) != fmt.Sprintf("b%d", i) {
			t.Fatalf("alice's relay %d: %q, %v", i, b, err)
		}
	}
	errc := make(chan error, 1)
	go func() {
		r, err := pb.Done(ctx, alice.pub(), nil)
		if err == nil && (r.Type != messenger.TypeContactAdded || r.User != "alice") {
			err = fmt.Errorf("got %+v", r)
		}
		errc <- err
	}()
	r, err := pa.Done(ctx, bob.pub(), nil)
	if err != nil || r.Type != messenger.TypeContactAdded || r.User != "bob" {
		t.Fatalf("opener's pair-done: %+v, %v", r, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("joiner's pair-done: %v", err)
	}
	if ok, err := n.a.Store.IsContact(ctx, "alice", "bob"); err != nil || !ok {
		t.Fatalf("contact in the store: %v, %v", ok, err)
	}
	if err := bob.SetState(ctx, messenger.StateBusy); err != nil {
		t.Fatal(err)
	}
	next(t, alice, presenceOf("bob", messenger.StateBusy))
	// A second join of a used code finds nothing, on either node.
	for _, u := range []*user{n.b.login(t, "carol"), n.a.login(t, "dave")} {
		_, err := u.PairJoin(ctx, pa.ID, messenger.PurposeContact)
		isCode(t, err, messenger.CodeNotFound)
	}
}

// TestDeviceLinkAcrossNodes: alice's device on node A links a new device
// that connects to node B: the new device is logged in on B (welcome,
// online, its own connection) with the certificate alice's device
// signed, which A verified.
func TestDeviceLinkAcrossNodes(t *testing.T) {
	n := startTwoNodes(t, nil)
	alice := n.a.login(t, "alice")
	ctx := ctxT(t)
	p, err := alice.PairOpen(ctx, messenger.PurposeDevice)
	if err != nil {
		t.Fatal(err)
	}
	nk := newKey(t)
	newPub := nk.Public().(ed25519.PublicKey)
	done := make(chan error, 1)
	go func() {
		peer, err := p.Peer(ctx)
		if err != nil {
			done <- err
			return
		}
		if peer.User != "alice" || peer.Display != "laptop" {
			t.Errorf("old device's peer: %+v", peer)
		}
		sendKey(t, p, alice.pub())
		got := recvKey(t, p)
		r, err := p.Done(ctx, got, ed25519.Sign(alice.key, messenger.CertMessage("alice", got)))
		if err == nil && (r.Type != messenger.TypeDeviceAdded || !messenger.ValidDeviceID(r.Device)) {
			t.Errorf("old device got %+v", r)
		}
		done <- err
	}()
	c2, w, err := n.b.dial(t, nk, messenger.LoginOptions{User: "alice", Code: p.ID, DeviceName: "laptop",
		Link: func(ctx context.Context, p *messenger.Pair) (ed25519.PublicKey, error) {
			if peer, err := p.Peer(ctx); err != nil || peer.User != "alice" {
				t.Errorf("new device's peer: %+v, %v", peer, err)
			}
			sendKey(t, p, newPub)
			return recvKey(t, p), nil
		}})
	if err != nil {
		t.Fatalf("the new device on node B: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w.User != "alice" || w.Created || !messenger.ValidDeviceID(w.Device) {
		t.Errorf("new device's welcome: %+v", w)
	}
	var ds []messenger.OwnDevice
	for deadline := time.Now().Add(5 * time.Second); ; {
		ds, err = c2.Devices(ctx)
		if err != nil || len(ds) != 2 {
			t.Fatalf("devices on node B = %+v, %v", ds, err)
		}
		if ds[1].Online || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // no event says the state is set
	}
	nd := ds[1]
	if nd.ID != w.Device || !nd.Self || !nd.Online || nd.Name != "laptop" || nd.Cert == nil ||
		!ed25519.PublicKey(nd.Cert.Signer).Equal(alice.pub()) ||
		!ed25519.Verify(ed25519.PublicKey(nd.Cert.Signer), messenger.CertMessage("alice", nd.Key), nd.Cert.Sig) {
		t.Errorf("the linked device: %+v", nd)
	}
	// It is a logged-in connection of alice's on B: her other device on
	// A hears of its state.
	bob := n.a.login(t, "bob")
	befriend(t, alice, bob)
	laptop := &user{name: "alice", key: nk, Client: c2}
	if err := laptop.SetState(ctx, messenger.StateBusy); err != nil {
		t.Fatal(err)
	}
	next(t, bob, presenceOf("alice", messenger.StateBusy))
}

// TestPairWrongCodeAcrossNodes: the two sides of a pairing across nodes
// type different codes: each side's exchange says the code does not
// match (not "the other side left", though the first to find out leaves
// at once), and nothing is saved.
func TestPairWrongCodeAcrossNodes(t *testing.T) {
	for _, purpose := range []string{messenger.PurposeContact, messenger.PurposeDevice} {
		t.Run(purpose, func(t *testing.T) {
			n := startTwoNodes(t, nil)
			alice := n.a.login(t, "alice")
			ctx := ctxT(t)
			p, err := alice.PairOpen(ctx, purpose)
			if err != nil {
				t.Fatal(err)
			}
			run := func(ctx context.Context, ch pairing.Channel, role pairing.Role, secret string, u *user, key ed25519.PublicKey) error {
				_, err := pairing.Run(ctx, ch, role, secret, p.ID, purpose, pairing.Info{Key: key, User: u.name, Display: u.name})
				return err
			}
			openerErr := make(chan error, 1)
			go func() {
				// As the CLI: the exchange starts once someone joined.
				_, err := p.Peer(ctx)
				if err == nil {
					err = run(ctx, p, pairing.Opener, "AAAAAAAA", alice, alice.pub())
				}
				alice.Close() // as the CLI exits
				openerErr <- err
			}()
			var joinErr error
			if purpose == messenger.PurposeContact {
				bob := n.b.login(t, "bob")
				pb, err := bob.PairJoin(ctx, p.ID, purpose)
				if err != nil {
					t.Fatal(err)
				}
				joinErr = run(ctx, pb, pairing.Joiner, "BBBBBBBB", bob, bob.pub())
				bob.Close()
			} else {
				nk := newKey(t)
				_, _, joinErr = n.b.dial(t, nk, messenger.LoginOptions{User: "alice", Code: p.ID,
					Link: func(ctx context.Context, pp *messenger.Pair) (ed25519.PublicKey, error) {
						return nil, run(ctx, pp, pairing.Joiner, "BBBBBBBB", &user{name: "alice"}, nk.Public().(ed25519.PublicKey))
					}})
			}
			for who, err := range map[string]error{"opener": <-openerErr, "joiner": joinErr} {
				if !errors.Is(err, pairing.ErrWrongCode) {
					t.Errorf("%s: %v, want the wrong-code error", who, err)
				}
			}
			if ok, _ := n.a.Store.IsContact(ctx, "alice", "bob"); ok {
				t.Error("the contact was saved")
			}
			if ds, _ := n.a.Store.Devices(ctx, "alice"); len(ds) != 1 {
				t.Errorf("alice's devices: %+v", ds)
			}
		})
	}
}

// TestPairNodeGoes: when the node of either side of a pairing across
// nodes goes, the other side's pairing fails promptly ("the other side
// left"): the opener's hub closing (a drain), or either node losing its
// bus without a word (its death, found by the checks).
func TestPairNodeGoes(t *testing.T) {
	for _, c := range []string{"opener's hub closes", "opener's node dies", "joiner's node dies"} {
		t.Run(c, func(t *testing.T) {
			n := startTwoNodes(t, nil)
			alice, bob := n.a.login(t, "alice"), n.b.login(t, "bob")
			ctx := ctxT(t)
			pa, pb := openPair(t, ctx, alice, bob, messenger.PurposeContact)
			if _, err := pa.Peer(ctx); err != nil {
				t.Fatal(err)
			}
			survivor := pb
			switch c {
			case "opener's hub closes":
				n.a.Close()
			case "opener's node dies":
				n.busA.Close()
			case "joiner's node dies":
				n.busB.Close()
				survivor = pa
			}
			start := time.Now()
			_, err := survivor.Recv(ctx)
			var pf *messenger.PairFailedError
			if !errors.As(err, &pf) || pf.Reason != "the other side left" {
				t.Fatalf("the survivor's pairing: %v, want it failed because the other side left", err)
			}
			t.Logf("failed %v after", time.Since(start).Round(time.Millisecond))
		})
	}
}

// claimBus is a MemBus that also claims pair ids (hub.Nodes), as a bus
// shared by several nodes would: the first id of every pairing is
// another node's.
type claimBus struct {
	*hub.MemBus
	mu       sync.Mutex
	refused  []string // ids found taken
	claimed  []string
	released chan string
}

func (b *claimBus) Node() string { return "n1" }
func (b *claimBus) ClaimPair(_ context.Context, id string, ttl time.Duration) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ttl < 10*time.Minute {
		return false, fmt.Errorf("claim for %v, shorter than the pairing", ttl)
	}
	// Every first try is another node's.
	if len(b.refused) == len(b.claimed) {
		b.refused = append(b.refused, id)
		return false, nil
	}
	b.claimed = append(b.claimed, id)
	return true, nil
}
func (b *claimBus) ReleasePair(_ context.Context, id string) error   { b.released <- id; return nil }
func (b *claimBus) PairHome(context.Context, string) (string, error) { return "", nil }
func (b *claimBus) SendNode(string, []byte) error                    { return nil }
func (b *claimBus) AskNode(context.Context, string, []byte) ([]byte, error) {
	return nil, hub.ErrNodeGone
}
func (b *claimBus) ListenNodes(func([]byte) []byte) (func(), error) { return func() {}, nil }

// TestPairIDsClaimed: on a bus shared by nodes, a new pairing's id is one
// this node claimed (never one another node holds), and the claim is
// given up when the pairing ends.
func TestPairIDsClaimed(t *testing.T) {
	bus := &claimBus{MemBus: hub.NewMemBus(), released: make(chan string, 16)}
	th := startHub(t, func(c *hub.Config) { c.Bus = bus })
	alice := th.login(t, "alice")
	for range 3 {
		p, err := alice.PairOpen(ctxT(t), messenger.PurposeContact)
		if err != nil {
			t.Fatal(err)
		}
		bus.mu.Lock()
		claimed, refused := slices.Clone(bus.claimed), slices.Clone(bus.refused)
		bus.mu.Unlock()
		if len(claimed) == 0 || claimed[len(claimed)-1] != p.ID || slices.Contains(refused, p.ID) {
			t.Fatalf("pairing %s; claimed %v, found taken %v", p.ID, claimed, refused)
		}
	}
	alice.Close() // its pairings fail
	var released []string
	for range 3 {
		select {
		case id := <-bus.released:
			released = append(released, id)
		case <-time.After(wait):
			t.Fatalf("released %v of %v", released, bus.claimed)
		}
	}
	slices.Sort(released)
	bus.mu.Lock()
	claimed := slices.Sorted(slices.Values(bus.claimed))
	bus.mu.Unlock()
	if !slices.Equal(released, claimed) {
		t.Errorf("released %v, claimed %v", released, claimed)
	}
}

// TestPairJoinHomeSilent: a code whose home node died holding it (its
// claim not yet expired) is answered within a bounded time, with "try
// again" (unavailable) rather than a hang; the joiner may go on.
func TestPairJoinHomeSilent(t *testing.T) {
	srv := natstest.Start(t)
	dead := openNATSBus(t, srv.URL)
	h := startHub(t, func(c *hub.Config) { c.Bus = openNATSBus(t, srv.URL) })
	if ok, err := dead.ClaimPair(ctxT(t), "ABCD", time.Minute); err != nil || !ok {
		t.Fatalf("claim: %v, %v", ok, err)
	}
	dead.Close()
	bob := h.login(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := bob.PairJoin(ctx, "ABCD", messenger.PurposeContact)
	isCode(t, err, messenger.CodeUnavailable)
	t.Logf("answered after %v: %v", time.Since(start).Round(time.Millisecond), err)
	sync_(t, bob)
	// A device link's login the same.
	_, _, err = h.dial(t, newKey(t), messenger.LoginOptions{User: "bob", Code: "ABCD",
		Link: func(context.Context, *messenger.Pair) (ed25519.PublicKey, error) {
			t.Error("the link ran")
			return nil, errAny
		}})
	isCode(t, err, messenger.CodeUnavailable)
}

// TestPairRelayLimitAcrossNodes: the home counts the relays of both
// sides, the remote joiner's too: past MaxPairRelays both sides hear the
// pairing failed.
func TestPairRelayLimitAcrossNodes(t *testing.T) {
	n := startTwoNodes(t, func(c *hub.Config) { c.MaxPairRelays = 4 })
	alice, bob := n.a.login(t, "alice"), n.b.login(t, "bob")
	ctx := ctxT(t)
	pa, pb := openPair(t, ctx, alice, bob, messenger.PurposeContact)
	if _, err := pa.Peer(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := pb.Send(fmt.Appendf(nil, "b%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*messenger.Pair{pa, pb} {
		var err error
		for err == nil {
			_, err = p.Recv(ctx)
		}
		var pf *messenger.PairFailedError
		if !errors.As(err, &pf) || pf.Reason != "too many messages" {
			t.Errorf("after 5 relays: %v, want the pairing failed for too many messages", err)
		}
	}
}
