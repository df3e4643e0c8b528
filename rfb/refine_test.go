package rfb

import (
	"context"
	"image"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/screen/screentest"
	"github.com/assist-project/assist/shadow"
)

// refineLog records what a server sent as refinement.
type refineLog struct {
	mu    sync.Mutex
	rects []refineEvent
}

type refineEvent struct {
	r  image.Rectangle
	at time.Time
}

func (l *refineLog) add(r image.Rectangle) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rects = append(l.rects, refineEvent{r, time.Now()})
}

func (l *refineLog) events() []refineEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]refineEvent(nil), l.rects...)
}

// startRefineServer is startServer with a log of the refinement sent and
// a desktop that shows a photo in its top photoRows rows and grey below.
func startRefineServer(t testing.TB, w, h, photoRows int, delay time.Duration) (*testServer, *refineLog) {
	t.Helper()
	img := screen.NewImage(image.Rect(0, 0, w, h))
	tightFillRect(img, img.Rect, 0x808080)
	img.CopyFrom(tightImgPhoto(w, h), image.Rect(0, 0, w, photoRows))
	desk := &memDesktop{Desktop: screentest.NewFrom(img)}
	sh := shadow.New(desk, shadow.Options{DetectScroll: true})
	log := &refineLog{}
	srv := &Server{Screen: sh, Name: "refine", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), onRefine: log.add, refineDelay: delay}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sh.Run(ctx) })
	wg.Go(func() { srv.Serve(ctx, ln) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return &testServer{desk: desk, srv: srv, addr: ln.Addr().String()}, log
}

// refineViewer drives a Client the way real viewers do: in the pull model
// it asks for the next update as soon as one has been read; with
// continuous updates it answers the server's fences.
type refineViewer struct {
	c          *Client
	continuous bool
	want       *screen.Image // what the viewer should end up showing, if known
}

func newRefineViewer(t testing.TB, ts *testServer, continuous bool, extra ...int32) *refineViewer {
	return dialRefineViewer(t, ts.addr, continuous, 5, extra...)
}

// dialRefineViewer connects a refineViewer to addr, asking for JPEG at
// quality level q, and for the encodings in extra too.
func dialRefineViewer(t testing.TB, addr string, continuous bool, q int32, extra ...int32) *refineViewer {
	t.Helper()
	encs := append([]int32{EncTight, EncCopyRect, EncJPEGQuality0 + q}, extra...)
	if continuous {
		encs = append(encs, EncContinuousUpdates, EncFence)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(nc, ClientConfig{Encodings: encs})
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	v := &refineViewer{c: c, continuous: continuous}
	if err := v.c.RequestUpdate(false, image.Rectangle{}); err != nil {
		t.Fatal(err)
	}
	return v
}

// read reads one message and answers it as the viewer would. It returns
// the message.
func (v *refineViewer) read(t testing.TB) Message {
	t.Helper()
	v.c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := v.c.ReadMessage()
	if err != nil {
		if v.want != nil {
			t.Fatalf("%v, with the viewer's picture not exact: %s", err, diffSummary(v.c.Framebuffer(), v.want))
		}
		t.Fatal(err)
	}
	switch {
	case m.Type == ServerEndOfContinuousUpdates && v.continuous:
		if err := v.c.EnableContinuousUpdates(true, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
	case m.Type == ServerFence && m.FenceFlags&fenceRequest != 0:
		if err := v.c.Fence(m.FenceFlags&^fenceRequest, m.FencePayload); err != nil {
			t.Fatal(err)
		}
	case m.Type == ServerFramebufferUpdate && !v.continuous:
		if err := v.c.RequestUpdate(true, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// TestServerRefinesToLossless sends a photo as JPEG and checks that, the
// screen being still, the viewer's picture becomes exact: without
// refinement it stays at JPEG's approximation for good.
func TestServerRefinesToLossless(t *testing.T) {
	for _, tc := range []struct {
		name       string
		continuous bool
		scroll     bool    // scroll the JPEG picture before it is refined
		private    []int32 // private lossless encodings the viewer names, as assist join does
		want       int32   // the encoding refinement comes in, 0 for Tight
	}{
		{"pull", false, false, nil, 0},
		{"continuous", true, false, nil, 0},
		{"pull, scrolled", false, true, nil, 0},
		{"continuous, scrolled", true, true, nil, 0},
		{"pull, private lossless", false, false, []int32{EncAssistLossless}, EncAssistLossless},
		{"continuous, scrolled, private lossless", true, true, []int32{EncAssistLossless}, EncAssistLossless},
		{"pull, private lossless FSE", false, false, []int32{EncAssistLosslessFSE}, EncAssistLosslessFSE},
		// A relay of this version names both: the newer wins.
		{"continuous, scrolled, both private", true, true, []int32{EncAssistLossless, EncAssistLosslessFSE}, EncAssistLosslessFSE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Scrolled, the photo moves over grey the viewer holds
			// exactly: the refinement must follow the pixels.
			photoRows := 240
			if tc.scroll {
				photoRows = 120
			}
			ts, log := startRefineServer(t, 320, 240, photoRows, 0)
			v := newRefineViewer(t, ts, tc.continuous, tc.private...)
			want := ts.desk.Snapshot()
			// The picture arrives, mostly as JPEG. (The first update
			// may come before the server's first capture: black.)
			for tightPSNR(want, v.c.Framebuffer(), want.Rect) < 25 {
				v.read(t)
			}
			if equalImages(v.c.Framebuffer(), want) {
				t.Fatal("the first update is already exact: the photo was not sent as JPEG")
			}
			if p := tightPSNR(want, v.c.Framebuffer(), want.Rect); p > 45 {
				t.Fatalf("the first update has a PSNR of %.1f dB: not JPEG at quality 5", p)
			}
			if tc.scroll {
				// The lossy picture moves by CopyRect: its refinement
				// must land where it went.
				ts.desk.Change(func(img *screen.Image) image.Rectangle {
					old := screen.NewImage(img.Rect)
					old.CopyFrom(img, img.Rect)
					for y := 80; y < 240; y++ {
						copy(img.Pix[img.PixOffset(0, y):img.PixOffset(0, y+1)], old.Pix[old.PixOffset(0, y-80):old.PixOffset(0, y-79)])
					}
					tightFillRect(img, image.Rect(0, 0, 320, 80), 0x204060)
					return img.Rect
				})
				want = ts.desk.Snapshot()
			}
			// Still screen: refinement follows without any change.
			v.want = want
			sawCopy := false
			var private []int32 // the private encodings that came
			deadline := time.Now().Add(10 * time.Second)
			for !equalImages(v.c.Framebuffer(), want) {
				if time.Now().After(deadline) {
					t.Fatalf("still screen never became exact: %s", diffSummary(v.c.Framebuffer(), want))
				}
				for _, r := range v.read(t).Rects {
					sawCopy = sawCopy || r.Encoding == EncCopyRect
					if (r.Encoding == EncAssistLossless || r.Encoding == EncAssistLosslessFSE) && !slices.Contains(private, r.Encoding) {
						private = append(private, r.Encoding)
					}
				}
			}
			if tc.want == 0 && len(private) > 0 || tc.want != 0 && !slices.Equal(private, []int32{tc.want}) {
				t.Errorf("private lossless rectangles came in %#x, want only %#x (the viewer named %#x)", private, tc.want, tc.private)
			}
			if len(log.events()) == 0 {
				t.Error("exact without a refinement rectangle")
			}
			if tc.scroll && !sawCopy {
				t.Error("the scroll came without CopyRect: the test does not test moving lossy pixels")
			}
		})
	}
}

// TestServerRefineSparesChangingArea changes one area of a photo at every
// update while the rest stays still: the still part becomes exact, and the
// changing area is never refined before it has been still for
// refineDelay.
func TestServerRefineSparesChangingArea(t *testing.T) {
	for _, continuous := range []bool{false, true} {
		name := "pull"
		if continuous {
			name = "continuous"
		}
		t.Run(name, func(t *testing.T) {
			// A long wait, so that no pause of a loaded machine between
			// two changes makes the changing area still for that long.
			const delay = 2 * time.Second
			ts, log := startRefineServer(t, 320, 240, 240, delay)
			// When each change began and ended: a loaded machine may pause
			// this loop longer than delay, and then refining the changing
			// area is right. The first picture counts as a change.
			changes := [][2]time.Time{{time.Now(), time.Now()}}
			v := newRefineViewer(t, ts, continuous)
			moving := image.Rect(64, 64, 192, 160)
			still := image.Rect(0, 176, 320, 240)
			change := func(i int) {
				began := time.Now()
				defer func() { changes = append(changes, [2]time.Time{began, time.Now()}) }()
				ts.desk.Change(func(img *screen.Image) image.Rectangle {
					rng := rand.New(rand.NewPCG(uint64(i), 9))
					for y := moving.Min.Y; y < moving.Max.Y; y++ {
						row := img.Pix[img.PixOffset(moving.Min.X, y):img.PixOffset(moving.Max.X, y)]
						for x := range row {
							row[x] = byte(rng.Uint32())
						}
					}
					return moving
				})
			}
			exactStill := func() bool {
				want := ts.desk.Snapshot()
				return equalImages(v.c.Framebuffer().SubImage(still), want.SubImage(still))
			}
			deadline := time.Now().Add(delay + 10*time.Second)
			updates := 0
			for i := 0; !exactStill() || updates < 30; i++ {
				if time.Now().After(deadline) {
					t.Fatalf("the still area never became exact while another changed (%d updates)", updates)
				}
				if m := v.read(t); m.Type == ServerFramebufferUpdate {
					updates++
					change(i)
				}
			}
			n, excused := 0, 0
			for _, e := range log.events() {
				if !e.r.Overlaps(moving) {
					continue
				}
				n++
				if gap := longestStill(changes, e.at); gap >= delay {
					excused++
					t.Logf("the changing area was refined at %v after it was still for %v (the machine paused this test)", e.r, gap.Round(time.Millisecond))
					continue
				}
				t.Errorf("the changing area was refined while it changed (still for at most %v before): %v", longestStill(changes, e.at).Round(time.Millisecond), e.r)
			}
			t.Logf("%d updates, %d refinements of the changing area (%d after a pause)", updates, n, excused)
		})
	}
}

// longestStill is the longest time the changing area was still before at,
// given when each change began and ended (in order): the gaps between
// changes that began by then, and the time since the last one ended.
func longestStill(changes [][2]time.Time, at time.Time) time.Duration {
	var longest time.Duration
	for i, c := range changes {
		if c[0].After(at) {
			break
		}
		end := at
		if i+1 < len(changes) && !changes[i+1][0].After(at) {
			end = changes[i+1][0]
		}
		longest = max(longest, end.Sub(c[1]))
	}
	return longest
}

// TestTightGradient round-trips every test image through the gradient
// filter that refinement uses, in every pixel format (it applies to
// 24-bit TPIXELs only; others fall back to the copy filter), and logs
// what it saves on each image against the copy filter.
func TestTightGradient(t *testing.T) {
	areas := []image.Rectangle{
		image.Rect(0, 0, 300, 200),  // whole image
		image.Rect(17, 9, 18, 10),   // one pixel
		image.Rect(3, 5, 10, 6),     // under 12 bytes of data
		image.Rect(40, 30, 237, 91), // odd sizes
	}
	for _, im := range tightImages {
		img := im.gen(300, 200)
		for _, f := range tightFormats {
			t.Run(im.name+"/"+f.name, func(t *testing.T) {
				sizes := [2]int{}
				for i, grad := range []bool{false, true} {
					enc := newTightEncoder()
					defer enc.close()
					enc.setQuality(-1)
					enc.gradient = grad
					dec := newTightDecoder()
					fb := tightNewImage(300, 200)
					for _, a := range areas {
						buf, n := enc.encode(nil, img, a, f.pf)
						sizes[i] += len(buf)
						rects := tightDecodeAll(t, dec, buf, n, fb, f.pf)
						tightCheckCover(t, rects, a)
						tightCompare(t, img, fb, a, f.pf)
					}
				}
				if f.name == "native" {
					t.Logf("copy filter %d bytes, gradient %d bytes", sizes[0], sizes[1])
				}
			})
		}
	}
}

// linkProxy forwards TCP connections to addr through an emulated link:
// each direction is serialised at rate bits per second and delivered
// delay later, with an unbounded queue before the bottleneck (as a home
// router's buffer). It returns the address to dial.
func linkProxy(tb testing.TB, addr string, rate float64, delay time.Duration) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Go(func() { linkPipe(s, c, rate, delay) })
			wg.Go(func() { linkPipe(c, s, rate, delay) })
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// linkPipe copies src to dst as one direction of linkProxy's link.
func linkPipe(dst, src net.Conn, rate float64, delay time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 1<<16)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer dst.Close()
		for c := range q {
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.b); err != nil {
				for range q {
				}
				return
			}
		}
	})
	var free time.Time // when the bottleneck has sent everything so far
	for {
		b := make([]byte, 1500)
		n, err := src.Read(b)
		if n > 0 {
			now := time.Now()
			free = later(free, now).Add(time.Duration(float64(8*n) / rate * float64(time.Second)))
			q <- chunk{b[:n], free.Add(delay)}
		}
		if err != nil {
			break
		}
	}
	close(q)
	wg.Wait()
}

// BenchmarkRefineLink measures, across emulated links, how long a still
// 640x480 photo takes to become exact at a viewer asking for JPEG quality
// 8 (as the benchmark does), and the bytes of its JPEG and of its
// refinement. Each run draws a new photo; -benchtime=3x is plenty:
//
//	go test -tags turbojpeg -run '^$' -bench RefineLink -benchtime 3x ./rfb/
func BenchmarkRefineLink(b *testing.B) {
	for _, link := range []struct {
		name  string
		rate  float64
		delay time.Duration // one way
	}{
		{"20Mbit-40ms", 20e6, 20 * time.Millisecond},
		{"5Mbit-60ms", 5e6, 30 * time.Millisecond},
	} {
		for _, mode := range []struct {
			name       string
			continuous bool
			extra      []int32
		}{
			{"pull", false, nil},
			{"continuous", true, nil},
			// As assist join's relay asks.
			{"continuous-private-lossless", true, []int32{EncAssistLossless}},
		} {
			b.Run(link.name+"/"+mode.name, func(b *testing.B) {
				ts, _ := startRefineServer(b, 1280, 800, 0, 0)
				v := dialRefineViewer(b, linkProxy(b, ts.addr, link.rate, link.delay), mode.continuous, 8, mode.extra...)
				if err := v.c.RequestUpdate(false, image.Rectangle{}); err != nil {
					b.Fatal(err)
				}
				for want := ts.desk.Snapshot(); !equalImages(v.c.Framebuffer(), want); {
					v.read(b)
				}
				area := image.Rect(320, 160, 960, 640)
				var lossyMS, exactMS, jpegKB, refineKB float64
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					pic := benchPhoto(area, uint64(i))
					t0 := time.Now()
					ts.desk.Change(func(img *screen.Image) image.Rectangle {
						img.CopyFrom(pic, area)
						return area
					})
					want := ts.desk.Snapshot()
					v.want = want
					shown := false // the whole photo has arrived, lossy or not
					for !equalImages(v.c.Framebuffer(), want) {
						m := v.read(b)
						if !shown {
							jpegKB += float64(m.Bytes) / 1024
							if tightPSNR(want, v.c.Framebuffer(), area) > 25 {
								shown = true
								lossyMS += float64(time.Since(t0)) / 1e6
							}
						} else {
							refineKB += float64(m.Bytes) / 1024
						}
					}
					exactMS += float64(time.Since(t0)) / 1e6
				}
				n := float64(b.N)
				b.ReportMetric(lossyMS/n, "ms-shown")
				b.ReportMetric(exactMS/n, "ms-exact")
				b.ReportMetric(jpegKB/n, "KB-jpeg")
				b.ReportMetric(refineKB/n, "KB-refine")
			})
		}
	}
}

// benchPhoto is a photo-like picture over r: smooth colours with the
// mild noise of a camera, different for every seed.
func benchPhoto(r image.Rectangle, seed uint64) *screen.Image {
	img := screen.NewImage(r)
	rng := rand.New(rand.NewPCG(seed, 3))
	w, h := float64(r.Dx()), float64(r.Dy())
	ph := float64(seed)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			fx, fy := float64(x-r.Min.X)/w, float64(y-r.Min.Y)/h
			n := func(v float64) byte { return byte(max(0, min(255, v+float64(rng.IntN(5)-2)))) }
			i := img.PixOffset(x, y)
			img.Pix[i+2] = n(128 + 100*math.Sin(6*fx+2*fy+ph))
			img.Pix[i+1] = n(128 + 100*math.Cos(5*fy-3*fx+ph))
			img.Pix[i] = n(128 + 90*math.Sin(9*fx*fy+1+ph))
		}
	}
	return img
}
