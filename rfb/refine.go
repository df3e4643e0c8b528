package rfb

import (
	"bytes"
	"image"
	"sync/atomic"
	"time"
)

// Lossless refinement: areas a viewer got as JPEG are sent again with a
// lossless encoding once they have been still for refineDelay, so a still
// screen ends up exact at the viewer (TigerVNC does the same). The
// subscriber (shadow/refine.go) knows which cells the viewer holds lossy
// and since when; the connection decides when to refine and how much.
//
// Refinement has the lowest priority. It never goes while copies are
// pending, never includes a cell with a change pending, and rides in an
// update only in the room real changes leave under refineBudget: in the
// pull model an update that carries only refinement answers a request
// nothing else wanted, and with continuous updates at most
// refineInFlight refinements are on their way (a Fence follows each; its
// answer allows another). A cell that changes again is sent again as
// usual, which restarts its wait; so an area that keeps changing is never
// refined.
//
// Measured with BenchmarkRefineLink (a 640x480 photo, JPEG quality 8: 43
// KB of JPEG, then 428 KB of refinement): exact 0.56 s after the change
// at 20 Mbit/s and 40 ms with continuous updates, 0.8 s in the pull
// model; 1.0 s and 1.6 s at 5 Mbit/s and 60 ms, where sending the
// refinement alone takes 0.7 s.

const (
	// refineDelay is how long an area must stay unchanged before it is
	// refined. Longer than the gap between frames of anything animating
	// at 5 frames a second or more (video, smooth scrolling, spinners),
	// so those are not refined between frames only to change again, at
	// several times the bytes of their JPEG; short enough to leave most
	// of a second for the lossless bytes themselves (TigerVNC waits 50
	// ms, which refines a video whenever it drops a frame).
	refineDelay = 200 * time.Millisecond
	// refineBudget bounds the bytes of an update that refinement may
	// fill (real changes in the same update count against it). A change
	// that comes while a refinement is on the wire waits for it: 64 KiB
	// is 26 ms at 20 Mbit/s and 105 ms at 5 Mbit/s, and large enough
	// that a round trip per refinement still refines a 640x480 photo
	// within about a second at 20 Mbit/s and 40 ms. A link estimate
	// could set it to about 50 ms of the link's throughput instead.
	refineBudget = 64 << 10
	// refineInFlight is how many refinements may be on their way at once
	// under continuous updates (each followed by a Fence whose answer
	// says it arrived). Two keep a link busy whose round trip is shorter
	// than a refinement's sending time (5 Mbit/s, 60 ms: 105 ms per
	// refinement), where one would leave it idle a round trip out of
	// each; a real change then waits behind at most two.
	refineInFlight = 2
	// refinePace spaces refinements to a viewer that has continuous
	// updates on but no Fence to say when one has arrived.
	refinePace = 100 * time.Millisecond
)

// refineFence is the payload of the Fence that follows a refinement
// under continuous updates; its answer allows the next refinement.
var refineFence = []byte("assist-refine")

// lossyReporter is an encoder that may send areas approximately (Tight
// JPEG; any lossy encoding to come must be one too, or its areas are
// never refined).
type lossyReporter interface {
	// takeLossy returns the areas sent lossy since it was last called.
	// The slice is valid until the encoder is used again.
	takeLossy() []image.Rectangle
}

func (e *tightEncoder) takeLossy() []image.Rectangle {
	l := e.lossy
	e.lossy = e.lossy[:0]
	return l
}

// refiner is one connection's refinement state. Only the writer uses it,
// except inFlight, which the reader counts down.
type refiner struct {
	timer *time.Timer
	// bpp is the recent bytes per pixel of refinement, to turn the
	// budget in bytes into an area before encoding it.
	bpp float64
	// sent tells refineAfter that the update just built carries
	// refinement; last is when the latest refinement was sent.
	sent bool
	last time.Time
	// inFlight counts refinements whose Fence is unanswered.
	inFlight atomic.Int32
}

// timerC is the channel that fires when refinement is due, or nil.
func (r *refiner) timerC() <-chan time.Time {
	if r.timer == nil {
		return nil
	}
	return r.timer.C
}

// stop stops the timer; the writer does not wait for it any more.
func (r *refiner) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// refineWait is how long an area must be still before it is refined.
func (s *Server) refineWait() time.Duration {
	if s.refineDelay > 0 {
		return s.refineDelay
	}
	return refineDelay
}

// fenceReply handles the viewer's answer to a fence of ours.
func (c *conn) fenceReply(data []byte) {
	if bytes.Equal(data, refineFence) {
		if c.ref.inFlight.Add(-1) < 0 {
			c.ref.inFlight.Store(0) // an answer to nothing of ours
		}
	}
}

// refine records what the update being built sent (dirty, read from the
// screen, with the encoder's JPEG areas lossy) and then appends to it the
// refinement that fits in the budget the update leaves. start is where
// the update begins in c.buf. It returns the rectangles appended.
func (c *conn) refine(start int, dirty []image.Rectangle, pf *PixelFormat, enc *encodingPrefs) int {
	now := time.Now()
	var lossy []image.Rectangle
	if lr, ok := c.encoder(enc).(lossyReporter); ok {
		lossy = lr.takeLossy()
	}
	c.sub.NoteSent(dirty, lossy, now)

	c.mu.Lock()
	cont := c.continuous
	c.mu.Unlock()
	switch {
	case cont && enc.fence && c.ref.inFlight.Load() >= refineInFlight:
		return 0
	case cont && !enc.fence && now.Sub(c.ref.last) < refinePace:
		return 0
	}
	// A viewer pushed to across a paced path gets refinement in slices
	// too, so a change waits behind no more of it than of anything else;
	// the slices follow each other as the path has room (refineAfter).
	// Under continuous updates with fences, at most refineInFlight
	// refinements are on their way, so each stays whole.
	limit := refineBudget
	if c.budget > 0 && !(cont && enc.fence) {
		limit = min(limit, c.budget)
	}
	room := limit - (len(c.buf) - start)
	if c.cut || room < limit/4 {
		return 0 // the real changes fill the update
	}
	if c.ref.bpp == 0 {
		c.ref.bpp = 2 // a photo through zlib, before anything is measured
	}
	rects := c.sub.Refine(now.Add(-c.srv.refineWait()), int(float64(room)/c.ref.bpp), c.readScratch)
	if len(rects) == 0 {
		return 0
	}
	e := c.encoder(enc)
	if le := enc.losslessEncoding(); le != 0 {
		if c.lossless != nil && c.lossless.enc != le {
			c.lossless.close()
			c.lossless = nil
		}
		if c.lossless == nil {
			c.lossless = newLosslessEncoder(le)
		}
		e = c.lossless
	} else if e == c.tight {
		c.tight.setQuality(-1) // until encoder sets the viewer's again
		c.tight.gradient = true
		defer func() { c.tight.gradient = false }()
	}
	before, pixels, n := len(c.buf), 0, 0
	view := image.Rectangle{Max: c.size}
	sent := rects[:0]
	for _, r := range rects {
		r = r.Intersect(view).Intersect(c.scratch.Rect)
		if r.Empty() {
			continue
		}
		var k int
		c.buf, k = e.encode(c.buf, c.scratch, r, pf)
		n += k
		pixels += r.Dx() * r.Dy()
		sent = append(sent, r)
		if f := c.srv.onRefine; f != nil {
			f(r)
		}
	}
	c.sub.NoteSent(sent, nil, now)
	if pixels > 0 {
		got := float64(len(c.buf)-before) / float64(pixels)
		c.ref.bpp = min(4, max(0.05, (c.ref.bpp+got)/2))
	}
	c.ref.sent, c.ref.last = n > 0, now
	c.stats.refined += uint64(len(c.buf) - before)
	return n
}

// refineAfter ends a flush: it follows a refinement under continuous
// updates with a Fence, and sets the timer for the next refinement while
// the viewer may get an update (want, as flush decided it; in the pull
// model, one spurious wake-up after the request was answered).
func (c *conn) refineAfter(enc *encodingPrefs, want bool) {
	c.mu.Lock()
	cont := c.continuous
	c.mu.Unlock()
	if c.ref.sent && cont && enc.fence {
		c.buf = appendFence(c.buf, fence{flags: fenceRequest | fenceBlockBefore, data: refineFence})
		c.ref.inFlight.Add(1)
	}
	sentRef := c.ref.sent
	c.ref.sent = false
	if !want || (cont && enc.fence && c.ref.inFlight.Load() >= refineInFlight) {
		c.ref.stop()
		return
	}
	since, ok := c.sub.LossySince()
	if !ok {
		c.ref.stop()
		return
	}
	at := since.Add(c.srv.refineWait())
	if cont && !enc.fence {
		at = later(at, c.ref.last.Add(refinePace))
	}
	// Never a busy loop: a refinement that is due but did not fit this
	// update goes with the next flush, a moment later.
	d := max(time.Until(at), 5*time.Millisecond)
	if sentRef && c.budget > 0 && (!cont || !enc.fence) {
		// Refinement in slices (priority.go): the next slice goes as
		// soon as the path has room (flush checks), not 5 ms later,
		// or the slices would cap refinement below the path's rate.
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	if c.ref.timer == nil {
		c.ref.timer = time.NewTimer(d)
		return
	}
	c.ref.timer.Reset(d)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
