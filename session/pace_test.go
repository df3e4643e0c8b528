package session

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
)

// A flood on a stream across a slow link builds no standing queue at the
// bottleneck: the stream keeps its bytes in flight near the path's
// bandwidth-delay product, where credit alone would let the peer's whole
// 256 KiB window queue up (400 ms at 5 Mbit/s). Control messages sent
// during the flood therefore wait behind at most that much.
func TestMuxPacingNoStandingQueue(t *testing.T) {
	for _, tc := range []struct {
		mbits float64
		rtt   time.Duration
		size  int
		chunk int // the chunks the stream sends once its rate is known
	}{
		{5, 60 * time.Millisecond, 1 << 20, displayChunk},
		{10, 40 * time.Millisecond, 2 << 20, displayChunk},
		// A DSL line's upload: the bandwidth-delay product (6,250
		// bytes) is below link.MinWindow (32 KiB, 26 KiB of queue
		// here), so only the stream's own floor (windowFloor) keeps
		// the queue short.
		{1, 50 * time.Millisecond, 256 << 10, minChunk},
	} {
		t.Run(fmt.Sprintf("%gMbit-%v", tc.mbits, tc.rtt), func(t *testing.T) {
			l, a, b := lab.NewSlowLink(t, tc.mbits, tc.rtt)
			st, ns := pacedStreams(t, a, b)
			go func() {
				data := pattern(tc.size)
				for len(data) > 0 {
					n := min(len(data), 100<<10) // updates of 100 KiB
					if _, err := ns.Write(data[:n]); err != nil {
						return
					}
					data = data[n:]
				}
			}()
			// Once the estimate has settled, at most a quarter of the
			// BDP and a chunk or two queue up (link.Estimator); the
			// bounds below allow twice that for the timing noise of a
			// shared machine, and the first window's worth before.
			// Credit alone queues the peer's window (256 KiB) less the
			// BDP: 190-200 KiB here. The BDP counts the time to send a chunk: the
			// round trips measured are those of whole chunks.
			if _, err := io.CopyN(io.Discard, st, int64(tc.size/3)); err != nil {
				t.Fatal(err)
			}
			first := l.ResetMax(1)
			t.Logf("after a third: %+v", ns.LinkStats())
			if _, err := io.CopyN(io.Discard, st, int64(tc.size-tc.size/3)); err != nil {
				t.Fatal(err)
			}
			ls := ns.LinkStats()
			rate := tc.mbits * 1e6 / 8
			bdp := rate*tc.rtt.Seconds() + float64(tc.chunk)
			t.Logf("link %+v, bottleneck queue at most %d bytes in the first third, %d after (BDP %.0f)", ls, first, l.MaxQueue(1), bdp)
			if !ls.Paced {
				t.Fatal("the stream was never paced: the expert's side did not return credit as it read")
			}
			// In flight: at most the window, 1.25 BDP and a chunk.
			if ls.MaxInFlight > max(64<<10, int(1.5*bdp))+3*displayChunk {
				t.Errorf("up to %d bytes in flight, want about the BDP (%.0f)", ls.MaxInFlight, bdp)
			}
			if first > 64<<10+int(bdp/2)+2*displayChunk {
				t.Errorf("up to %d bytes queued at the bottleneck in the first round trips, want at most about the first window (64 KiB)", first)
			}
			// A quarter BDP is the aim; a loaded CI machine delays the
			// emulated link's own goroutines, so the bound is a BDP,
			// still half of what credit alone queues (190-200 KiB).
			if q := l.MaxQueue(1); q > int(bdp)+3*tc.chunk {
				t.Errorf("up to %d bytes queued at the bottleneck once settled, want at most about a quarter BDP (%.0f) and a few chunks", q, bdp)
			}
			if ls.Rate > 1.3*rate || ls.Rate == 0 {
				t.Errorf("estimated rate %.0f B/s on a %.0f B/s link", ls.Rate, rate)
			}
			if ls.RTT < tc.rtt {
				t.Errorf("estimated RTT %v below the link's %v", ls.RTT, tc.rtt)
			}
		})
	}
}

// pacedStreams opens a stream of a mux pair across a and b and goes
// through an RFB handshake's exchanges on it, so that the novice's side
// (ns, the second) has learnt that the expert's (st) grants credit as it
// reads, and paces what it writes.
func pacedStreams(t *testing.T, a, b net.Conn) (st, ns *Channel) {
	t.Helper()
	expert, novice := muxPair(t, a, b, MuxOptions{Opener: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := expert.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The RFB handshake's first exchange: the novice speaks first.
	if _, err := st.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	ns, err = novice.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	hello := make([]byte, 5)
	if _, err := io.ReadFull(ns, hello); err != nil {
		t.Fatal(err)
	}
	pass(t, ns, st, "ready")
	// As in RFB, the sender hears from its peer once more before the
	// flood (ClientInit): by then the peer's credit for what it read
	// has arrived, and shown that it grants eagerly.
	pass(t, st, ns, "go")
	return st, ns
}

// pass writes msg on from and reads it on to.
func pass(t *testing.T, from, to *Channel, msg string) {
	t.Helper()
	if _, err := from.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(to, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("read %q, want %q", got, msg)
	}
}

// flood writes updates of 100 KiB on w until done or stop closes (a nil
// stop never does) or a write fails.
func flood(w io.Writer, done, stop <-chan struct{}) {
	data := pattern(100 << 10)
	for {
		select {
		case <-done:
			return
		case <-stop:
			return
		default:
		}
		if _, err := w.Write(data); err != nil {
			return
		}
	}
}

// A link that slows down (someone else at home starts an upload, a laptop
// moves away from its access point): within a second the stream's window
// is the slower link's, and so is the bottleneck's queue. Before, the
// faster link's rate samples counted for 3 s, and so did its window: at
// 10 to 2.5 Mbit/s, 150 ms of queue.
func TestMuxPacingFollowsSlowerLink(t *testing.T) {
	const (
		from, to = 10, 2.5 // Mbit/s
		rtt      = 40 * time.Millisecond
	)
	l, a, b := lab.NewSlowLink(t, from, rtt)
	st, ns := pacedStreams(t, a, b)
	done := make(chan struct{})
	defer close(done)
	go flood(ns, done, nil)
	read := func(d time.Duration, mbits float64) {
		t.Helper()
		if _, err := io.CopyN(io.Discard, st, int64(d.Seconds()*mbits*1e6/8)); err != nil {
			t.Fatal(err)
		}
	}
	read(2*time.Second, from) // settled
	before := ns.LinkStats()
	l.SetRate(to)
	read(time.Second, to)
	l.ResetMax(1)
	read(time.Second, to)
	ls := ns.LinkStats()
	rate := to * 1e6 / 8
	bdp := rate*rtt.Seconds() + minChunk
	t.Logf("before: %+v; a second after the link slowed: %+v, bottleneck queue at most %d bytes since (BDP %.0f)", before.Estimate, ls.Estimate, l.MaxQueue(1), bdp)
	if ls.Rate > 1.3*rate {
		t.Errorf("estimated rate %.0f B/s a second after the link slowed to %.0f B/s", ls.Rate, rate)
	}
	// As in TestMuxPacingNoStandingQueue: a quarter BDP is the aim, a BDP
	// and a few chunks the bound on a loaded machine. The faster link's
	// window would leave about 45 KB.
	if q := l.MaxQueue(1); q > int(bdp)+3*minChunk {
		t.Errorf("up to %d bytes queued at the bottleneck a second after the link slowed, want at most about a quarter BDP (%.0f) and a few chunks", q, bdp)
	}
}

// A file sent from the novice while the screen keeps changing yields to
// it: the screen keeps most of the link and the file still moves. Paced
// alike, the file's stream took 83% of the link and the screen's estimate
// fell to 0.9 of 5 Mbit/s.
func TestMuxFilesYieldToDisplay(t *testing.T) {
	const (
		mbits = 5
		rtt   = 60 * time.Millisecond
	)
	l, a, b := lab.NewSlowLink(t, mbits, rtt)
	st, ns := pacedStreams(t, a, b)
	nf, ef := ns.m.Channel(ChannelFiles), st.m.Channel(ChannelFiles)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		// The writers may wait for credit: closing their streams ends
		// them.
		close(done)
		for _, ch := range []*Channel{ns, nf, st, ef} {
			ch.Close()
		}
		wg.Wait()
	}()
	stopScreen := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		flood(ns, done, stopScreen)
	}()
	if _, err := io.CopyN(io.Discard, st, 400<<10); err != nil {
		t.Fatal(err)
	}
	// The file: offered, accepted (the receiver's answer also grants
	// the channel's full window, as in package filetransfer), then sent
	// without pause.
	pass(t, nf, ef, "offer")
	pass(t, ef, nf, "yes")
	wg.Add(2)
	go func() {
		defer wg.Done()
		flood(nf, done, nil)
	}()
	var fileBytes atomic.Int64
	go func() {
		defer wg.Done()
		b := make([]byte, 32<<10)
		for {
			n, err := ef.Read(b)
			fileBytes.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	// Both settle, then a measured stretch.
	if _, err := io.CopyN(io.Discard, st, 200<<10); err != nil {
		t.Fatal(err)
	}
	l.ResetMax(1)
	start, file0 := time.Now(), fileBytes.Load()
	const measured = 500 << 10
	if _, err := io.CopyN(io.Discard, st, measured); err != nil {
		t.Fatal(err)
	}
	secs := time.Since(start).Seconds()
	rate := mbits * 1e6 / 8
	screen, file := measured/secs, float64(fileBytes.Load()-file0)/secs
	bdp := rate*rtt.Seconds() + minChunk
	t.Logf("screen %.0f B/s, file %.0f B/s of %.0f; bottleneck queue at most %d bytes; screen %+v, file %+v",
		screen, file, rate, l.MaxQueue(1), ns.LinkStats().Estimate, nf.LinkStats().Estimate)
	// Shares, not rates: a loaded machine slows the emulated link for
	// both. Paced alike, the screen had 24% of what the two moved.
	if share := screen / (screen + file); share < 0.7 {
		t.Errorf("the screen's stream moved %.0f B/s beside a file's %.0f: %.0f%% of the two, want at least 70%%", screen, file, 100*share)
	}
	if share := file / (screen + file); share < 0.05 {
		t.Errorf("the file moved %.0f B/s beside the screen's %.0f: %.1f%% of the two, want at least 5%%", file, screen, 100*share)
	}
	if q := l.MaxQueue(1); q > int(bdp)+3*minChunk {
		t.Errorf("up to %d bytes queued at the bottleneck, want at most about a quarter BDP (%.0f) and a few chunks", q, bdp)
	}

	// The screen goes still: the file has the link again.
	close(stopScreen)
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(io.Discard, st)
	}()
	// The hold is a time, not an event: wait it out, then measure the
	// file's rate over a second.
	time.Sleep(backgroundHold + 2*rtt)
	start, file0 = time.Now(), fileBytes.Load()
	time.Sleep(time.Second)
	alone := float64(fileBytes.Load()-file0) / time.Since(start).Seconds()
	t.Logf("the file alone: %.0f B/s, %+v", alone, nf.LinkStats().Estimate)
	if alone < 2*file {
		t.Errorf("the file moved %.0f B/s once the screen was still, %.0f beside it: want at least twice as fast", alone, file)
	}
}

// A paced stream sends chunks of about 2 ms of its path's rate, so the
// chunk in front of a small message (and the chunk the window counts
// beyond the bandwidth-delay product) is short on a slow path.
func TestPacerChunk(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name  string
		eager bool
		mbits float64 // 0: no rate sample yet
		want  int
	}{
		{"not paced yet", false, 5, displayChunk},
		{"no rate yet", true, 0, displayChunk},
		{"5 Mbit/s: the smallest chunk, 2 ms of it", true, 5, 1280},
		{"2 Mbit/s: the smallest chunk, 5 ms of it", true, 2, 1280},
		{"20 Mbit/s: 2 ms of it", true, 20, 5000},
		{"1 Gbit/s: the largest chunk", true, 1000, displayChunk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPacer()
			p.eager = tc.eager
			if tc.mbits > 0 {
				// One piece acknowledged after 10 ms at the rate.
				n := int(tc.mbits * 1e6 / 8 / 100)
				p.est.Sent(n, t0, false)
				p.est.Acked(uint64(n), t0.Add(10*time.Millisecond))
			}
			if got := p.chunk(t0.Add(10 * time.Millisecond)); got != tc.want {
				t.Errorf("chunk = %d, want %d", got, tc.want)
			}
		})
	}
}

// RoomFor tells a writer whether a piece of a given size fits in the
// window now (rfb waits for room before each slice of an update).
func TestPacerRoomFor(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name  string
		eager bool
		room  int // the window less the bytes in flight; -1: nothing in flight
		n     int
		want  bool
	}{
		{"not paced: always", false, 0, 1 << 20, true},
		{"nothing in flight", true, -1, 4000, true},
		{"nothing in flight, a piece larger than the window", true, -1, 1 << 20, true},
		{"fits", true, 5000, 4000, true},
		{"fits exactly", true, 4000, 4000, true},
		{"does not fit", true, 3999, 4000, false},
		{"full: not even a byte", true, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPacer()
			p.eager = tc.eager
			// A path of 5 Mbit/s and 60 ms: a 6,250-byte piece
			// acknowledged after 70 ms.
			p.est.Sent(6250, t0, false)
			p.est.Acked(6250, t0.Add(70*time.Millisecond))
			t1 := t0.Add(time.Second)
			w := p.est.Window(t1)
			if tc.room >= 0 {
				// In pieces no larger than the first, which the window
				// counts once.
				for left := w - tc.room; left > 0; left -= 1000 {
					p.est.Sent(min(left, 1000), t1, false)
				}
			}
			if got := p.roomFor(tc.n, t1); got != tc.want {
				t.Errorf("roomFor(%d) with %d in flight of a window of %d = %v, want %v", tc.n, p.est.InFlight(), w, got, tc.want)
			}
		})
	}
}
