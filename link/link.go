// Package link estimates a network path from the acknowledgements a sender
// gets back: its round-trip time, its delivery rate, and from them the
// window of bytes a sender may have in flight so that the path stays full
// without a standing queue in front of its bottleneck.
//
// The estimator learns from two calls: Sent, for every piece of data put on
// the path, and Acked, with the total number of bytes the receiver has
// confirmed. What confirms delivery is the caller's business: a window
// update of the session multiplexer, or an RFB Fence reply. Time is always
// passed in, never read from a clock, so the estimator is deterministic and
// its tests need no sleeps.
//
// The model is BBR's, reduced to what an application above TCP or SCTP can
// observe: the delivery rate of an acknowledgement is the bytes delivered
// between sending a piece and its acknowledgement, divided by the time in
// between; the bottleneck rate is the largest recent such rate among
// samples that were not limited by the application having nothing to send
// (recent: 3 s, or ten round trips while a queue stands, for the path has
// slowed down); the path's floor is the smallest recent round-trip time. Their product is
// the bandwidth-delay product, and the window is 1.25 times it (plus the
// largest piece the sender sends, whose time on the wire the round trips
// of small pieces do not show): a queue of
// at most a quarter of the product builds up at the bottleneck, and a
// sender held back by the window still sees its rate samples, and so its
// window, grow by a quarter per round trip when the path has more to give.
// BBR's start-up (twice the product while the rate grows) finds a fast
// path sooner but queues a whole product for a second; a screen's first
// updates are the ones the expert waits for, so this estimator does not.
package link

import (
	"time"
)

// Tuning. The window's floor keeps a path that has gone quiet usable at
// once; its ceiling bounds what any one stream may queue anywhere.
const (
	// MinWindow is the smallest window of an estimator made by New: two
	// 16 KiB pieces. A sender whose pieces are smaller sets its own floor
	// (NewWithFloor): above the bandwidth-delay product every byte of the
	// floor is queue, 200 ms of it for 32 KiB at 1 Mbit/s.
	MinWindow = 32 << 10
	// InitialWindow is the window before any acknowledgement.
	InitialWindow = 64 << 10
	// MaxWindow is the largest window.
	MaxWindow = 8 << 20
	// gain multiplies the bandwidth-delay product while probing for
	// more rate, one round trip in cycleLen; the others keep the product
	// itself (BBR's ProbeBW cycle, without its drain phase: a window that
	// falls back to the product stops the sender until the probe's queue
	// has drained, and a window below it would only make a burst when it
	// comes back).
	gain     = 1.25
	cycleLen = 8
	// A delivery-rate sample counts for the maximum during maxRateWindow,
	// so that a sender whose bursts leave the path idle in between (an
	// expert's screen changes now and then) keeps the rate its fuller
	// moments showed. But a path that slows down would keep the window
	// of the faster one, and its queue, that long: 3 s of 120 ms from 20
	// to 5 Mbit/s at 40 ms. So while round trips show a standing queue
	// (the smallest of the last shortRounds is well above the path's
	// floor, which the cycle's round trips at the product itself would
	// have brought down to it), a sample counts for shortRounds round
	// trips only: the probing cycle and two more, as BBR's ten, within
	// minShortWindow and maxRateWindow.
	maxRateWindow  = 3 * time.Second
	shortRounds    = cycleLen + 2
	minShortWindow = 250 * time.Millisecond
	// standingQueue is how far above the path's floor the smallest recent
	// round trip must be to show a standing queue: a quarter of the
	// floor, and at least minStanding.
	standingQueue = 0.25
	minStanding   = 5 * time.Millisecond
	// minRTTWindow is how long the smallest round trip counts.
	minRTTWindow = 10 * time.Second
	// maxMarks bounds the send log: older pieces are merged.
	maxMarks = 1024
)

// mark is one piece of data sent: where it ends in the byte stream, when it
// went, and what had been delivered by then (for its rate sample).
type mark struct {
	end        uint64
	at         time.Time
	delivered  uint64
	deliveredT time.Time
	// firstSent is when the newest piece acknowledged by then was sent:
	// bytes acknowledged in a burst cannot have crossed the path faster
	// than they were sent (BBR's send_elapsed).
	firstSent  time.Time
	appLimited bool
}

type rttSample struct {
	rtt time.Duration
	at  time.Time
}

type rateSample struct {
	rate float64 // bytes per second
	at   time.Time
}

// Estimator follows one sender's path. Its zero value is not ready: use
// New. It is not safe for concurrent use; the caller holds its own lock.
type Estimator struct {
	sent, acked uint64
	piece       int       // the largest piece sent recently
	pieceAt     time.Time // when piece was sent
	marks       []mark
	deliveredT  time.Time // when acked last grew
	ackedSent   time.Time // when the newest acknowledged piece was sent

	minRTT   time.Duration
	minRTTAt time.Time
	srtt     time.Duration
	lastRTT  time.Duration
	rates    []rateSample // decreasing rates, increasing times (a max filter)
	measured bool         // a sample not limited by the application came
	floor    int          // the smallest window
	// recent holds increasing round trips at increasing times: a min
	// filter over the last shortWindow (queueStands).
	recent []rttSample
	// firstFlight says nothing was acknowledged since the path was last
	// idle: a piece sent now measures, over its round trip, only what was
	// sent since the pause, not the path (Linux marks these app-limited).
	firstFlight bool
}

// New returns an estimator that knows nothing yet, whose window is never
// below MinWindow.
func New() *Estimator {
	return NewWithFloor(MinWindow)
}

// NewWithFloor is New with a window never below floor bytes (at least
// one). The floor should hold a few of the sender's pieces, so that a path
// slower than the floor still has a piece in flight while the previous
// one's acknowledgement comes back.
func NewWithFloor(floor int) *Estimator {
	return &Estimator{floor: max(floor, 1)}
}

// Estimate is a snapshot of what the estimator knows.
type Estimate struct {
	// RTT is the smallest recent round-trip time (the path's floor), SRTT
	// the smoothed latest ones; zero before the first sample.
	RTT, SRTT time.Duration
	// Rate is the bottleneck's estimated delivery rate in bytes per
	// second; zero before the first sample.
	Rate float64
	// Window is the number of bytes the sender may have in flight.
	Window int
	// InFlight is the number of bytes sent and not yet acknowledged.
	InFlight int
	// Sent and Acked count bytes since the start.
	Sent, Acked uint64
	// Measured says a rate sample came from data that the path, not the
	// sender having nothing more, held back. Until then Rate only shows
	// what the application offered (a handshake's few bytes): a floor of
	// the path's rate, not a measure of it, so nothing should be made
	// smaller or slower because of it.
	Measured bool
}

// Sent records n bytes put on the path at time at. appLimited says the
// sender had nothing more to send after them while it had room in the
// window: rate samples of such pieces only show what the application
// offered, so they may raise the rate estimate but never lower it. So do
// the samples of pieces sent with fewer bytes in flight than the
// estimated bandwidth-delay product, and of pieces sent after the path
// was idle before anything sent since is acknowledged: these measure
// what was sent over a round trip, not the path, and a sender whose
// changes come in bursts would otherwise have its estimate fall to the
// size of its bursts (3.4 Mbit/s on a 20 Mbit/s path for bursts of 20 KB).
func (e *Estimator) Sent(n int, at time.Time, appLimited bool) {
	if n <= 0 {
		return
	}
	if e.deliveredT.IsZero() || e.sent == e.acked {
		// An idle path: the delivery clock starts now, or the gap
		// before this piece would count as slowness of the path.
		e.deliveredT = at
		e.ackedSent = at
		e.firstFlight = true
	}
	e.sent += uint64(n)
	// The largest recent piece: a sender that has gone over to smaller
	// pieces (once it knows the path is slow) has its window shrink with
	// them after the rate samples of the larger ones have gone.
	if n >= e.piece || at.Sub(e.pieceAt) > e.rateWindow(at) {
		e.piece, e.pieceAt = n, at
	}
	if len(e.marks) == maxMarks {
		// Merge the two oldest: the sample is taken at the later end.
		e.marks[1].at, e.marks[1].delivered, e.marks[1].deliveredT, e.marks[1].firstSent = e.marks[0].at, e.marks[0].delivered, e.marks[0].deliveredT, e.marks[0].firstSent
		e.marks = e.marks[1:]
	}
	e.marks = append(e.marks, mark{end: e.sent, at: at, delivered: e.acked, deliveredT: e.deliveredT, firstSent: e.ackedSent, appLimited: appLimited || e.firstFlight || e.pipeShort(at)})
}

// Acked records that the receiver has confirmed total bytes in all, at time
// at. Totals that do not advance are ignored, and a total beyond what was
// sent is taken as everything sent.
func (e *Estimator) Acked(total uint64, at time.Time) {
	total = min(total, e.sent)
	if total <= e.acked {
		return
	}
	e.acked = total
	e.deliveredT = at
	e.firstFlight = false
	// The newest piece now wholly acknowledged gives the samples.
	i := 0
	for i < len(e.marks) && e.marks[i].end <= total {
		i++
	}
	if i == 0 {
		return
	}
	m := e.marks[i-1]
	e.marks = e.marks[i:]
	if len(e.marks) == 0 {
		e.marks = e.marks[:0:0]
	}
	e.ackedSent = m.at
	e.rttSample(at.Sub(m.at), at)
	if dt := max(at.Sub(m.deliveredT), m.at.Sub(m.firstSent)); dt > 0 {
		rate := float64(total-m.delivered) / dt.Seconds()
		if !m.appLimited || rate >= e.Rate(at) {
			e.rateSample(rate, at)
		}
		if !m.appLimited {
			e.measured = true
		}
	}
}

func (e *Estimator) rttSample(rtt time.Duration, at time.Time) {
	if rtt <= 0 {
		rtt = time.Microsecond
	}
	e.lastRTT = rtt
	if e.srtt == 0 {
		e.srtt = rtt
	} else {
		e.srtt = (7*e.srtt + rtt) / 8
	}
	if e.minRTT == 0 || rtt <= e.minRTT || at.Sub(e.minRTTAt) > minRTTWindow {
		e.minRTT, e.minRTTAt = rtt, at
	}
	for len(e.recent) > 0 && e.recent[len(e.recent)-1].rtt >= rtt {
		e.recent = e.recent[:len(e.recent)-1]
	}
	e.recent = append(e.recent, rttSample{rtt: rtt, at: at})
	e.expireRecent(at)
}

// shortWindow is shortRounds round trips, within minShortWindow and
// maxRateWindow.
func (e *Estimator) shortWindow() time.Duration {
	return min(max(shortRounds*e.minRTT, minShortWindow), maxRateWindow)
}

func (e *Estimator) expireRecent(at time.Time) {
	// An idle path shows no queue: its last samples may come from the
	// end of a burst.
	w := e.shortWindow()
	for len(e.recent) > 0 && at.Sub(e.recent[0].at) > w {
		e.recent = e.recent[1:]
	}
}

// queueStands reports whether there were round trips in the last
// shortWindow and all stayed well above the path's floor.
func (e *Estimator) queueStands(at time.Time) bool {
	e.expireRecent(at)
	if len(e.recent) == 0 {
		return false
	}
	margin := max(time.Duration(standingQueue*float64(e.minRTT)), minStanding)
	return e.recent[0].rtt > e.minRTT+margin
}

// rateSample adds a sample to the max filter: samples older than
// rateWindow, and samples no larger than a newer one, drop out.
func (e *Estimator) rateSample(rate float64, at time.Time) {
	for len(e.rates) > 0 && e.rates[len(e.rates)-1].rate <= rate {
		e.rates = e.rates[:len(e.rates)-1]
	}
	e.rates = append(e.rates, rateSample{rate: rate, at: at})
	e.expireRates(at)
}

// pipeShort reports whether the bytes in flight are fewer than the path's
// estimated bandwidth-delay product.
func (e *Estimator) pipeShort(at time.Time) bool {
	return float64(e.InFlight()) < e.Rate(at)*e.minRTT.Seconds()
}

// rateWindow is how long a rate sample counts at time at: shortWindow
// while a queue stands, else maxRateWindow.
func (e *Estimator) rateWindow(at time.Time) time.Duration {
	if e.queueStands(at) {
		return e.shortWindow()
	}
	return maxRateWindow
}

func (e *Estimator) expireRates(at time.Time) {
	// Keep at least the newest sample: an idle path keeps its estimate.
	w := e.rateWindow(at)
	for len(e.rates) > 1 && at.Sub(e.rates[0].at) > w {
		e.rates = e.rates[1:]
	}
}

// Rate is the bottleneck's estimated rate at time at, in bytes per second.
func (e *Estimator) Rate(at time.Time) float64 {
	e.expireRates(at)
	if len(e.rates) == 0 {
		return 0
	}
	return e.rates[0].rate
}

// InFlight is the number of bytes sent and not yet acknowledged.
func (e *Estimator) InFlight() int { return int(e.sent - e.acked) }

// Window is the number of bytes the sender may have in flight at time at.
func (e *Estimator) Window(at time.Time) int {
	rate := e.Rate(at)
	if rate == 0 || e.minRTT == 0 {
		return InitialWindow
	}
	// One piece more: the round trips measured are those of whole
	// pieces, which a slow path takes a while to send, so without it
	// the window would shrink below what fills the path.
	w := e.gainAt(at)*rate*e.minRTT.Seconds() + float64(e.piece)
	return int(min(max(w, float64(e.floor)), MaxWindow))
}

// gainAt is the window's gain at time at: one round trip in cycleLen
// probes with gain (the rate samples then show whether the path has more
// to give), and the rest keep the bytes in flight at the bandwidth-delay
// product, so that a piece sent then (the small change an expert waits
// for) finds no standing queue in front of the bottleneck. The phase
// follows the clock in round trips, so it needs no state.
func (e *Estimator) gainAt(at time.Time) float64 {
	if at.UnixNano()/int64(e.minRTT)%cycleLen == 0 {
		return gain
	}
	return 1
}

// Room reports whether the sender may put more on the path at time at.
func (e *Estimator) Room(at time.Time) bool { return e.InFlight() < e.Window(at) }

// Estimate returns a snapshot at time at.
func (e *Estimator) Estimate(at time.Time) Estimate {
	return Estimate{RTT: e.minRTT, SRTT: e.srtt, Rate: e.Rate(at), Window: e.Window(at),
		InFlight: e.InFlight(), Sent: e.sent, Acked: e.acked, Measured: e.measured}
}
