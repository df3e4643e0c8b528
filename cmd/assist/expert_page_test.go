package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"image"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The expert's page is one page (web/session) whichever way the expert
// came: `assist join`'s page on loopback or the server's web app.
// TestExpertPage drives both through a real session and checks they say
// the same words in every state, and that the special keys, 1:1 and
// fit-to-window, full screen, Request control and Give back control, chat
// and Leave work.

// pageWords is what the state line says in each state, for a page that
// knows the novice's name (%[1]s) and for one that does not ("them").
var pageWords = []struct{ state, named, unnamed string }{
	{"asking", "Waiting for %[1]s to allow you to see the screen…", "Waiting for them to allow you to see the screen…"},
	{"viewing", "%[1]s allowed you to see the screen", "They allowed you to see the screen"},
	{"control-asked", "Asking %[1]s for control of the mouse and keyboard…", "Asking them for control of the mouse and keyboard…"},
	{"controlling", "%[1]s allowed you to control the mouse and keyboard", "They allowed you to control the mouse and keyboard"},
	{"ended", "The session has ended. You left the session", "The session has ended. You left the session"},
}

// expertPage is one entry point's page in a session with a novice whose
// questions are answered on nov's stdin.
type expertPage struct {
	name   string // for screenshots
	ctx    context.Context
	status string // the page's status object, for failure messages
	who    string // the novice's name as the page knows it, or ""
	nov    *lab.LineProc
	d      *inputDesktop
	webApp bool
}

func TestExpertPage(t *testing.T) {
	e2e(t)
	t.Parallel()
	t.Run("assist join", func(t *testing.T) {
		d := newExpertPageDesktop(t)
		nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "ask")
		exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
		ctx := lab.StartChromium(t, 1280, 900)
		logConsole(t, ctx)
		bxRun(t, ctx, chromedp.Navigate(exp.Web))
		p := &expertPage{name: "join", ctx: ctx, status: "window.assistViewer", who: noviceName, nov: nov.LineProc, d: d}
		p.exercise(t)
		// The expert's Leave ends assist join.
		if code := exp.WaitExit(t, lineTimeout); code != 0 {
			t.Errorf("assist join exited with %d after Leave, want 0", code)
		}
	})
	t.Run("web app", func(t *testing.T) {
		needExpertApp(t)
		d := newExpertPageDesktop(t)
		nov, ctx := openExpertApp(t, d.Display)
		// A join by code: the page does not know the novice's name.
		p := &expertPage{name: "webapp", ctx: ctx, status: "window.assistExpertPage", nov: nov.LineProc, d: d, webApp: true}
		p.exercise(t)
		// Close leads back to the start page.
		p.click(t, "leave")
		p.wait(t, `!document.querySelector('[data-testid="home"]').hidden && document.querySelector('[data-testid="session"]').hidden`)
		p.shot(t, "home-after")
	})
}

// openExpertApp starts assist serve and a novice on display through it,
// and opens the novice's invitation in the expert's web app in Chromium,
// the expert's name already known to the page.
func openExpertApp(t *testing.T, display string) (*serverNovice, context.Context) {
	t.Helper()
	srv := startServe(t, t.TempDir())
	nov := startBrowserNovice(t, display, srv)
	ctx := startExpertChromium(t, spkiPin(t, srv))
	bxRun(t, ctx, chromedp.Navigate(srv.URL+"/"))
	bxWait(t, ctx, `window.assistExpertPage?.phase === "ready"`)
	bxEval[bool](t, ctx, `localStorage.setItem("assist.name", `+jsString(expertName)+`) ?? true`)
	bxRun(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(nov.BrowserURL))
	return nov, ctx
}

// newExpertPageDesktop is newConsentDesktop with a line of text in its
// xterm, typed on the desktop itself, for the 1:1 check.
func newExpertPageDesktop(t *testing.T) *inputDesktop {
	d := newConsentDesktop(t)
	c := d.term.Rect.Min.Add(image.Pt(20, 20))
	d.X.Xdotool(t, "mousemove", "--sync", fmt.Sprint(c.X), fmt.Sprint(c.Y))
	d.X.Type(t, "Pixel exact: 0O1lI| ~!@#$%")
	d.X.Xdotool(t, "mousemove", "--sync", "5", "5")
	return d
}

func (p *expertPage) exercise(t *testing.T) {
	p.wait(t, `document.querySelector('[data-testid="state"]')?.dataset.state === "asking"`)
	p.checkState(t, "asking")
	title := "Helping " + cmp.Or(p.who, "someone")
	if got := bxText(t, p.ctx, "title"); got != title {
		t.Errorf("title %q, want %q", got, title)
	}
	p.shot(t, "asking")

	p.nov.WaitLine(t, `^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	p.nov.Send(t, "y")
	p.wait(t, `document.querySelector('[data-testid="state"]').dataset.state === "viewing" && document.querySelector('[data-testid="screen"] canvas')?.width === 640`)
	p.checkState(t, "viewing")
	lab.WaitCanvas(t, p.ctx, `[data-testid="screen"] canvas`, p.d.X, lab.PatternBars(desktopSize), matchTimeout)
	p.wait(t, `document.querySelector('[data-testid="path"]').dataset.path === "direct"`)
	if got := bxText(t, p.ctx, "path"); got != "Connection: direct" {
		t.Errorf("the detail line says %q, want Connection: direct", got)
	}
	if !p.disabled(t, "keys") {
		t.Error("the special keys can be sent while only viewing")
	}
	p.shot(t, "viewing")

	// The clipboard panel comes with the right, not before.
	if p.visible(t, "clipboard-panel") {
		t.Error("the clipboard panel is shown before the clipboard is shared")
	}
	p.click(t, "request-clipboard")
	p.nov.WaitLine(t, `^`+expertName+` asks to share clipboards \(copy and paste between your computers\)\. Allow\? \[y/N\]$`, lineTimeout)
	p.nov.Send(t, "y")
	p.wait(t, `document.querySelector('[data-testid="clipboard-panel"]').offsetParent !== null`)
	if p.visible(t, "request-clipboard") {
		t.Error("the page still offers Share clipboard once it is shared")
	}
	p.shot(t, "clipboard")

	t.Run("1:1 and fit", func(t *testing.T) { p.checkScale(t) })
	t.Run("full screen", func(t *testing.T) { p.checkFullscreen(t) })

	p.click(t, "request-control")
	p.nov.WaitLine(t, `^`+expertName+` asks to control your mouse and keyboard\. Allow\? \[y/N\]$`, lineTimeout)
	p.wait(t, `document.querySelector('[data-testid="state"]').dataset.state === "control-asked"`)
	p.checkState(t, "control-asked")
	p.shot(t, "control-asked")
	p.nov.Send(t, "y")
	p.nov.WaitLine(t, `^state: controlling`, lineTimeout)
	p.wait(t, `document.querySelector('[data-testid="state"]').dataset.state === "controlling" && `+p.status+`.viewOnly === false`)
	p.checkState(t, "controlling")
	if !p.visible(t, "give-back-control") || p.visible(t, "request-control") {
		t.Error("while controlling, the page does not offer Give back control instead of Request control")
	}
	p.shot(t, "controlling")

	t.Run("special keys", func(t *testing.T) { p.checkSpecialKeys(t) })

	p.click(t, "give-back-control")
	p.nov.WaitLine(t, `^state: viewing`, lineTimeout)
	p.wait(t, `document.querySelector('[data-testid="state"]').dataset.state === "viewing" && `+p.status+`.viewOnly === true`)
	p.checkState(t, "viewing")
	if !p.visible(t, "request-control") || p.disabled(t, "request-control") || p.visible(t, "give-back-control") {
		t.Error("after giving control back, the page does not offer Request control again")
	}

	t.Run("chat", func(t *testing.T) {
		p.nov.Send(t, "say <b>hi</b> from Nova")
		from := cmp.Or(p.who, "Them")
		p.wait(t, `document.querySelector('[data-testid="chat-log"]').textContent.includes(`+jsString(from+":<b>hi</b> from Nova")+`)`)
		if n := bxEval[int](t, p.ctx, `document.querySelectorAll('[data-testid="chat-log"] b').length`); n != 0 {
			t.Error("the novice's chat line became HTML")
		}
		bxRun(t, p.ctx, chromedp.SendKeys(bxID("chat-input"), "hello from the page\r"))
		p.nov.WaitLine(t, `hello from the page$`, lineTimeout)
	})
	p.shot(t, "chat")

	p.click(t, "leave")
	p.wait(t, `document.querySelector('[data-testid="state"]').dataset.state === "ended"`)
	p.checkState(t, "ended")
	p.nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	if p.disabled(t, "chat-input") == false {
		t.Error("the chat is open after the session ended")
	}
	p.shot(t, "ended")
}

// checkState checks the state line against pageWords.
func (p *expertPage) checkState(t *testing.T, state string) {
	t.Helper()
	i := slices.IndexFunc(pageWords, func(w struct{ state, named, unnamed string }) bool { return w.state == state })
	want := pageWords[i].unnamed
	if p.who != "" {
		want = strings.ReplaceAll(pageWords[i].named, "%[1]s", p.who)
	}
	p.wait(t, `document.querySelector('[data-testid="state"]').textContent === `+jsString(want))
	for _, banned := range []string{"novice", "Novice", "punched"} {
		if body := bxEval[string](t, p.ctx, `document.body.innerText`); strings.Contains(body, banned) {
			i := strings.Index(body, banned)
			t.Errorf("in state %s the page says %q: …%s…", state, banned, body[max(0, i-60):min(len(body), i+60)])
		}
	}
}

// checkScale: fit-to-window scales the desktop (here up: the window is
// larger), 1:1 shows the xterm's text exactly as the X server has it, on
// the page's own pixels.
func (p *expertPage) checkScale(t *testing.T) {
	if got := bxEval[string](t, p.ctx, p.status+`.scale`); got != "fit" {
		t.Fatalf("scale %q at first, want fit", got)
	}
	if w := p.canvasBox(t).Dx(); w == desktopSize.X {
		t.Fatalf("fit-to-window shows the desktop at its own size (%d px wide) in a larger window", w)
	}
	term := p.d.term.Rect.Inset(2).Intersect(image.Rect(0, 0, desktopSize.X, desktopSize.Y))
	if n := p.screenDiff(t, term); n == 0 {
		t.Fatal("the scaled desktop matches the X screen pixel for pixel: the check below proves nothing")
	}
	p.click(t, "scale")
	p.wait(t, p.status+`.scale === "1:1"`)
	if got := bxText(t, p.ctx, "scale"); got != "Fit to window" {
		t.Errorf("in 1:1 the switch says %q, want Fit to window", got)
	}
	box := p.canvasBox(t)
	if box.Size() != desktopSize {
		t.Fatalf("1:1 shows the desktop in %v CSS pixels, want %v", box.Size(), desktopSize)
	}
	deadline := time.Now().Add(matchTimeout)
	for {
		n := p.screenDiff(t, term)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			p.saveDiff(t, term)
			t.Fatalf("in 1:1, %d pixels of the xterm's text differ from the X screen (canvas at %v)", n, p.canvasBox(t))
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.shot(t, "one-to-one")
	// The choice is remembered for the next session.
	if got := bxEval[string](t, p.ctx, `localStorage.getItem("assist.scale")`); got != "1:1" {
		t.Errorf("the scale is remembered as %q", got)
	}
	p.click(t, "scale")
	p.wait(t, p.status+`.scale === "fit"`)
}

// canvasBox is the desktop canvas's box on the page, in CSS pixels,
// rounded as Chromium snaps a box at a fraction of a pixel.
func (p *expertPage) canvasBox(t *testing.T) image.Rectangle {
	t.Helper()
	r := bxEval[[]float64](t, p.ctx, `(() => { const r = document.querySelector('[data-testid="screen"] canvas').getBoundingClientRect(); return [r.left, r.top, r.width, r.height].map(Math.round); })()`)
	return image.Rect(int(r[0]), int(r[1]), int(r[0]+r[2]), int(r[1]+r[3]))
}

// screenDiff counts the pixels of area (desktop coordinates) that the
// page shows differently from the X server, reading the page as the
// browser paints it, where the desktop's pixel (0,0) is drawn at the
// canvas's top left corner.
func (p *expertPage) screenDiff(t *testing.T, area image.Rectangle) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, lineTimeout)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	m, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	page := lab.FromImage(m)
	want := p.d.X.Screenshot(t)
	at := p.canvasBox(t).Min.Add(area.Min)
	if onPage := (image.Rectangle{Min: at, Max: at.Add(area.Size())}); !onPage.In(page.Rect) {
		t.Fatalf("the area %v at %v is not on the page %v", area, at, page.Rect)
	}
	n, _ := lab.Diff(want, area.Min, page, at, area.Size(), 0)
	return n
}

// saveDiff saves the page's and the X server's pictures of area.
func (p *expertPage) saveDiff(t *testing.T, area image.Rectangle) {
	ctx, cancel := context.WithTimeout(p.ctx, lineTimeout)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return
	}
	m, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		return
	}
	canvas, _ := lab.ReadCanvas(p.ctx, `[data-testid="screen"] canvas`)
	if canvas != nil {
		n, at := lab.Diff(p.d.X.Screenshot(t), area.Min, canvas, area.Min, area.Size(), 0)
		t.Logf("noVNC's canvas differs from the X screen in %d pixels of the area, first at %v", n, at)
		page := lab.FromImage(m)
		n, at = lab.Diff(canvas, area.Min, page, p.canvasBox(t).Min.Add(area.Min), area.Size(), 0)
		t.Logf("the page differs from noVNC's canvas in %d pixels of the area, first at %v", n, at)
	}
	lab.SaveArtifacts(t, map[string]*screen.Image{"page": lab.FromImage(m), "x": p.d.X.Screenshot(t), "canvas": canvas})
}

func (p *expertPage) checkFullscreen(t *testing.T) {
	p.click(t, "fullscreen")
	p.wait(t, p.status+`.fullscreen === true && document.fullscreenElement === document.querySelector('[data-testid="session-view"]')`)
	// The button follows fullscreenchange, which comes a frame later.
	p.wait(t, `document.querySelector('[data-testid="fullscreen"]').textContent === "Exit full screen"`)
	p.shot(t, "fullscreen")
	p.click(t, "fullscreen")
	p.wait(t, p.status+`.fullscreen === false && !document.fullscreenElement`)
	p.wait(t, `document.querySelector('[data-testid="fullscreen"]').textContent === "Full screen"`)
}

// checkSpecialKeys sends each special key from the menu and reads it in
// an X client on the novice's desktop that holds the focus.
func (p *expertPage) checkSpecialKeys(t *testing.T) {
	keys := p.d.X.StartKeyLog(t, image.Rect(20, 20, 220, 120))
	const (
		ctrl, alt, del, super, tab = 0xffe3, 0xffe9, 0xffff, 0xffeb, 0xff09
	)
	tests := []struct {
		id   string
		want []lab.KeyEvent
	}{
		{"ctrl-alt-del", []lab.KeyEvent{press(ctrl), press(alt), press(del), release(del), release(alt), release(ctrl)}},
		{"super", []lab.KeyEvent{press(super), release(super)}},
		{"alt-tab", []lab.KeyEvent{press(alt), press(tab), release(tab), release(alt)}},
	}
	for i, tt := range tests {
		keys.Reset()
		if tt.id == "alt-tab" {
			// By keyboard: Down opens the menu on its first item, Down
			// again twice, Enter sends.
			bxRun(t, p.ctx, chromedp.Focus(bxID("keys")), chromedp.KeyEvent(kb.ArrowDown))
			p.wait(t, `document.activeElement === document.querySelector('[data-testid="key-ctrl-alt-del"]')`)
			bxRun(t, p.ctx, chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown))
			p.wait(t, `document.activeElement === document.querySelector('[data-testid="key-alt-tab"]')`)
			bxRun(t, p.ctx, chromedp.KeyEvent(kb.Enter))
		} else {
			p.click(t, "keys")
			p.wait(t, `!document.querySelector('[data-testid="keys-menu"]').hidden`)
			if i == 0 {
				p.shot(t, "keys-menu")
			}
			p.click(t, "key-"+tt.id)
		}
		got := keys.Wait(t, len(tt.want), lineTimeout)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s reached the desktop as %v, want %v", tt.id, got, tt.want)
		}
		p.wait(t, `document.querySelector('[data-testid="keys-menu"]').hidden`)
	}
}

func press(keysym uint32) lab.KeyEvent   { return lab.KeyEvent{Press: true, Keysym: keysym} }
func release(keysym uint32) lab.KeyEvent { return lab.KeyEvent{Keysym: keysym} }

func (p *expertPage) click(t *testing.T, id string) {
	t.Helper()
	bxRun(t, p.ctx, chromedp.Click(bxID(id)))
}

func (p *expertPage) visible(t *testing.T, id string) bool {
	t.Helper()
	return bxEval[bool](t, p.ctx, fmt.Sprintf(`(() => { const e = document.querySelector('[data-testid=%q]'); return !!e && e.offsetParent !== null; })()`, id))
}

func (p *expertPage) disabled(t *testing.T, id string) bool {
	t.Helper()
	return bxEval[bool](t, p.ctx, fmt.Sprintf(`document.querySelector('[data-testid=%q]').disabled`, id))
}

func (p *expertPage) wait(t *testing.T, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, lineTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		status, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify(`+p.status+`) + " state line: " + document.querySelector('[data-testid="state"]')?.textContent`))
		t.Fatalf("page never got to %s: %v (%s)", expr, err, status)
	}
}

// shot saves a screenshot of the page as expert-page-ENTRY-STATE.png in
// $ASSIST_E2E_ARTIFACTS, if set.
func (p *expertPage) shot(t *testing.T, state string) {
	t.Helper()
	saveShot(t, p.ctx, "expert-page-"+p.name+"-"+state)
}
