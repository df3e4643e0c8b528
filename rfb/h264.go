package rfb

import (
	"encoding/binary"
	"image"
	"time"

	"github.com/assist-project/assist/h264"
	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/shadow"
)

// EncH264 is the Open H.264 encoding (rfbproto): a rectangle's payload
// is a 4-byte length, 4 bytes of flags and that many bytes of an Annex B
// H.264 stream. The viewer keeps one decoder per rectangle (position and
// size), so each video region keeps its rectangle for as long as it lives.
const EncH264 int32 = 50

// Open H.264 rectangle flags.
const (
	h264ResetContext     = 1 << 0 // start this rectangle's decoder afresh
	h264ResetAllContexts = 1 << 1 // forget every rectangle's decoder
)

// How a region is found to move at video rates, per viewer. A 64-pixel
// tile moves when it changed h264Changes times within h264Window
// (changes closer than h264MinGap count once: a frame drawn in bands),
// or, for a viewer whose updates are few (a slow link), when it changed
// in each of its last h264Streak updates over at least h264StreakSpan. A
// tile under a CopyRect within h264Window is scrolling, not video. A
// region is a connected group of moving tiles whose bounding box is at
// least h264MinSide on each side, so a line of typing (one tile high)
// never is one. A region that has not changed for h264Idle ends and is
// repainted with the viewer's other encoding (lossless or JPEG), so a
// paused video does not stay blurred.
const (
	h264Tile       = 64
	h264Changes    = 12
	h264MinGap     = 15 * time.Millisecond
	h264Streak     = 6
	h264StreakSpan = 500 * time.Millisecond
	h264Window     = time.Second
	h264MinSide    = 2 * h264Tile
	h264Idle       = 500 * time.Millisecond
	h264MaxRegions = 4
	h264FPS        = 60
	// h264SmallChange: a change inside a region smaller than this
	// fraction of it (1/h264SmallChange) is not worth a picture.
	h264SmallChange = 8
)

// h264QP maps the viewer's Tight JPEG quality level to a constant
// quantiser, chosen so that a level gives at least the PSNR its JPEG
// gives on natural video (measured with bench/rfbbench's video).
var h264QP = [10]int{40, 36, 33, 30, 28, 26, 24, 22, 20, 16}

// videoRegion is one area sent as H.264 to one viewer.
type videoRegion struct {
	r     image.Rectangle
	enc   *h264.Encoder
	last  time.Time // when it last changed
	fresh bool      // its first picture is still to send (reset, IDR)
	send  bool      // changed in the update being built
}

// videoTracker finds, for one viewer, what moves at video rates and
// keeps the encoders for it. The writer goroutine owns it.
type videoTracker struct {
	size image.Point
	tileGrid
	// hist holds, per tile, the times of its last h264Changes changes,
	// a ring indexed by pos.
	hist   [][h264Changes]time.Time
	pos    []uint8
	copied []time.Time // when a CopyRect last landed on the tile
	// updates counts the updates that changed anything; lastUpd is the
	// last one that changed the tile, streak how many in a row did, from
	// streakAt on.
	updates  uint64
	lastUpd  []uint64
	streak   []uint16
	streakAt []time.Time
	regions  []*videoRegion
	resetAll bool // the next H.264 rectangle tells the viewer to forget all
	qp       int
	timer    *time.Timer
	failed   bool // the codec failed once: no H.264 for this viewer
}

// videoWanted reports whether this viewer may get H.264: the build has
// the codec, the viewer named encoding 50, accepts lossy pictures (asked
// for a JPEG quality) and takes 24-bit colour.
func videoWanted(enc *encodingPrefs, pf *PixelFormat) bool {
	return h264.Available && enc.h264 && enc.quality >= 0 && tightIs888(pf)
}

// videoTake runs inside Subscriber.Take (cur is the screen's copy, under
// its read lock): it records which tiles changed, decides the video
// regions, and moves what lies in a region that changed out of dirty and
// into an H.264 picture, copying the whole region into c.scratch. A copy
// into a region becomes dirty (scroll detection can find shifted rows in
// a video); the tiles under other copies are scrolling, not video. It
// returns the new dirty list.
func (c *conn) videoTake(enc *encodingPrefs, pf *PixelFormat, cur *screen.Image, view image.Rectangle,
	copies *[]shadow.Copy, dirty []image.Rectangle) []image.Rectangle {
	v := c.video
	if !videoWanted(enc, pf) || (v != nil && v.failed) {
		if v != nil && !v.failed {
			dirty = c.videoRetireAll(cur, dirty)
			c.video = nil
		}
		return dirty
	}
	now := time.Now()
	if v == nil || v.size != view.Size() {
		reset := v != nil
		if reset {
			dirty = c.videoRetireAll(cur, dirty)
		}
		v = newVideoTracker(view.Size())
		v.resetAll = reset
		c.video = v
	}
	v.qp = h264QP[min(max(enc.quality, 0), 9)]
	keptCopies := (*copies)[:0]
	for _, cp := range *copies {
		dst := cp.DstRect()
		if v.inRegion(dst) {
			dst = dst.Intersect(view)
			c.scratch.CopyFrom(cur, dst)
			dirty = append(dirty, dst)
			continue
		}
		v.markCopied(dst, now)
		keptCopies = append(keptCopies, cp)
	}
	*copies = keptCopies
	v.record(notHeldBack(dirty, c.heldBack), now)
	for _, g := range v.regions {
		g.send = g.fresh
		area := 0
		for _, r := range dirty {
			in := r.Intersect(g.r)
			area += in.Dx() * in.Dy()
		}
		if area > 0 {
			g.last = now
			// A small change (a clock over a video, a marker) goes with
			// the other encodings: drawn over the region at the viewer,
			// it stays right until the region's next picture, which
			// carries the whole region anyway, and costs far less CPU
			// than a picture of the whole region.
			if area*h264SmallChange >= g.r.Dx()*g.r.Dy() {
				g.send = true
			}
		}
	}
	// Regions that stopped moving go back to the ordinary encodings.
	kept := v.regions[:0]
	for _, g := range v.regions {
		if !g.send && now.Sub(g.last) >= h264Idle {
			c.log.Debug("video region ended", "area", g.r)
			g.enc.Close()
			c.scratch.CopyFrom(cur, g.r)
			dirty = append(dirty, g.r)
			continue
		}
		kept = append(kept, g)
	}
	v.regions = kept
	v.plan(view, now)
	for _, g := range v.regions {
		if !g.send {
			continue
		}
		if g.fresh {
			c.log.Debug("video region: sending H.264", "area", g.r, "qp", v.qp)
		}
		c.scratch.CopyFrom(cur, g.r)
		dirty = subtractAll(dirty, g.r)
	}
	if len(v.regions) > 0 {
		c.videoArm()
	}
	return dirty
}

func newVideoTracker(size image.Point) *videoTracker {
	g := newTileGrid(size, h264Tile)
	n := g.cols * g.rows
	return &videoTracker{
		size: size, tileGrid: g,
		hist:     make([][h264Changes]time.Time, n),
		pos:      make([]uint8, n),
		copied:   make([]time.Time, n),
		lastUpd:  make([]uint64, n),
		streak:   make([]uint16, n),
		streakAt: make([]time.Time, n),
	}
}

func (v *videoTracker) inRegion(r image.Rectangle) bool {
	for _, g := range v.regions {
		if r.Overlaps(g.r) {
			return true
		}
	}
	return false
}

func (v *videoTracker) markCopied(r image.Rectangle, now time.Time) {
	v.tiles(r, func(i int) { v.copied[i] = now })
}

// record notes that the tiles under dirty changed at now, in one update.
func (v *videoTracker) record(dirty []image.Rectangle, now time.Time) {
	if len(dirty) == 0 {
		return
	}
	v.updates++
	for _, r := range dirty {
		v.tiles(r, func(i int) {
			if v.lastUpd[i] == v.updates {
				return // two rectangles of one update
			}
			if v.lastUpd[i] == v.updates-1 {
				v.streak[i] = min(v.streak[i]+1, h264Streak)
			} else {
				v.streak[i], v.streakAt[i] = 1, now
			}
			v.lastUpd[i] = v.updates
			prev := (int(v.pos[i]) + h264Changes - 1) % h264Changes
			if now.Sub(v.hist[i][prev]) < h264MinGap {
				return // another band of the same frame
			}
			v.hist[i][v.pos[i]] = now
			v.pos[i] = uint8((int(v.pos[i]) + 1) % h264Changes)
		})
	}
}

// moving reports whether tile i moves at video rates (see h264Changes).
func (v *videoTracker) moving(i int, now time.Time) bool {
	newest := v.hist[i][(int(v.pos[i])+h264Changes-1)%h264Changes]
	if now.Sub(v.copied[i]) <= h264Window || newest.IsZero() || now.Sub(newest) >= h264Idle {
		return false // scrolling, or still
	}
	oldest := v.hist[i][v.pos[i]] // the ring's next slot holds the oldest
	if !oldest.IsZero() && now.Sub(oldest) <= h264Window {
		return true
	}
	return v.lastUpd[i] == v.updates && v.streak[i] >= h264Streak && now.Sub(v.streakAt[i]) >= h264StreakSpan
}

// plan groups moving tiles (and the tiles of live regions) into
// connected components and makes each large enough one a region. A
// component that equals a live region keeps it (and its decoder at the
// viewer); one that grew replaces the regions it covers with a new one.
func (v *videoTracker) plan(view image.Rectangle, now time.Time) {
	n := v.cols * v.rows
	mark := make([]bool, n)
	any := false
	for i := range n {
		if v.moving(i, now) {
			mark[i], any = true, true
		}
	}
	if !any {
		return
	}
	for _, g := range v.regions {
		v.tiles(g.r, func(i int) { mark[i] = true })
	}
	seen := make([]bool, n)
	var stack []int
	for start := range n {
		if !mark[start] || seen[start] {
			continue
		}
		// Flood fill, 8-connected: a diagonal neighbour is part of the
		// same moving picture.
		var box image.Rectangle
		stack = append(stack[:0], start)
		seen[start] = true
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := i%v.cols, i/v.cols
			box = box.Union(image.Rect(x, y, x+1, y+1))
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= v.cols || ny >= v.rows {
						continue
					}
					if j := ny*v.cols + nx; mark[j] && !seen[j] {
						seen[j] = true
						stack = append(stack, j)
					}
				}
			}
		}
		r := image.Rectangle{Min: box.Min.Mul(h264Tile), Max: box.Max.Mul(h264Tile)}.Intersect(view)
		// 4:2:0 pictures have even sides.
		r.Max.X -= r.Dx() % 2
		r.Max.Y -= r.Dy() % 2
		if r.Dx() < h264MinSide || r.Dy() < h264MinSide {
			continue
		}
		v.adopt(r, now)
	}
}

// adopt makes r a region unless one already is r; regions within r end
// (r's pictures cover them).
func (v *videoTracker) adopt(r image.Rectangle, now time.Time) {
	kept := v.regions[:0]
	for _, g := range v.regions {
		if g.r == r {
			return
		}
		if g.r.In(r) {
			g.enc.Close()
			continue
		}
		kept = append(kept, g)
	}
	v.regions = kept
	if len(v.regions) >= h264MaxRegions {
		return
	}
	enc, err := h264.NewEncoder(r.Dx(), r.Dy(), v.qp, h264FPS)
	if err != nil {
		// Without an encoder the area simply stays with the other
		// encodings; a codec that cannot start will not start later.
		v.failed = true
		return
	}
	v.regions = append(v.regions, &videoRegion{r: r, enc: enc, last: now, fresh: true, send: true})
}

// videoRetireAll ends every region, repainting it with the other
// encodings, and makes the next H.264 rectangle reset the viewer's
// decoders.
func (c *conn) videoRetireAll(cur *screen.Image, dirty []image.Rectangle) []image.Rectangle {
	v := c.video
	for _, g := range v.regions {
		g.enc.Close()
		r := g.r.Intersect(cur.Rect)
		c.scratch.CopyFrom(cur, r)
		dirty = append(dirty, r)
	}
	v.regions = nil
	if v.timer != nil {
		v.timer.Stop()
	}
	return dirty
}

// videoArm makes the writer look again once the regions could have gone
// idle, so that a video that stops is repainted without waiting for some
// other change.
func (c *conn) videoArm() {
	v := c.video
	wake := func() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	if v.timer == nil {
		v.timer = time.AfterFunc(h264Idle+10*time.Millisecond, wake)
		return
	}
	v.timer.Reset(h264Idle + 10*time.Millisecond)
}

// videoClose frees the encoders when the viewer leaves.
func (c *conn) videoClose() {
	v := c.video
	if v == nil {
		return
	}
	if v.timer != nil {
		v.timer.Stop()
	}
	for _, g := range v.regions {
		g.enc.Close()
	}
	v.regions = nil
}

// appendVideo appends the H.264 rectangles of the regions that changed.
// A region the codec fails on goes out with fallback (the viewer's other
// encoder) instead, and H.264 stops for this viewer.
func (c *conn) appendVideo(fallback rectEncoder, pf *PixelFormat) int {
	v := c.video
	if v == nil {
		return 0
	}
	n := 0
	for _, g := range v.regions {
		if !g.send {
			continue
		}
		start := len(c.buf)
		c.buf = appendRectHeader(c.buf, g.r, EncH264)
		c.buf = append(c.buf, 0, 0, 0, 0, 0, 0, 0, 0) // length, flags
		var flags uint32
		if g.fresh {
			flags |= h264ResetContext
		}
		if v.resetAll {
			flags |= h264ResetAllContexts
		}
		out, err := g.enc.Encode(c.buf, c.scratch, g.r, g.fresh)
		if err != nil || len(out) == len(c.buf) {
			if err != nil {
				c.log.Warn("H.264 encoding failed: using the other encodings for this viewer", "err", err)
				v.failed = true
			}
			c.buf = c.buf[:start]
			var k int
			c.buf, k = fallback.encode(c.buf, c.scratch, g.r, pf)
			n += k
			continue
		}
		c.buf = out
		binary.BigEndian.PutUint32(c.buf[start+12:], uint32(len(c.buf)-start-20))
		binary.BigEndian.PutUint32(c.buf[start+16:], flags)
		g.fresh, v.resetAll = false, false
		n++
	}
	if v.failed {
		c.videoClose()
	}
	return n
}

// subtractAll returns rs with hole cut out of each rectangle.
func subtractAll(rs []image.Rectangle, hole image.Rectangle) []image.Rectangle {
	out := rs[:0:0]
	for _, r := range rs {
		out = appendSubtract(out, r, hole)
	}
	return out
}

// appendSubtract appends r minus hole, as at most four rectangles.
func appendSubtract(out []image.Rectangle, r, hole image.Rectangle) []image.Rectangle {
	in := r.Intersect(hole)
	if in.Empty() {
		return append(out, r)
	}
	if r.Min.Y < in.Min.Y {
		out = append(out, image.Rect(r.Min.X, r.Min.Y, r.Max.X, in.Min.Y))
	}
	if in.Max.Y < r.Max.Y {
		out = append(out, image.Rect(r.Min.X, in.Max.Y, r.Max.X, r.Max.Y))
	}
	if r.Min.X < in.Min.X {
		out = append(out, image.Rect(r.Min.X, in.Min.Y, in.Min.X, in.Max.Y))
	}
	if in.Max.X < r.Max.X {
		out = append(out, image.Rect(in.Max.X, in.Min.Y, r.Max.X, in.Max.Y))
	}
	return out
}
