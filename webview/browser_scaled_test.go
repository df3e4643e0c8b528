package webview_test

import (
	"context"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/assist-project/assist/bench/workload"
	"github.com/assist-project/assist/h264"
	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/screen/x11"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/shadow"
)

// slowDesktopBackend serves a real desktop across a slow link, as an
// invited session does: each display stream is a session stream (package
// session's mux, paced by its own estimate of the path) through a
// bottleneck of a few Mbit/s, and the page gets it through the relay the
// pages get, which passes scaled rectangles on as they are.
type slowDesktopBackend struct {
	desktopBackend
	mux      *session.Mux
	wg       *sync.WaitGroup
	newRelay func() *rfb.Relay
	mu       sync.Mutex
	relays   []*rfb.Relay
}

func (b *slowDesktopBackend) OpenDisplay(ctx context.Context) (net.Conn, error) {
	st, err := b.mux.Open(ctx)
	if err != nil {
		return nil, err
	}
	rl := b.newRelay()
	b.mu.Lock()
	b.relays = append(b.relays, rl)
	b.mu.Unlock()
	page, viewer := net.Pipe()
	b.wg.Go(func() { rl.Run(viewer, st) })
	return page, nil
}

// passed counts the scaled rectangles the relays passed to the page.
func (b *slowDesktopBackend) passed() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for _, rl := range b.relays {
		n += rl.Passed()
	}
	return n
}

// slowSession is a desktop served across a slow link to the viewer page
// in headless Chromium.
type slowSession struct {
	x       *lab.X
	desk    *workload.Desktop
	backend *slowDesktopBackend
	page    context.Context // the browser tab's
	ctx     context.Context // done on cleanup
	// paths describes what the novice's side knows of the path.
	paths func() string
}

// startSlowSession serves an Xvfb desktop of size across a lab.SlowLink
// of mbits and rtt: the desktop's RFB server serves each session stream
// the expert's side opens, and the viewer page gets each through the
// relay newRelay makes. The page, in headless Chromium, has no
// WebCodecs' decoder: noVNC then offers no H.264, which the server would
// otherwise choose for video (on a loaded machine, before the area
// counted as moving for scaling). It returns once the page's noVNC is
// connected.
func startSlowSession(t testing.TB, size image.Point, mbits float64, rtt time.Duration, newRelay func() *rfb.Relay) *slowSession {
	t.Helper()
	x, desk := startPlainDesktop(t, size)
	d, err := x11.Open(x.Display)
	if err != nil {
		t.Fatal(err)
	}
	sh := shadow.New(d, shadow.Options{})
	srv := &rfb.Server{Screen: sh, Name: "Alice's desktop", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	_, expertEnd, noviceEnd := lab.NewSlowLink(t, mbits, rtt)
	expert := session.NewMux(expertEnd, session.MuxOptions{Opener: true})
	novice := session.NewMux(noviceEnd, session.MuxOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		expert.Close()
		novice.Close()
		wg.Wait()
		d.Close()
	})
	wg.Go(func() { sh.Run(ctx) })
	var streams struct {
		sync.Mutex
		all []*session.Channel
	}
	wg.Go(func() {
		for {
			st, err := novice.Accept(ctx)
			if err != nil {
				return
			}
			streams.Lock()
			streams.all = append(streams.all, st)
			streams.Unlock()
			wg.Go(func() { srv.ServeConn(ctx, st) })
		}
	})
	paths := func() string {
		streams.Lock()
		defer streams.Unlock()
		var b strings.Builder
		for _, st := range streams.all {
			ls := st.LinkStats()
			fmt.Fprintf(&b, " [rate %.2f Mbit/s, rtt %v, measured %v, paced %v]", ls.Rate*8/1e6, ls.RTT, ls.Measured, ls.Paced)
		}
		return b.String()
	}

	b := &slowDesktopBackend{
		desktopBackend: desktopBackend{controls: make(chan struct{}, 1), chats: make(chan string, 1)},
		mux:            expert,
		wg:             &wg,
		newRelay:       newRelay,
	}
	_, pageURL, _ := serveViewer(t, b, "Alice")
	bctx := startChromium(t)
	run(t, bctx, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: `delete window.VideoDecoder;`})
		return err
	}), chromedp.Navigate(pageURL))
	if eval[bool](t, bctx, `'VideoDecoder' in window`) {
		t.Fatal("the page has WebCodecs' VideoDecoder: noVNC would ask for H.264")
	}
	waitJS(t, bctx, `window.assistViewer?.rfb === "connected"`)
	return &slowSession{x: x, desk: desk, backend: b, page: bctx, ctx: ctx, paths: paths}
}

// TestBrowserViewerScaled: across a 3 Mbit/s link a video reaches the
// page's noVNC as half-size pictures (rfb's EncAssistScaled), which the
// page scales up itself (web/session/scaled.js): each band of the moving
// area on the canvas matches a frame drawn in the last second, which a
// picture drawn at the wrong size or place, or not drawn, would not. Once
// the video stops the area becomes exact, refined through the relay.
func TestBrowserViewerScaled(t *testing.T) {
	needDesktopAndBrowser(t)
	ss := startSlowSession(t, image.Pt(640, 480), 3, 40*time.Millisecond, func() *rfb.Relay {
		return rfb.NewRelay().PassingScaled()
	})
	x, desk, b, bctx, paths, ctx := ss.x, ss.desk, ss.backend, ss.page, ss.paths, ss.ctx

	// The video: smooth frames, so that a half-size JPEG of one is close
	// to it everywhere, each shifted from the last.
	area := image.Rect(64, 64, 448, 320)
	var mu sync.Mutex
	var newest *screen.Image
	drawn := make(map[*screen.Image]time.Time) // when each frame was last drawn
	// Made before: drawing must not take the CPU the server needs.
	cycle := make([]*screen.Image, 40)
	for i := range cycle {
		cycle[i] = wavePicture(area, i)
	}
	playCtx, stopPlay := context.WithCancel(ctx)
	played := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Second / 20)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-playCtx.Done():
				played <- nil
				return
			case <-tick.C:
			}
			f := cycle[i%len(cycle)]
			desk.PutImage(f)
			if err := desk.Sync(); err != nil {
				played <- err
				return
			}
			mu.Lock()
			newest = f
			drawn[f] = time.Now()
			mu.Unlock()
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopPlay()
			if err := <-played; err != nil {
				t.Errorf("drawing: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	// Scaled pictures reach the page and are drawn. (A loaded machine
	// may need a while to see the area as moving.)
	for deadline := time.Now().Add(time.Minute); eval[int](t, bctx, `window.assistViewer.scaled`) < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute of video the page drew %d scaled pictures (%d could not be decoded), the relay passed %d; the novice's streams:%s",
				eval[int](t, bctx, `window.assistViewer.scaled`), eval[int](t, bctx, `window.assistViewer.scaledFailed`), b.passed(), paths())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b.passed() == 0 {
		t.Fatal("the page drew scaled pictures, but the relay passed none")
	}
	t.Logf("the novice's streams:%s", paths())

	// Each 32-row band of the area on the canvas is one of the last
	// second's frames, within a lossy codec's tolerance.
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for matched := 0; matched < 3; {
		got, err := lab.ReadCanvas(bctx, `[data-testid="screen"] canvas`)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		var recent []*screen.Image
		for f, at := range drawn {
			if time.Since(at) < time.Second {
				recent = append(recent, f)
			}
		}
		mu.Unlock()
		worst := math.Inf(1)
		for y := area.Min.Y; y < area.Max.Y; y += 32 {
			band := image.Rect(area.Min.X, y, area.Max.X, y+32)
			best := 0.0
			for _, f := range recent {
				best = max(best, h264.PSNR(f, got, band))
			}
			worst = min(worst, best)
		}
		last = fmt.Sprintf("worst band at %.1f dB against the %d frames of the last second", worst, len(recent))
		if worst >= 28 {
			matched++
		} else if time.Now().After(deadline) {
			mu.Lock()
			lab.SaveArtifacts(t, map[string]*screen.Image{"got": got, "newest": newest})
			mu.Unlock()
			t.Fatalf("the canvas does not show the video: %s", last)
		}
	}
	t.Logf("canvas while playing: %s; %d scaled pictures drawn, %d passed",
		last, eval[int](t, bctx, `window.assistViewer.scaled`), b.passed())
	if n := eval[int](t, bctx, `window.assistViewer.scaledFailed`); n != 0 {
		t.Errorf("%d scaled pictures could not be decoded", n)
	}
	// The page says why the video looks blurred.
	if !eval[bool](t, bctx, reducedShown) {
		t.Error("while scaled pictures came, the page did not say that the picture is reduced")
	}
	savePageAs(t, bctx, "playing")

	// Still: exact.
	stop()
	mu.Lock()
	final := newest
	mu.Unlock()
	lab.WaitMatch(t, x, func() (*screen.Image, image.Point, error) {
		img, err := lab.ReadCanvas(bctx, `[data-testid="screen"] canvas`)
		return img, image.Point{}, err
	}, 0, 30*time.Second)
	if got := x.Screenshot(t); h264.PSNR(final, got, area) < 99 {
		t.Errorf("the X screen does not show the last frame drawn (PSNR %.1f dB)", h264.PSNR(final, got, area))
	}
	// And no longer says so (the line stays 2 s after the last one).
	for deadline := time.Now().Add(10 * time.Second); eval[bool](t, bctx, reducedShown); {
		if time.Now().After(deadline) {
			t.Fatal("the screen is still and exact, but the page still says that the picture is reduced")
		}
		time.Sleep(100 * time.Millisecond)
	}
	savePage(t, bctx)
}

// reducedShown is true while the session view says that the picture
// comes reduced (web/session/view.js).
const reducedShown = `(() => {
	const e = document.querySelector('[data-testid="reduced"]');
	return !!e && !e.hidden && e.textContent.startsWith('Slow connection');
})()`

// wavePicture is frame i of a smooth moving picture in area, which
// repeats every 40 frames.
func wavePicture(area image.Rectangle, i int) *screen.Image {
	img := screen.NewImage(area)
	phase := float64(i) * 2 * math.Pi / 40
	for y := area.Min.Y; y < area.Max.Y; y++ {
		for x := area.Min.X; x < area.Max.X; x++ {
			p := img.Pix[img.PixOffset(x, y):]
			fx, fy := float64(x-area.Min.X), float64(y-area.Min.Y)
			p[0] = byte(128 + 90*math.Sin(fx/37+phase))
			p[1] = byte(128 + 90*math.Sin(fy/29-phase))
			p[2] = byte(128 + 90*math.Sin((fx+fy)/53+2*phase))
		}
	}
	return img
}

// BenchmarkBrowserVideoSlowLink plays a 640x480 video at 30 frames a
// second in a 1280x800 desktop across a 5 Mbit/s, 60 ms link into the
// viewer page in headless Chromium, for 10 s after a 2 s warm-up, through
// each relay the pages have had, and reports the frames the page showed
// (a marker block in each frame, read from the canvas every 4 ms). Run
// it with -benchtime 1x; each run takes about 15 s.
//
//	go test -run XXX -bench BrowserVideoSlowLink -benchtime 1x ./webview
func BenchmarkBrowserVideoSlowLink(b *testing.B) {
	for _, tc := range []struct {
		name  string
		relay func() *rfb.Relay
	}{
		{"lossless only (the web app before)", func() *rfb.Relay {
			return rfb.NewRelayOffering(rfb.EncAssistLossless, rfb.EncAssistLosslessFSE)
		}},
		{"scaled made Raw (assist join's page before)", rfb.NewRelay},
		{"scaled passed", func() *rfb.Relay { return rfb.NewRelay().PassingScaled() }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			needDesktopAndBrowser(b)
			ss := startSlowSession(b, image.Pt(1280, 800), 5, 60*time.Millisecond, tc.relay)
			area := image.Rect(320, 160, 960, 640)
			marker := image.Rect(area.Min.X, area.Min.Y, area.Min.X+48, area.Min.Y+48)
			frames := make([]*screen.Image, 60)
			for i := range frames {
				f := workload.Scene(area.Dx(), area.Dy(), float64(i)/30, 3)
				f.Rect = area
				// The marker's state, i mod 8, as its three channels
				// full on or off.
				for y := marker.Min.Y; y < marker.Max.Y; y++ {
					for x := marker.Min.X; x < marker.Max.X; x++ {
						p := f.Pix[f.PixOffset(x, y):]
						for c := range 3 {
							p[c] = byte(255 * (i >> c & 1))
						}
					}
				}
				frames[i] = f
			}
			c := marker.Min.Add(image.Pt(24, 24))
			eval[bool](b, ss.page, fmt.Sprintf(`(() => {
				const g = document.querySelector('[data-testid="screen"] canvas').getContext('2d');
				let last = -1;
				window.benchShown = 0;
				setInterval(() => {
					const d = g.getImageData(%d, %d, 1, 1).data;
					const v = (d[0] > 127 ? 1 : 0) | (d[1] > 127 ? 2 : 0) | (d[2] > 127 ? 4 : 0);
					if (v !== last) { window.benchShown++; last = v; }
				}, 4);
				return true; })()`, c.X, c.Y))
			play := func(d time.Duration) int {
				tick := time.NewTicker(time.Second / 30)
				defer tick.Stop()
				n := 0
				for end := time.Now().Add(d); time.Now().Before(end); n++ {
					<-tick.C
					ss.desk.PutImage(frames[n%len(frames)])
					if err := ss.desk.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				return n
			}
			b.ResetTimer()
			for b.Loop() {
				play(2 * time.Second)
				before := eval[int](b, ss.page, `window.benchShown`)
				drawn := play(10 * time.Second)
				shown := eval[int](b, ss.page, `window.benchShown`) - before
				b.ReportMetric(float64(shown), "shown")
				b.ReportMetric(float64(drawn), "drawn")
				b.ReportMetric(float64(eval[int](b, ss.page, `window.assistViewer.scaled`)), "scaled")
				b.Logf("%s: %d of %d frames shown; the novice's path:%s", tc.name, shown, drawn, ss.paths())
			}
		})
	}
}
