package natsbus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/assist-project/assist/internal/natstest"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/hub/bustest"
	"github.com/assist-project/assist/messenger/hub/natsbus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.LeakOptions()...) }

// testTTL keeps expiry tests short; the server refuses less than 1 s.
const testTTL = 1500 * time.Millisecond

func open(t *testing.T, url string, replicas int) *natsbus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := natsbus.Open(ctx, natsbus.Config{URL: url, Replicas: replicas, TTL: testTTL, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestBus runs the bus suite on one NATS server.
func TestBus(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Backend {
		srv := natstest.Start(t)
		return bustest.Backend{
			Node:  func(t *testing.T) hub.Bus { return open(t, srv.URL, 1) },
			Kill:  func(t *testing.T, b hub.Bus) { b.Close() },
			Stop:  func(t *testing.T) { srv.Stop() },
			Start: func(t *testing.T) { srv.Restart(t) },
		}
	})
}

// TestBusCluster runs the suite on a three-server NATS cluster, each
// node of the bus on another server, the bucket replicated three times;
// Stop loses the first server (the first node's).
func TestBusCluster(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Backend {
		servers := natstest.Cluster(t, 3)
		n := 0
		return bustest.Backend{
			Node: func(t *testing.T) hub.Bus {
				b := open(t, servers[n%len(servers)].URL, 3)
				n++
				return b
			},
			Kill:     func(t *testing.T, b hub.Bus) { b.Close() },
			Stop:     func(t *testing.T) { servers[0].Stop() },
			Start:    func(t *testing.T) { servers[0].Restart(t) },
			Survives: true,
		}
	})
}

// TestOpenUnreachable: no NATS at the URL is a plain error at start that
// names the URL (without its password) and what to do.
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	url := srv.URL
	srv.Stop()
	withPassword := strings.Replace(url, "nats://", "nats://op:hunter2@", 1)
	_, err := natsbus.Open(ctx, natsbus.Config{URL: withPassword})
	if err == nil {
		t.Fatal("Open without a server succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, "hunter2") || !strings.Contains(msg, strings.TrimPrefix(url, "nats://")) || !strings.Contains(msg, "--bus") {
		t.Errorf("error %q should name the URL without its password and say what to do", msg)
	}
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"alice", "al.ice", "a>b*c", "", "=41", "A", "é", "r-1a2b-3", "=61", "=2e", "=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := natsbus.EncodeToken(s)
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'F' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '=') {
				t.Fatalf("EncodeToken(%q) = %q has %q", s, tok, c)
			}
		}
		back, err := natsbus.DecodeToken(tok)
		if err != nil || back != s {
			t.Fatalf("DecodeToken(EncodeToken(%q)) = %q, %v", s, back, err)
		}
		// Untrusted keys decode to one name each, or not at all.
		if d, err := natsbus.DecodeToken(s); err == nil && natsbus.EncodeToken(d) != s {
			t.Fatalf("DecodeToken(%q) = %q, which encodes otherwise", s, d)
		}
	})
}

// TestOpenWithoutJetStream: a NATS server without JetStream is refused
// at start with what the operator must change.
func TestOpenWithoutJetStream(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := natsbus.Open(ctx, natsbus.Config{URL: srv.ClientURL()})
	if err == nil {
		b.Close()
		t.Fatal("Open succeeded on a server without JetStream")
	}
	if !strings.Contains(err.Error(), "JetStream") || !strings.Contains(err.Error(), "-js") {
		t.Errorf("error %q should say to turn JetStream on", err)
	}
}

// TestAutoReplicas: on a three-server NATS cluster named by the list of
// its URLs, a bus with no replica count configured gives the presence
// bucket three replicas, raising one made with one (NATS used to be a
// single server), so presence outlives the loss of a server.
func TestAutoReplicas(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	replicas := func() int {
		t.Helper()
		nc, err := nats.Connect(servers[0].URL)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(context.Background(), "KV_"+natsbus.DefaultBucket)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.Replicas
	}
	open(t, servers[0].URL, 1).Close()
	if got := replicas(); got != 1 {
		t.Fatalf("a bucket made with 1 replica has %d", got)
	}
	open(t, servers[0].URL+","+servers[1].URL+","+servers[2].URL, 0)
	if got := replicas(); got != 3 {
		t.Errorf("after a bus on the cluster's three URLs: %d replicas, want 3", got)
	}
}

// TestWatchAfterServerLoss: on a three-server cluster, node A's watch of
// the presence bucket has its consumer (one replica) on a server A is
// not connected to; node B is on another. That server is shut down: A's
// connection stays up, but its watch receives nothing more. A change
// made on B must still reach A within a few heartbeats: A notices its
// own acknowledged beats do not come back and watches again (nats.go
// alone notices after two missed 5-second idle heartbeats, and more).
func TestWatchAfterServerLoss(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	byName := map[string]*natstest.Server{}
	for _, s := range servers {
		byName[s.Name()] = s
	}
	nc, err := nats.Connect(servers[0].URL + "," + servers[1].URL + "," + servers[2].URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream := "KV_" + natsbus.DefaultBucket
	// consumerOn is the server of the stream's one consumer (the watch
	// of the one bus open).
	// The consumer of a bus just closed goes away on its own time (CI
	// once saw it still listed beside the new one), so this asks again
	// until one is left, for up to 10 s.
	consumerOn := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var on []string
		for {
			s, err := js.Stream(ctx, stream)
			if err != nil {
				t.Fatal(err)
			}
			on = on[:0]
			for ci := range s.ListConsumers(ctx).Info() {
				if ci.Cluster != nil {
					on = append(on, ci.Cluster.Leader)
				}
			}
			if len(on) == 1 {
				return on[0]
			}
			select {
			case <-ctx.Done():
				t.Fatalf("consumers of %s on %v after 10 s, want one", stream, on)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// A's watch on a server A is not connected to.
	var a *natsbus.Bus
	var victim, aOn *natstest.Server
	for i := 0; victim == nil; i++ {
		if i == 20 {
			t.Fatal("the watch's consumer stayed on its own connection's server 20 times")
		}
		if a != nil {
			a.Close()
		}
		aOn = servers[i%3]
		a = open(t, aOn.URL, 3)
		if v := byName[consumerOn()]; v != aOn {
			victim = v
		}
	}
	var bOn *natstest.Server
	for _, s := range servers {
		if s != victim {
			bOn = s
		}
	}
	b := open(t, bOn.URL, 3)
	t.Logf("A on %s, its watch on %s, B on %s", aOn.Name(), victim.Name(), bOn.Name())

	changes := make(chan hub.StateChange, 16)
	defer a.WatchStates(func(c hub.StateChange) {
		if c.User == "bob" {
			changes <- c
		}
	})()
	set := func(state string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _, err := b.SetState(ctx, "bob", "d1", "c1", state)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("SetState %s: %v", state, err)
			}
			time.Sleep(100 * time.Millisecond) // a client's retry
		}
	}
	want := func(state string, within time.Duration) {
		t.Helper()
		timer := time.NewTimer(within)
		defer timer.Stop()
		for {
			select {
			case c := <-changes:
				if c.After == state {
					return
				}
			case <-timer.C:
				t.Fatalf("A did not see bob %s within %v", state, within)
			}
		}
	}
	// A connection of A's own, so that A beats.
	if _, _, err := a.SetState(context.Background(), "alice", "d1", "c1", messenger.StateOnline); err != nil {
		t.Fatal(err)
	}
	set(messenger.StateOnline)
	want(messenger.StateOnline, 10*time.Second)
	victim.Stop()
	set(messenger.StateAway)
	// A few heartbeats (TTL/3 each), well under nats.go's own 10 s.
	want(messenger.StateAway, 5*time.Second)
}
