package shadow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/assist-project/assist/screen"
)

// fakeCapturer is an in-memory desktop: tests draw into img and queue the
// changes that Next reports.
type fakeCapturer struct {
	mu      sync.Mutex
	cond    *sync.Cond
	img     *screen.Image
	queue   []screen.Change
	pushed  int // changes queued so far
	taken   int // changes returned by Next so far
	idleAt  int // taken when Next last blocked, -1 before
	stopped bool
	wake    chan struct{}
	cursor  *screen.Cursor
	nextErr error
	grabErr error
	grabs   []image.Rectangle // every area grabbed, in order
}

func newFake(img *screen.Image) *fakeCapturer {
	f := &fakeCapturer{img: img, idleAt: -1, wake: make(chan struct{}, 1)}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *fakeCapturer) Size() image.Point {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.img.Rect.Size()
}

func (f *fakeCapturer) Next(ctx context.Context) (screen.Change, error) {
	f.mu.Lock()
	for {
		if f.nextErr != nil {
			err := f.nextErr
			f.mu.Unlock()
			return screen.Change{}, err
		}
		if len(f.queue) > 0 {
			ch := f.queue[0]
			f.queue = f.queue[1:]
			f.taken++
			f.mu.Unlock()
			return ch, nil
		}
		f.idleAt = f.taken
		f.cond.Broadcast()
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return screen.Change{}, ctx.Err()
		case <-f.wake:
		}
		f.mu.Lock()
	}
}

func (f *fakeCapturer) Grab(dst *screen.Image, r image.Rectangle) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.grabErr != nil {
		return f.grabErr
	}
	if !r.In(dst.Rect) || !r.In(f.img.Rect) {
		return fmt.Errorf("fake: grab %v outside %v or screen %v", r, dst.Rect, f.img.Rect)
	}
	f.grabs = append(f.grabs, r)
	dst.CopyFrom(f.img, r)
	return nil
}

// lendingFake lends its grabs, as screen/x11 does with MIT-SHM. A lent
// image is scribbled over when it is released, so that a read after the
// release shows up as wrong pixels.
type lendingFake struct {
	*fakeCapturer
	lent int // lent and not yet released
}

func (l *lendingFake) GrabView(r image.Rectangle) (*screen.Image, func(), error) {
	if l.lent > 0 {
		return nil, nil, errors.New("fake: grab while an image is lent (screen/x11 would deadlock)")
	}
	img := screen.NewImage(r)
	if err := l.Grab(img, r); err != nil {
		return nil, nil, err
	}
	l.lent++
	return img, func() {
		l.lent--
		for i := range img.Pix {
			img.Pix[i] = 0xab
		}
	}, nil
}

func (l *lendingFake) Grab(dst *screen.Image, r image.Rectangle) error {
	if l.lent > 0 {
		return errors.New("fake: grab while an image is lent (screen/x11 would deadlock)")
	}
	return l.fakeCapturer.Grab(dst, r)
}

func (f *fakeCapturer) Cursor() (*screen.Cursor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cursor == nil {
		return nil, errors.New("fake: no cursor")
	}
	return f.cursor, nil
}

func (f *fakeCapturer) Close() error { return nil }

// draw changes the desktop.
func (f *fakeCapturer) draw(fn func(img *screen.Image)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.img)
}

// push queues a change for Next.
func (f *fakeCapturer) push(ch screen.Change) {
	f.mu.Lock()
	f.queue = append(f.queue, ch)
	f.pushed++
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// waitIdle waits until Run has handled every queued change and waits for
// more (or has stopped).
func (f *fakeCapturer) waitIdle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.idleAt != f.pushed && !f.stopped {
		f.cond.Wait()
	}
}

// snapshot returns a copy of the desktop.
func (f *fakeCapturer) snapshot() *screen.Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cloneImage(f.img)
}

// harness runs a Screen on a fake desktop for one test.
type harness struct {
	t      *testing.T
	f      *fakeCapturer
	s      *Screen
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
	// failing is set by tests that expect Run to fail.
	failing bool
}

// wait waits for Run to return and returns its result.
func (h *harness) wait() error {
	h.once.Do(func() { h.err = <-h.done })
	return h.err
}

func newHarness(t *testing.T, img *screen.Image, opts Options) *harness {
	t.Helper()
	f := newFake(img)
	f.cursor = &screen.Cursor{Pix: []uint32{0xff000000}, Size: image.Pt(1, 1)}
	h := &harness{t: t, f: f, s: New(f, opts), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		err := h.s.Run(ctx)
		f.mu.Lock()
		f.stopped = true
		f.cond.Broadcast()
		f.mu.Unlock()
		h.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := h.wait(); err != nil && !h.failing {
			t.Errorf("Run: %v", err)
		}
	})
	f.waitIdle()
	return h
}

// change queues a change and waits until the Screen handled it.
func (h *harness) change(ch screen.Change) {
	h.f.push(ch)
	h.f.waitIdle()
}

// viewer is what a VNC viewer shows, maintained from Pending alone.
type viewer struct {
	img *screen.Image
}

// apply replays p as a viewer would: copies, then dirty areas read from s.
func (v *viewer) apply(t testing.TB, s *Screen, p Pending) {
	t.Helper()
	v.replay(t, p, s.Read)
}

// take collects with Take and replays inside it, reading the copy
// directly.
func (v *viewer) take(t testing.TB, sub *Subscriber) Pending {
	t.Helper()
	return sub.Take(func(p *Pending, cur *screen.Image) {
		v.replay(t, *p, func(dst *screen.Image, r image.Rectangle) { dst.CopyFrom(cur, r) })
	})
}

// replay applies p's copies, then reads its dirty areas with read.
func (v *viewer) replay(t testing.TB, p Pending, read func(dst *screen.Image, r image.Rectangle)) {
	t.Helper()
	if p.Resized || v.img == nil {
		v.img = screen.NewImage(image.Rectangle{Max: p.Size})
	}
	for _, c := range p.Copies {
		if !c.Src.In(v.img.Rect) || !c.DstRect().In(v.img.Rect) {
			t.Fatalf("copy %v outside the screen %v", c, v.img.Rect)
		}
		moveRect(v.img, c)
	}
	all := append(slices.Clone(p.Dirty), p.Held...)
	checkDirty(t, all, image.Rectangle{Max: p.Size})
	for _, r := range all {
		read(v.img, r)
	}
}

// moveRect is the viewer's CopyRect, written independently of applyCopy.
func moveRect(m *screen.Image, c Copy) {
	tmp := screen.NewImage(c.Src)
	tmp.CopyFrom(m, c.Src)
	tmp.Rect = c.DstRect()
	m.CopyFrom(tmp, tmp.Rect)
}

// checkDirty checks that rs are non-empty, within bounds and disjoint.
func checkDirty(t testing.TB, rs []image.Rectangle, bounds image.Rectangle) {
	t.Helper()
	for i, r := range rs {
		if r.Empty() || !r.In(bounds) {
			t.Fatalf("dirty %v empty or outside %v", r, bounds)
		}
		for _, q := range rs[:i] {
			if r.Overlaps(q) {
				t.Fatalf("dirty rectangles %v and %v overlap", q, r)
			}
		}
	}
}

func cloneImage(m *screen.Image) *screen.Image {
	c := screen.NewImage(m.Rect)
	c.CopyFrom(m, m.Rect)
	return c
}

// sameImage reports the first pixel where a and b differ.
func sameImage(a, b *screen.Image) (image.Point, bool) {
	if a.Rect != b.Rect {
		return a.Rect.Max, false
	}
	n := 4 * a.Rect.Dx()
	for y := a.Rect.Min.Y; y < a.Rect.Max.Y; y++ {
		i, j := a.PixOffset(a.Rect.Min.X, y), b.PixOffset(b.Rect.Min.X, y)
		if bytes.Equal(a.Pix[i:i+n], b.Pix[j:j+n]) {
			continue
		}
		for x := a.Rect.Min.X; x < a.Rect.Max.X; x++ {
			i, j := a.PixOffset(x, y), b.PixOffset(x, y)
			if [4]byte(a.Pix[i:i+4]) != [4]byte(b.Pix[j:j+4]) {
				return image.Pt(x, y), false
			}
		}
	}
	return image.Point{}, true
}

// current returns a copy of the shadow copy.
func current(s *Screen) *screen.Image {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cloneImage(s.cur)
}

func noiseImage(r image.Rectangle, rng *rand.Rand) *screen.Image {
	m := screen.NewImage(r)
	for i := range m.Pix {
		m.Pix[i] = byte(rng.Uint32())
	}
	return m
}

func fill(m *screen.Image, r image.Rectangle, c [4]byte) {
	r = r.Intersect(m.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			copy(m.Pix[m.PixOffset(x, y):], c[:])
		}
	}
}

// textImage draws a page of text-like lines lineHeight pixels apart: a
// light background with rows of random dark glyphs, whose rows are as
// distinct, and whose blank rows are as alike, as real text.
func textImage(r image.Rectangle, lineHeight int, rng *rand.Rand) *screen.Image {
	m := screen.NewImage(r)
	fill(m, r, [4]byte{0xf0, 0xf0, 0xf0, 0})
	drawText(m, r, lineHeight, rng)
	return m
}

// drawText draws text lines into r of m (on whatever background is there).
func drawText(m *screen.Image, r image.Rectangle, lineHeight int, rng *rand.Rand) {
	const gw = 7
	gh := min(11, lineHeight-4)
	for ly := r.Min.Y; ly+lineHeight <= r.Max.Y; ly += lineHeight {
		n := 4 + rng.IntN(max(1, r.Dx()/8))
		for g := range n {
			x0 := r.Min.X + 4 + g*8
			if x0+gw > r.Max.X {
				break
			}
			if rng.IntN(6) == 0 {
				continue // a space
			}
			for y := range gh {
				bits := rng.Uint32()
				for x := range gw {
					if bits&(1<<x) != 0 {
						copy(m.Pix[m.PixOffset(x0+x, ly+3+y):], []byte{0x20, 0x20, 0x20, 0})
					}
				}
			}
		}
	}
}
