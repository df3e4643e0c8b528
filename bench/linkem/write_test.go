package linkem

import (
	"sync"
	"testing"
	"time"
)

// recorder is a receiving end that notes when each packet was written.
type recorder struct {
	mu    sync.Mutex
	got   []byte
	at    []time.Time
	wrote chan struct{}
}

func (r *recorder) Write(b []byte) (int, error) {
	now := time.Now()
	r.mu.Lock()
	r.got = append(r.got, b[0])
	r.at = append(r.at, now)
	r.mu.Unlock()
	r.wrote <- struct{}{}
	return len(b), nil
}

// TestWriteOnTime checks the delivering side of a direction: packets are
// written in their order, none before it is due (also those due within
// the last stretch slept in the kernel, and several due at once), and the
// counters hold at least the lateness the receiving end saw. It asserts
// no upper bound: how late a loaded machine makes them is measured, not
// tested (Stats.Late).
func TestWriteOnTime(t *testing.T) {
	p := newPipe(Direction{}, 1, "test")
	rec := &recorder{wrote: make(chan struct{}, 64)}
	var wg sync.WaitGroup
	wg.Add(1)
	go p.write(&wg, rec)
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			close(p.stop)
			wg.Wait()
		})
	}
	defer stop()
	start := time.Now()
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	due := []time.Duration{-ms(1), 0, ms(0.3), ms(0.3), ms(0.35), ms(1), ms(1.9), ms(2.1), ms(4), ms(4), ms(7.5), ms(30), ms(30.2)}
	for i, d := range due {
		p.q <- packet{data: []byte{byte(i)}, at: start.Add(d)}
	}
	for range due {
		select {
		case <-rec.wrote:
		case <-time.After(10 * time.Second):
			t.Fatal("packets not delivered within 10 s")
		}
	}
	// The writer counts a packet after the receiving end has it: stopped,
	// it has counted them all.
	stop()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var maxLate time.Duration
	for i, d := range due {
		if rec.got[i] != byte(i) {
			t.Fatalf("packet %d written as number %d: want the order they were queued in", rec.got[i], i)
		}
		if early := start.Add(d).Sub(rec.at[i]); early > 0 {
			t.Errorf("packet %d written %v before it was due", i, early)
		}
		maxLate = max(maxLate, rec.at[i].Sub(start.Add(d)))
	}
	st := p.stats()
	if st.Delivered != uint64(len(due)) {
		t.Errorf("Delivered = %d, want %d", st.Delivered, len(due))
	}
	if st.MaxLate < maxLate || st.Late < st.MaxLate {
		t.Errorf("Late %v, MaxLate %v: want MaxLate at least the %v the receiver saw, and Late at least MaxLate", st.Late, st.MaxLate, maxLate)
	}
}
