package webview_test

import (
	"context"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/screen/x11"
	"github.com/assist-project/assist/shadow"
	"github.com/assist-project/assist/webview"
	"github.com/chromedp/chromedp"
)

// desktopBackend serves a real desktop: OpenDisplay dials an RFB server
// over loopback, as `assist join` reaches the novice's through its
// session.
type desktopBackend struct {
	addr     string
	controls chan struct{}
	chats    chan string
}

func (b *desktopBackend) OpenDisplay(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", b.addr)
}

func (b *desktopBackend) RequestClipboard(ctx context.Context) error { return nil }

func (b *desktopBackend) Leave(reason string) {}

func (b *desktopBackend) GiveBackControl(ctx context.Context) error { return nil }

func (b *desktopBackend) RequestControl(ctx context.Context) error {
	b.controls <- struct{}{}
	return nil
}

func (b *desktopBackend) SendChat(ctx context.Context, text string) error {
	b.chats <- text
	return nil
}

// TestBrowserViewer opens the viewer page in headless Chromium on a real
// desktop (Xvfb, captured by screen/x11, served by package rfb) and goes
// through a session: view, ask for control, chat, get control, end.
func TestBrowserViewer(t *testing.T) {
	needDesktopAndBrowser(t)
	size := image.Pt(640, 480)
	x := lab.StartXvfb(t, size.X, size.Y)
	x.HideCursor(t)
	x.ShowImage(t, lab.TestPattern(size.X, size.Y))

	b := &desktopBackend{
		addr:     serveDesktop(t, x.Display, nil, true),
		controls: make(chan struct{}, 4),
		chats:    make(chan string, 4),
	}
	s, pageURL, stopServe := serveViewer(t, b, "Alice")

	ctx := startChromium(t)
	run(t, ctx, chromedp.Navigate(pageURL))
	waitJS(t, ctx, `window.assistViewer?.rfb === "connected" && window.assistViewer?.events === "open"`)
	if got := text(t, ctx, "novice-name"); got != "Alice" {
		t.Errorf("header shows %q, want the novice's name", got)
	}

	// Viewing: the canvas shows the desktop; input stays local.
	s.Publish(webview.Event{Type: webview.EventState, State: webview.StateViewing, Text: "Alice is sharing her screen"})
	waitText(t, ctx, "state", "Alice allowed you to see the screen")
	waitJS(t, ctx, `document.querySelector('[data-testid="chat-log"]').textContent.includes("Alice is sharing her screen")`)
	waitPixels(t, ctx, x, lab.PatternBars(size))
	if viewOnly(t, ctx) != true {
		t.Error("noVNC sends input while only viewing")
	}

	// Request control.
	run(t, ctx, chromedp.Click(testid("request-control")))
	receive(t, b.controls, "Backend.RequestControl")
	s.Publish(webview.Event{Type: webview.EventState, State: webview.StateControlAsked})
	waitText(t, ctx, "state", "Asking Alice for control of the mouse and keyboard…")
	waitJS(t, ctx, `document.querySelector('[data-testid="request-control"]').disabled`)

	// Chat both ways.
	s.Publish(webview.Event{Type: webview.EventChat, Text: "I clicked Accept <b>now</b>"})
	waitJS(t, ctx, `document.querySelector('[data-testid="chat-log"]').textContent.includes("Alice:I clicked Accept <b>now</b>")`)
	run(t, ctx,
		chromedp.SendKeys(testid("chat-input"), "Thanks, I see it"),
		chromedp.Click(testid("chat-send")))
	if got := receive(t, b.chats, "Backend.SendChat"); got != "Thanks, I see it" {
		t.Errorf("Backend.SendChat got %q", got)
	}
	waitJS(t, ctx, `document.querySelector('[data-testid="chat-log"]').textContent.includes("You:Thanks, I see it")`)
	// Enter sends too.
	run(t, ctx, chromedp.SendKeys(testid("chat-input"), "second line\r"))
	if got := receive(t, b.chats, "Backend.SendChat"); got != "second line" {
		t.Errorf("Backend.SendChat got %q", got)
	}

	// Control granted: noVNC passes input on.
	s.Publish(webview.Event{Type: webview.EventState, State: webview.StateControlling})
	waitText(t, ctx, "state", "Alice allowed you to control the mouse and keyboard")
	waitJS(t, ctx, `window.assistViewer.viewOnly === false`)
	waitJS(t, ctx, `document.querySelector('[data-testid="request-control"]').disabled`)
	// A click on the scaled canvas lands on the same desktop point.
	target := image.Pt(size.X*3/8, size.Y*5/8)
	clickDesktop(t, ctx, size, target)
	waitPointer(t, x, target)
	savePage(t, ctx)

	// The end.
	s.Publish(webview.Event{Type: webview.EventEnded, Text: "Alice stopped sharing"})
	waitText(t, ctx, "state", "The session has ended. Alice stopped sharing")
	waitJS(t, ctx, `!document.querySelector('[data-testid="disconnected"]').hidden`)
	if got := text(t, ctx, "disconnected-reason"); !strings.Contains(got, "Alice stopped sharing") {
		t.Errorf("banner says %q", got)
	}
	waitJS(t, ctx, `window.assistViewer.viewOnly === true && document.querySelector('[data-testid="chat-input"]').disabled`)

	// assist join stopping closes the page's connections and tells the
	// expert.
	stopServe()
	waitJS(t, ctx, `window.assistViewer.events === "closed"`)
}

// TestBrowserViewerLostConnection checks the page says what happened
// when assist join goes away in the middle of a session.
func TestBrowserViewerLostConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	// No desktop: the page must still explain itself.
	b := &desktopBackend{addr: "127.0.0.1:1", controls: make(chan struct{}, 1), chats: make(chan string, 1)}
	s, pageURL, stopServe := serveViewer(t, b, "Bob")

	ctx := startChromium(t)
	run(t, ctx, chromedp.Navigate(pageURL))
	waitJS(t, ctx, `window.assistViewer?.events === "open"`)
	s.Publish(webview.Event{Type: webview.EventState, State: webview.StateViewing})
	waitText(t, ctx, "state", "Bob allowed you to see the screen")
	waitJS(t, ctx, `window.assistViewer.rfb === "disconnected"`)
	waitJS(t, ctx, `!document.querySelector('[data-testid="disconnected"]').hidden`)
	if got := text(t, ctx, "disconnected-reason"); !strings.Contains(got, "Disconnected") || !strings.Contains(got, "Bob") {
		t.Errorf("banner after losing the display says %q", got)
	}

	stopServe()
	waitJS(t, ctx, `window.assistViewer.events === "closed"`)
	got := text(t, ctx, "disconnected-reason") + " " + text(t, ctx, "disconnected-hint")
	if !strings.Contains(got, "assist join") {
		t.Errorf("banner after assist join stopped says %q", got)
	}
	waitJS(t, ctx, `document.querySelector('[data-testid="request-control"]').disabled && document.querySelector('[data-testid="chat-input"]').disabled`)
}

// clickDesktop clicks the canvas where it shows point p of a desktop of
// the given size; noVNC scales the canvas with CSS.
func clickDesktop(t *testing.T, ctx context.Context, size, p image.Point) {
	t.Helper()
	r := eval[[]float64](t, ctx, `(() => { const r = document.querySelector('[data-testid="screen"] canvas').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`)
	if len(r) != 4 || r[2] == 0 || r[3] == 0 {
		t.Fatalf("canvas box %v", r)
	}
	px := r[0] + (float64(p.X)+0.5)*r[2]/float64(size.X)
	py := r[1] + (float64(p.Y)+0.5)*r[3]/float64(size.Y)
	run(t, ctx, chromedp.MouseClickXY(px, py))
}

// waitPointer waits until the desktop's pointer is at p, give or take the
// rounding of the canvas's scale.
func waitPointer(t *testing.T, x *lab.X, p image.Point) {
	t.Helper()
	var at image.Point
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		at = x.Pointer(t)
		if d := at.Sub(p); d.X >= -2 && d.X <= 2 && d.Y >= -2 && d.Y <= 2 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the desktop's pointer is at %v after a click at %v in the page", at, p)
}

// savePage writes a screenshot of the page into $ASSIST_E2E_ARTIFACTS,
// if set, to look at the layout.
func savePage(t testing.TB, ctx context.Context) {
	t.Helper()
	savePageAs(t, ctx, "page")
}

// savePageAs is savePage into a file whose name ends in -name.png.
func savePageAs(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("ASSIST_E2E_ARTIFACTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, t.Name()+"-"+name+".png"), shot, 0o644)
	}
	if err != nil {
		t.Logf("page screenshot: %v", err)
	}
}

// serveViewer serves the viewer for b on loopback and returns the page's
// URL and a func that stops the server and waits for it (also run on
// cleanup).
func serveViewer(t testing.TB, b webview.Backend, novice string) (*webview.Server, string, func()) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := webview.New(b, webview.Options{NovicesName: novice, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Cleanup(stop)
	return s, s.URL(ln), stop
}

// needDesktopAndBrowser skips t in short mode (it starts Xvfb and
// Chromium) and when noVNC is not installed.
func needDesktopAndBrowser(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Xvfb and Chromium")
	}
	novnc := filepath.Join(lab.ModuleRoot(t), "web", "node_modules", "@novnc", "novnc", "core", "rfb.js")
	if _, err := os.Stat(novnc); err != nil {
		t.Skipf("noVNC is not installed (run `npm ci --prefix web`): %v", err)
	}
}

// serveDesktop serves the X display over RFB on loopback, as `assist vnc`
// does (taking input and the clipboard when control is set), with the
// server logging to log (nil: nowhere), and returns the address.
func serveDesktop(t *testing.T, display string, log *slog.Logger, control bool) string {
	t.Helper()
	d, err := x11.Open(display)
	if err != nil {
		t.Fatalf("open %s: %v", display, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	sh := shadow.New(d, shadow.Options{DetectScroll: true})
	srv := &rfb.Server{Screen: sh, Name: "Alice's desktop", Logger: log}
	if control {
		srv.Input, srv.Clipboard = d, d
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := sh.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("capture: %v", err)
		}
	})
	wg.Go(func() {
		if err := srv.Serve(ctx, ln); err != nil {
			t.Errorf("rfb: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		d.Close()
	})
	return ln.Addr().String()
}

// startChromium starts headless Chromium for the test and returns its
// tab's context, with the page's console going to the test log.
func startChromium(t testing.TB) context.Context {
	t.Helper()
	ctx := lab.StartChromium(t, 1280, 900)
	// The page's console goes into the log of a failed or verbose test.
	var mu sync.Mutex
	var console strings.Builder
	cctx, stopConsole := context.WithCancel(ctx)
	messages := chromedp.Console(cctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			fmt.Fprintf(&console, "%v\n", m)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stopConsole()
		<-done
		if t.Failed() || testing.Verbose() {
			mu.Lock()
			t.Logf("browser console:\n%s", console.String())
			mu.Unlock()
		}
	})
	return ctx
}

func testid(id string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, id)) }

func run(t testing.TB, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is true in the page.
func waitJS(t testing.TB, ctx context.Context, expr string) {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(pctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.assistViewer)`))
		t.Fatalf("page never got to %s: %v (assistViewer: %s)", expr, err, status)
	}
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return strings.TrimSpace(eval[string](t, ctx, fmt.Sprintf(`document.querySelector('[data-testid=%q]').textContent`, id)))
}

func waitText(t *testing.T, ctx context.Context, id, want string) {
	t.Helper()
	waitJS(t, ctx, fmt.Sprintf(`document.querySelector('[data-testid=%q]').textContent.trim() === %q`, id, want))
}

func viewOnly(t *testing.T, ctx context.Context) bool {
	t.Helper()
	return eval[bool](t, ctx, `window.assistViewer.viewOnly`)
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("%s was not called", what)
		var zero T
		return zero
	}
}

// waitPixels waits until the canvas shows the desktop's colours at pts.
// noVNC asks for JPEG (quality 6), so colours are compared with a
// tolerance, in flat areas where JPEG is close.
func waitPixels(t *testing.T, ctx context.Context, x *lab.X, pts []image.Point) {
	t.Helper()
	lab.WaitCanvas(t, ctx, `[data-testid="screen"] canvas`, x, pts, 30*time.Second)
}
