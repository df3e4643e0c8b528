package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The expert's web app when the novice's side ends things: takes control
// back, ends the session, stops Assist, or dies. Each test runs its own
// `assist serve`, `assist invite --server` and Chromium (see
// browser_expert_test.go for the happy path).

// browserSession is an expert's page in a session with a novice who
// allowed viewing.
type browserSession struct {
	d   *inputDesktop
	srv *servedProc
	nov *serverNovice
	ctx context.Context
}

// startBrowserSession starts everything and opens the invitation URL in
// the page, as an expert whose name the page remembers from an earlier
// visit; the novice allows viewing.
func startBrowserSession(t *testing.T) *browserSession {
	t.Helper()
	needExpertApp(t)
	b := &browserSession{d: newConsentDesktop(t), srv: startServe(t, t.TempDir())}
	b.nov = startBrowserNovice(t, b.d.Display, b.srv)
	b.ctx = startExpertChromium(t, spkiPin(t, b.srv))
	bxRun(t, b.ctx, chromedp.Navigate(b.srv.URL+"/"))
	bxWait(t, b.ctx, `window.assistExpertPage?.phase === "ready"`)
	bxEval[bool](t, b.ctx, `localStorage.setItem("assist.name", `+jsString(expertName)+`) ?? true`)
	bxRun(t, b.ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(b.nov.BrowserURL))
	b.admit(t)
	return b
}

// admit lets the page's expert see the screen once it asks.
func (b *browserSession) admit(t *testing.T) {
	t.Helper()
	b.nov.WaitLine(t, `^`+expertName+` connected from \S+ through the Assist server$`, lineTimeout)
	b.nov.WaitLine(t, `^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	bxWait(t, b.ctx, `window.assistExpertPage.phase === "session" && window.assistExpertPage.state === "asking"`)
	b.nov.Send(t, "y")
	b.nov.WaitLine(t, `^state: viewing`, lineTimeout)
	bxWait(t, b.ctx, `window.assistExpertPage.state === "viewing" && window.assistExpertPage.rfb === "connected"`)
}

// controlOffered reports whether the page offers to ask for control.
func (b *browserSession) controlOffered(t *testing.T) bool {
	t.Helper()
	return bxEval[bool](t, b.ctx, `(() => { const e = document.querySelector('[data-testid="request-control"]'); return !e.disabled && e.offsetParent !== null; })()`)
}

// reconnectOffered reports whether the page shows an enabled Reconnect.
func (b *browserSession) reconnectOffered(t *testing.T) bool {
	t.Helper()
	return bxEval[bool](t, b.ctx, `(() => { const e = document.querySelector('[data-testid="reconnect"]'); return !e.disabled && e.offsetParent !== null; })()`)
}

// novicePageURL is the "page:" line of the novice's assist invite.
func (b *browserSession) novicePageURL(t *testing.T) string {
	t.Helper()
	for _, l := range b.nov.Lines() {
		if u, ok := strings.CutPrefix(l, "page: "); ok {
			return u
		}
	}
	t.Fatalf("assist invite printed no page: line\noutput:\n%s", b.nov.Output())
	return ""
}

// TestBrowserExpertControlTakenBack: the novice gives control, then takes
// it back with Esc; the page goes back to viewing, sends no more input,
// and offers to ask for control again; asking again reaches the novice.
func TestBrowserExpertControlTakenBack(t *testing.T) {
	e2e(t)
	t.Parallel()
	b := startBrowserSession(t)
	if !b.controlOffered(t) {
		t.Fatal("while viewing, the page does not offer to ask for control")
	}
	bxRun(t, b.ctx, chromedp.Click(bxID("request-control")))
	b.nov.WaitLine(t, `^`+expertName+` asks to control your mouse and keyboard\. Allow\? \[y/N\]$`, lineTimeout)
	b.nov.Send(t, "y")
	b.nov.WaitLine(t, `^state: controlling`, lineTimeout)
	bxWait(t, b.ctx, `window.assistExpertPage.state === "controlling" && window.assistExpertPage.viewOnly === false`)
	if b.controlOffered(t) {
		t.Error("the page offers to ask for control while the expert has it")
	}

	b.nov.Send(t, "esc")
	b.nov.WaitLine(t, `^state: viewing`, lineTimeout)
	bxWait(t, b.ctx, `window.assistExpertPage.state === "viewing"`)
	if got := bxEval[string](t, b.ctx, `document.querySelector('[data-testid="state"]').dataset.state`); got != "viewing" {
		t.Errorf("the state badge says %q after the novice took control back, want viewing", got)
	}
	if !bxEval[bool](t, b.ctx, `window.assistExpertPage.viewOnly`) {
		t.Error("noVNC still sends input after the novice took control back")
	}
	if !b.controlOffered(t) {
		t.Error("after the novice took control back, the page does not offer to ask for it again")
	}
	if got := bxEval[string](t, b.ctx, `window.assistExpertPage.phase`); got != "session" {
		t.Errorf("phase %q after the novice took control back, want session (it goes on)", got)
	}

	bxRun(t, b.ctx, chromedp.Click(bxID("request-control")))
	b.nov.WaitLine(t, `^`+expertName+` asks to control your mouse and keyboard\. Allow\? \[y/N\]$`, lineTimeout)
	bxWait(t, b.ctx, `window.assistExpertPage.state === "control-asked"`)
	b.nov.Send(t, "n")
	b.nov.WaitLine(t, `^state: viewing`, lineTimeout)
	bxWait(t, b.ctx, `window.assistExpertPage.state === "viewing" && window.assistExpertPage.viewOnly`)
	if !b.controlOffered(t) {
		t.Error("after the novice refused control, the page does not offer to ask again")
	}
}

// TestBrowserExpertNoviceEnds: the novice ends the session on its page;
// the expert's page says so, with the reason, and offers Reconnect, which
// joins again with the same code (the novice is asked again). Then the
// novice ends it from the terminal ("end", which also withdraws the
// invitation): the page says so; Reconnect then fails clearly.
func TestBrowserExpertNoviceEnds(t *testing.T) {
	e2e(t)
	t.Parallel()
	b := startBrowserSession(t)
	if b.reconnectOffered(t) {
		t.Error("the page offers Reconnect during a session")
	}

	pg := dialNovicePage(t, b.novicePageURL(t))
	pg.send(t, map[string]any{"type": "end"})
	b.nov.WaitLine(t, `^session ended on the page$`, lineTimeout)
	bxWait(t, b.ctx, `window.assistExpertPage.phase === "ended"`)
	checkEnded(t, b, "the novice ended the session")
	bxSave(t, b.ctx)
	if !b.reconnectOffered(t) {
		t.Fatal("after the novice ended the session, the page does not offer to reconnect")
	}
	b.nov.WaitLine(t, `^waiting for your helper`, lineTimeout)

	bxRun(t, b.ctx, chromedp.Click(bxID("reconnect")))
	b.admit(t)
	if b.reconnectOffered(t) {
		t.Error("the page offers Reconnect during the new session")
	}
	if !bxEval[bool](t, b.ctx, `document.querySelector('[data-testid="error"]').hidden`) {
		t.Errorf("the new session still shows the last one's banner: %q", bxText(t, b.ctx, "error"))
	}

	b.nov.Send(t, "end")
	bxWait(t, b.ctx, `window.assistExpertPage.phase === "ended"`)
	checkEnded(t, b, "the novice ended the session")
	if !b.reconnectOffered(t) {
		t.Fatal("after the novice ended the session from the terminal, the page does not offer to reconnect")
	}
	if code := b.nov.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist invite exited with %d after end, want 0\noutput:\n%s", code, b.nov.Output())
	}

	// The novice's Assist is gone: joining again fails, and says why.
	bxRun(t, b.ctx, chromedp.Click(bxID("reconnect")))
	bxWait(t, b.ctx, `window.assistExpertPage.phase === "failed"`)
	kind := bxEval[string](t, b.ctx, `window.assistExpertPage.error.kind`)
	if kind != "offline" && kind != "unknown" {
		t.Errorf("reconnecting to a withdrawn invitation fails with %q, want the server's offline or unknown", kind)
	}
	if msg := bxText(t, b.ctx, "error-message"); !strings.Contains(msg, "not connected") && !strings.Contains(msg, "No invitation") {
		t.Errorf("reconnecting to a withdrawn invitation says %q", msg)
	}
}

// checkEnded checks the page's account of a session the novice ended.
func checkEnded(t *testing.T, b *browserSession, reason string) {
	t.Helper()
	if got := bxEval[string](t, b.ctx, `window.assistExpertPage.endReason`); got != reason {
		t.Errorf("end reason %q, want %q", got, reason)
	}
	if got := bxEval[string](t, b.ctx, `document.querySelector('[data-testid="state"]').dataset.state`); got != "ended" {
		t.Errorf("the state badge says %q, want ended", got)
	}
	// In the expert's words: "novice" is an audit word.
	wantContains(t, "the banner", bxText(t, b.ctx, "error-message"), "session has ended", "they ended the session")
	if got := bxEval[string](t, b.ctx, `window.assistExpertPage.state`); got != "ended" {
		t.Errorf("session state %q after the end, want ended", got)
	}
	if b.controlOffered(t) {
		t.Error("the page offers to ask for control after the session ended")
	}
}

// TestBrowserExpertNoviceDies: the novice's Assist is killed in a session;
// the page says the connection was lost, and offers Reconnect, which fails
// clearly while the novice's Assist is down.
func TestBrowserExpertNoviceDies(t *testing.T) {
	e2e(t)
	t.Parallel()
	b := startBrowserSession(t)
	if err := b.nov.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill assist invite: %v", err)
	}
	killed := time.Now()
	bxWait(t, b.ctx, `window.assistExpertPage.phase === "ended"`)
	t.Logf("the page said the connection was lost %v after the novice's Assist was killed", time.Since(killed).Round(100*time.Millisecond))
	if kind := bxEval[string](t, b.ctx, `window.assistExpertPage.error?.kind`); kind != "lost" {
		t.Errorf("error kind %q, want lost", kind)
	}
	wantContains(t, "the banner", bxText(t, b.ctx, "error-message"), "connection to the other computer was lost", "stopped")
	if got := bxEval[string](t, b.ctx, `document.querySelector('[data-testid="state"]').textContent`); got != "The connection to their computer was lost" {
		t.Errorf("the state line says %q, want The connection to their computer was lost", got)
	}
	if got := bxEval[string](t, b.ctx, `window.assistExpertPage.rfb`); got != "disconnected" {
		t.Errorf("noVNC is %q after the connection was lost, want disconnected", got)
	}
	bxSave(t, b.ctx)
	if !b.reconnectOffered(t) {
		t.Fatal("after the connection was lost, the page does not offer to reconnect")
	}
	bxRun(t, b.ctx, chromedp.Click(bxID("reconnect")))
	bxWait(t, b.ctx, `window.assistExpertPage.phase === "failed"`)
	// The server answers "unknown" for an invitation whose agent is not
	// connected, as for one that never was (issue 8).
	if kind := bxEval[string](t, b.ctx, `window.assistExpertPage.error.kind`); kind != "unknown" {
		t.Errorf("reconnecting while the novice's Assist is down fails with %q, want unknown", kind)
	}
}

// TestBrowserExpertDenied: after the novice says no, the page does not
// offer Reconnect at once: the button shows the time left and is
// disabled. A join during the novice's rest is refused in the novice's
// words and sets the wait the novice told; when it is over, Reconnect asks
// the novice again.
func TestBrowserExpertDenied(t *testing.T) {
	e2e(t)
	t.Parallel()
	needExpertApp(t)
	d := newConsentDesktop(t)
	srv := startServe(t, t.TempDir())
	// The rest after a no must outlast a fresh page's join on a loaded
	// machine (wasm, WebRTC): 5 s did not, in CI.
	nov := startBrowserNovice(t, d.Display, srv, "--deny-cooldown", "15s")
	ctx := startExpertChromium(t, spkiPin(t, srv))
	bxRun(t, ctx, chromedp.Navigate(srv.URL+"/"))
	bxWait(t, ctx, `window.assistExpertPage?.phase === "ready"`)
	bxEval[bool](t, ctx, `localStorage.setItem("assist.name", `+jsString(expertName)+`) ?? true`)
	bxRun(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(nov.BrowserURL))

	nov.WaitLine(t, `^`+expertName+` is connected through the server`, lineTimeout)
	nov.WaitLine(t, `^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	bxWait(t, ctx, `window.assistExpertPage.phase === "session" && window.assistExpertPage.state === "asking"`)
	nov.Send(t, "n")
	nov.WaitLine(t, `^you said no: for 15 seconds nobody can ask again`, lineTimeout)
	// The page assumes the default rest (2 minutes) and counts it down.
	bxWait(t, ctx, `window.assistExpertPage.phase === "ended" && window.assistExpertPage.reconnectIn > 60`)
	reconnect := `document.querySelector('[data-testid="reconnect"]')`
	if !bxEval[bool](t, ctx, reconnect+`.disabled && !`+reconnect+`.hidden`) {
		t.Error("right after the novice said no, Reconnect is not shown disabled")
	}
	if got := bxEval[string](t, ctx, reconnect+`.textContent`); !strings.HasPrefix(got, "Reconnect (in 1:") && !strings.HasPrefix(got, "Reconnect (in 2:") {
		t.Errorf("Reconnect says %q, want the time left", got)
	}
	if got := bxEval[string](t, ctx, `document.querySelector('[data-testid="error-hint"]').textContent`); !strings.Contains(got, "said no") {
		t.Errorf("the page's hint after a no: %q", got)
	}

	// A fresh page joins at once: the novice's side turns it away in
	// words, at no attempt's cost, and says how long to wait.
	bxRun(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(nov.BrowserURL))
	bxWait(t, ctx, `window.assistExpertPage?.phase === "failed" && window.assistExpertPage.error?.kind === "denied"`)
	if got := bxEval[string](t, ctx, `window.assistExpertPage.error.message`); !strings.HasPrefix(got, "The person you are helping said no. You can ask again in about ") {
		t.Errorf("the refused page says %q", got)
	}
	if n := bxEval[int](t, ctx, `window.assistExpertPage.reconnectIn`); n < 1 || n > 15 {
		t.Errorf("the page waits %d s after the novice's refusal, want the novice's 1-15 s", n)
	}
	bxWait(t, ctx, `window.assistExpertPage.reconnectIn === 0 && !`+reconnect+`.disabled && !`+reconnect+`.hidden`)
	bxRun(t, ctx, chromedp.Click(bxID("reconnect")))
	nov.WaitLine(t, `^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	bxWait(t, ctx, `window.assistExpertPage.phase === "session" && window.assistExpertPage.state === "asking"`)
	if strings.Contains(nov.Stderr(), "rendezvous: wrong password") {
		t.Errorf("a refused join cost an attempt:\n%s", nov.Stderr())
	}

	// The second no; the third closes the invitation, and the page offers
	// no Reconnect then.
	nov.Send(t, "n")
	nov.WaitLine(t, `^you said no: for 15 seconds nobody can ask again`, lineTimeout)
	bxRun(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(nov.BrowserURL))
	bxWait(t, ctx, `window.assistExpertPage?.phase === "failed" && window.assistExpertPage.error?.kind === "denied"`)
	bxWait(t, ctx, `window.assistExpertPage.reconnectIn === 0 && !`+reconnect+`.disabled && !`+reconnect+`.hidden`)
	bxRun(t, ctx, chromedp.Click(bxID("reconnect")))
	nov.WaitLine(t, `^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	bxWait(t, ctx, `window.assistExpertPage.phase === "session" && window.assistExpertPage.state === "asking"`)
	nov.Send(t, "n")
	bxWait(t, ctx, `window.assistExpertPage.phase === "ended" && !window.assistExpertPage.canReconnect`)
	if !bxEval[bool](t, ctx, reconnect+`.hidden`) {
		t.Error("after the third no, the page still shows Reconnect")
	}
	if got := bxEval[string](t, ctx, `window.assistExpertPage.endReason`); got != "novice declined; this invitation is now closed" {
		t.Errorf("the page's end reason: %q", got)
	}
	if code := nov.WaitExit(t, lineTimeout); code != 1 {
		t.Errorf("assist invite exited with %d after the third no, want 1", code)
	}
}
