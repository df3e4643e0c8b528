package linkem

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Direction is how one direction of a link treats packets, as a home
// connection's bottleneck would: each packet is dropped at random with
// probability Loss, otherwise it waits in a drop-tail queue of Queue bytes
// for its turn at the bottleneck, takes its size at Rate to be sent, and
// arrives Delay later.
type Direction struct {
	// Rate is the bottleneck's rate in bits per second; 0 is unlimited
	// (no queue, no serialisation time).
	Rate int64
	// Delay is the one-way propagation delay.
	Delay time.Duration
	// Loss is the share of packets dropped at random, 0..1.
	Loss float64
	// Queue is the bottleneck's buffer in bytes, counting the packet being
	// sent; a packet that does not fit is dropped (drop-tail). 0 means
	// DefaultQueue.
	Queue int
}

// DefaultQueue returns the buffer a Direction with Queue 0 gets: twice the
// bandwidth-delay product (Rate times a round trip of twice Delay), at
// least 24 full-size packets. Home routers' buffers hold from tens to
// hundreds of milliseconds of traffic at their uplink's rate; twice the
// BDP of the links the benchmark emulates is 80 ms at 20 Mbit/s and 40 ms
// RTT, 120 ms at 5 Mbit/s and 60 ms RTT.
func (d Direction) DefaultQueue() int {
	const floor = 24 * 1500
	bdp := float64(d.Rate) / 8 * (2 * d.Delay).Seconds()
	return max(floor, int(2*bdp))
}

func (d Direction) queueBytes() int {
	if d.Queue > 0 {
		return d.Queue
	}
	return d.DefaultQueue()
}

// verdict is what a direction does with one packet.
type verdict int

const (
	deliver   verdict = iota // delivered at the time admit returns
	lost                     // dropped at random (Loss)
	queueFull                // dropped because the queue was full
)

// shaper decides the fate of each packet of one direction. It holds no
// clock of its own: the caller passes each packet's arrival time, so the
// arithmetic is tested without timers.
type shaper struct {
	dir   Direction
	queue int // bytes
	// free is when the bottleneck will have sent every packet admitted so
	// far; the bytes still to send at time t are (free - t) * Rate.
	free time.Time
	// floor is the earliest arrival time admit may return: the last one
	// of the settings this shaper replaced.
	floor time.Time
	rnd   *rand.Rand
	// waited is how long the last packet delivered waited in the queue
	// for the bottleneck (the packets before it still being sent).
	waited time.Duration
}

func newShaper(d Direction, seed uint64) *shaper {
	return &shaper{dir: d, queue: d.queueBytes(), rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// admit decides a packet of size bytes arriving at now. Delivered packets'
// times never decrease, so a FIFO in arrival order delivers them in time.
func (s *shaper) admit(now time.Time, size int) (time.Time, verdict) {
	if s.dir.Loss > 0 && s.rnd.Float64() < s.dir.Loss {
		return time.Time{}, lost
	}
	if s.dir.Rate <= 0 {
		// No bottleneck: only the delay, and never before an earlier
		// packet (the delay is constant, so this only matters if the
		// clock steps back).
		at := now.Add(s.dir.Delay)
		if at.Before(s.free) {
			at = s.free
		}
		if at.Before(s.floor) {
			at = s.floor
		}
		s.free = at
		return at, deliver
	}
	start := now
	s.waited = 0
	if s.free.After(now) {
		backlog := float64(s.free.Sub(now)) / float64(time.Second) * float64(s.dir.Rate) / 8
		if int(backlog)+size > s.queue {
			return time.Time{}, queueFull
		}
		start = s.free
		s.waited = start.Sub(now)
	}
	s.free = start.Add(sendTime(size, s.dir.Rate))
	at := s.free.Add(s.dir.Delay)
	if at.Before(s.floor) {
		at = s.floor
	}
	return at, deliver
}

// sendTime is how long size bytes take at rate bits per second.
func sendTime(size int, rate int64) time.Duration {
	return time.Duration(float64(size*8) / float64(rate) * float64(time.Second))
}

// lastArrival is the arrival time of the last packet admitted (or later).
func (s *shaper) lastArrival() time.Time {
	last := s.free
	if s.dir.Rate > 0 {
		last = last.Add(s.dir.Delay)
	}
	if last.Before(s.floor) {
		last = s.floor
	}
	return last
}

// ParseRate reads a rate in bits/s as the command line gives it: "20M",
// "512k", "1.5G" or a plain number; 0 is an unlimited rate.
func ParseRate(s string) (int64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1e9, strings.TrimSuffix(s, "G")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, errors.New("bad rate: want a number of bits/s with an optional k, M or G, such as 20M")
	}
	return int64(v * mult), nil
}
