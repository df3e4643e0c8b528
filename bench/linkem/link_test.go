package linkem

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/netns"
)

// The addresses of the test links: a is the first end, b the second.
var (
	testA = netip.MustParsePrefix("10.99.0.1/30")
	testB = netip.MustParsePrefix("10.99.0.2/30")
)

// maker makes a link: New or NewProcess.
type maker = func(a, b Endpoint, aToB, bToA Direction) (*Link, error)

// makers are the ways to make a link: every link test runs with each.
var makers = []struct {
	name string
	new  maker
}{{"in-process", New}, {"process", NewProcess}}

// eachMaker runs test once per way to make a link.
func eachMaker(t *testing.T, test func(t *testing.T, mk maker)) {
	for _, m := range makers {
		t.Run(m.name, func(t *testing.T) { test(t, m.new) })
	}
}

// newTestLink builds two namespaces joined by a link shaped by aToB and
// bToA, made by mk, and removes everything on cleanup. It skips t without
// root or ip.
func newTestLink(t *testing.T, mk maker, aToB, bToA Direction) (nsA, nsB string, l *Link) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("linkem: network namespaces and TUN devices need root (run the tests as root, e.g. in CI)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("linkem: needs the ip tool (Debian package iproute2)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("linkem: no TUN device: %v", err)
	}
	prefix, err := netns.UniquePrefix("lk")
	if err != nil {
		t.Fatal(err)
	}
	nsA, nsB = prefix+"a", prefix+"b"
	for _, ns := range []string{nsA, nsB} {
		if err := netns.Create(ns); err != nil {
			t.Skipf("cannot create network namespaces here: %v", err)
		}
		t.Cleanup(func() {
			if err := netns.Delete(ns); err != nil {
				t.Error(err)
			}
		})
	}
	l, err = mk(Endpoint{Netns: nsA, Device: "lk0", Addr: testA}, Endpoint{Netns: nsB, Device: "lk0", Addr: testB}, aToB, bToA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return nsA, nsB, l
}

// listenUDP opens a UDP socket in ns on addr.
func listenUDP(t *testing.T, ns string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := netns.Do(ns, func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLinkDelay checks that every round trip of a UDP echo across the
// link takes at least both configured delays, set after the link was made
// (Set), and that the counters saw the echoes.
func TestLinkDelay(t *testing.T) { eachMaker(t, testLinkDelay) }

func testLinkDelay(t *testing.T, mk maker) {
	const up, down = 30 * time.Millisecond, 20 * time.Millisecond
	nsA, nsB, l := newTestLink(t, mk, Direction{Delay: time.Millisecond}, Direction{Delay: time.Millisecond})
	if err := l.Set(Direction{Delay: up}, Direction{Delay: down}); err != nil {
		t.Fatal(err)
	}
	srv := listenUDP(t, nsB, netip.AddrPortFrom(testB.Addr(), 7))
	done := make(chan struct{})
	go func() { // the echo server
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { srv.Close(); <-done })
	cli := listenUDP(t, nsA, netip.AddrPortFrom(testA.Addr(), 0))
	buf := make([]byte, 2048)
	for i := 0; i < 10; i++ {
		msg := []byte{byte(i), 'p', 'i', 'n', 'g'}
		start := time.Now()
		if _, err := cli.WriteToUDPAddrPort(msg, netip.AddrPortFrom(testB.Addr(), 7)); err != nil {
			t.Fatal(err)
		}
		cli.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := cli.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		rtt := time.Since(start)
		if !bytes.Equal(buf[:n], msg) {
			t.Fatalf("echo %d: got %q, want %q", i, buf[:n], msg)
		}
		if rtt < up+down {
			t.Errorf("echo %d came back after %v, want at least %v", i, rtt, up+down)
		}
	}
	ab, ba := l.Stats()
	if ab.Delivered < 10 || ba.Delivered < 10 {
		t.Errorf("counters: %+v and %+v, want at least the 10 echoes delivered each way", ab, ba)
	}
}

// TestLinkRate sends 1 MiB over TCP across an 8 Mbit/s link, which takes
// at least 1.05 s (headers and the handshake only add to it), and checks
// that the queue stays bounded: TCP's window grows past the queue, so the
// queue must have dropped packets.
func TestLinkRate(t *testing.T) { eachMaker(t, testLinkRate) }

func testLinkRate(t *testing.T, mk maker) {
	const rate = 8_000_000
	const size = 1 << 20
	nsA, nsB, l := newTestLink(t, mk,
		Direction{Rate: rate, Delay: 5 * time.Millisecond, Queue: 30_000},
		Direction{Rate: rate, Delay: 5 * time.Millisecond})
	var ln net.Listener
	if err := netns.Do(nsB, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(testB.Addr().String(), "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var c net.Conn
	if err := netns.Do(nsA, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-got; n != size {
		t.Fatalf("received %d bytes, want %d", n, size)
	}
	elapsed := time.Since(start)
	floor := sendTime(size, rate)
	t.Logf("1 MiB in %v at 8 Mbit/s (floor %v)", elapsed.Round(time.Millisecond), floor)
	if elapsed < floor {
		t.Errorf("1 MiB crossed an 8 Mbit/s link in %v, faster than the %v the rate allows", elapsed, floor)
	}
	ab, _ := l.Stats()
	if ab.Bytes < size || ab.Delivered == 0 {
		t.Errorf("a->b counted %+v, want at least %d bytes", ab, size)
	}
	if ab.QueueDrops == 0 {
		t.Errorf("a->b counted %+v: a 30 kB queue never overflowed under a bulk TCP transfer", ab)
	}
}

// TestLinkLoss sends 2,000 datagrams across a link that loses 10% of
// them and checks that about that share never arrives (the bounds are
// over 6 standard deviations away).
func TestLinkLoss(t *testing.T) { eachMaker(t, testLinkLoss) }

func testLinkLoss(t *testing.T, mk maker) {
	nsA, nsB, l := newTestLink(t, mk, Direction{Loss: 0.1}, Direction{})
	srv := listenUDP(t, nsB, netip.AddrPortFrom(testB.Addr(), 9))
	cli := listenUDP(t, nsA, netip.AddrPortFrom(testA.Addr(), 0))
	received := make(chan int, 1)
	go func() {
		buf := make([]byte, 2048)
		n := 0
		for {
			srv.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, _, err := srv.ReadFromUDPAddrPort(buf); err != nil {
				received <- n
				return
			}
			n++
		}
	}()
	const n = 2000
	to := netip.AddrPortFrom(testB.Addr(), 9)
	for i := 0; i < n; i++ {
		if _, err := cli.WriteToUDPAddrPort([]byte("datagram"), to); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			// Let the emulator take the batch, so that the TUN
			// device's own queue never overflows.
			for deadline := time.Now().Add(5 * time.Second); ; {
				if ab, _ := l.Stats(); ab.Packets >= uint64(i+1) || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	got := <-received // the receiver gives up 2 s after the last datagram
	ab, _ := l.Stats()
	t.Logf("sent %d, received %d; emulator: %+v", n, got, ab)
	// The kernel sends a packet of its own now and then (IPv6 router
	// solicitations), so the counters may hold a few more.
	if ab.Packets < n {
		t.Errorf("the emulator read %d packets, want at least %d", ab.Packets, n)
	}
	if lostShare := float64(n-got) / n; lostShare < 0.06 || lostShare > 0.14 {
		t.Errorf("%.1f%% of the datagrams never arrived, want about 10%%", 100*lostShare)
	}
	if uint64(got) > ab.Delivered {
		t.Errorf("received %d datagrams, but the emulator delivered only %d packets", got, ab.Delivered)
	}
}
