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
// a photo-like desktop.
func startRefineServer(t *testing.T, w, h int, delay time.Duration) (*testServer, *refineLog) {
	t.Helper()
	desk := newMemDesktop(w, h)
	desk.img.CopyFrom(tightImgPhoto(w, h), desk.img.Rect)
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
	for _, continuous := range []bool{false, true} {
		name := "pull"
		if continuous {
			name = "continuous"
		}
		t.Run(name, func(t *testing.T) {
			ts, log := startRefineServer(t, 320, 240, 0)
			v := newRefineViewer(t, ts, continuous)
			want := ts.desk.snapshot()
			// The first update is the whole screen, mostly JPEG.
			for {
				if m := v.read(t); m.Type == ServerFramebufferUpdate && len(m.Rects) > 0 {
					break
				}
			}
			if equalImages(v.c.Framebuffer(), want) {
				t.Fatal("the first update is already exact: the photo was not sent as JPEG")
			}
			if p := tightPSNR(want, v.c.Framebuffer(), want.Rect); p > 45 {
				t.Fatalf("the first update has a PSNR of %.1f dB: not JPEG at quality 5", p)
			}
			// Still screen: refinement follows without any change.
			deadline := time.Now().Add(10 * time.Second)
			for !equalImages(v.c.Framebuffer(), want) {
				if time.Now().After(deadline) {
					t.Fatalf("still screen never became exact: %s", diffSummary(v.c.Framebuffer(), want))
				}
				v.read(t)
			}
			if len(log.events()) == 0 {
				t.Error("exact without a refinement rectangle")
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
			ts, log := startRefineServer(t, 320, 240, delay)
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
