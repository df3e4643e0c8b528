// Command linkem joins two fresh network namespaces with an emulated link
// (package linkem) and keeps it up until interrupted, for measuring by
// hand:
//
//	go run ./bench/linkem/linkem -rate 20M -delay 20ms -loss 0.01
//	ip netns exec NAME-b iperf3 -s &   # in another terminal
//	ip netns exec NAME-a ping 10.99.0.2
//
// The first namespace is 10.99.0.1, the second 10.99.0.2. Rates and
// delays apply to each direction (-rate-back and -delay-back set the
// second's). On exit, also on Ctrl-C, it deletes both namespaces with
// everything still running in them and prints each direction's counters.
// Needs root and the ip tool.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/assist-project/assist/bench/linkem"
	"github.com/assist-project/assist/internal/netns"
)

func main() {
	linkem.RunForwarder()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "linkem:", err)
		os.Exit(1)
	}
}

func run() error {
	rate := flag.String("rate", "20M", "bottleneck rate in bits/s (suffix k, M, G), 0 for unlimited")
	rateBack := flag.String("rate-back", "", "rate from the second namespace to the first (default -rate)")
	delay := flag.Duration("delay", 20*time.Millisecond, "one-way delay")
	delayBack := flag.Duration("delay-back", -1, "one-way delay back (default -delay)")
	loss := flag.Float64("loss", 0, "share of packets lost at random in each direction, 0..1")
	queue := flag.Int("queue", 0, "bottleneck queue in bytes (default twice the bandwidth-delay product)")
	name := flag.String("name", "", "namespace name prefix (default a unique one)")
	flag.Parse()

	fwd, err := linkem.ParseRate(*rate)
	if err != nil {
		return err
	}
	back := fwd
	if *rateBack != "" {
		if back, err = linkem.ParseRate(*rateBack); err != nil {
			return err
		}
	}
	if *delayBack < 0 {
		*delayBack = *delay
	}
	prefix := *name
	if prefix == "" {
		if prefix, err = netns.UniquePrefix("lk"); err != nil {
			return err
		}
	}
	nsA, nsB := prefix+"a", prefix+"b"
	var cleanup []func() error
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			if err := cleanup[i](); err != nil {
				fmt.Fprintln(os.Stderr, "linkem:", err)
			}
		}
	}()
	for _, ns := range []string{nsA, nsB} {
		if err := netns.Create(ns); err != nil {
			return err
		}
		cleanup = append(cleanup, func() error { return netns.Delete(ns) })
	}
	ab := linkem.Direction{Rate: fwd, Delay: *delay, Loss: *loss, Queue: *queue}
	ba := linkem.Direction{Rate: back, Delay: *delayBack, Loss: *loss, Queue: *queue}
	l, err := linkem.NewProcess(
		linkem.Endpoint{Netns: nsA, Device: "lk0", Addr: netip.MustParsePrefix("10.99.0.1/30")},
		linkem.Endpoint{Netns: nsB, Device: "lk0", Addr: netip.MustParsePrefix("10.99.0.2/30")}, ab, ba)
	if err != nil {
		return err
	}
	cleanup = append(cleanup, l.Close)
	fmt.Printf("namespace %s: 10.99.0.1\nnamespace %s: 10.99.0.2\n", nsA, nsB)
	fmt.Printf("%s -> %s: %s\n%s -> %s: %s\n", nsA, nsB, describe(ab), nsB, nsA, describe(ba))
	fmt.Println("running; Ctrl-C to stop")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	s1, s2 := l.Stats()
	fmt.Printf("%s -> %s: %+v\n%s -> %s: %+v\n", nsA, nsB, s1, nsB, nsA, s2)
	return nil
}

func describe(d linkem.Direction) string {
	q := d.Queue
	if q == 0 {
		q = d.DefaultQueue()
	}
	if d.Rate == 0 {
		return fmt.Sprintf("unlimited rate, delay %v, loss %g", d.Delay, d.Loss)
	}
	return fmt.Sprintf("%g Mbit/s, delay %v, loss %g, queue %d bytes (%v)", float64(d.Rate)/1e6, d.Delay, d.Loss, q,
		time.Duration(float64(q*8)/float64(d.Rate)*float64(time.Second)).Round(time.Millisecond))
}
