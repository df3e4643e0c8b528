package link

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// path is a simulated bottleneck: a FIFO draining at rate bytes per second,
// with delay one way in each direction and acknowledgements that come back
// as soon as a piece arrives. Everything runs on a simulated clock.
type path struct {
	rate  float64
	delay time.Duration
	// free is when the bottleneck finishes what it holds.
	free time.Time
	acks []ack // in time order
	sent uint64
}

type ack struct {
	at    time.Time
	total uint64
}

// send puts n bytes on the path at t and returns the time they wait in the
// bottleneck's queue.
func (p *path) send(n int, t time.Time) time.Duration {
	start := t
	if p.free.After(t) {
		start = p.free
	}
	wait := start.Sub(t)
	p.free = start.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	p.sent += uint64(n)
	p.acks = append(p.acks, ack{at: p.free.Add(2 * p.delay), total: p.sent})
	return wait
}

const chunk = 16 << 10

// flood runs a sender with always something to send for d, sending a chunk
// whenever the estimator has room, and returns the largest queueing delay
// and the largest excess of bytes in flight over the window seen in the
// last half of the run.
func flood(e *Estimator, p *path, now time.Time, d time.Duration) (time.Time, time.Duration, int) {
	return floodPieces(e, p, now, d, chunk)
}

// floodPieces is flood with pieces of size bytes.
func floodPieces(e *Estimator, p *path, now time.Time, d time.Duration, size int) (time.Time, time.Duration, int) {
	end := now.Add(d)
	half := now.Add(d / 2)
	var maxWait time.Duration
	excess := 0
	for now.Before(end) {
		for e.Room(now) {
			w := p.send(size, now)
			e.Sent(size, now, false)
			if now.After(half) {
				maxWait = max(maxWait, w)
				excess = max(excess, e.InFlight()-e.Window(now))
			}
		}
		a := p.acks[0]
		p.acks = p.acks[1:]
		now = a.at
		e.Acked(a.total, now)
	}
	return now, maxWait, excess
}

// trickle sends n app-limited pieces of size bytes, each every after the
// acknowledgement of the one before, and returns when the last was
// acknowledged.
func trickle(e *Estimator, p *path, now time.Time, n, size int, every time.Duration) time.Time {
	for range n {
		now = now.Add(every)
		p.send(size, now)
		e.Sent(size, now, true)
		a := p.acks[len(p.acks)-1]
		p.acks = p.acks[:0]
		now = a.at
		e.Acked(a.total, now)
	}
	return now
}

func TestEstimatorConverges(t *testing.T) {
	for _, tc := range []struct {
		mbits float64
		rtt   time.Duration
	}{
		{20, 40 * time.Millisecond},
		{5, 60 * time.Millisecond},
		{100, 10 * time.Millisecond},
		{1, 100 * time.Millisecond},
		{50, 200 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%gMbit/%v", tc.mbits, tc.rtt), func(t *testing.T) {
			rate := tc.mbits * 1e6 / 8
			p := &path{rate: rate, delay: tc.rtt / 2}
			e := New()
			now := time.Unix(1000, 0)
			_, wait, excess := flood(e, p, now, 10*time.Second)
			est := e.Estimate(now)
			if est.Rate < 0.8*rate || est.Rate > 1.2*rate {
				t.Errorf("rate %.0f B/s, want about %.0f", est.Rate, rate)
			}
			floor := tc.rtt + time.Duration(chunk/rate*float64(time.Second))
			if est.RTT < tc.rtt || est.RTT > floor+time.Millisecond {
				t.Errorf("RTT %v, want between %v and %v", est.RTT, tc.rtt, floor)
			}
			// No standing queue: in steady state a piece waits at most
			// the quarter BDP the gain allows and the one piece the
			// window adds, or the window's floor on slow paths, plus a
			// chunk or two of rounding.
			bdp := rate * tc.rtt.Seconds()
			allowed := time.Duration((max(0.25*bdp+chunk, MinWindow-bdp) + 2*chunk) / rate * float64(time.Second))
			if wait > allowed {
				t.Errorf("a piece waited %v in the bottleneck's queue, want at most %v", wait, allowed)
			}
			if excess >= chunk {
				t.Errorf("bytes in flight exceeded the window by %d, want less than one chunk", excess)
			}
		})
	}
}

// The window's floor bounds the queue on a path whose bandwidth-delay
// product is below it: the floor less the product stands in front of the
// bottleneck, so a sender of small pieces (session streams send 1280
// bytes on slow paths) sets a small floor, and the rate is still found.
func TestEstimatorFloor(t *testing.T) {
	const piece = 1280
	for _, tc := range []struct {
		name  string
		e     *Estimator
		floor int
	}{
		{"New", New(), MinWindow},
		{"NewWithFloor 8 KiB", NewWithFloor(8 << 10), 8 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A DSL line's upload: 1 Mbit/s, 50 ms, a product of 6,250
			// bytes.
			rate := 1e6 / 8
			rtt := 50 * time.Millisecond
			p := &path{rate: rate, delay: rtt / 2}
			now, wait, _ := floodPieces(tc.e, p, time.Unix(1000, 0), 10*time.Second, piece)
			if w := tc.e.Window(now); w < tc.floor {
				t.Errorf("window %d, below the floor of %d", w, tc.floor)
			}
			if r := tc.e.Rate(now); r < 0.9*rate || r > 1.1*rate {
				t.Errorf("rate %.0f B/s, want about %.0f", r, rate)
			}
			bdp := rate * rtt.Seconds()
			allowed := time.Duration((max(0.25*bdp+piece, float64(tc.floor)-bdp) + 2*piece) / rate * float64(time.Second))
			if wait > allowed {
				t.Errorf("a piece waited %v in the bottleneck's queue, want at most %v", wait, allowed)
			}
			t.Logf("floor %d: a piece waited up to %v (allowed %v)", tc.floor, wait, allowed)
		})
	}
}

// A sender that stops being the bottleneck (it has little to send) keeps
// its rate estimate: app-limited samples never lower it.
func TestEstimatorAppLimitedKeepsRate(t *testing.T) {
	rate := 20e6 / 8
	p := &path{rate: rate, delay: 20 * time.Millisecond}
	e := New()
	now, _, _ := flood(e, p, time.Unix(1000, 0), 5*time.Second)
	before := e.Rate(now)
	// A trickle: one small piece every 100 ms for 10 s.
	now = trickle(e, p, now, 100, 1000, 100*time.Millisecond)
	if after := e.Rate(now); after < 0.9*before {
		t.Errorf("rate fell from %.0f to %.0f B/s on app-limited samples", before, after)
	}
}

// burst sends size bytes in pieces of piece bytes whenever the window has
// room, the last one app-limited (the sender then has nothing more), and
// returns once all are acknowledged.
func burst(e *Estimator, p *path, now time.Time, size, piece int) time.Time {
	for left := size; left > 0 || len(p.acks) > 0; {
		for left > 0 && e.Room(now) {
			n := min(piece, left)
			p.send(n, now)
			left -= n
			e.Sent(n, now, left == 0)
		}
		a := p.acks[0]
		p.acks = p.acks[1:]
		now = a.at
		e.Acked(a.total, now)
	}
	return now
}

// A sender whose changes come in bursts, the path idle in between, keeps
// the rate its flood measured: a burst's pieces sent before anything
// since the pause is acknowledged, or with less than the product in
// flight, measure the burst, not the path. Counted as samples of the
// path, 20 KB bursts took the estimate of a 20 Mbit/s path to 3.4 Mbit/s.
func TestEstimatorBurstsKeepRate(t *testing.T) {
	for _, tc := range []struct {
		size  int
		every time.Duration
	}{
		{20 << 10, 4 * time.Second},
		{50 << 10, time.Second},
		{200 << 10, 500 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%dKiB every %v", tc.size>>10, tc.every), func(t *testing.T) {
			rate := 20e6 / 8
			p := &path{rate: rate, delay: 20 * time.Millisecond}
			e := NewWithFloor(8 << 10)
			now, _, _ := floodPieces(e, p, time.Unix(1000, 0), 5*time.Second, 5000)
			// The flood ends: what it has in flight is acknowledged,
			// and its last piece is app-limited.
			for _, a := range p.acks {
				now = a.at
				e.Acked(a.total, now)
			}
			p.acks = nil
			now = trickle(e, p, now, 1, 100, 0)
			for range 10 {
				now = burst(e, p, now.Add(tc.every), tc.size, 5000)
				if r := e.Rate(now); r < 0.9*rate {
					t.Fatalf("rate %.2f Mbit/s after a burst, want about %.0f", r*8/1e6, rate*8/1e6)
				}
			}
		})
	}
}

// A path that slows down: the window follows within a second. The
// queue the old window leaves stands in every round trip, so the rate
// samples of the faster path stop counting after ten round trips instead
// of the 3 s for which an idle sender keeps them.
func TestEstimatorFollowsSlowerPath(t *testing.T) {
	for _, tc := range []struct {
		from, to float64 // Mbit/s
		rtt      time.Duration
	}{
		{20, 5, 40 * time.Millisecond},
		{20, 2, 40 * time.Millisecond},
		{5, 1, 60 * time.Millisecond},
		{100, 20, 10 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%g to %g Mbit/s %v", tc.from, tc.to, tc.rtt), func(t *testing.T) {
			// Pieces of about 2 ms of the rate, as session streams send.
			piece := max(1280, int(tc.to*1e6/8*0.002))
			p := &path{rate: tc.from * 1e6 / 8, delay: tc.rtt / 2}
			e := NewWithFloor(8 << 10)
			now, _, _ := floodPieces(e, p, time.Unix(1000, 0), 5*time.Second, piece)
			wBefore := e.Window(now)
			p.rate = tc.to * 1e6 / 8
			now, _, _ = floodPieces(e, p, now, time.Second, piece)
			// The second after: its last half has no more queue than a
			// path that was always this slow.
			now, wait, _ := floodPieces(e, p, now, time.Second, piece)
			if r := e.Rate(now); r > 1.2*p.rate {
				t.Errorf("rate %.2f Mbit/s a second after the path slowed to %g", r*8/1e6, tc.to)
			}
			if w := e.Window(now); float64(w) > 1.5*float64(wBefore)*tc.to/tc.from+float64(8<<10) {
				t.Errorf("window %d a second after the path slowed from %g to %g Mbit/s, was %d", w, tc.from, tc.to, wBefore)
			}
			bdp := p.rate * tc.rtt.Seconds()
			allowed := time.Duration((max(0.25*bdp+float64(piece), float64(8<<10)-bdp) + 2*float64(piece)) / p.rate * float64(time.Second))
			if wait > allowed {
				t.Errorf("a piece waited %v in the queue a second after the path slowed, want at most %v", wait, allowed)
			}
		})
	}
}

func TestEstimatorAckEdgeCases(t *testing.T) {
	e := New()
	t0 := time.Unix(1000, 0)
	if w := e.Window(t0); w != InitialWindow {
		t.Fatalf("window before any sample %d, want %d", w, InitialWindow)
	}
	e.Sent(0, t0, false)
	e.Sent(100, t0, false)
	e.Sent(100, t0.Add(time.Millisecond), false)
	e.Acked(50, t0.Add(10*time.Millisecond)) // part of a piece: no sample
	if est := e.Estimate(t0); est.RTT != 0 || est.InFlight != 150 {
		t.Fatalf("after a partial ack: %+v", est)
	}
	e.Acked(40, t0.Add(11*time.Millisecond)) // going backwards: ignored
	e.Acked(1<<40, t0.Add(20*time.Millisecond))
	est := e.Estimate(t0.Add(20 * time.Millisecond))
	if est.InFlight != 0 || est.Acked != 200 {
		t.Fatalf("an ack beyond what was sent: %+v", est)
	}
	if est.RTT != 19*time.Millisecond {
		t.Errorf("RTT %v, want 19ms (the newest piece acknowledged)", est.RTT)
	}
	// The send log is bounded, and merged pieces still give samples.
	for i := range 3 * maxMarks {
		e.Sent(10, t0.Add(time.Second+time.Duration(i)*time.Microsecond), false)
	}
	if len(e.marks) > maxMarks {
		t.Fatalf("send log of %d pieces, bound %d", len(e.marks), maxMarks)
	}
	e.Acked(e.sent, t0.Add(2*time.Second))
	if e.InFlight() != 0 || len(e.marks) != 0 {
		t.Errorf("in flight %d, marks %d after acknowledging everything", e.InFlight(), len(e.marks))
	}
}

// Most of the time a flooding sender keeps no standing queue: apart from
// one probing round trip in cycleLen (and the drain after it), a piece
// waits in the bottleneck's queue at most about the one piece the window
// adds beyond the product, not the quarter product a constant gain of
// 1.25 keeps there.
func TestEstimatorDrainsQueue(t *testing.T) {
	for _, tc := range []struct {
		mbits float64
		rtt   time.Duration
	}{
		{20, 40 * time.Millisecond},
		{5, 60 * time.Millisecond},
		{50, 200 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%gMbit/%v", tc.mbits, tc.rtt), func(t *testing.T) {
			rate := tc.mbits * 1e6 / 8
			p := &path{rate: rate, delay: tc.rtt / 2}
			e := New()
			now, _, _ := flood(e, p, time.Unix(1000, 0), 5*time.Second)
			var waits []time.Duration
			end := now.Add(5 * time.Second)
			for now.Before(end) {
				for e.Room(now) {
					waits = append(waits, p.send(chunk, now))
					e.Sent(chunk, now, false)
				}
				a := p.acks[0]
				p.acks = p.acks[1:]
				now = a.at
				e.Acked(a.total, now)
			}
			slices.Sort(waits)
			median := waits[len(waits)/2]
			bdp := rate * tc.rtt.Seconds()
			allowed := time.Duration((2*chunk + 0.05*bdp) / rate * float64(time.Second))
			if median > allowed {
				t.Errorf("median wait in the bottleneck's queue %v, want at most %v (two pieces)", median, allowed)
			}
			if r := e.Rate(now); r < 0.9*rate {
				t.Errorf("rate %.0f B/s, want about %.0f: the path is not kept full", r, rate)
			}
		})
	}
}

// The window counts the largest recent piece, not the largest ever: a
// sender that goes over to smaller pieces gets the smaller window.
func TestEstimatorPieceExpires(t *testing.T) {
	e := New()
	t0 := time.Unix(1000, 0)
	e.Sent(16<<10, t0, false)
	e.Acked(16<<10, t0.Add(50*time.Millisecond))
	w := e.rateWindow(t0)
	e.Sent(4<<10, t0.Add(w/2), false)
	if e.piece != 16<<10 {
		t.Fatalf("piece %d %v later, want the 16 KiB one", e.piece, w/2)
	}
	e.Sent(4<<10, t0.Add(w+time.Millisecond), false)
	if e.piece != 4<<10 {
		t.Errorf("piece %d after %v of 4 KiB pieces, want 4 KiB", e.piece, w)
	}
}

// A sender that has only ever had little to send (a handshake, a fast path
// it never fills) has a rate, but not a measured one; the first piece the
// path held back makes it measured.
func TestEstimatorMeasured(t *testing.T) {
	p := &path{rate: 5e6 / 8, delay: 30 * time.Millisecond}
	e := New()
	now := trickle(e, p, time.Unix(1000, 0), 5, 100, 0)
	if est := e.Estimate(now); est.Rate == 0 || est.Measured {
		t.Fatalf("after app-limited pieces only: rate %.0f B/s, measured %v; want a rate, not measured", est.Rate, est.Measured)
	}
	now, _, _ = flood(e, p, now, time.Second)
	if est := e.Estimate(now); !est.Measured {
		t.Fatalf("after a flood: not measured (rate %.0f B/s)", est.Rate)
	}
}
