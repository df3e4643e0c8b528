package natsbus_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
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

// BenchmarkSetStateParallel: presence changes from many connections at
// once (a node's logins after a restart), which bounds how many
// connections' heartbeats one NATS server takes.
func BenchmarkSetStateParallel(b *testing.B) {
	srv := natstest.Start(b)
	bus := openB(b, srv.URL)
	ctx := context.Background()
	b.SetParallelism(16)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id := strconv.FormatInt(i%10000, 10)
			if _, _, err := bus.SetState(ctx, "u"+id, "d", "c"+id, messenger.StateOnline); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHeartbeat10k: the CPU that keeping 10,000 connections'
// states alive costs, the NATS server (in this process) included:
// reported as CPU seconds per second over three heartbeats. Run with
// -benchtime 1x.
func BenchmarkHeartbeat10k(b *testing.B) {
	srv := natstest.Start(b)
	ctx := context.Background()
	bus, err := natsbus.Open(ctx, natsbus.Config{URL: srv.URL, TTL: 6 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	for i := 0; i < 10000; i++ {
		id := strconv.Itoa(i)
		if _, _, err := bus.SetState(ctx, "u"+id, "d", "c"+id, messenger.StateOnline); err != nil {
			b.Fatal(err)
		}
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0, t0 := cpu(), time.Now()
		time.Sleep(6 * time.Second) // three heartbeats: nothing to wait on, it is the steady state measured
		b.ReportMetric((cpu()-c0).Seconds()/time.Since(t0).Seconds(), "cpu-s/s")
	}
}
