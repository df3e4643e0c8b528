package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/natstest"
	"github.com/assist-project/assist/internal/pgtest"
	"github.com/assist-project/assist/messenger"
)

// TestServeBusNATS: two `assist serve --bus nats://...` share one NATS.
// Each keeps its own --data (shared accounts need a shared store), so bob
// has an account of the same name and key on each, and what crosses from
// one server to the other is only what the bus carries: bob's presence
// on B shows in alice's contacts on A, alice's request on A reaches bob's
// connection on B, and when B dies (SIGKILL) alice is told bob is offline
// once his presence expires.
func TestServeBusNATS(t *testing.T) {
	ns := natstest.Start(t)
	newData, shared := clusterNodes(t)
	a := startServe(t, newData(), append([]string{"--bus", ns.URL}, shared...)...)
	b := startServe(t, newData(), append([]string{"--bus", ns.URL}, shared...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	newKey, dial, expect := busClients(t, ctx)
	aliceKey, bobKey := newKey(), newKey()
	alice := dial(a, aliceKey, "alice")
	bobOnA := dial(a, bobKey, "bob")
	befriendClients(t, ctx, alice, aliceKey, bobOnA, bobKey)
	bobOnA.Close()
	expect(alice, "bob offline", func(m messenger.Message) bool {
		return m.Type == messenger.TypePresence && m.User == "bob" && m.State == messenger.StateOffline
	})

	// Bob on B: A's mirror of the presence bucket has his connection.
	bob := dial(b, bobKey, "bob")
	for {
		cs, _, err := alice.Contacts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 1 && cs[0].State == messenger.StateOnline {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("alice's contacts on A never showed bob online on B: %+v", cs)
		case <-time.After(50 * time.Millisecond): // nothing announces it: B's store has no contact of bob
		}
	}

	asked, err := alice.Ask(ctx, "bob", messenger.KindHelp)
	if err != nil {
		t.Fatal(err)
	}
	req := expect(bob, "alice's request on B", func(m messenger.Message) bool { return m.Type == messenger.TypeRequest })
	if req.Request != asked.Request || req.From != "alice" {
		t.Fatalf("bob got %+v, alice asked %+v", req, asked)
	}

	// B dies without a word: its connections' presence expires and A
	// tells alice.
	if err := syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	expect(alice, "bob offline after B died", func(m messenger.Message) bool {
		return m.Type == messenger.TypePresence && m.User == "bob" && m.State == messenger.StateOffline
	})
	t.Logf("bob offline seen by alice %v after his server died", time.Since(start).Round(time.Millisecond))

	// NATS restarts: meanwhile A says it is busy, to alice and to a new
	// client, and accepts nothing; then it serves again by itself.
	ns.Stop()
	for {
		_, _, err := alice.Contacts(ctx)
		if messenger.IsCode(err, messenger.CodeUnavailable) {
			break
		}
		if err != nil {
			t.Fatalf("contacts while NATS is away: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("A still served alice long after NATS stopped")
		case <-time.After(20 * time.Millisecond): // the server notices the lost connection by itself
		}
	}
	if _, err := alice.Ask(ctx, "bob", messenger.KindHelp); !messenger.IsCode(err, messenger.CodeUnavailable) {
		t.Errorf("ask while NATS is away: %v, want unavailable", err)
	}
	if _, _, err := messenger.Dial(ctx, a.URL, a.Fingerprint, newKey(), messenger.LoginOptions{User: "carol"}); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("a new client while NATS is away: %v, want told the service is busy", err)
	}
	ns.Restart(t)
	start = time.Now()
	for {
		_, _, err := alice.Contacts(ctx)
		if err == nil {
			break
		}
		if !messenger.IsCode(err, messenger.CodeUnavailable) {
			t.Fatalf("contacts after NATS came back: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("A did not recover after NATS came back")
		case <-time.After(20 * time.Millisecond): // the reconnect is the server's own
		}
	}
	t.Logf("A served again %v after NATS restarted", time.Since(start).Round(time.Millisecond))
	if _, err := alice.Ask(ctx, "bob", messenger.KindHelp); err != nil {
		t.Errorf("ask after NATS came back: %v", err)
	}
	dial(a, newKey(), "carol")
}

// TestServeBusPostgres: two `assist serve` sharing NATS and PostgreSQL,
// as two nodes behind a load balancer: users of one are contacts of users
// of the other. Bob's presence on B is pushed to alice on A, her request
// reaches him on B, his answer on B reaches her on A, and when B dies
// alice is told he is offline.
func TestServeBusPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.DB(t)
	ns := natstest.Start(t)
	newData, shared := clusterNodes(t)
	a := startServe(t, newData(), append([]string{"--bus", ns.URL, "--store", dsn}, shared...)...)
	b := startServe(t, newData(), append([]string{"--bus", ns.URL, "--store", dsn}, shared...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	newKey, dial, expect := busClients(t, ctx)
	presence := func(user, state string) func(messenger.Message) bool {
		return func(m messenger.Message) bool {
			return m.Type == messenger.TypePresence && m.User == user && m.State == state
		}
	}
	aliceKey, bobKey := newKey(), newKey()
	alice := dial(a, aliceKey, "alice")
	// Pairings are a node's own: both sides of one on A.
	bobOnA := dial(a, bobKey, "bob")
	befriendClients(t, ctx, alice, aliceKey, bobOnA, bobKey)
	bob := dial(b, bobKey, "")
	bobOnA.Close()
	if err := bob.SetState(ctx, messenger.StateBusy); err != nil {
		t.Fatal(err)
	}
	expect(alice, "bob busy on B", presence("bob", messenger.StateBusy))
	if err := alice.SetState(ctx, messenger.StateAway); err != nil {
		t.Fatal(err)
	}
	expect(bob, "alice away on A", presence("alice", messenger.StateAway))

	asked, err := alice.Ask(ctx, "bob", messenger.KindHelp)
	if err != nil {
		t.Fatal(err)
	}
	req := expect(bob, "alice's request on B", func(m messenger.Message) bool { return m.Type == messenger.TypeRequest })
	if req.Request != asked.Request {
		t.Fatalf("bob got %+v, alice asked %+v", req, asked)
	}
	if _, err := bob.Answer(ctx, req.Request, true); err != nil {
		t.Fatal(err)
	}
	if m := expect(alice, "bob's answer on A", func(m messenger.Message) bool { return m.Type == messenger.TypeAccepted }); m.Request != asked.Request || m.Session == "" {
		t.Fatalf("alice got %+v", m)
	}

	if err := syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	expect(alice, "bob offline after B died", presence("bob", messenger.StateOffline))
	t.Logf("bob offline seen by alice %v after his server died", time.Since(start).Round(time.Millisecond))
}

// busClients returns what the bus tests make clients with: a fresh
// device key, a login (closed by cleanup) and a wait for an event.
func busClients(t *testing.T, ctx context.Context) (
	newKey func() ed25519.PrivateKey,
	dial func(srv *servedProc, key ed25519.PrivateKey, user string) *messenger.Client,
	expect func(c *messenger.Client, what string, keep func(messenger.Message) bool) messenger.Message,
) {
	newKey = func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	dial = func(srv *servedProc, key ed25519.PrivateKey, user string) *messenger.Client {
		t.Helper()
		c, _, err := messenger.Dial(ctx, srv.URL, srv.Fingerprint, key, messenger.LoginOptions{User: user})
		if err != nil {
			t.Fatalf("login %s: %v; stderr: %s", user, err, srv.stderr)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	expect = func(c *messenger.Client, what string, keep func(messenger.Message) bool) messenger.Message {
		t.Helper()
		for {
			select {
			case m, ok := <-c.Events():
				if !ok {
					t.Fatalf("%s: connection ended: %v", what, c.Err())
				}
				if keep(m) {
					return m
				}
			case <-ctx.Done():
				t.Fatalf("%s: not within the test's time", what)
			}
		}
	}
	return newKey, dial, expect
}

// TestServeBusUnreachable: --bus naming no NATS stops `assist serve` at
// start with an error that names it and says what to do.
func TestServeBusUnreachable(t *testing.T) {
	ns := natstest.Start(t)
	url := ns.URL
	ns.Stop()
	code, _, stderr := runAssist(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(),
		"--turn-listen", "off", "--turns-listen", "off", "--bus", url)
	if code == 0 || !strings.Contains(stderr, "cannot reach NATS at "+url) || !strings.Contains(stderr, "--bus") {
		t.Fatalf("assist serve --bus %s: exit %d\n%s", url, code, stderr)
	}
}

// befriendClients makes the two clients' users contacts by a contact
// pairing (package pairing's exchange, without its PAKE: the keys are
// sent in the clear, which the server does not check).
func befriendClients(t *testing.T, ctx context.Context, a *messenger.Client, aKey ed25519.PrivateKey, b *messenger.Client, bKey ed25519.PrivateKey) {
	t.Helper()
	pa, err := a.PairOpen(ctx, messenger.PurposeContact)
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	pb, err := b.PairJoin(ctx, pa.ID, messenger.PurposeContact)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	if _, err := pa.Peer(ctx); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := pb.Done(ctx, aKey.Public().(ed25519.PublicKey), nil)
		errc <- err
	}()
	if _, err := pa.Done(ctx, bKey.Public().(ed25519.PublicKey), nil); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
