package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// newWebOrg is newOrgSetup with a Chromium for the expert's web app: it
// returns the setup, the site (the server by the name passkeys work for)
// and the browser's context.
func newWebOrg(t *testing.T) (*orgSetup, string, context.Context) {
	t.Helper()
	o := newOrgSetup(t)
	return o, localhostURL(t, o.srv), startExpertChromium(t, spkiPin(t, o.srv))
}

// registerWeb opens the web app at site in the tab of ctx, gives the tab
// a passkey authenticator, creates the account user (shown as display)
// and waits until it is online.
func registerWeb(t *testing.T, ctx context.Context, site, user, display string) {
	t.Helper()
	bxRun(t, ctx, chromedp.Navigate(site+"/"))
	addAuthenticator(t, ctx)
	mxWait(t, ctx, `window.assistMessenger?.phase === "signed-out"`)
	bxRun(t, ctx, chromedp.Click(`[data-testid="register-box"] summary`),
		chromedp.SendKeys(bxID("register-user"), user),
		chromedp.SendKeys(bxID("register-display"), display),
		chromedp.Click(bxID("register")))
	mxWait(t, ctx, fmt.Sprintf(`window.assistMessenger.phase === "online" && window.assistMessenger.user === %q`, user))
}

// TestWebConsole: the help desk's console in the web app. A browser
// account sees no machines until an admin makes it a helper; then it
// lists the organisation's machines with presence, showing what an agent
// reported (a machine named <img src=x onerror=alert(1)>, a user named
// <script>...) as text, with nothing run; and it offers help, which the
// agent's user declines.
func TestWebConsole(t *testing.T) {
	e2e(t)
	needExpertApp(t)
	o, site, ctx := newWebOrg(t)
	var dialogs atomic.Int32
	if err := chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*cdppage.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
			go chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: false})
		}
	}); err != nil {
		t.Fatal(err)
	}
	registerWeb(t, ctx, site, "helen", "Helen Desk")
	if !bxEval[bool](t, ctx, `window.assistMessenger.machines === null && document.querySelector('[data-testid="machines-box"]').hidden`) {
		t.Error("an account that helps no organisation sees the machines")
	}

	o.org(t, "add", "acme", "helen", "--role", "helper")
	const evilName, evilUser = `<img src=x onerror=alert(1)>`, `<script>alert(2)</script>`
	agent := o.enrol(t, o.token(t, "1"), "pc-x", evilName, evilUser, ":0", "")
	// The console asks for the machines every few seconds.
	mxWait(t, ctx, `window.assistMessenger.machines?.["pc-x"] === "online"`)
	if got := bxEval[string](t, ctx, `document.querySelector('[data-testid="machine"][data-user="pc-x"] [data-testid="machine-name"]').textContent`); got != evilName {
		t.Errorf("the machine's name shows as %q", got)
	}
	if got := bxEval[string](t, ctx, `document.querySelector('[data-testid="machine"][data-user="pc-x"] [data-testid="machine-user"]').textContent`); got != "pc-x · "+evilUser+" · acme" {
		t.Errorf("the machine's user shows as %q", got)
	}
	if bxEval[bool](t, ctx, `!!document.querySelector('[data-testid="machines"] img, [data-testid="machines"] script')`) {
		t.Error("the agent's markup became elements")
	}

	// Offer help; the user at the machine declines.
	bxRun(t, ctx, chromedp.Click(`[data-testid="machine"][data-user="pc-x"] [data-testid="offer-machine"]`))
	agent.expect(`^offer: \S+ from helen$`)
	agent.expect(`^question: Helen Desk from ACME IT offers to help you\. Accept\?$`)
	agent.send("n")
	mxWait(t, ctx, `window.assistMessenger.outgoing?.state === "declined"`)
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d script dialogs opened: the agent's text ran", n)
	}
}
