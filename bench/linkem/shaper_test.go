package linkem

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	RunForwarder() // NewProcess starts this test binary again
	goleak.VerifyTestMain(m)
}

// TestShaper checks the arithmetic of one direction against hand-computed
// arrival times: serialisation at the rate, the delay on top, the queue
// dropping what does not fit, and the queue draining over time.
func TestShaper(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	type arrival struct {
		at   time.Duration // after t0
		size int
		want time.Duration // arrival at the far end after t0; -1 dropped by the queue
		wait time.Duration // in the queue, for the packets before it
	}
	tests := []struct {
		name     string
		dir      Direction
		arrivals []arrival
	}{
		{"delay only", Direction{Delay: ms(20)}, []arrival{
			{0, 1500, ms(20), 0}, {0, 1500, ms(20), 0}, {ms(5), 100, ms(25), 0},
		}},
		{"serialisation", Direction{Rate: 8_000_000, Delay: ms(10)}, []arrival{
			// 1000 bytes at 8 Mbit/s take 1 ms.
			{0, 1000, ms(11), 0},
			{0, 1000, ms(12), ms(1)}, // waits for the first
			{ms(0.5), 500, ms(12.5), ms(1.5)},
			{ms(10), 1000, ms(21), 0}, // the bottleneck was idle again
		}},
		{"drop-tail", Direction{Rate: 8_000_000, Queue: 2500}, []arrival{
			{0, 1000, ms(1), 0},
			{0, 1000, ms(2), ms(1)},
			{0, 1000, -1, 0}, // 2000 bytes queued + 1000 > 2500
			{0, 400, ms(2.4), ms(2)},
			{ms(1), 1000, ms(3.4), ms(1.4)}, // 1 ms later 1400 bytes are left: fits
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newShaper(tt.dir, 1)
			for i, a := range tt.arrivals {
				got, v := s.admit(t0.Add(a.at), a.size)
				switch {
				case a.want < 0 && v != queueFull:
					t.Errorf("packet %d: verdict %d, want queue drop", i, v)
				case a.want >= 0 && v != deliver:
					t.Errorf("packet %d: verdict %d, want delivered", i, v)
				case a.want >= 0 && got.Sub(t0).Round(time.Microsecond) != a.want:
					t.Errorf("packet %d: arrives at %v, want %v", i, got.Sub(t0), a.want)
				case a.want >= 0 && s.waited.Round(time.Microsecond) != a.wait:
					t.Errorf("packet %d: waited %v in the queue, want %v", i, s.waited, a.wait)
				}
			}
		})
	}
}

// TestShaperLoss checks that random loss drops about the configured
// share (here 10% of 20,000 packets: the bounds are over 10 standard
// deviations away).
func TestShaperLoss(t *testing.T) {
	s := newShaper(Direction{Loss: 0.1}, 7)
	const n = 20000
	lostN := 0
	for i := 0; i < n; i++ {
		if _, v := s.admit(time.Unix(0, 0), 100); v == lost {
			lostN++
		}
	}
	if lostN < n*8/100 || lostN > n*12/100 {
		t.Errorf("lost %d of %d packets, want about 10%%", lostN, n)
	}
}

func TestDefaultQueue(t *testing.T) {
	tests := []struct {
		dir  Direction
		want int
	}{
		{Direction{Rate: 20_000_000, Delay: 20 * time.Millisecond}, 200_000}, // 2 × 20 Mbit/s × 40 ms
		{Direction{Rate: 5_000_000, Delay: 30 * time.Millisecond}, 75_000},
		{Direction{Rate: 1_000_000, Delay: time.Millisecond}, 24 * 1500}, // the floor
	}
	for _, tt := range tests {
		if got := tt.dir.DefaultQueue(); got != tt.want {
			t.Errorf("%+v: DefaultQueue() = %d, want %d", tt.dir, got, tt.want)
		}
	}
}

// TestPipeSet checks that new settings never deliver a packet before
// one admitted under the old ones: the FIFO relies on it.
func TestPipeSet(t *testing.T) {
	p := newPipe(Direction{Rate: 1_000_000, Delay: 100 * time.Millisecond}, 1, "test")
	now := time.Now()
	old, _ := p.sh.admit(now, 1250) // 10 ms to send, then 100 ms
	p.set(Direction{Delay: 5 * time.Millisecond}, 2)
	got, v := p.sh.admit(now, 100)
	if v != deliver || got.Before(old) {
		t.Errorf("after Set a packet arrives at %v (verdict %d), before the one admitted earlier at %v", got.Sub(now), v, old.Sub(now))
	}
	later, _ := p.sh.admit(now.Add(time.Second), 100)
	if want := now.Add(time.Second + 5*time.Millisecond); !later.Equal(want) {
		t.Errorf("a packet a second later arrives at %v, want %v (the new delay)", later.Sub(now), want.Sub(now))
	}
}

func TestParseRate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"20M", 20e6, true},
		{"512k", 512e3, true},
		{"1.5G", 1.5e9, true},
		{"64000", 64000, true},
		{"0", 0, true},
		{"-1M", 0, false},
		{"fast", 0, false},
		{"", 0, false},
	} {
		got, err := ParseRate(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
