package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// TestWebAudit: the organisation's audit trail in the web app. A helper
// does not see it (the server refuses the helper's search, which is how
// the page learns it); once an admin, the same account searches it and
// sees the server's entries of its declined offer in plain words, the
// machine's user's name (markup and a spreadsheet formula) as text;
// Verify says every chain is ok, and the CSV download holds the entries
// with the formula neutralised, the JSON download the same entries.
func TestWebAudit(t *testing.T) {
	e2e(t)
	needExpertApp(t)
	o, site, ctx := newWebOrg(t)
	downloads, events := t.TempDir(), true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, EventsEnabled: &events}); err != nil {
		t.Fatal(err)
	}
	downloaded := make(chan struct{}, 1)
	chromedp.ListenBrowser(ctx, func(ev any) {
		if p, ok := ev.(*browser.EventDownloadProgress); ok && p.State == browser.DownloadProgressStateCompleted {
			select {
			case downloaded <- struct{}{}:
			default:
			}
		}
	})
	registerWeb(t, ctx, site, "helen", "Helen Desk")

	o.org(t, "add", "acme", "helen", "--role", "helper")
	const evilUser = `=HYPERLINK("http://x")<img src=x onerror=alert(1)>`
	agent := o.enrol(t, o.token(t, "1"), "pc-x", "Front desk", evilUser, ":0", "")
	mxWait(t, ctx, `window.assistMessenger.machines?.["pc-x"] === "online"`)
	bxRun(t, ctx, chromedp.Click(`[data-testid="machine"][data-user="pc-x"] [data-testid="offer-machine"]`))
	agent.expect(`^offer: \S+ from helen$`)
	agent.send("n")
	mxWait(t, ctx, `window.assistMessenger.outgoing?.state === "declined"`)
	// The probe of acme was refused: a helper sees no audit trail.
	if !bxEval[bool](t, ctx, `!window.assistMessenger.auditOrgs && document.querySelector('[data-testid="audit-box"]').hidden`) {
		t.Fatal("a helper sees the audit trail")
	}

	o.org(t, "add", "acme", "helen", "--role", "admin")
	bxRun(t, ctx, chromedp.Click(bxID("refresh-machines")))
	mxWait(t, ctx, `window.assistMessenger.auditOrgs?.includes("acme") && !document.querySelector('[data-testid="audit-box"]').hidden`)
	bxRun(t, ctx, chromedp.SendKeys(bxID("audit-text"), "pc-x"), chromedp.Click(bxID("audit-search")))
	mxWait(t, ctx, `window.assistMessenger.auditEntries > 0`)
	words := bxEval[string](t, ctx, `document.querySelector('[data-testid="audit-entries"]').textContent`)
	for _, want := range []string{"helen offered help to " + evilUser + " on pc-x", "declined"} {
		if !strings.Contains(words, want) {
			t.Errorf("the audit trail lacks %q:\n%s", want, words)
		}
	}
	if bxEval[bool](t, ctx, `!!document.querySelector('[data-testid="audit-box"] img, [data-testid="audit-box"] script')`) {
		t.Error("a peer's markup became elements")
	}
	bxRun(t, ctx, chromedp.Click(bxID("audit-verify")))
	mxWait(t, ctx, `window.assistMessenger.auditBad === 0`)
	if got := bxEval[string](t, ctx, `document.querySelector('[data-testid="audit-verdicts"]').textContent`); !strings.Contains(got, "the server's chain: ok") {
		t.Errorf("verify shows %q", got)
	}
	bxRun(t, ctx, chromedp.ScrollIntoView(`[data-testid="audit-box"]`))
	saveShot(t, ctx, "web-audit")

	bxRun(t, ctx, chromedp.Click(bxID("audit-csv")))
	select {
	case <-downloaded:
	case <-time.After(30 * time.Second):
		t.Fatal("the CSV was not downloaded")
	}
	b, err := os.ReadFile(filepath.Join(downloads, "acme-audit.csv"))
	if err != nil {
		t.Fatal(err)
	}
	csv := string(b)
	if !strings.HasPrefix(csv, "seq,time,kind,party") || !strings.Contains(csv, ",server,") {
		t.Errorf("the CSV download:\n%s", csv)
	}
	if !strings.Contains(csv, `'=HYPERLINK(`) || strings.Contains(csv, `,=HYPERLINK(`) || strings.Contains(csv, `,"=HYPERLINK(`) {
		t.Errorf("the CSV's formula is not neutralised:\n%s", csv)
	}

	bxRun(t, ctx, chromedp.Click(bxID("audit-json")))
	select {
	case <-downloaded:
	case <-time.After(30 * time.Second):
		t.Fatal("the JSON was not downloaded")
	}
	b, err = os.ReadFile(filepath.Join(downloads, "acme-audit.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []map[string]any
	if err := json.Unmarshal(b, &entries); err != nil || len(entries) != bxEval[int](t, ctx, `window.assistMessenger.auditEntries`) {
		t.Errorf("the JSON download (%v):\n%s", err, b)
	}
}
