package main

import (
	"bytes"
	"fmt"
	"image"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assist-project/assist/bench/marker"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/screen"
)

// update is what the viewer saw in one FramebufferUpdate.
type update struct {
	// At is when the update was completely decoded.
	At time.Time
	// Bytes is the update's size on the wire.
	Bytes int
	// Pixels is the area of its pixel rectangles (CopyRect included).
	Pixels int
	// Real is set when the update carried pixels (not only
	// pseudo-rectangles, nor nothing at all).
	Real bool
	// Seq is the change number the marker showed after the update, when
	// Valid.
	Seq   uint64
	Valid bool
	// ProbeSeq is the probe change the probe's marker showed after the
	// update, when ProbeValid (see viewer.watchProbe).
	ProbeSeq   uint64
	ProbeValid bool
}

// viewer is the benchmark's VNC client: it reads updates as fast as the
// server sends them and notes, for each, the marker it shows.
type viewer struct {
	c          *rfb.Client
	continuous bool

	// drawn is the number of the last change the X server has executed;
	// the one after it may be half drawn and already visible.
	drawn atomic.Uint64

	// probeDrawn is the number of the last probe change drawn.
	probeDrawn atomic.Uint64

	mu    sync.Mutex
	probe image.Point
	// probe2 is where the probe's marker is, or (-1, -1) for none.
	probe2  image.Point
	updates []update
	// want, when set, is the still screen the framebuffer should come
	// to match (outside mask); exactAt is when an update last made it
	// match, zero while it does not.
	want    *screen.Image
	mask    image.Rectangle
	exactAt time.Time
	// lastTouch is when an update last changed a pixel of the
	// framebuffer, as told by shadow, its copy as it was before.
	lastTouch time.Time
	shadow    *screen.Image
	err       error
	changed   chan struct{} // closed and replaced whenever updates grows
	done      chan struct{}

	// ref, when set, gives the picture that the update showing change n
	// should show, and the area to compare: the squared errors of every
	// fourth such update add up in sse over samples colour values.
	ref        func(n uint64) (*screen.Image, image.Rectangle)
	refUpdates int
	sse        float64
	samples    int
}

// viewerOptions configures the client's encodings.
type viewerOptions struct {
	Quality    int // JPEG quality level 0..9, or -1 for no JPEG
	Compress   int // compression level 0..9
	Continuous bool
	H264       bool // offer Open H.264 (encoding 50) first
	// Scaled offers assist's private encodings, as assist join's relay
	// does (rfb.EncAssistScaled, half resolution, and both lossless
	// ones): the client decodes them itself.
	Scaled bool
}

func (o viewerOptions) encodings() []int32 {
	enc := []int32{rfb.EncTight, rfb.EncCopyRect}
	if o.H264 {
		enc = append([]int32{rfb.EncH264}, enc...)
	}
	if o.Quality >= 0 {
		enc = append(enc, rfb.EncJPEGQuality0+int32(o.Quality))
	}
	enc = append(enc, rfb.EncCompressLevel0+int32(o.Compress), rfb.EncLastRect, rfb.EncDesktopSize)
	if o.Continuous {
		enc = append(enc, rfb.EncContinuousUpdates, rfb.EncFence)
	}
	if o.Scaled {
		enc = append(enc, rfb.EncAssistScaled, rfb.EncAssistLossless, rfb.EncAssistLosslessFSE)
	}
	return enc
}

// newViewer performs the RFB handshake on conn and starts reading.
func newViewer(conn net.Conn, o viewerOptions) (*viewer, error) {
	pf := rfb.NativeFormat
	c, err := rfb.NewClient(conn, rfb.ClientConfig{Shared: true, PixelFormat: &pf, Encodings: o.encodings()})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("viewer: %w", err)
	}
	v := &viewer{c: c, continuous: o.Continuous, changed: make(chan struct{}), done: make(chan struct{}), probe: image.Pt(-1, -1), probe2: image.Pt(-1, -1)}
	if err := c.RequestUpdate(false, image.Rectangle{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("viewer: first update request: %w", err)
	}
	go v.loop()
	return v, nil
}

// loop keeps exactly one update request outstanding (or, once the server
// confirmed continuous updates, none) and records every update.
func (v *viewer) loop() {
	defer close(v.done)
	streaming := false
	for {
		msg, err := v.c.ReadMessage()
		if err != nil {
			v.fail(fmt.Errorf("viewer: %w", err))
			return
		}
		now := time.Now()
		switch msg.Type {
		case rfb.ServerFramebufferUpdate:
			if !streaming {
				if err := v.c.RequestUpdate(true, image.Rectangle{}); err != nil {
					v.fail(fmt.Errorf("viewer: update request: %w", err))
					return
				}
			}
			v.record(now, msg)
		case rfb.ServerEndOfContinuousUpdates:
			// The server supports continuous updates (it answers the
			// pseudo-encoding with this message): switch to them once.
			if v.continuous && !streaming {
				if err := v.c.EnableContinuousUpdates(true, image.Rectangle{Max: v.c.Size()}); err != nil {
					v.fail(fmt.Errorf("viewer: enable continuous updates: %w", err))
					return
				}
				streaming = true
			}
		case rfb.ServerFence:
			const fenceRequest = 1 << 31
			if msg.FenceFlags&fenceRequest != 0 {
				if err := v.c.Fence(msg.FenceFlags&^fenceRequest, msg.FencePayload); err != nil {
					v.fail(fmt.Errorf("viewer: fence: %w", err))
					return
				}
			}
		}
	}
}

func (v *viewer) record(now time.Time, msg rfb.Message) {
	u := update{At: now, Bytes: msg.Bytes}
	touched := false
	v.mu.Lock()
	defer v.mu.Unlock()
	fb := v.c.Framebuffer()
	if v.shadow == nil || v.shadow.Rect != fb.Rect {
		v.shadow = screen.NewImage(fb.Rect)
	}
	for _, r := range msg.Rects {
		if r.Encoding >= 0 {
			u.Real = true
			u.Pixels += r.Rect.Dx() * r.Rect.Dy()
			if syncRect(v.shadow, fb, r.Rect) {
				touched = true
			}
		}
	}
	if touched {
		v.lastTouch = now
	}
	if v.want != nil {
		if sameScreen(v.c.Framebuffer(), v.want, v.mask) {
			if v.exactAt.IsZero() {
				// Nothing changed since lastTouch (an update
				// may resend pixels as they are): the picture
				// was exact from then on.
				v.exactAt = v.lastTouch
			}
		} else {
			v.exactAt = time.Time{}
		}
	}
	if v.probe.X >= 0 {
		if m, ok := marker.Decode(v.c.Framebuffer(), v.probe); ok {
			u.Seq, u.Valid = marker.Unwrap(m, v.drawn.Load()+1)
		}
	}
	if v.probe2.X >= 0 {
		if m, ok := marker.Decode(v.c.Framebuffer(), v.probe2); ok {
			u.ProbeSeq, u.ProbeValid = marker.Unwrap(m, v.probeDrawn.Load()+1)
		}
	}
	if u.Valid && v.ref != nil {
		if v.refUpdates++; v.refUpdates%4 == 0 {
			want, area := v.ref(u.Seq)
			sse, n := squaredErrors(v.c.Framebuffer(), want, area)
			v.sse += sse
			v.samples += n
		}
	}
	v.updates = append(v.updates, u)
	close(v.changed)
	v.changed = make(chan struct{})
}

func (v *viewer) fail(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.err = err
	close(v.changed)
	v.changed = make(chan struct{})
}

// watch makes later updates decode the marker at at, and forgets the
// updates recorded so far.
func (v *viewer) watch(at image.Point) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.probe = at
	v.updates = v.updates[:0]
}

// watchProbe makes later updates also decode the probe's marker at at;
// (-1, -1) stops.
func (v *viewer) watchProbe(at image.Point) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.probe2 = at
}

// snapshot returns the updates recorded since watch, and the read error
// that stopped the viewer, if any.
func (v *viewer) snapshot() ([]update, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]update(nil), v.updates...), v.err
}

// waitFor waits until an update shows change n or later, or timeout.
func (v *viewer) waitFor(n uint64, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		v.mu.Lock()
		for i := len(v.updates) - 1; i >= 0; i-- {
			if u := v.updates[i]; u.Valid && u.Seq >= n {
				v.mu.Unlock()
				return nil
			}
		}
		err, changed := v.err, v.changed
		v.mu.Unlock()
		if err != nil {
			return err
		}
		select {
		case <-changed:
		case <-deadline:
			return fmt.Errorf("viewer: change %d not shown within %v", n, timeout)
		}
	}
}

// waitExact compares the framebuffer after every update with want (the
// still screen, leaving out mask, where the pointer is) and returns when
// it first matches: at is the arrival of the update since which it has
// matched, which may precede the call. ok is false when it does not match
// within timeout. It first asks for one pixel in full (a non-incremental
// request for the bottom-right pixel), so that the viewer hears from the
// server even when nothing is left to send, and the framebuffer as it is
// gets compared too.
func (v *viewer) waitExact(want *screen.Image, mask image.Rectangle, timeout time.Duration) (at time.Time, ok bool, err error) {
	size := v.c.Size()
	v.mu.Lock()
	v.want, v.mask, v.exactAt = want, mask, time.Time{}
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.want = nil
		v.mu.Unlock()
	}()
	if err := v.c.RequestUpdate(false, image.Rect(size.X-1, size.Y-1, size.X, size.Y)); err != nil {
		return time.Time{}, false, fmt.Errorf("viewer: update request: %w", err)
	}
	deadline := time.After(timeout)
	for {
		v.mu.Lock()
		at, err, changed := v.exactAt, v.err, v.changed
		v.mu.Unlock()
		switch {
		case err != nil:
			return time.Time{}, false, err
		case !at.IsZero():
			return at, true, nil
		}
		select {
		case <-changed:
		case <-deadline:
			return time.Time{}, false, nil
		}
	}
}

// syncRect copies area r of src into dst and reports whether that
// changed any pixel of dst.
func syncRect(dst, src *screen.Image, r image.Rectangle) bool {
	r = r.Intersect(src.Rect).Intersect(dst.Rect)
	changed := false
	for y := r.Min.Y; y < r.Max.Y; y++ {
		s := src.Pix[src.PixOffset(r.Min.X, y):][:4*r.Dx()]
		d := dst.Pix[dst.PixOffset(r.Min.X, y):][:4*r.Dx()]
		if !changed && !bytes.Equal(s, d) {
			changed = true
		}
		copy(d, s)
	}
	return changed
}

// sameScreen reports whether a and b have the same size and the same
// colour in every pixel outside mask (the fourth byte of a pixel is
// padding).
func sameScreen(a, b *screen.Image, mask image.Rectangle) bool {
	if a.Rect.Size() != b.Rect.Size() {
		return false
	}
	w, h := a.Rect.Dx(), a.Rect.Dy()
	mask = mask.Sub(b.Rect.Min)
	for y := 0; y < h; y++ {
		ra := a.Pix[y*a.Stride : y*a.Stride+4*w]
		rb := b.Pix[y*b.Stride : y*b.Stride+4*w]
		for x := 0; x < w; x++ {
			i := 4 * x
			if ra[i] != rb[i] || ra[i+1] != rb[i+1] || ra[i+2] != rb[i+2] {
				if image.Pt(x, y).In(mask) {
					continue
				}
				return false
			}
		}
	}
	return true
}

// compare makes later updates that show a change be compared with
// ref's picture for it (nil stops), and forgets the errors summed so far.
func (v *viewer) compare(ref func(n uint64) (*screen.Image, image.Rectangle)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.ref, v.refUpdates, v.sse, v.samples = ref, 0, 0, 0
}

// psnr is the peak signal-to-noise ratio, in dB, of the updates compared
// since compare; 0 when none was.
func (v *viewer) psnr() float64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.samples == 0 {
		return 0
	}
	if v.sse == 0 {
		return 99
	}
	return 10 * math.Log10(255*255*float64(v.samples)/v.sse)
}

// squaredErrors sums the squared differences of the colour values of
// area in got and want, and counts them.
func squaredErrors(got, want *screen.Image, area image.Rectangle) (float64, int) {
	area = area.Intersect(got.Rect).Intersect(want.Rect)
	var sum float64
	for y := area.Min.Y; y < area.Max.Y; y++ {
		g := got.Pix[got.PixOffset(area.Min.X, y):][:4*area.Dx()]
		w := want.Pix[want.PixOffset(area.Min.X, y):][:4*area.Dx()]
		for x := 0; x < len(g); x += 4 {
			for c := range 3 {
				d := float64(g[x+c]) - float64(w[x+c])
				sum += d * d
			}
		}
	}
	return sum, 3 * area.Dx() * area.Dy()
}

// Close closes the connection and waits for the reader to stop.
func (v *viewer) Close() {
	v.c.Close()
	<-v.done
}
