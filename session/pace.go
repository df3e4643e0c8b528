package session

import (
	"time"

	"github.com/assist-project/assist/link"
)

// Pacing: no standing queue on the session's path.
//
// Credit alone lets a stream have its peer's whole receive window (256 KiB)
// in flight. On a 5 Mbit/s link that is 400 ms of queue in front of the
// bottleneck (the TLS connection's socket buffer, the SCTP association's
// send queue, the TURN relay, the home router), and every screen update
// waits behind it. So each byte stream also measures its path and keeps
// the bytes in flight near the path's bandwidth-delay product
// (link.Estimator); what does not fit waits in the writer's own buffer,
// where the RFB server has not even produced it yet (it waits for Room).
//
// The measurement needs no new frame: credit is already an
// acknowledgement. A receiver here returns credit for every read of a byte
// stream (eager grants), so the credit a sender holds, subtracted from the
// peer's window, is exactly what is in flight. The sender does not know the
// peer's window, but it is the most credit it ever held: credit comes back
// whole whenever the stream goes idle, and an RFB handshake is idle long
// before the first update. A peer that grants only after half its window
// (older code) would deadlock a sender that waits for credit it never
// gets, so pacing starts only once the peer has shown that it grants
// eagerly: with a grant smaller than half of the smallest window.
const eagerGrant = initialWindow / 2

// pacer paces one byte stream. Guarded by the mux's lock.
type pacer struct {
	est   *link.Estimator
	wmax  int  // the most credit ever held: the peer's window
	eager bool // the peer grants as it reads: pacing is on
	// room is signalled whenever credit comes back (Channel.Room).
	room chan struct{}
	// maxInFlight is the most bytes in flight once pacing was on.
	maxInFlight int
}

func newPacer() *pacer {
	return &pacer{est: link.NewWithFloor(windowFloor), wmax: initialWindow, room: make(chan struct{}, 1)}
}

// sent records n bytes put in a batch; idle says nothing more is queued.
func (p *pacer) sent(n int, now time.Time, idle bool) {
	p.est.Sent(n, now, idle)
	if p.eager {
		p.maxInFlight = max(p.maxInFlight, p.est.InFlight())
	}
}

// granted records a window update of v bytes, after which the sender holds
// swin bytes of credit and has sent sent bytes in all.
func (p *pacer) granted(v, swin int, sent uint64, now time.Time) {
	if swin > p.wmax {
		p.wmax = swin // the rest of the peer's window, or an idle stream
	} else if v < eagerGrant {
		p.eager = true
	}
	inFlight := uint64(max(p.wmax-swin, 0))
	if inFlight <= sent {
		p.est.Acked(sent-inFlight, now)
	}
	select {
	case p.room <- struct{}{}:
	default:
	}
}

// allowance is how many more bytes pacing lets go now. Never more than the
// window: a whole chunk past it would queue 26 ms at 5 Mbit/s.
func (p *pacer) allowance(now time.Time) int {
	if !p.eager {
		return maxCredit
	}
	return max(p.est.Window(now)-p.est.InFlight(), 0)
}

// Chunks of a paced stream. Each chunk the mux puts on a path stands in
// front of whatever comes after it, and the window counts one chunk more
// than the bandwidth-delay product (link.Estimator), so at 5 Mbit/s a
// 16 KiB chunk means 26 ms of queue for the small change behind it. A
// paced stream therefore sends chunks of about chunkTime of the path's
// rate, at least minChunk: what one TCP segment carries with the mux's
// and TLS's headers, 2 ms at 5 Mbit/s. (4 KiB, 6.5 ms there, was most of
// what a small change during a video waited for besides the delay; 2 KiB
// left the bottleneck's queue at 6.4 ms on average during the video, and
// 1280 bytes at 5.1 ms, with as many frames shown: README.)
const (
	chunkTime = 2 * time.Millisecond
	minChunk  = 1280
)

// windowFloor is the smallest window of a paced stream. On a path whose
// bandwidth-delay product is smaller, the rest of the floor is standing
// queue: link.MinWindow's 32 KiB, made for 16 KiB chunks, was 200 ms of it
// at 1 Mbit/s 50 ms (a DSL line's upload), and a small change during video
// took 252 ms there instead of 42. A floor of about the product itself
// left the path underused (5 KiB: 105-114 of 125 KB/s, the estimate down
// to 75-96 KB/s), since the window then has no slack for acknowledgements
// that come late; 12 KiB kept 47 ms of queue (README).
const windowFloor = 8 << 10

// chunk is the largest chunk to send now: displayChunk until the path's
// rate is known.
func (p *pacer) chunk(now time.Time) int {
	rate := p.est.Rate(now)
	if !p.eager || rate == 0 {
		return displayChunk
	}
	return min(displayChunk, max(minChunk, int(rate*chunkTime.Seconds())))
}

// roomFor reports whether pacing lets n more bytes go at now without
// passing the window; n counts as at most half the window, so that a path
// with nothing in flight always has room, and as at least one byte.
func (p *pacer) roomFor(n int, now time.Time) bool {
	if !p.eager {
		return true
	}
	w := p.est.Window(now)
	return w-p.est.InFlight() >= max(1, min(n, w/2))
}

// open reports whether pacing lets more bytes go now.
func (p *pacer) open(now time.Time) bool { return p.allowance(now) > 0 }

// LinkStats is what a byte stream knows about its path.
type LinkStats struct {
	link.Estimate
	// Paced is true once the peer has shown that it returns credit as it
	// reads, so that Window bounds InFlight.
	Paced bool
	// MaxInFlight is the most bytes in flight seen while paced.
	MaxInFlight int
	// Queued is the number of bytes the writer has handed over that are
	// still waiting for room (the mux's own queue for the stream).
	Queued int
}

// LinkEstimate is the stream's estimate of its path: round-trip time,
// delivery rate, the window of bytes in flight and how full it is. Message
// channels have none (the zero LinkEstimate).
func (ch *Channel) LinkEstimate() link.Estimate {
	return ch.LinkStats().Estimate
}

// LinkStats is LinkEstimate with the pacing's own counters.
func (ch *Channel) LinkStats() LinkStats {
	ch.m.mu.Lock()
	defer ch.m.mu.Unlock()
	if ch.pace == nil {
		return LinkStats{}
	}
	return LinkStats{Estimate: ch.pace.est.Estimate(time.Now()), Paced: ch.pace.eager,
		MaxInFlight: ch.pace.maxInFlight, Queued: len(ch.pending)}
}

// HasRoom reports whether the stream may put more bytes on its path now:
// always for a stream that is not paced (yet), and for a paced one while
// its bytes in flight are below its window. Message channels always have
// room.
func (ch *Channel) HasRoom() bool {
	ch.m.mu.Lock()
	defer ch.m.mu.Unlock()
	return ch.pace == nil || ch.pace.open(time.Now())
}

// RoomFor reports whether n more bytes fit in the stream's window now,
// with n taken as at most half the window, so that a path with nothing in
// flight always has room: always for a stream that is not paced (yet).
// Message channels always have room.
func (ch *Channel) RoomFor(n int) bool {
	ch.m.mu.Lock()
	defer ch.m.mu.Unlock()
	return ch.pace == nil || ch.pace.roomFor(n, time.Now())
}

// Room is signalled whenever the peer returns credit, so that a writer
// waiting for room in the window (LinkEstimate's InFlight below Window)
// knows when to look again. Message channels return nil.
func (ch *Channel) Room() <-chan struct{} {
	if ch.pace == nil {
		return nil
	}
	return ch.pace.room
}

// Background streams. A file sent from the novice shares the link with
// the screen, and each stream paces itself on what it measures: the file's
// stream, whose bytes never stop, took 83% of a 5 Mbit/s link from a
// video, whose estimate fell to 0.9 Mbit/s (its quality and frame rate
// with it), and the two windows together kept 26 KB in the router's
// queue. So while a foreground stream fills its window, a background one
// (ChannelFiles) keeps at most a quarter of that stream's
// bandwidth-delay product in flight: the file still moves, at about a
// fifth of the link, and the screen gets the rest. Once no foreground
// stream has filled its window for backgroundHold, the file has its own
// window again: an expert typing, or a still screen, leaves it the link.
const backgroundHold = 250 * time.Millisecond

// noteForegroundLocked records a send of foreground stream p at now.
func (m *Mux) noteForegroundLocked(p *pacer, now time.Time) {
	if !p.eager || p.est.Room(now) {
		return
	}
	e := p.est.Estimate(now)
	m.busy, m.busyBDP = now, e.Rate*e.RTT.Seconds()
}

// backgroundAllowanceLocked is how many more bytes background stream p may
// send at now, beyond its own pacing.
func (m *Mux) backgroundAllowanceLocked(p *pacer, now time.Time) int {
	if m.busy.IsZero() || now.Sub(m.busy) > backgroundHold {
		return maxCredit
	}
	return max(max(minChunk, int(m.busyBDP/4))-p.est.InFlight(), 0)
}
