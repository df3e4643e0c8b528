package hub_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/coder/websocket"
)

func TestLogin(t *testing.T) {
	th := startHub(t, nil)
	k := newKey(t)
	c, w, err := th.dial(t, k, messenger.LoginOptions{User: "alice", Display: "Alice Liddell"})
	if err != nil {
		t.Fatal(err)
	}
	if w.User != "alice" || w.Display != "Alice Liddell" || !w.Created || !messenger.ValidDeviceID(w.Device) {
		t.Errorf("first login: %+v", w)
	}
	c.Close()
	// The same key logs in to its account; user and display are ignored.
	_, w2, err := th.dial(t, k, messenger.LoginOptions{User: "mallory", Display: "M"})
	if err != nil || w2.User != "alice" || w2.Display != "Alice Liddell" || w2.Created || w2.Device != w.Device {
		t.Errorf("second login: %+v, %v", w2, err)
	}
	// Another key cannot take the name.
	_, _, err = th.dial(t, newKey(t), messenger.LoginOptions{User: "alice"})
	isCode(t, err, messenger.CodeTaken)
	if !strings.Contains(err.Error(), "assist devices add") {
		t.Errorf("taken error does not say what to do: %v", err)
	}
	// An unknown key with no name.
	_, _, err = th.dial(t, newKey(t), messenger.LoginOptions{})
	isCode(t, err, messenger.CodeNotFound)
}

// TestLoginBoundToServer: a login signed for another server's certificate
// (as a relaying server would get) is refused.
func TestLoginBoundToServer(t *testing.T) {
	th := startHub(t, func(c *hub.Config) { c.Fingerprint = sha256.Sum256([]byte("another server")) })
	_, _, err := th.dial(t, newKey(t), messenger.LoginOptions{User: "alice"})
	isCode(t, err, messenger.CodeUnauthorized)
	if _, err := th.Store.Account(ctxT(t), "alice"); err == nil {
		t.Error("the account was created")
	}
}

func TestLoginTimeout(t *testing.T) {
	th := startHub(t, func(c *hub.Config) { c.LoginTimeout = 200 * time.Millisecond })
	r := th.raw(t)
	if m, err := r.recv(t); err != nil || m.Type != messenger.TypeChallenge || len(m.Nonce) != 32 {
		t.Fatalf("first message %+v, %v", m, err)
	}
	_, err := r.recv(t)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("after the login timeout: %v, want close 1008", err)
	}
}

func TestMalformedCloses(t *testing.T) {
	th := startHub(t, nil)
	for _, msg := range []string{
		`{"type":"contacts","user":"x"}`,         // member of another type
		`{"type":"contacts","Ref":"x"}`,          // wrong case
		`{"type":"nonsense"}`,                    // unknown type
		`{"type":"state","state":1}`,             // wrong JSON type
		`{"type":"contacts"} {}`,                 // trailing data
		`{"type":"login","key":"AA","sig":"AA"}`, // short key
		`[1]`,
	} {
		r := th.raw(t)
		r.recv(t) // challenge
		r.send(t, msg)
		m, err := r.recv(t)
		if err != nil || m.Type != messenger.TypeError || m.Code != messenger.CodeMalformed {
			t.Errorf("%s: got %+v, %v; want a malformed error", msg, m, err)
			continue
		}
		if _, err := r.recv(t); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Errorf("%s: then %v, want close 1008", msg, err)
		}
	}
}

func TestConnsPerAddress(t *testing.T) {
	th := startHub(t, func(c *hub.Config) { c.MaxConnsPerAddress = 2 })
	th.raw(t)
	th.raw(t)
	_, resp, err := websocket.Dial(ctxT(t), "wss"+th.URL[len("https"):]+"/v1/messenger",
		&websocket.DialOptions{HTTPClient: th.ts.Client()})
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: %v, %v; want 429", resp, err)
	}
}

func TestRateLimit(t *testing.T) {
	th := startHub(t, func(c *hub.Config) { c.MessageRate, c.MessageBurst = 0.001, 5 })
	r := th.raw(t)
	r.recv(t)
	for i := 0; i < 6; i++ {
		r.send(t, `{"type":"contacts"}`)
	}
	var last messenger.Message
	for {
		m, err := r.recv(t)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation || last.Code != messenger.CodeTooMany {
				t.Fatalf("ended with %v after %+v; want too-many then close 1008", err, last)
			}
			return
		}
		last = m
	}
}

func TestContactsAndPresence(t *testing.T) {
	th := startHub(t, nil)
	alice, bob := th.login(t, "alice"), th.login(t, "bob")
	befriend(t, alice, bob)
	// A new contact's state comes at once.
	next(t, alice, presenceOf("bob", messenger.StateOnline))
	ctx := ctxT(t)
	cs, blocked, err := alice.Contacts(ctx)
	if err != nil || len(cs) != 1 || cs[0].User != "bob" || cs[0].State != messenger.StateOnline || len(blocked) != 0 {
		t.Fatalf("contacts = %+v %v, %v", cs, blocked, err)
	}
	if len(cs[0].Devices) != 1 || !ed25519.PublicKey(cs[0].Devices[0].Key).Equal(bob.pub()) || cs[0].Devices[0].Cert != nil {
		t.Errorf("bob's devices: %+v", cs[0].Devices)
	}
	// A second connection of bob's: busy beats away beats online.
	bob2 := th.again(t, bob)
	// Each step's state is bob's new state; a step that changes nothing
	// sends nothing, so the next presence alice gets is the next change.
	for _, step := range []struct {
		who   *user
		state string
		want  string
	}{
		{bob, messenger.StateBusy, messenger.StateBusy},
		{bob2, messenger.StateAway, ""}, // busy beats away
		{bob, messenger.StateAway, messenger.StateAway},
		{bob2, messenger.StateOnline, messenger.StateOnline}, // online beats away
		{bob, messenger.StateOnline, ""},
		{bob, messenger.StateBusy, messenger.StateBusy},
	} {
		start := time.Now()
		if err := step.who.SetState(ctx, step.state); err != nil {
			t.Fatal(err)
		}
		if step.want == "" {
			// Handled before the next step's message on another connection.
			sync_(t, step.who)
			continue
		}
		m := next(t, alice, ofType(messenger.TypePresence))
		if m.User != "bob" || m.State != step.want {
			t.Fatalf("presence %+v, want bob %s", m, step.want)
		}
		t.Logf("presence %s reached alice in %v", step.want, time.Since(start))
	}
	bob2.Close()
	bob.Close()
	next(t, alice, presenceOf("bob", messenger.StateOffline))
	cs, _, err = alice.Contacts(ctx)
	if err != nil || cs[0].State != messenger.StateOffline {
		t.Errorf("contacts after bob left: %+v, %v", cs, err)
	}
	// Remove: both lose each other.
	bob = th.again(t, bob)
	next(t, alice, presenceOf("bob", messenger.StateOnline))
	if err := alice.Remove(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	next(t, bob, func(m messenger.Message) bool { return m.Type == messenger.TypeRemoved && m.User == "alice" })
	if cs, _, _ := bob.Contacts(ctx); len(cs) != 0 {
		t.Errorf("bob's contacts after removal: %+v", cs)
	}
}

func TestBlock(t *testing.T) {
	th := startHub(t, nil)
	alice, bob := th.login(t, "alice"), th.login(t, "bob")
	befriend(t, alice, bob)
	ctx := ctxT(t)
	if err := alice.Block(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	next(t, bob, func(m messenger.Message) bool { return m.Type == messenger.TypeRemoved && m.User == "alice" })
	_, blocked, err := alice.Contacts(ctx)
	if err != nil || len(blocked) != 1 || blocked[0] != "bob" {
		t.Errorf("blocked = %v, %v", blocked, err)
	}
	// Neither can pair with the other or ask.
	for _, pr := range [][2]*user{{alice, bob}, {bob, alice}} {
		p, err := pr[0].PairOpen(ctx, messenger.PurposeContact)
		if err != nil {
			t.Fatal(err)
		}
		_, err = pr[1].PairJoin(ctx, p.ID, messenger.PurposeContact)
		isCode(t, err, messenger.CodeNotFound)
		_, err = pr[1].Ask(ctx, pr[0].name, messenger.KindHelp)
		isCode(t, err, messenger.CodeUnauthorized)
	}
	if err := alice.Unblock(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	befriend(t, bob, alice)
}

func TestAskAccept(t *testing.T) {
	for _, kind := range []string{messenger.KindHelp, messenger.KindOffer} {
		t.Run(kind, func(t *testing.T) {
			th := startHub(t, nil)
			alice, bob := th.login(t, "alice"), th.login(t, "bob")
			befriend(t, alice, bob)
			bob2 := th.again(t, bob)
			ctx := ctxT(t)
			asked, err := alice.Ask(ctx, "bob", kind)
			if err != nil || !messenger.ValidRequestID(asked.Request) || asked.To != "bob" || asked.Kind != kind {
				t.Fatalf("asked = %+v, %v", asked, err)
			}
			if d := time.Until(asked.Expires); d < 4*time.Minute || d > 5*time.Minute+time.Second {
				t.Errorf("expires in %v, want 5 min", d)
			}
			req := next(t, bob, ofType(messenger.TypeRequest))
			req2 := next(t, bob2, ofType(messenger.TypeRequest))
			if req.Request != asked.Request || req.From != "alice" || req.Display != "alice" || req.Kind != kind || req2.Request != asked.Request {
				t.Fatalf("request = %+v", req)
			}
			acc, err := bob.Answer(ctx, req.Request, true)
			if err != nil {
				t.Fatal(err)
			}
			got := next(t, alice, ofType(messenger.TypeAccepted))
			if !regexp.MustCompile(`^r-[a-z2-7]{26}$`).MatchString(acc.Session) || got.Session != acc.Session {
				t.Errorf("sessions %q and %q", acc.Session, got.Session)
			}
			novice, expert := got, acc
			if kind == messenger.KindOffer {
				novice, expert = acc, got
			}
			if novice.Role != messenger.RoleNovice || expert.Role != messenger.RoleExpert {
				t.Errorf("roles: novice got %q, expert %q", novice.Role, expert.Role)
			}
			if got.By != "bob" || got.Peer.User != "bob" || !ed25519.PublicKey(got.Peer.Device.Key).Equal(bob.pub()) {
				t.Errorf("alice's accepted: %+v", got)
			}
			if acc.Peer.User != "alice" || !ed25519.PublicKey(acc.Peer.Device.Key).Equal(alice.pub()) {
				t.Errorf("bob's accepted: %+v", acc)
			}
			closed := next(t, bob2, ofType(messenger.TypeRequestClosed))
			if closed.Request != asked.Request || closed.Reason != messenger.ReasonAnswered {
				t.Errorf("bob2 got %+v", closed)
			}
			// The first answer won.
			_, err = bob2.Answer(ctx, req.Request, true)
			isCode(t, err, messenger.CodeNotFound)
		})
	}
}

func TestAskDeclineCancelExpire(t *testing.T) {
	th := startHub(t, func(c *hub.Config) { c.SweepEvery = 10 * time.Millisecond })
	alice, bob := th.login(t, "alice"), th.login(t, "bob")
	befriend(t, alice, bob)
	ctx := ctxT(t)

	asked, err := alice.Ask(ctx, "bob", messenger.KindHelp)
	if err != nil {
		t.Fatal(err)
	}
	next(t, bob, ofType(messenger.TypeRequest))
	if r, err := bob.Answer(ctx, asked.Request, false); err != nil || r.Reason != messenger.ReasonDeclined {
		t.Fatalf("decline: %+v, %v", r, err)
	}
	if d := next(t, alice, ofType(messenger.TypeDeclined)); d.Request != asked.Request || d.By != "bob" {
		t.Errorf("declined: %+v", d)
	}

	asked, err = alice.Ask(ctx, "bob", messenger.KindHelp)
	if err != nil {
		t.Fatal(err)
	}
	next(t, bob, ofType(messenger.TypeRequest))
	if err := alice.Cancel(ctx, asked.Request); err != nil {
		t.Fatal(err)
	}
	if c := next(t, bob, ofType(messenger.TypeRequestClosed)); c.Request != asked.Request || c.Reason != messenger.ReasonCancelled {
		t.Errorf("cancelled: %+v", c)
	}

	asked, err = alice.Ask(ctx, "bob", messenger.KindHelp)
	if err != nil {
		t.Fatal(err)
	}
	next(t, bob, ofType(messenger.TypeRequest))
	th.Clock.Add(5*time.Minute + time.Second)
	for _, u := range []*user{alice, bob} {
		if c := next(t, u, ofType(messenger.TypeRequestClosed)); c.Request != asked.Request || c.Reason != messenger.ReasonExpired {
			t.Errorf("%s: %+v", u.name, c)
		}
	}
	_, err = bob.Answer(ctx, asked.Request, true)
	isCode(t, err, messenger.CodeNotFound)
}

// TestAskOffline: a request made while the contact is offline reaches
// them when they log in; when the asking connection closes, the request
// is cancelled.
func TestAskOffline(t *testing.T) {
	th := startHub(t, nil)
	alice, bob := th.login(t, "alice"), th.login(t, "bob")
	befriend(t, alice, bob)
	bob.Close()
	next(t, alice, presenceOf("bob", messenger.StateOffline))
	ctx := ctxT(t)
	asked, err := alice.Ask(ctx, "bob", messenger.KindHelp)
	if err != nil {
		t.Fatal(err)
	}
	bob = th.again(t, bob)
	if r := next(t, bob, ofType(messenger.TypeRequest)); r.Request != asked.Request || r.From != "alice" {
		t.Errorf("pending request: %+v", r)
	}
	alice.Close()
	if c := next(t, bob, ofType(messenger.TypeRequestClosed)); c.Request != asked.Request || c.Reason != messenger.ReasonCancelled {
		t.Errorf("after the asker left: %+v", c)
	}
}

func TestDeviceLinkAndRemove(t *testing.T) {
	th := startHub(t, nil)
	alice := th.login(t, "alice")
	ctx := ctxT(t)
	p, err := alice.PairOpen(ctx, messenger.PurposeDevice)
	if err != nil {
		t.Fatal(err)
	}
	newKey_ := newKey(t)
	newPub := newKey_.Public().(ed25519.PublicKey)
	done := make(chan error, 1)
	go func() {
		peer, err := p.Peer(ctx)
		if err == nil && peer.User != "alice" {
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
	c2, w, err := th.dial(t, newKey_, messenger.LoginOptions{User: "alice", Code: p.ID, DeviceName: "laptop",
		Link: func(ctx context.Context, p *messenger.Pair) (ed25519.PublicKey, error) {
			sendKey(t, p, newPub)
			return recvKey(t, p), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w.User != "alice" || w.Created {
		t.Errorf("new device's welcome: %+v", w)
	}
	// The welcome goes out before the connection is set online.
	var ds []messenger.OwnDevice
	for deadline := time.Now().Add(5 * time.Second); ; {
		ds, err = c2.Devices(ctx)
		if err != nil || len(ds) != 2 {
			t.Fatalf("devices = %+v, %v", ds, err)
		}
		if ds[1].Online || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // no event says the state is set
	}
	nd := ds[1]
	if !nd.Self || !nd.Online || nd.Name != "laptop" || nd.Cert == nil ||
		!ed25519.Verify(ed25519.PublicKey(nd.Cert.Signer), messenger.CertMessage("alice", nd.Key), nd.Cert.Sig) ||
		!ed25519.PublicKey(nd.Cert.Signer).Equal(alice.pub()) {
		t.Errorf("the linked device: %+v", nd)
	}
	if ds[0].Self || ds[0].Cert != nil {
		t.Errorf("the first device: %+v", ds[0])
	}
	// Removing it closes its connection and tells the others.
	if err := alice.RemoveDevice(ctx, nd.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c2.Done():
	case <-time.After(wait):
		t.Fatal("the removed device's connection is still open")
	}
	isCode(t, alice.RemoveDevice(ctx, ds[0].ID), messenger.CodeInvalid)
	// The removed key no longer logs in to alice.
	_, _, err = th.dial(t, newKey_, messenger.LoginOptions{})
	isCode(t, err, messenger.CodeNotFound)
}

func TestConnsPerAccount(t *testing.T) {
	th := startHub(t, func(c *hub.Config) { c.MaxConnsPerAccount = 2 })
	alice := th.login(t, "alice")
	th.again(t, alice)
	_, _, err := th.dial(t, alice.key, messenger.LoginOptions{})
	isCode(t, err, messenger.CodeTooMany)
	// The refused connection changed nothing: alice is still online.
	bob := th.login(t, "bob")
	befriend(t, alice, bob)
	next(t, bob, presenceOf("alice", messenger.StateOnline))
}

// TestRestartClosesRequests: requests left open by a previous run (whose
// asking connections are gone) are not delivered after a restart.
func TestRestartClosesRequests(t *testing.T) {
	th := startHub(t, nil)
	ctx := ctxT(t)
	now := th.Clock.Now()
	if err := th.Store.PutRequest(ctx, hub.Request{ID: "AAAAAAAAAAAAAAAAAAAAAA", From: "alice", FromDevice: "d", FromConn: "gone-1",
		To: "bob", Kind: messenger.KindHelp, Created: now, Expires: now.Add(5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{Store: th.Store, Fingerprint: [32]byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if p, err := th.Store.PendingRequests(ctx, "bob", now); err != nil || len(p) != 0 {
		t.Errorf("pending after a restart: %+v, %v", p, err)
	}
}

// TestDialPinned: the client accepts only the pinned certificate.
func TestDialPinned(t *testing.T) {
	th := startHub(t, nil)
	wrong := messenger.FormatFingerprint(sha256.Sum256([]byte("another certificate")))
	_, _, err := messenger.Dial(ctxT(t), th.URL, wrong, newKey(t), messenger.LoginOptions{User: "alice"})
	if err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("dial with another pin: %v", err)
	}
	if _, err := th.Store.Account(ctxT(t), "alice"); err == nil {
		t.Error("the account was created")
	}
}

// TestFirstAnswerWins: two devices answer at once; exactly one wins.
func TestFirstAnswerWins(t *testing.T) {
	th := startHub(t, nil)
	alice, bob := th.login(t, "alice"), th.login(t, "bob")
	befriend(t, alice, bob)
	bob2 := th.again(t, bob)
	for round := 0; round < 5; round++ {
		asked, err := alice.Ask(ctxT(t), "bob", messenger.KindHelp)
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		for _, u := range []*user{bob, bob2} {
			go func() {
				_, err := u.Answer(ctxT(t), asked.Request, true)
				errs <- err
			}()
		}
		won := 0
		for range 2 {
			if err := <-errs; err == nil {
				won++
			} else if !messenger.IsCode(err, messenger.CodeNotFound) {
				t.Fatal(err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d answers won", round, won)
		}
		next(t, alice, ofType(messenger.TypeAccepted))
	}
}

// TestDeviceLinkTimeout: a new device that never finishes its link is
// disconnected after LinkTimeout, and the old device is told.
func TestDeviceLinkTimeout(t *testing.T) {
	th := startHub(t, func(c *hub.Config) { c.LinkTimeout = 300 * time.Millisecond })
	alice := th.login(t, "alice")
	p, err := alice.PairOpen(ctxT(t), messenger.PurposeDevice)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = th.dial(t, newKey(t), messenger.LoginOptions{User: "alice", Code: p.ID,
		Link: func(ctx context.Context, p *messenger.Pair) (ed25519.PublicKey, error) {
			_, err := p.Recv(ctx) // the old device sends nothing
			return nil, err
		}})
	if err == nil {
		t.Fatal("the stalled link logged in")
	}
	if _, err := p.Done(ctxT(t), alice.pub(), nil); err == nil {
		t.Fatal("the old device's link did not fail")
	} else if pf, ok := err.(*messenger.PairFailedError); !ok || !strings.Contains(pf.Reason, "too long") {
		t.Errorf("old device: %v", err)
	}
}
