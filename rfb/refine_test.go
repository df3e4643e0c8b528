package rfb

import (
	"context"
	"image"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
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
func startRefineServer(t *testing.T, w, h, photoRows int, delay time.Duration) (*testServer, *refineLog) {
	t.Helper()
	desk := newMemDesktop(w, h)
	tightFillRect(desk.img, desk.img.Rect, 0x808080)
	desk.img.CopyFrom(tightImgPhoto(w, h), image.Rect(0, 0, w, photoRows))
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

func newRefineViewer(t *testing.T, ts *testServer, continuous bool) *refineViewer {
	t.Helper()
	encs := []int32{EncTight, EncCopyRect, EncJPEGQuality0 + 5}
	if continuous {
		encs = append(encs, EncContinuousUpdates, EncFence)
	}
	v := &refineViewer{c: ts.dial(t, ClientConfig{Encodings: encs}), continuous: continuous}
	if err := v.c.RequestUpdate(false, image.Rectangle{}); err != nil {
		t.Fatal(err)
	}
	return v
}

// read reads one message and answers it as the viewer would. It returns
// the message.
func (v *refineViewer) read(t *testing.T) Message {
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
		scroll     bool // scroll the JPEG picture before it is refined
	}{
		{"pull", false, false},
		{"continuous", true, false},
		{"pull, scrolled", false, true},
		{"continuous, scrolled", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Scrolled, the photo moves over grey the viewer holds
			// exactly: the refinement must follow the pixels.
			photoRows := 240
			if tc.scroll {
				photoRows = 120
			}
			ts, log := startRefineServer(t, 320, 240, photoRows, 0)
			v := newRefineViewer(t, ts, tc.continuous)
			want := ts.desk.snapshot()
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
				ts.desk.change(func(img *screen.Image) image.Rectangle {
					old := screen.NewImage(img.Rect)
					old.CopyFrom(img, img.Rect)
					for y := 80; y < 240; y++ {
						copy(img.Pix[img.PixOffset(0, y):img.PixOffset(0, y+1)], old.Pix[old.PixOffset(0, y-80):old.PixOffset(0, y-79)])
					}
					tightFillRect(img, image.Rect(0, 0, 320, 80), 0x204060)
					return img.Rect
				})
				want = ts.desk.snapshot()
			}
			// Still screen: refinement follows without any change.
			v.want = want
			sawCopy := false
			deadline := time.Now().Add(10 * time.Second)
			for !equalImages(v.c.Framebuffer(), want) {
				if time.Now().After(deadline) {
					t.Fatalf("still screen never became exact: %s", diffSummary(v.c.Framebuffer(), want))
				}
				for _, r := range v.read(t).Rects {
					sawCopy = sawCopy || r.Encoding == EncCopyRect
				}
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
			v := newRefineViewer(t, ts, continuous)
			moving := image.Rect(64, 64, 192, 160)
			still := image.Rect(0, 176, 320, 240)
			change := func(i int) {
				ts.desk.change(func(img *screen.Image) image.Rectangle {
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
				want := ts.desk.snapshot()
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
			n := 0
			for _, e := range log.events() {
				if e.r.Overlaps(moving) {
					n++
					t.Errorf("the changing area was refined while it changed: %v", e.r)
				}
			}
			t.Logf("%d updates, %d refinements of the changing area", updates, n)
		})
	}
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
