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
	a := startServe(t, t.TempDir(), "--bus", ns.URL)
	b := startServe(t, t.TempDir(), "--bus", ns.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	newKey := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	dial := func(srv *servedProc, key ed25519.PrivateKey, user string) *messenger.Client {
		t.Helper()
		c, _, err := messenger.Dial(ctx, srv.URL, srv.Fingerprint, key, messenger.LoginOptions{User: user})
		if err != nil {
			t.Fatalf("login %s: %v; stderr: %s", user, err, srv.stderr)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	expect := func(c *messenger.Client, what string, keep func(messenger.Message) bool) messenger.Message {
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
