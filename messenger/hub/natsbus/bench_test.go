package natsbus_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/natstest"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/hub/natsbus"
)

// BenchmarkSetState: one presence change as the hub makes it, written to
// the bucket and seen back through this node's watcher.
func BenchmarkSetState(b *testing.B) {
	srv := natstest.Start(b)
	bus := openB(b, srv.URL)
	ctx := context.Background()
	states := []string{messenger.StateOnline, messenger.StateAway}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := bus.SetState(ctx, "u"+strconv.Itoa(i%1000), "d", "c"+strconv.Itoa(i%1000), states[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliveryAcross: a delivery published by one node and received
// by another, one at a time (the latency a presence push or a request
// adds between servers).
func BenchmarkDeliveryAcross(b *testing.B) {
	srv := natstest.Start(b)
	a, c := openB(b, srv.URL), openB(b, srv.URL)
	got := make(chan struct{}, 1)
	cancel, err := c.Subscribe("alice", func(hub.Delivery) { got <- struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	defer cancel()
	ctx := context.Background()
	msg := []byte(`{"type":"presence","user":"bob","state":"online"}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.Publish(ctx, hub.Delivery{User: "alice", Msg: msg}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			b.Fatal("no delivery")
		}
	}
}

func openB(b *testing.B, url string) hub.Bus {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, err := natsbus.Open(ctx, natsbus.Config{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bus.Close() })
	return bus
}
