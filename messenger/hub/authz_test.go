package hub_test

// Authorization: one test per message type that a stranger (a logged-in
// user who is not a contact, not the owner, or a connection that has not
// logged in) is refused and learns nothing.

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
)

// rawLogin logs in a hand-driven connection as a new account.
func (th *testHub) rawLogin(t *testing.T, name string) *raw {
	t.Helper()
	r := th.raw(t)
	ch, err := r.recv(t)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	fp, _ := messenger.ParseFingerprint(th.FP)
	r.send(t, mustJSON(messenger.Message{Type: messenger.TypeLogin, Key: messenger.B64(k.Public().(ed25519.PublicKey)),
		Sig: ed25519.Sign(k, messenger.LoginMessage(ch.Nonce, fp)), User: name}))
	if m, err := r.recv(t); err != nil || m.Type != messenger.TypeWelcome {
		t.Fatalf("raw login: %+v, %v", m, err)
	}
	return r
}

// expectError reads r's next message, which must be an error with code.
func (r *raw) expectError(t *testing.T, code string) messenger.Message {
	t.Helper()
	m, err := r.recv(t)
	if err != nil || m.Type != messenger.TypeError || m.Code != code {
		t.Fatalf("got %+v, %v; want error %q", m, err, code)
	}
	return m
}

// world is alice and bob, contacts; carol, a stranger to both; dave,
// carol's contact (for sentinels).
type world struct {
	th                      *testHub
	alice, bob, carol, dave *user
}

func newWorld(t *testing.T, tweak func(*hub.Config)) *world {
	th := startHub(t, tweak)
	w := &world{th: th, alice: th.login(t, "alice"), bob: th.login(t, "bob"), carol: th.login(t, "carol"), dave: th.login(t, "dave")}
	befriend(t, w.alice, w.bob)
	befriend(t, w.carol, w.dave)
	next(t, w.carol, presenceOf("dave", messenger.StateOnline))
	return w
}

func TestAuthzUnauthenticated(t *testing.T) {
	th := startHub(t, nil)
	alice := th.login(t, "alice")
	p, err := alice.PairOpen(ctxT(t), messenger.PurposeContact)
	if err != nil {
		t.Fatal(err)
	}
	r := th.raw(t)
	r.recv(t) // challenge
	for _, m := range []messenger.Message{
		{Type: messenger.TypeContacts},
		{Type: messenger.TypeState, State: messenger.StateOnline},
		{Type: messenger.TypeRemove, User: "alice"},
		{Type: messenger.TypeBlock, User: "alice"},
		{Type: messenger.TypeUnblock, User: "alice"},
		{Type: messenger.TypeDevices},
		{Type: messenger.TypeRemoveDevice, Device: "aaaaaaaaaaaa"},
		{Type: messenger.TypePairOpen, Purpose: messenger.PurposeContact},
		{Type: messenger.TypePairJoin, Pair: p.ID, Purpose: messenger.PurposeContact},
		{Type: messenger.TypePairRelay, Pair: p.ID, Data: []byte(`"x"`)},
		{Type: messenger.TypePairDone, Pair: p.ID, Key: messenger.B64(alice.pub())},
		{Type: messenger.TypeAsk, To: "alice", Kind: messenger.KindHelp},
		{Type: messenger.TypeAnswer, Request: "AAAAAAAAAAAAAAAAAAAAAA", Accept: new(bool)},
		{Type: messenger.TypeCancel, Request: "AAAAAAAAAAAAAAAAAAAAAA"},
	} {
		m.Ref = "x1"
		r.send(t, mustJSON(m))
		if e := r.expectError(t, messenger.CodeUnauthorized); e.Ref != "x1" {
			t.Errorf("%s: error without the ref: %+v", m.Type, e)
		}
	}
	// The pairing is untouched: it can still be joined, and its opener
	// got nothing from the stranger.
	bob := th.login(t, "bob")
	if _, err := bob.PairJoin(ctxT(t), p.ID, messenger.PurposeContact); err != nil {
		t.Fatalf("the pairing after the stranger's attempts: %v", err)
	}
	if peer, err := p.Peer(ctxT(t)); err != nil || peer.User != "bob" {
		t.Errorf("peer %+v, %v", peer, err)
	}
}

func TestAuthzContacts(t *testing.T) {
	w := newWorld(t, nil)
	cs, _, err := w.carol.Contacts(ctxT(t))
	if err != nil || len(cs) != 1 || cs[0].User != "dave" {
		t.Errorf("carol's contacts: %+v, %v", cs, err)
	}
	cs, _, err = w.alice.Contacts(ctxT(t))
	if err != nil || len(cs) != 1 || cs[0].User != "bob" {
		t.Errorf("alice's contacts: %+v, %v", cs, err)
	}
}

func TestAuthzPresence(t *testing.T) {
	w := newWorld(t, nil)
	leak := func(m messenger.Message) bool {
		return m.Type == messenger.TypePresence && (m.User == "bob" || m.User == "alice")
	}
	// bob's changes and a new connection of alice reach alice and bob
	// only.
	for _, s := range []string{messenger.StateBusy, messenger.StateAway} {
		if err := w.bob.SetState(ctxT(t), s); err != nil {
			t.Fatal(err)
		}
		next(t, w.alice, presenceOf("bob", s))
	}
	w.bob.Close()
	next(t, w.alice, presenceOf("bob", messenger.StateOffline))
	sentinel(t, w.carol, w.dave, leak)
	// After a removal, presence stops both ways.
	w.bob = w.th.again(t, w.bob)
	next(t, w.alice, presenceOf("bob", messenger.StateOnline))
	if err := w.alice.Remove(ctxT(t), "bob"); err != nil {
		t.Fatal(err)
	}
	next(t, w.bob, ofType(messenger.TypeRemoved))
	befriend(t, w.alice, w.dave) // dave: alice's sentinel now
	next(t, w.alice, presenceOf("dave", messenger.StateOnline))
	if err := w.bob.SetState(ctxT(t), messenger.StateBusy); err != nil {
		t.Fatal(err)
	}
	sync_(t, w.bob)
	sentinel(t, w.alice, w.dave, leak)
}

func TestAuthzRemove(t *testing.T) {
	w := newWorld(t, nil)
	isCode(t, w.carol.Remove(ctxT(t), "bob"), messenger.CodeNotFound)
	isCode(t, w.carol.Remove(ctxT(t), "carol"), messenger.CodeInvalid)
	if ok, _ := w.th.Store.IsContact(ctxT(t), "alice", "bob"); !ok {
		t.Error("alice and bob are no longer contacts")
	}
}

func TestAuthzBlockUnblock(t *testing.T) {
	w := newWorld(t, nil)
	if err := w.alice.Block(ctxT(t), "carol"); err != nil {
		t.Fatal(err)
	}
	// carol, blocked, cannot pair with alice (one answer for a code that
	// does not exist) nor ask her.
	p, err := w.alice.PairOpen(ctxT(t), messenger.PurposeContact)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.carol.PairJoin(ctxT(t), p.ID, messenger.PurposeContact)
	isCode(t, err, messenger.CodeNotFound)
	_, err = w.carol.Ask(ctxT(t), "alice", messenger.KindHelp)
	isCode(t, err, messenger.CodeUnauthorized)
	// carol cannot lift alice's block, nor one she never made.
	isCode(t, w.carol.Unblock(ctxT(t), "alice"), messenger.CodeNotFound)
	if b, _ := w.th.Store.EitherBlocked(ctxT(t), "alice", "carol"); !b {
		t.Error("alice's block is gone")
	}
	// Blocking a name says nothing about whether it exists.
	if err := w.carol.Block(ctxT(t), "nobody-here"); err != nil {
		t.Errorf("blocking an unknown name: %v", err)
	}
}

func TestAuthzDevices(t *testing.T) {
	w := newWorld(t, nil)
	ds, err := w.carol.Devices(ctxT(t))
	if err != nil || len(ds) != 1 || !ds[0].Self || !ed25519.PublicKey(ds[0].Key).Equal(w.carol.pub()) {
		t.Errorf("carol's devices: %+v, %v", ds, err)
	}
}

func TestAuthzRemoveDevice(t *testing.T) {
	w := newWorld(t, nil)
	// bob gets a second device, so removal is not refused as his last.
	bobDevs, err := w.bob.Devices(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	isCode(t, w.carol.RemoveDevice(ctxT(t), bobDevs[0].ID), messenger.CodeNotFound)
	isCode(t, w.alice.RemoveDevice(ctxT(t), bobDevs[0].ID), messenger.CodeNotFound)
	if ds, _ := w.th.Store.Devices(ctxT(t), "bob"); len(ds) != 1 {
		t.Errorf("bob's devices: %+v", ds)
	}
	// bob is still connected.
	sync_(t, w.bob)
}

func TestAuthzPairJoin(t *testing.T) {
	w := newWorld(t, func(c *hub.Config) { c.PairMissBurst = 6 })
	ctx := ctxT(t)
	own, err := w.carol.PairOpen(ctx, messenger.PurposeContact)
	if err != nil {
		t.Fatal(err)
	}
	link, err := w.alice.PairOpen(ctx, messenger.PurposeDevice)
	if err != nil {
		t.Fatal(err)
	}
	contact, err := w.alice.PairOpen(ctx, messenger.PurposeContact)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ what, id, purpose string }{
		{"own pairing", own.ID, messenger.PurposeContact},
		{"another account's device link", link.ID, messenger.PurposeDevice},
		{"a device link as a contact", link.ID, messenger.PurposeContact},
		{"a contact pairing as a device link", contact.ID, messenger.PurposeDevice},
	} {
		_, err := w.carol.PairJoin(ctx, c.id, c.purpose)
		if !messenger.IsCode(err, messenger.CodeNotFound) {
			t.Errorf("%s: %v, want not-found", c.what, err)
		}
	}
	// Joined once, then used.
	if _, err := w.bob.PairJoin(ctx, contact.ID, messenger.PurposeContact); err != nil {
		t.Fatal(err)
	}
	_, err = w.carol.PairJoin(ctx, contact.ID, messenger.PurposeContact)
	isCode(t, err, messenger.CodeNotFound)
	// carol has missed 5 times; one more spends her allowance, and then
	// even a live code is refused before it is looked up.
	_, err = w.carol.PairJoin(ctx, "ZZZZ", messenger.PurposeContact)
	isCode(t, err, messenger.CodeNotFound)
	fresh, err := w.dave.PairOpen(ctx, messenger.PurposeContact)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.carol.PairJoin(ctx, fresh.ID, messenger.PurposeContact)
	isCode(t, err, messenger.CodeTooMany)
}

func TestAuthzPairRelay(t *testing.T) {
	w := newWorld(t, nil)
	ctx := ctxT(t)
	pa, pb := openPair(t, ctx, w.alice, w.bob, messenger.PurposeContact)
	mallory := w.th.rawLogin(t, "mallory")
	mallory.send(t, mustJSON(messenger.Message{Type: messenger.TypePairRelay, Pair: pa.ID, Data: []byte(`"bWFsbG9yeQ"`)}))
	mallory.expectError(t, messenger.CodeNotFound)
	mallory.send(t, mustJSON(messenger.Message{Type: messenger.TypePairDone, Pair: pa.ID, Key: messenger.B64(w.alice.pub())}))
	mallory.expectError(t, messenger.CodeNotFound)
	// bob's first relayed message is alice's.
	if err := pa.Send([]byte("alice")); err != nil {
		t.Fatal(err)
	}
	if b, err := pb.Recv(ctx); err != nil || string(b) != "alice" {
		t.Errorf("bob received %q, %v", b, err)
	}
}

func TestAuthzPairDoneWrongKey(t *testing.T) {
	for _, who := range []string{"opener", "joiner"} {
		t.Run(who, func(t *testing.T) {
			th := startHub(t, nil)
			alice, bob := th.login(t, "alice"), th.login(t, "bob")
			ctx := ctxT(t)
			pa, pb := openPair(t, ctx, alice, bob, messenger.PurposeContact)
			// A server in the middle would hand each side its own key for
			// the peer: here the swapped side names a key that is not the
			// peer's.
			swapped := newKey(t).Public().(ed25519.PublicKey)
			ka, kb := bob.pub(), alice.pub()
			if who == "opener" {
				ka = swapped
			} else {
				kb = swapped
			}
			errc := make(chan error, 1)
			go func() { _, err := pb.Done(ctx, kb, nil); errc <- err }()
			_, err := pa.Done(ctx, ka, nil)
			for _, err := range []error{err, <-errc} {
				if _, ok := err.(*messenger.PairFailedError); !ok {
					t.Errorf("pair-done: %v, want a PairFailedError", err)
				}
			}
			if ok, _ := th.Store.IsContact(ctx, "alice", "bob"); ok {
				t.Error("the server recorded the contact")
			}
		})
	}
}

func TestAuthzDeviceLink(t *testing.T) {
	th := startHub(t, nil)
	alice, bob := th.login(t, "alice"), th.login(t, "bob")
	ctx := ctxT(t)
	bobLink, err := bob.PairOpen(ctx, messenger.PurposeDevice)
	if err != nil {
		t.Fatal(err)
	}
	aliceContact, err := alice.PairOpen(ctx, messenger.PurposeContact)
	if err != nil {
		t.Fatal(err)
	}
	link := func(ctx context.Context, p *messenger.Pair) (ed25519.PublicKey, error) {
		t.Error("the link ran")
		return nil, errAny
	}
	// A device claiming alice with bob's link code, or with alice's
	// contact code, gets nothing.
	for _, code := range []string{bobLink.ID, aliceContact.ID} {
		_, _, err := th.dial(t, newKey(t), messenger.LoginOptions{User: "alice", Code: code, Link: link})
		isCode(t, err, messenger.CodeNotFound)
	}
	// alice's link, but her device signs no valid cert: no device.
	p, err := alice.PairOpen(ctx, messenger.PurposeDevice)
	if err != nil {
		t.Fatal(err)
	}
	nk := newKey(t)
	go func() {
		if _, err := p.Peer(ctx); err != nil {
			return
		}
		sendKey(t, p, alice.pub())
		got := recvKey(t, p)
		p.Done(ctx, got, ed25519.Sign(alice.key, messenger.CertMessage("bob", got)))
	}()
	_, _, err = th.dial(t, nk, messenger.LoginOptions{User: "alice", Code: p.ID,
		Link: func(ctx context.Context, p *messenger.Pair) (ed25519.PublicKey, error) {
			sendKey(t, p, nk.Public().(ed25519.PublicKey))
			return recvKey(t, p), nil
		}})
	if _, ok := err.(*messenger.PairFailedError); !ok && !strings.Contains(err.Error(), "closed") {
		t.Errorf("link with a bad cert: %v", err)
	}
	if ds, _ := th.Store.Devices(ctx, "alice"); len(ds) != 1 {
		t.Errorf("alice's devices: %+v", ds)
	}
}

func TestAuthzAsk(t *testing.T) {
	w := newWorld(t, nil)
	_, err := w.carol.Ask(ctxT(t), "alice", messenger.KindHelp)
	isCode(t, err, messenger.CodeUnauthorized)
	_, err2 := w.carol.Ask(ctxT(t), "nobody", messenger.KindOffer)
	isCode(t, err2, messenger.CodeUnauthorized)
	// The same answer whether the user exists or not.
	if strings.ReplaceAll(err.Error(), "alice", "X") != strings.ReplaceAll(err2.Error(), "nobody", "X") {
		t.Errorf("answers differ: %q and %q", err, err2)
	}
	sentinel(t, w.alice, w.bob, ofType(messenger.TypeRequest))
}

// askedWorld has alice ask bob, and returns the request id.
func askedWorld(t *testing.T) (*world, string) {
	w := newWorld(t, nil)
	a, err := w.alice.Ask(ctxT(t), "bob", messenger.KindHelp)
	if err != nil {
		t.Fatal(err)
	}
	next(t, w.bob, ofType(messenger.TypeRequest))
	return w, a.Request
}

func TestAuthzAnswer(t *testing.T) {
	w, id := askedWorld(t)
	for _, u := range []*user{w.carol, w.alice} {
		for _, accept := range []bool{true, false} {
			_, err := u.Answer(ctxT(t), id, accept)
			isCode(t, err, messenger.CodeNotFound)
		}
	}
	if _, err := w.bob.Answer(ctxT(t), id, true); err != nil {
		t.Fatalf("bob's answer after the strangers': %v", err)
	}
}

func TestAuthzCancel(t *testing.T) {
	w, id := askedWorld(t)
	isCode(t, w.carol.Cancel(ctxT(t), id), messenger.CodeNotFound)
	isCode(t, w.bob.Cancel(ctxT(t), id), messenger.CodeNotFound)
	if _, err := w.bob.Answer(ctxT(t), id, false); err != nil {
		t.Fatalf("bob's answer after the cancels: %v", err)
	}
}

// TestAuthzLoginAttempts: bad signatures spend the address's allowance.
func TestAuthzLoginAttempts(t *testing.T) {
	th := startHub(t, func(c *hub.Config) { c.LoginFailBurst = 2 })
	r := th.raw(t)
	ch, _ := r.recv(t)
	k := newKey(t)
	bad := messenger.Message{Type: messenger.TypeLogin, Key: messenger.B64(k.Public().(ed25519.PublicKey)),
		Sig: ed25519.Sign(k, ch.Nonce), User: "alice"}
	for i := 0; i < 2; i++ {
		r.send(t, mustJSON(bad))
		r.expectError(t, messenger.CodeUnauthorized)
	}
	fp, _ := messenger.ParseFingerprint(th.FP)
	good := bad
	good.Sig = ed25519.Sign(k, messenger.LoginMessage(ch.Nonce, fp))
	r.send(t, mustJSON(good))
	r.expectError(t, messenger.CodeTooMany)
}

// TestAuthzAnswerAfterBlock: once either side blocked or removed the
// other, an open request between them cannot be accepted.
func TestAuthzAnswerAfterBlock(t *testing.T) {
	for _, how := range []string{"asker blocks", "asked blocks", "asker removes"} {
		t.Run(how, func(t *testing.T) {
			w, id := askedWorld(t)
			var err error
			switch how {
			case "asker blocks":
				err = w.alice.Block(ctxT(t), "bob")
			case "asked blocks":
				err = w.bob.Block(ctxT(t), "alice")
			case "asker removes":
				err = w.alice.Remove(ctxT(t), "bob")
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.bob.Answer(ctxT(t), id, true)
			isCode(t, err, messenger.CodeNotFound)
		})
	}
}
