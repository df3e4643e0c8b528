package lab

import (
	"net"
	"sync"
	"testing"
	"time"
)

// SlowLink is a bottleneck between two TCP connections on loopback, as a
// home link is: each direction drains at rate bytes per second into a
// one-way delay, behind a queue with no limit (the worst router). It
// measures that queue: the most bytes that ever waited in it, which is
// the standing queue a sender builds.
type SlowLink struct {
	delay time.Duration

	mu       sync.Mutex
	rate     float64 // bytes per second
	maxQueue [2]int
	wg       sync.WaitGroup
}

// NewSlowLink returns the two ends of a loopback TCP connection through a
// SlowLink of mbits Mbit/s each way and round-trip time rtt. Everything
// stops when either end is closed, and on cleanup at the latest.
func NewSlowLink(t testing.TB, mbits float64, rtt time.Duration) (*SlowLink, net.Conn, net.Conn) {
	t.Helper()
	l := &SlowLink{rate: mbits * 1e6 / 8, delay: rtt / 2}
	a1, a2 := TCPPair(t)
	b1, b2 := TCPPair(t)
	l.wg.Add(2)
	go l.pump(0, a2, b1)
	go l.pump(1, b1, a2)
	t.Cleanup(func() {
		a1.Close()
		b2.Close()
		a2.Close()
		b1.Close()
		l.wg.Wait()
	})
	return l, a1, b2
}

// SetRate changes the link's rate, both ways, to mbits Mbit/s, as when a
// home line slows down: bytes already queued leave at the old rate.
func (l *SlowLink) SetRate(mbits float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate = mbits * 1e6 / 8
}

// MaxQueue is the most bytes that waited at the bottleneck in direction
// dir: 0 from the first end to the second, 1 back.
func (l *SlowLink) MaxQueue(dir int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.maxQueue[dir]
}

// ResetMax returns MaxQueue(dir) and starts measuring it anew.
func (l *SlowLink) ResetMax(dir int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.maxQueue[dir]
	l.maxQueue[dir] = 0
	return q
}

type piece struct {
	b      []byte
	depart time.Time // leaves the bottleneck
}

// pump carries one direction: a reader takes what the sender writes at
// once (so no socket buffer hides the queue), and a writer lets each piece
// through at its time.
func (l *SlowLink) pump(dir int, from, to net.Conn) {
	defer l.wg.Done()
	q := make(chan piece, 1<<16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range q {
			time.Sleep(time.Until(p.depart.Add(l.delay)))
			if _, err := to.Write(p.b); err != nil {
				for range q {
				}
				return
			}
		}
	}()
	var free time.Time
	buf := make([]byte, 4096)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			now := time.Now()
			start := now
			if free.After(now) {
				start = free
			}
			l.mu.Lock()
			rate := l.rate
			// Departures that have passed left the queue.
			free = start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
			// What waits at the bottleneck: the bytes not yet departed.
			waiting := int(float64(start.Sub(now)) / float64(time.Second) * rate)
			l.maxQueue[dir] = max(l.maxQueue[dir], waiting)
			l.mu.Unlock()
			q <- piece{b: append([]byte(nil), buf[:n]...), depart: free}
		}
		if err != nil {
			close(q)
			<-done
			to.Close()
			return
		}
	}
}

// TCPPair returns the two ends of a real TCP connection on loopback. The
// caller closes them.
func TCPPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-acc
	if b == nil {
		a.Close()
		t.Fatal("accept failed")
	}
	return a, b
}
