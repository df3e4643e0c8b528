package rfb

import "image"

// Preempting slices.
//
// Across a paced session stream (adapt.go) an update is a slice of about
// sliceTime of the path's rate (priority.go), and was written in one go:
// what did not fit the window waited in the multiplexer's queue, and a
// small change made meanwhile waited for all of it, since a viewer shows
// an update only once it has all of it. At 5 Mbit/s a slice of a video
// with the band beyond its budget is 8-15 ms of sending.
//
// So for a viewer that takes updates of unknown length (LastRect), a
// pushed update is written piece by piece: before each large piece (a
// band, or scaled bands) the writer waits until the window has room for
// about one more (pieceEst), writing what the update holds so far. A
// small change made meanwhile (Subscriber.HasSmall) ends the update
// before its next piece, whether that waits for room or not:
// the pieces not sent yet are held back (Subscriber.Hold), the small
// changes alone are taken (Subscriber.TakeSmall) and appended, and
// LastRect closes the update. A small change then waits for at most the
// piece being written, besides what is in flight. Nothing encoded is
// thrown away: a piece is encoded only once it may go.
//
// An update starts only when the window has room for its first large
// piece, or when a small change is pending (flush).

// roomFor reports whether the path has room for the next large piece
// besides unsent bytes not written yet.
func (c *conn) roomFor(unsent int) bool {
	return c.paced.RoomFor(c.pieceEst + unsent)
}

// notePiece records what a large piece cost: the next one is expected to
// cost about as much.
func (c *conn) notePiece(n int) {
	if c.pieceEst == 0 {
		c.pieceEst = n
		return
	}
	c.pieceEst = (3*c.pieceEst + n) / 4
}

// awaitRoom waits until the path has room for the next large piece of
// the update being built, writing what it holds so far if that may go
// (some is a rectangle). It reports true when the update should end now:
// a small change is pending and may end it (preempt: the update carries a
// large piece already, or the last one did not end after small changes,
// so that a stream of small changes cannot starve the large ones), or the
// writer is stopping.
func (c *conn) awaitRoom(some, preempt bool) (bool, error) {
	// A change since the update was taken signals the Subscriber.
	check := preempt && len(c.sub.Ready()) > 0
	for {
		if check && c.sub.HasSmall(smallArea) {
			return true, nil
		}
		check = false
		unsent := len(c.buf) - c.flushed
		if c.roomFor(unsent) {
			return false, nil
		}
		if some && unsent > 0 {
			if err := c.writeOut(); err != nil {
				return false, err
			}
			continue
		}
		if f := c.srv.onAwaitRoom; f != nil {
			f()
		}
		select {
		case <-c.done:
			return true, nil
		case <-c.paced.Room():
		case <-c.sub.Ready():
			c.readyTaken = true
			check = preempt
		}
	}
}

// appendSmall takes the small changes pending (Subscriber.TakeSmall),
// appends them to the update with e, and returns sent with them added and
// the number of rectangles appended.
func (c *conn) appendSmall(sent []image.Rectangle, e rectEncoder, pf *PixelFormat) ([]image.Rectangle, int) {
	rs := c.sub.TakeSmall(smallArea, c.readScratch)
	view := image.Rectangle{Max: c.size}
	n := 0
	for _, r := range rs {
		if r = r.Intersect(view); r.Empty() {
			continue
		}
		var k int
		c.buf, k = e.encode(c.buf, c.scratch, r, pf)
		n += k
		sent = append(sent, r)
	}
	return sent, n
}
