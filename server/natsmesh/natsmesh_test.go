package natsmesh

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/assist-project/assist/internal/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}

func dial(t *testing.T, url, node string, ttl time.Duration) *Mesh {
	t.Helper()
	m, err := Dial(context.Background(), url, Config{Node: node, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestClaims: a claim makes its node the id's home; another node's agent
// cannot take it, the same agent (owner) can, and the node that lost it
// learns so when it renews; released or unrenewed claims disappear.
func TestClaims(t *testing.T) {
	ns := natstest.Start(t)
	ctx := context.Background()
	a := dial(t, ns.URL, "a", time.Second)
	b := dial(t, ns.URL, "b", time.Second)
	o1, o2 := []byte("owner-1"), []byte("owner-2")
	home := func(id, want string) {
		t.Helper()
		if got, err := b.Home(ctx, id); err != nil || got != want {
			t.Errorf("home of %s: %q %v, want %q", id, got, err, want)
		}
	}
	claim := func(m *Mesh, id string, owner []byte, want string) {
		t.Helper()
		if got, err := m.Claim(ctx, id, owner); err != nil || got != want {
			t.Errorf("%s claims %s: holder %q %v, want %q", m.Node(), id, got, err, want)
		}
	}

	home("id1", "")
	claim(a, "id1", o1, "")
	home("id1", "a")
	claim(b, "id1", o2, "a")
	claim(b, "id1", nil, "a")
	claim(a, "id1", o1, "") // its own again
	claim(b, "id1", o1, "") // the same agent, back through b
	home("id1", "b")
	if lost, err := a.Refresh(ctx, []string{"id1"}); err != nil || !slices.Equal(lost, []string{"id1"}) {
		t.Errorf("a renews a claim b took over: lost %q %v", lost, err)
	}
	if err := a.Release(ctx, "id1"); err != nil { // no longer a's: nothing happens
		t.Error(err)
	}
	home("id1", "b")
	if err := b.Release(ctx, "id1"); err != nil {
		t.Error(err)
	}
	home("id1", "")

	claim(a, "id2", nil, "")
	claim(b, "id2", nil, "a")
	// Renewed, it outlives its TTL; then left alone, it expires.
	for range 4 {
		time.Sleep(a.Every())
		if lost, err := a.Refresh(ctx, []string{"id2"}); err != nil || len(lost) != 0 {
			t.Fatalf("renewing: lost %q %v", lost, err)
		}
	}
	home("id2", "a")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if h, _ := b.Home(ctx, "id2"); h == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a claim nobody renews did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}
	claim(b, "id2", nil, "")
	// a renews what it still believes is its: b holds it now.
	if lost, err := a.Refresh(ctx, []string{"id2"}); err != nil || !slices.Equal(lost, []string{"id2"}) {
		t.Errorf("renewing an expired claim another node took: lost %q %v", lost, err)
	}
	if err := a.Ready(ctx); err != nil {
		t.Error(err)
	}
}

// TestSendAsk: messages reach the named node in order; Ask gets the
// named node's answer, or any node's that answers when asked all.
func TestSendAsk(t *testing.T) {
	ns := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := dial(t, ns.URL, "a", time.Second)
	b := dial(t, ns.URL, "b", time.Second)
	got := make(chan string, 100)
	stopB, err := b.Listen(func(msg []byte) []byte {
		if string(msg) == "who" {
			return []byte("b")
		}
		got <- string(msg)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	gotA := make(chan string, 100)
	stopA, err := a.Listen(func(msg []byte) []byte { // silent
		gotA <- string(msg)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	for _, m := range []string{"1", "2", "3"} {
		if err := a.Send("b", []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"1", "2", "3"} {
		select {
		case m := <-got:
			if m != want {
				t.Fatalf("got %q, want %q (in order)", m, want)
			}
		case <-ctx.Done():
			t.Fatalf("message %s never arrived", want)
		}
	}
	// Node "": every node, the sender included.
	if err := a.Send("", []byte("all")); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]chan string{"a": gotA, "b": got} {
		select {
		case m := <-ch:
			if m != "all" {
				t.Errorf("%s got %q, want the message sent to all", name, m)
			}
		case <-ctx.Done():
			t.Fatalf("the message sent to all never reached %s", name)
		}
	}
	for _, node := range []string{"b", ""} {
		if r, err := a.Ask(ctx, node, []byte("who")); err != nil || string(r) != "b" {
			t.Errorf("ask %q: %q %v", node, r, err)
		}
	}
	if _, err := b.Ask(ctx, "nobody", []byte("who")); err == nil {
		t.Error("asking a node that does not exist succeeded")
	}
}

func TestValidNode(t *testing.T) {
	for name, ok := range map[string]bool{"n1": true, "node_2-x": true, "": false, "a.b": false, "a b": false, "*": false, ">": false,
		"0123456789012345678901234567890123456789012345678901234567890123": true, "01234567890123456789012345678901234567890123456789012345678901234": false} {
		if err := ValidNode(name); (err == nil) != ok {
			t.Errorf("ValidNode(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

// TestAutoReplicas: on a three-server NATS cluster, named by the list of
// its URLs or by one of them (the others announced by the cluster), the
// mesh's buckets get three replicas, so they outlive a server's loss; a
// bucket made with one replica is raised, and a node that asks for fewer
// does not lower it. On one server they have one.
func TestAutoReplicas(t *testing.T) {
	ctx := context.Background()
	servers := natstest.Cluster(t, 3)
	replicas := func(m *Mesh, bucket string) int {
		t.Helper()
		js, err := jetstream.New(m.nc)
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.Replicas
	}
	one := dial1(t, servers[0].URL, Config{Node: "one", Replicas: 1})
	if got := replicas(one, DefaultBucket); got != 1 {
		t.Fatalf("a bucket made with 1 replica has %d", got)
	}
	urls := []string{servers[0].URL, servers[1].URL, servers[2].URL}
	for _, url := range []string{strings.Join(urls, ","), servers[1].URL} {
		m := dial1(t, url, Config{Node: "auto"})
		if err := m.Agree(ctx, "x", "y"); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{DefaultBucket, AgreeBucket} {
			if got := replicas(m, b); got != 3 {
				t.Errorf("--bus %s: bucket %s has %d replicas, want 3", url, b, got)
			}
		}
	}
	dial1(t, servers[2].URL, Config{Node: "low", Replicas: 1})
	if got := replicas(one, DefaultBucket); got != 3 {
		t.Errorf("after a node asking for 1 replica: %d, want 3 kept", got)
	}

	single := natstest.Start(t)
	m := dial1(t, single.URL, Config{Node: "alone"})
	if got := replicas(m, DefaultBucket); got != 1 {
		t.Errorf("on one server: %d replicas, want 1", got)
	}
}

func dial1(t *testing.T, url string, cfg Config) *Mesh {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := Dial(ctx, url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}
