package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"image"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/server"
	"github.com/chromedp/chromedp"
)

// The end-to-end test of the expert's web app: `assist serve` serves it,
// `assist invite --server` shares an Xvfb desktop, and headless Chromium
// joins with the short code, as an expert with nothing but a browser
// would: WebRTC from the browser to the novice's pion, Assist's handshake
// and session in WebAssembly, the desktop in noVNC.

// TestBrowserExpert: a wrong code fails clearly and costs the novice
// nothing but the attempt; with the right code (from an invitation URL)
// the page shows nothing until the novice allows viewing, then the
// desktop; control once allowed, typing, chat both ways, leaving.
func TestBrowserExpert(t *testing.T) {
	e2e(t)
	t.Parallel()
	needExpertApp(t)
	d := newConsentDesktop(t)
	srv := startServe(t, t.TempDir())
	nov := startBrowserNovice(t, d.Display, srv)
	ctx := startExpertChromium(t, spkiPin(t, srv))

	t.Run("wrong code", func(t *testing.T) {
		bxRun(t, ctx, chromedp.Navigate(srv.URL+"/"))
		bxWait(t, ctx, `window.assistExpertPage?.phase === "ready"`)
		bad := fmt.Sprintf("%d-%s-%s", nov.Lookup, nov.Words[0], otherWord(nov.Words[1]))
		bxRun(t, ctx,
			chromedp.SendKeys(bxID("name"), expertName),
			chromedp.SendKeys(bxID("code"), bad),
			chromedp.Click(bxID("connect")))
		bxWait(t, ctx, `window.assistExpertPage.phase === "failed"`)
		if kind := bxEval[string](t, ctx, `window.assistExpertPage.error.kind`); kind != "wrong-password" {
			t.Errorf("error kind %q, want wrong-password (the novice's verdict)", kind)
		}
		msg := bxText(t, ctx, "error-message") + " " + bxText(t, ctx, "error-hint")
		wantContains(t, "wrong code", msg, "wrong code", "4 tries left", "check the two words")
		(&novice{LineProc: nov.LineProc}).stillWaiting(t)
	})

	t.Run("unknown code", func(t *testing.T) {
		bxRun(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(srv.URL+"/"))
		bxWait(t, ctx, `window.assistExpertPage?.phase === "ready"`)
		unknown := fmt.Sprintf("%d-%s-%s", nov.Lookup%9999+1, nov.Words[0], nov.Words[1])
		bxRun(t, ctx, chromedp.SendKeys(bxID("code"), unknown), chromedp.Click(bxID("connect")))
		bxWait(t, ctx, `window.assistExpertPage.phase === "failed"`)
		if kind := bxEval[string](t, ctx, `window.assistExpertPage.error.kind`); kind != "unknown" {
			t.Errorf("error kind %q, want the server's unknown", kind)
		}
		wantContains(t, "unknown code", bxText(t, ctx, "error-message"), "no invitation")
	})

	// The invitation URL connects at once; the name comes from the
	// first attempt, remembered by the page.
	bxRun(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(nov.BrowserURL))
	nov.WaitLine(t, `^`+expertName+` connected from \S+ through the Assist server$`, lineTimeout)
	nov.WaitLine(t, `^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	bxWait(t, ctx, `window.assistExpertPage.phase === "session" && window.assistExpertPage.state === "asking"`)
	if hash := bxEval[string](t, ctx, `location.hash`); hash != "" {
		t.Errorf("the code stays in the address bar: %q", hash)
	}
	// Both ends are on this machine: no NAT in between, whichever pair
	// ICE selects (see web/expert/path.js).
	bxWait(t, ctx, `window.assistExpertPage.path !== ""`)
	if path, pair := bxEval[string](t, ctx, `window.assistExpertPage.path`), bxEval[string](t, ctx, `window.assistExpertPage.pathPair`); path != "direct" {
		t.Errorf("path %q (candidates %s) on loopback, want direct", path, pair)
	}

	t.Run("nothing before consent", func(t *testing.T) {
		// The page opens no display stream before the novice says yes.
		// (The novice's side would not answer one anyway: see
		// TestInviteJoin.)
		time.Sleep(time.Second)
		if got := bxEval[bool](t, ctx, `!document.querySelector('[data-testid="screen"] canvas') && window.assistExpertPage.rfb === "none"`); !got {
			t.Error("the page shows a desktop before the novice allowed viewing")
		}
	})

	nov.Send(t, "y")
	nov.WaitLine(t, `^state: viewing`, lineTimeout)
	bxWait(t, ctx, `window.assistExpertPage.state === "viewing" && window.assistExpertPage.rfb === "connected"`)
	t.Run("desktop", func(t *testing.T) {
		bxWaitPixels(t, ctx, d.X, append(lab.PatternBars(desktopSize), image.Pt(600, 20), image.Pt(20, 460)))
		if !bxEval[bool](t, ctx, `window.assistExpertPage.viewOnly`) {
			t.Error("noVNC sends input while only viewing")
		}
		if path := bxEval[string](t, ctx, `document.querySelector('[data-testid="path"]').dataset.path`); path != "direct" {
			t.Errorf("the page's detail line is for path %q, want direct", path)
		}
		if line := bxText(t, ctx, "path"); line != "Connection: direct" {
			t.Errorf("the page's detail line says %q, want Connection: direct", line)
		}
	})

	// While only viewing: the clipboard is a right of its own.
	t.Run("clipboard", func(t *testing.T) {
		if _, err := exec.LookPath("xclip"); err != nil {
			t.Skip("xclip is not installed (Debian package xclip)")
		}
		bxRun(t, ctx, chromedp.Click(bxID("request-clipboard")))
		nov.WaitLine(t, `^`+expertName+` asks to share clipboards \(copy and paste between your computers\)\. Allow\? \[y/N\]$`, lineTimeout)
		nov.Send(t, "y")
		nov.WaitLine(t, `^clipboard: shared with `+expertName, lineTimeout)
		bxWait(t, ctx, `window.assistExpertPage.clipboard === true && window.assistExpertPage.viewOnly`)
		xclipSet(t, d.X, clipText)
		bxWait(t, ctx, `window.assistExpertPage.clipboardText === `+jsString(clipText))
		fromBrowser := "from the browser: " + clipText
		bxRun(t, ctx, chromedp.SetValue(bxID("clipboard-text"), fromBrowser), chromedp.Click(bxID("clipboard-send")))
		waitFor(t, "the browser's text on the desktop's clipboard", func() bool { return xclipGet(d.X) == fromBrowser })
	})

	bxRun(t, ctx, chromedp.Click(bxID("request-control")))
	nov.WaitLine(t, `^`+expertName+` asks to control your mouse and keyboard\. Allow\? \[y/N\]$`, lineTimeout)
	bxWait(t, ctx, `window.assistExpertPage.state === "control-asked"`)
	nov.Send(t, "y")
	nov.WaitLine(t, `^state: controlling`, lineTimeout)
	bxWait(t, ctx, `window.assistExpertPage.state === "controlling" && window.assistExpertPage.viewOnly === false`)

	t.Run("typing", func(t *testing.T) {
		inTerm := image.Pt(340, 320) // in newConsentDesktop's xterm
		bxClickDesktop(t, ctx, desktopSize, inTerm)
		deadline := time.Now().Add(lineTimeout)
		for d.Pointer(t) != inTerm {
			if time.Now().After(deadline) {
				t.Fatalf("the desktop's pointer is at %v after a click at %v in the page", d.Pointer(t), inTerm)
			}
			time.Sleep(50 * time.Millisecond)
		}
		bxRun(t, ctx, chromedp.KeyEvent("typed in the browser\r"))
		d.waitTyped(t, "typed in the browser\n")
	})

	t.Run("chat", func(t *testing.T) {
		nov.Send(t, "say hi from the novice")
		bxWait(t, ctx, `document.querySelector('[data-testid="chat-log"]').textContent.includes("Them:hi from the novice")`)
		bxRun(t, ctx, chromedp.SendKeys(bxID("chat-input"), "hello from the browser\r"))
		nov.WaitLine(t, `^`+expertName+`: hello from the browser$`, lineTimeout)
	})
	bxSave(t, ctx)

	bxRun(t, ctx, chromedp.Click(bxID("leave")))
	bxWait(t, ctx, `window.assistExpertPage.phase === "ended"`)
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	for _, s := range []string{nov.Stderr(), srv.stderr.String()} {
		if strings.Contains(s, nov.Password) {
			t.Errorf("the code's words appear in a log line:\n%s", s)
		}
	}
	stop(t, nov.LineProc, "assist invite")
}

// needExpertApp skips t unless the expert's web app is built, with noVNC.
func needExpertApp(t *testing.T) {
	t.Helper()
	root := lab.ModuleRoot(t)
	if _, err := os.Stat(filepath.Join(root, "web", "expert", "assist.wasm.gz")); err != nil {
		t.Skipf("the expert's web app is not built (run scripts/setup.sh): %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "web", "node_modules", "@novnc", "novnc", "core", "rfb.js")); err != nil {
		t.Skipf("noVNC is not installed (run scripts/setup.sh): %v", err)
	}
}

// startBrowserNovice runs `assist invite --server` asking the novice for
// every permission (answered on stdin).
func startBrowserNovice(t *testing.T, display string, srv *servedProc, more ...string) *serverNovice {
	t.Helper()
	n := &serverNovice{File: filepath.Join(t.TempDir(), "help.assist")}
	n.LineProc = lab.StartLines(t, nil, lab.AssistBinary(t), append([]string{"invite", "--server", srv.URL,
		"--server-fingerprint", srv.Fingerprint, "--file", n.File, "--display", display, "--name", noviceName,
		"--listen", "127.0.0.1:0", "--no-portmap", "--allow", "ask"}, more...)...)
	m := n.WaitLine(t, `^code: (([0-9]+)-([a-z]+)-([a-z]+))$`, lineTimeout)
	n.Code, n.Words = m[1], [2]string{m[3], m[4]}
	fmt.Sscan(m[2], &n.Lookup)
	n.Password = n.Words[0] + "-" + n.Words[1]
	n.BrowserURL = n.WaitLine(t, `^browser: (https://\S+)$`, lineTimeout)[1]
	if want := srv.URL + "/#" + n.Code; n.BrowserURL != want {
		t.Fatalf("browser: line says %s, want %s", n.BrowserURL, want)
	}
	n.WaitLine(t, `^waiting for your helper`, lineTimeout)
	return n
}

// spkiPin returns the base64 SHA-256 of the server certificate's public
// key, for Chromium's --ignore-certificate-errors-spki-list: the browser
// then trusts exactly that self-signed certificate.
func spkiPin(t *testing.T, srv *servedProc) string {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", u.Host, server.PinnedTLSConfig(srv.Fingerprint))
	if err != nil {
		t.Fatalf("connect to assist serve: %v", err)
	}
	defer c.Close()
	sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// startExpertChromium starts headless Chromium trusting the server's
// certificate by its key, with WebRTC allowed on loopback (both ends are
// on this machine) and host candidates not hidden behind mDNS names. The
// page's console goes into the log of a failed or verbose test.
func startExpertChromium(t *testing.T, spki string) context.Context {
	t.Helper()
	ctx := lab.StartChromium(t, 1280, 900,
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	)
	logConsole(t, ctx)
	return ctx
}

func bxID(id string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, id)) }

func bxRun(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, lineTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

func bxEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, lineTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// bxWait waits until a JavaScript expression is true in the page.
func bxWait(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, lineTimeout)
	defer cancel()
	if _, err := chromedp.Run(pctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.assistExpertPage)`))
		t.Fatalf("page never got to %s: %v (assistExpertPage: %s)", expr, err, status)
	}
}

func bxText(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return strings.TrimSpace(bxEval[string](t, ctx, fmt.Sprintf(`document.querySelector('[data-testid=%q]').textContent`, id)))
}

// bxClickDesktop clicks the canvas where it shows point p of a desktop of
// the given size; noVNC scales the canvas with CSS.
func bxClickDesktop(t *testing.T, ctx context.Context, size, p image.Point) {
	t.Helper()
	r := bxEval[[]float64](t, ctx, `(() => { const r = document.querySelector('[data-testid="screen"] canvas').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`)
	if len(r) != 4 || r[2] == 0 || r[3] == 0 {
		t.Fatalf("canvas box %v", r)
	}
	px := r[0] + (float64(p.X)+0.5)*r[2]/float64(size.X)
	py := r[1] + (float64(p.Y)+0.5)*r[3]/float64(size.Y)
	bxRun(t, ctx, chromedp.MouseClickXY(px, py))
}

// bxWaitPixels waits until the canvas is the desktop's size and shows its
// colours at pts. noVNC asks for JPEG, so colours are compared with a
// tolerance, in flat areas where JPEG is close.
func bxWaitPixels(t *testing.T, ctx context.Context, x *lab.X, pts []image.Point) {
	t.Helper()
	lab.WaitCanvas(t, ctx, `[data-testid="screen"] canvas`, x, pts, matchTimeout)
}

// bxSave writes a screenshot of the page into $ASSIST_E2E_ARTIFACTS, if
// set, to look at the layout.
func bxSave(t *testing.T, ctx context.Context) {
	t.Helper()
	dir := os.Getenv("ASSIST_E2E_ARTIFACTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, lineTimeout)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-page.png"), shot, 0o644)
	}
	if err != nil {
		t.Logf("page screenshot: %v", err)
	}
}
