package main

import (
	"context"
	"image"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/novicepage"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/shadow"
	"github.com/assist-project/assist/webview"
	"github.com/chromedp/chromedp"
)

// clipText is what goes through the clipboard: Latin-1 cannot carry it.
const clipText = "Grüße ✓ 你好"

// TestClipboardSession runs a real session (over net.Pipe) on a real X
// desktop, with the novice's terminal and page and an Extended Clipboard
// viewer on the expert's side, and checks the clipboard right both ways:
// with viewing only, nothing the novice copies (xclip on the desktop's
// CLIPBOARD) reaches the viewer and nothing the viewer pastes reaches the
// desktop; once the novice answers y to the expert's question, Unicode
// text goes both ways exactly; after the novice revokes with c nothing
// goes either way; after the page's toggle it goes again, and text copied
// while it was off is never sent.
func TestClipboardSession(t *testing.T) {
	if _, err := exec.LookPath("xclip"); err != nil {
		t.Skip("xclip is not installed (Debian package xclip)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x, logs, _, nov, exp := startClipSession(t, ctx)
	defer exp.Leave("test over")

	ui, out, pageURL := startTestUI(t, ctx, novicepage.Status{Code: "ABCD-EFGH", State: session.Waiting})
	pg := dialNovicePage(t, pageURL)
	ui.status.Expert = expertName
	quit := make(chan bool, 1)
	go func() { quit <- ui.runSession(nov, expertName, nil) }()
	defer func() {
		nov.End("test over")
		<-quit
	}()

	out.wait(t, "wants to see your screen")
	ui.con.keys <- key{kind: 'y'}
	waitExpertState(t, exp, session.Viewing)

	// The expert's viewer: announces the Extended Clipboard with no room
	// for unsolicited text, as noVNC does, so text is notified, requested
	// and provided.
	st, err := exp.OpenDisplay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := rfb.NewClient(st, rfb.ClientConfig{Encodings: []int32{rfb.EncRaw, rfb.EncExtendedClipboard}, ClipboardNotifyOnly: true})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	clips := make(chan string, 16)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			m, err := v.ReadMessage()
			if err != nil {
				return
			}
			if m.Type == rfb.ServerCutText && (m.ClipboardFlags == 0 || m.ClipboardFlags&(rfb.ClipboardProvide|rfb.ClipboardCaps) == rfb.ClipboardProvide) {
				clips <- m.Text
			}
		}
	}()
	defer func() {
		v.Close()
		<-readerDone
	}()
	refusals := 0
	// refused waits until the novice's RFB server refused to send the
	// desktop's clipboard once more: the text was seen and held back.
	refused := func(what string) {
		t.Helper()
		refusals++
		logs.waitCount(t, "clipboard text not sent: not allowed", refusals)
		select {
		case got := <-clips:
			t.Fatalf("%s: the expert's viewer got %q", what, got)
		default:
		}
	}
	dropped := uint64(0)
	// pasteRefused pastes text on the viewer and waits for the novice's
	// gate to drop it; the desktop's clipboard must not hold it.
	pasteRefused := func(text string) {
		t.Helper()
		if err := v.CutText(text); err != nil {
			t.Fatal(err)
		}
		dropped++
		waitFor(t, "the gate to drop the expert's clipboard", func() bool { return nov.Dropped().Clipboard >= dropped })
		if got := xclipGet(x); got == text {
			t.Fatalf("the expert's %q reached the desktop's clipboard without the right", text)
		}
	}

	// Viewing only.
	xclipSet(t, x, "copied while the expert only views: "+clipText)
	refused("viewing only")
	pasteRefused("pasted while only viewing: " + clipText)

	// The expert asks; the novice answers y on the terminal.
	if err := exp.RequestClipboard(ctx); err != nil {
		t.Fatal(err)
	}
	out.wait(t, expertName+" asks to share clipboards (copy and paste between your computers). Allow? [y/N]")
	pg.waitStatus(t, "the clipboard question", func(s novicepage.Status) bool {
		return s.Question != nil && s.Question.Right == "clipboard"
	})
	ui.con.keys <- key{kind: 'y'}
	out.wait(t, "clipboard: shared with "+expertName)
	pg.waitStatus(t, "clipboard shared", func(s novicepage.Status) bool { return s.Clipboard && s.Question == nil })

	// Both ways, exactly, and nothing from before the grant.
	xclipSet(t, x, clipText)
	if got := receive(t, clips, "the novice's clipboard"); got != clipText {
		t.Fatalf("the expert's viewer got %q, want %q (text copied before sharing must never be sent)", got, clipText)
	}
	fromExpert := "from the expert: " + clipText + "\nsecond line"
	if err := v.CutText(fromExpert); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the expert's text on the desktop's clipboard", func() bool { return xclipGet(x) == fromExpert })

	// The novice revokes with c: nothing either way.
	ui.con.keys <- key{kind: 'c'}
	out.wait(t, "clipboard: not shared: press c to share it")
	pg.waitStatus(t, "clipboard not shared", func(s novicepage.Status) bool { return !s.Clipboard })
	xclipSet(t, x, "copied after revoking")
	refused("revoked")
	pasteRefused("pasted after revoking")

	// The page's toggle shares it again: only what is copied from now on.
	pg.send(t, map[string]any{"type": "clipboard", "allow": true})
	pg.waitStatus(t, "clipboard shared again", func(s novicepage.Status) bool { return s.Clipboard })
	xclipSet(t, x, "copied after sharing again")
	if got := receive(t, clips, "the novice's clipboard"); got != "copied after sharing again" {
		t.Fatalf("the expert's viewer got %q, want the text copied after sharing again", got)
	}
}

// xclipSet puts text on the desktop's CLIPBOARD, owned by an xclip that
// serves one request (the novice agent's) and exits.
func xclipSet(t *testing.T, x *lab.X, text string) {
	t.Helper()
	cmd := exec.Command("xclip", "-selection", "clipboard", "-quiet", "-loops", "1", "-i")
	cmd.Env = append(os.Environ(), x.Env()...)
	cmd.Stdin = strings.NewReader(text)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// xclipGet returns the desktop's CLIPBOARD text, "" if nobody owns it.
func xclipGet(x *lab.X) string {
	cmd := exec.Command("xclip", "-selection", "clipboard", "-o")
	cmd.Env = append(os.Environ(), x.Env()...)
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(b)
}

// waitFor polls cond, which asks another process or goroutine, for 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s after 10 s", what)
	}
	panic("unreachable")
}

// waitCount waits until substr occurs n times in the output.
func (l *lockedLines) waitCount(t *testing.T, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		got := strings.Count(l.buf.String(), substr)
		l.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%q did not occur %d times", substr, n)
}

// TestClipboardBrowserViewer is the clipboard with a real viewer that
// speaks the Extended Clipboard: noVNC in Chromium, in the expert's
// browser viewer (webview, as assist join serves it), on a real session
// with a real X desktop. While the expert only views, what the novice
// copies does not reach the page; after Share clipboard and the novice's
// yes, Unicode text goes both ways exactly.
func TestClipboardBrowserViewer(t *testing.T) {
	if _, err := exec.LookPath("xclip"); err != nil {
		t.Skip("xclip is not installed (Debian package xclip)")
	}
	if _, err := os.Stat(filepath.Join(lab.ModuleRoot(t), "web", "node_modules", "@novnc", "novnc", "core", "rfb.js")); err != nil {
		t.Skipf("noVNC is not installed (run `npm ci --prefix web`): %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x, logs, log, nov, exp := startClipSession(t, ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	defer func() {
		nov.End("test over")
		<-nov.Done()
	}()
	defer exp.Leave("test over")

	web, err := webview.New(exp, webview.Options{NovicesName: "Alice", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pageURL := web.URL(ln)
	wg.Go(func() { web.Serve(ctx, ln) })
	// What assist join does with the novice's state updates.
	wg.Go(func() {
		for ev := range exp.Events() {
			if ev.IsChat {
				continue
			}
			web.Publish(webview.Event{Type: webview.EventState, State: pageState(ev.State), Text: ev.Reason,
				Clipboard: ev.Rights.Has(session.RightClipboard)})
		}
	})
	answer := func(right session.Rights, allow bool) session.Question {
		t.Helper()
		q := receive(t, nov.Questions(), "question")
		if q.Right != right {
			t.Fatalf("question for %v, want %v", q.Right, right)
		}
		if err := q.Answer(allow); err != nil {
			t.Fatal(err)
		}
		return q
	}
	answer(session.RightView, true)

	bctx := lab.StartChromium(t, 1024, 768)
	logConsole(t, bctx)
	bxRun(t, bctx, chromedp.Navigate(pageURL))
	wait := func(expr string) {
		t.Helper()
		pctx, cancel := context.WithTimeout(bctx, lineTimeout)
		defer cancel()
		full := `(() => { const s = window.assistViewer; return !!s && (` + expr + `); })()`
		if _, err := chromedp.Run(pctx, chromedp.Poll[bool](full, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			status, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`JSON.stringify(window.assistViewer)`))
			t.Fatalf("the viewer never got to %s: %v (assistViewer: %s)", expr, err, status)
		}
	}
	wait(`s.rfb === "connected" && s.state === "viewing"`)
	wait(`document.querySelector('[data-testid="clipboard-panel"]').hidden`)

	// Viewing only: the novice's server holds the text back.
	xclipSet(t, x, "copied while the expert only views")
	logs.waitCount(t, "clipboard text not sent: not allowed", 1)
	if got := bxEval[string](t, bctx, `window.assistViewer.clipboardText`); got != "" {
		t.Fatalf("the page got %q while only viewing", got)
	}

	// Share clipboard; the novice says yes.
	bxRun(t, bctx, chromedp.Click(bxID("request-clipboard")))
	q := answer(session.RightClipboard, true)
	if want := "\n" + expertName + " asks to share clipboards (copy and paste between your computers). Allow? [y/N]"; !strings.HasSuffix(q.Text(), want) {
		t.Errorf("question %q, want it to end in %q", q.Text(), want)
	}
	wait(`s.clipboard && !document.querySelector('[data-testid="clipboard-panel"]').hidden`)

	// Novice to expert: noVNC is notified, requests, and gets the text.
	xclipSet(t, x, clipText)
	wait(`s.clipboardText === ` + jsString(clipText))
	if got := bxEval[string](t, bctx, `document.querySelector('[data-testid="clipboard-received"]').value`); got != clipText {
		t.Errorf("the received box shows %q", got)
	}
	saveShot(t, bctx, "browser-viewer-clipboard")

	// Expert to novice: the paste box.
	fromExpert := "vom Experten: " + clipText
	bxRun(t, bctx,
		chromedp.SetValue(bxID("clipboard-text"), fromExpert),
		chromedp.Click(bxID("clipboard-send")))
	waitFor(t, "the page's text on the desktop's clipboard", func() bool { return xclipGet(x) == fromExpert })
}

// TestInviteJoinClipboard runs the binaries with TigerVNC's viewer, which
// speaks the Extended Clipboard, on a second X server: assist join
// --request-clipboard asks, the novice answers y on the terminal, and
// Unicode text copied on either desktop can be pasted on the other; after
// c on the novice's terminal, the expert's state says so.
func TestInviteJoinClipboard(t *testing.T) {
	e2e(t)
	if _, err := exec.LookPath("xclip"); err != nil {
		t.Skip("xclip is not installed (Debian package xclip)")
	}
	x := lab.StartXvfb(t, 320, 240)
	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view")
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile, "--request-clipboard"))
	nov.WaitLine(t, `^`+expertName+` asks to share clipboards \(copy and paste between your computers\)\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "y")
	nov.WaitLine(t, `^clipboard: shared with `+expertName, lineTimeout)
	exp.WaitLine(t, `^clipboard: shared by `+noviceName, lineTimeout)

	vx := lab.StartXvfb(t, viewerSize.X, viewerSize.Y)
	v := lab.StartTigerVNC(t, vx, exp.RFB, image.Pt(320, 240))
	v.Window.Focus(t)

	// Novice to expert: the viewer puts it on its own desktop's clipboard.
	xclipSet(t, x, clipText)
	waitFor(t, "the novice's text on the viewer's clipboard", func() bool { return xclipGet(vx) == clipText })

	// Expert to novice: copied on the viewer's desktop.
	fromExpert := "copied by the expert: " + clipText
	xclipServe(t, vx, fromExpert)
	waitFor(t, "the expert's text on the novice's clipboard", func() bool { return xclipGet(x) == fromExpert })

	nov.Send(t, "c")
	nov.WaitLine(t, `^clipboard: not shared`, lineTimeout)
	exp.WaitLine(t, `^clipboard: not shared`, lineTimeout)
	nov.Send(t, "end")
	exp.WaitLine(t, `^state: ended`, lineTimeout)
}

// xclipServe puts text on the CLIPBOARD of x, owned by an xclip that
// serves every request until the test ends.
func xclipServe(t *testing.T, x *lab.X, text string) {
	t.Helper()
	cmd := exec.Command("xclip", "-selection", "clipboard", "-quiet", "-i")
	cmd.Env = append(os.Environ(), x.Env()...)
	cmd.Stdin = strings.NewReader(text)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// startClipSession starts a real session on a new Xvfb desktop, whose
// clipboard xclip reaches: the novice's end (sharing that desktop) and
// the expert's, over a pipe, both logging to logs. The desktop and its
// capture stop in t.Cleanup, after ctx is cancelled.
func startClipSession(t *testing.T, ctx context.Context) (*lab.X, *lockedLines, *slog.Logger, *session.Novice, *session.Expert) {
	t.Helper()
	x := lab.StartXvfb(t, 320, 240)
	d, err := openDisplay(x.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	logs := new(lockedLines)
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sh := shadow.New(d, shadow.Options{})
	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	t.Cleanup(func() { stop(); wg.Wait() })
	wg.Go(func() { sh.Run(runCtx) })

	nc, ec := net.Pipe()
	nov, err := session.StartNovice(ctx, nc, expertName, session.NoviceConfig{
		Screen: sh, Input: d, Clipboard: d, DesktopName: "test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return x, logs, log, nov, session.StartExpert(ec, log)
}
