package lab

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
)

// NoVNC is noVNC running in headless Chromium, connected to an RFB server
// through a WebSocket-to-TCP bridge in the test process.
type NoVNC struct {
	ctx context.Context
}

// StartChromium starts headless Chromium (w x h) with the flags that work
// on a machine without network or display, plus extra, and returns its
// tab's context.
// The browser stops in t.Cleanup, before t.TempDir removes its profile.
func StartChromium(t testing.TB, w, h int, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	exe := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.WindowSize(w, h),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first action on ctx starts the browser and ties its life to
	// ctx: it must not run under a shorter-lived context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("lab: start %s: %v", exe, err)
	}
	return ctx
}

// chromium returns the path of a Chromium or Chrome binary.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("lab: chromium is not installed")
	return ""
}

// StartNoVNC serves web/testpage and noVNC (web/node_modules, from `npm ci
// --prefix web`) on loopback with a WebSocket endpoint bridged to the RFB
// server at addr, opens the page in headless Chromium and waits until noVNC
// reports that it is connected.
func StartNoVNC(t testing.TB, addr string) *NoVNC {
	t.Helper()
	chromium(t) // skips now, before anything is started
	root := ModuleRoot(t)
	novncDir := filepath.Join(root, "web", "node_modules", "@novnc", "novnc")
	if _, err := os.Stat(filepath.Join(novncDir, "core", "rfb.js")); err != nil {
		t.Skipf("lab: noVNC is not installed (run `npm ci --prefix web`): %v", err)
	}

	bridgeCtx, stopBridges := context.WithCancel(context.Background())
	var bridges sync.WaitGroup
	mux := http.NewServeMux()
	mux.Handle("/novnc/", http.StripPrefix("/novnc/", http.FileServer(http.Dir(novncDir))))
	mux.Handle("/", http.FileServer(http.Dir(filepath.Join(root, "web", "testpage"))))
	mux.HandleFunc("/websockify", func(w http.ResponseWriter, r *http.Request) {
		bridges.Add(1)
		defer bridges.Done()
		if err := bridge(bridgeCtx, w, r, addr); err != nil {
			t.Logf("lab: novnc bridge: %v", err)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		stopBridges()
		srv.Close()
		bridges.Wait()
	})

	ctx := StartChromium(t, 1600, 1200)

	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/websockify"
	page := srv.URL + "/index.html?ws=" + url.QueryEscape(ws)
	startCtx, cancelStart := context.WithTimeout(ctx, 60*time.Second)
	defer cancelStart()
	if err := chromedp.Do(startCtx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("lab: novnc: open %s: %v", page, err)
	}
	var title string
	ok := waitFor(30*time.Second, func() bool {
		var err error
		if title, err = chromedp.Run(startCtx, chromedp.Title()); err != nil {
			title = err.Error()
			return false
		}
		return title == "connected"
	})
	if !ok {
		t.Fatalf("lab: novnc did not connect to %s: page title %q", addr, title)
	}
	return &NoVNC{ctx: ctx}
}

// bridge carries one WebSocket connection to a new TCP connection to addr.
func bridge(ctx context.Context, w http.ResponseWriter, r *http.Request, addr string) error {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	ws := websocket.NetConn(ctx, c, websocket.MessageBinary)
	defer ws.Close()
	tcp, err := net.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer tcp.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(tcp, ws); done <- struct{}{} }()
	go func() { _, _ = io.Copy(ws, tcp); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	// Closing both ends unblocks the other copy.
	ws.Close()
	tcp.Close()
	return nil
}

// Screen reads noVNC's canvas (as PNG, so losslessly); it fits WaitMatch.
func (n *NoVNC) Screen() (*screen.Image, image.Point, error) {
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	data, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`(() => { const c = document.querySelector('#screen canvas'); return c ? c.toDataURL('image/png') : ''; })()`))
	if err != nil {
		return nil, image.Point{}, fmt.Errorf("lab: novnc: read canvas: %w", err)
	}
	b64, ok := strings.CutPrefix(data, "data:image/png;base64,")
	if !ok {
		return nil, image.Point{}, fmt.Errorf("lab: novnc: no canvas (got %.40q)", data)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, image.Point{}, fmt.Errorf("lab: novnc: canvas data: %w", err)
	}
	m, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, image.Point{}, fmt.Errorf("lab: novnc: canvas png: %w", err)
	}
	return FromImage(m), image.Point{}, nil
}
