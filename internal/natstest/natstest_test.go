package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, LeakOptions()...) }

// TestClusterSurvivesRestart: a three-node cluster keeps a key-value
// entry while one node restarts, and a message published on one node
// reaches a subscriber on another.
func TestClusterSurvivesRestart(t *testing.T) {
	servers := Cluster(t, 3)
	a, err := nats.Connect(servers[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := nats.Connect(servers[2].URL)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	sub, err := b.SubscribeSync("hello")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	// Interest crosses the route asynchronously; publish until it arrives.
	var got *nats.Msg
	for i := 0; got == nil && i < 100; i++ {
		if err := a.Publish("hello", []byte("world")); err != nil {
			t.Fatal(err)
		}
		got, _ = sub.NextMsg(100 * time.Millisecond)
	}
	if got == nil || string(got.Data) != "world" {
		t.Fatalf("no message across the cluster: %v", got)
	}

	js, err := a.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: "t", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	servers[1].Restart(t)
	WaitJetStream(t, servers[1].URL)
	e, err := kv.Get("k")
	if err != nil || string(e.Value()) != "v" {
		t.Fatalf("after a restart: %v %v", e, err)
	}
}
