package rfb

import (
	"time"

	"github.com/assist-project/assist/link"
)

// Adapting to the link.
//
// A viewer across a slow link must not be sent more than the link
// carries: the excess only queues, and every later update, the small
// change the expert waits for included, waits behind it. So each
// connection knows its path when it can (a link.Estimate), and:
//
//   - produces an update only when the path has room (bytes in flight
//     below the window). Until then changes accumulate in the viewer's
//     Subscriber, which coalesces them: the frame rate falls to what the
//     link carries, and the viewer still gets every change, the latest
//     pixels of each area, in the next update;
//   - lowers the JPEG quality the viewer asked for when the link is slow,
//     so that each update costs fewer bytes (never raises it, and never
//     makes a lossless viewer lossy).
//
// Where the estimate comes from: a connection that measures itself (a
// session stream, pacedConn: the multiplexer reads it off its credit), or
// else RFB Fences (congestion.go) for viewers that speak Fence and
// ContinuousUpdates. A loopback viewer without either is not paced.

// pacedConn is a connection that measures its own path and paces what is
// written to it: session.Channel.
type pacedConn interface {
	// LinkEstimate is the path's current estimate.
	LinkEstimate() link.Estimate
	// HasRoom reports whether more may be written now without queueing.
	HasRoom() bool
	// RoomFor reports whether n more bytes (at most half the window:
	// an empty path always has room) may be written now without
	// queueing.
	RoomFor(n int) bool
	// Room is signalled when room may have come back.
	Room() <-chan struct{}
}

// EncAssistPush is a private pseudo-encoding: a viewer that names it gets
// updates without asking, as with ContinuousUpdates, but without the
// extension's messages (EndOfContinuousUpdates). `assist join` adds it to
// the SetEncodings of local viewers that do not enable continuous updates
// themselves (RelayViewer), so that no update waits for a request to
// cross the wide link. Updates then go as fast as the path takes them
// (pacedConn); a connection that cannot pace ignores it.
const EncAssistPush int32 = 0x41535350 // "ASSP"

// qualityFor is the highest JPEG quality level worth sending at a delivery
// rate (bytes per second). The levels are
// the Tight levels of tightJPEGLevels; roughly, each step down saves a
// fifth of the bytes of a photo-like update, and a full-HD screen change
// at the level chosen takes at most about 200 ms to send.
func qualityFor(rate float64) int {
	for _, s := range qualitySteps {
		if rate >= s.rate {
			return s.level
		}
	}
	return 0
}

const mbit = 1e6 / 8

var qualitySteps = []struct {
	rate  float64 // bytes per second
	level int
}{
	{50 * mbit, 9},
	{25 * mbit, 8},
	{12 * mbit, 7},
	{6 * mbit, 6},
	{3 * mbit, 5},
	{1.5 * mbit, 3},
	{0.75 * mbit, 1},
}

// adaptQuality is the JPEG level to use for a viewer that asked for level
// asked (-1: lossless only) on a path of estimate est.
func adaptQuality(asked int, est link.Estimate) int {
	// An unmeasured path (only application-limited samples, as on a
	// fast one, or before the first update filled the window) gets what
	// the viewer asked for: a handshake's few bytes would otherwise make
	// the expert's first picture the blurriest of all.
	if asked < 0 || est.Rate == 0 || !est.Measured {
		return asked
	}
	return min(asked, qualityFor(est.Rate))
}

// estimate is this connection's current estimate of its path, and
// whether it has one.
func (c *conn) estimate() (link.Estimate, bool) {
	if c.paced != nil {
		return c.paced.LinkEstimate(), true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pings.active {
		return c.pings.est.Estimate(time.Now()), true
	}
	return link.Estimate{}, false
}

// room is signalled when a paced connection's room may have come back;
// nil (never) otherwise: fence replies wake the writer through c.wake.
func (c *conn) room() <-chan struct{} {
	if c.paced != nil {
		return c.paced.Room()
	}
	return nil
}

// qualityCap lowers the JPEG level further when updates take too long to
// send on the path: the rate table cannot know the content, and a full
// screen of photo at the table's level can still take half a second at
// 5 Mbit/s, which every later change waits for. Each update that takes
// more than sendBudget to send lowers the cap by one level; after
// raiseAfter without such an update, an update that took less than a third
// of the budget raises it by one. Guarded by the writer (no lock).
type qualityCap struct {
	level   int // 0..9
	changed time.Time
}

const (
	sendBudget = 120 * time.Millisecond
	raiseAfter = time.Second
)

func newQualityCap() qualityCap { return qualityCap{level: 9} }

// observe records an update of n bytes sent at now on a path of
// estimate est.
func (q *qualityCap) observe(n int, est link.Estimate, now time.Time) {
	if est.Rate == 0 || !est.Measured || n == 0 {
		return
	}
	send := time.Duration(float64(n) / est.Rate * float64(time.Second))
	switch {
	case send > sendBudget && q.level > 0:
		q.level--
		q.changed = now
	case send < sendBudget/3 && q.level < 9 && now.Sub(q.changed) >= raiseAfter:
		q.level++
		q.changed = now
	}
}
