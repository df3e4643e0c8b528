package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/assist-project/assist/internal/lab"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// TestBrowserExpertFiles: the server's web app moves files as assist
// join's page does, through a real assist serve and assist invite. While
// the novice refuses files, the page's file goes nowhere and the novice's
// send is refused; once allowed, a file chosen in the page arrives in the
// novice's folder byte for byte, and the novice's file, accepted in the
// page, is saved by the browser byte for byte.
func TestBrowserExpertFiles(t *testing.T) {
	e2e(t)
	needExpertApp(t)
	x := lab.StartXvfb(t, 320, 240)
	novDir, src, downloads := t.TempDir(), t.TempDir(), t.TempDir()
	up := make([]byte, 2<<20+13)
	rand.Read(up)
	upPath := filepath.Join(src, "budget 2026.xlsx")
	down := make([]byte, 900<<10+7)
	rand.Read(down)
	downPath := filepath.Join(src, "scan.pdf")
	for p, b := range map[string][]byte{upPath: up, downPath: down} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServe(t, t.TempDir())
	nov := startBrowserNovice(t, x.Display, srv, "--files-dir", novDir)
	ctx := startExpertChromium(t, spkiPin(t, srv))
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	q := func(id string) string { return `document.querySelector('[data-testid="` + id + `"]')` }

	bxRun(t, ctx, chromedp.Navigate(srv.URL+"/"))
	bxWait(t, ctx, `window.assistExpertPage?.phase === "ready"`)
	bxRun(t, ctx, chromedp.SendKeys(bxID("name"), expertName), chromedp.SendKeys(bxID("code"), nov.Code), chromedp.Click(bxID("connect")))
	nov.WaitLine(t, `^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "y")
	bxWait(t, ctx, `window.assistExpertPage.state === "viewing" && !`+q("files-panel")+`.hidden && !`+q("files-request")+`.hidden`)

	t.Run("refused", func(t *testing.T) {
		bxRun(t, ctx, chromedp.Click(bxID("files-request")))
		nov.WaitLine(t, `asks to exchange files with you`, lineTimeout)
		nov.Send(t, "n")
		nov.WaitLine(t, `^files: not allowed: press f to allow them$`, lineTimeout)
		bxWait(t, ctx, `!`+q("files-request")+`.disabled && `+q("files-input")+`.closest('.sv-files-send').hidden`)
		// The form is hidden; its button pressed anyway sends nothing.
		bxRun(t, ctx, chromedp.SetUploadFiles(bxID("files-input"), []string{upPath}))
		bxEval[bool](t, ctx, q("files-send")+`.click(), true`)
		bxWait(t, ctx, q("chat-log")+`.textContent.includes("budget 2026.xlsx was not sent")`)
		// The novice's send is refused on its side.
		nov.Send(t, "send "+downPath)
		nov.WaitLine(t, `^file not sent: `, lineTimeout)
		if n := bxEval[int](t, ctx, `Object.keys(window.assistExpertPage.files).length`); n != 0 {
			t.Errorf("the page lists %d transfers", n)
		}
		if es, _ := os.ReadDir(novDir); len(es) != 0 {
			t.Errorf("the novice's folder holds %d files", len(es))
		}
		if es, _ := os.ReadDir(downloads); len(es) != 0 {
			t.Errorf("the browser downloaded %d files", len(es))
		}
	})

	// Asked again, allowed.
	bxRun(t, ctx, chromedp.Click(bxID("files-request")))
	nov.WaitLine(t, `asks to exchange files with you`, lineTimeout)
	nov.Send(t, "y")
	bxWait(t, ctx, `!`+q("files-input")+`.closest('.sv-files-send').hidden`)

	t.Run("to the novice", func(t *testing.T) {
		bxRun(t, ctx, chromedp.SetUploadFiles(bxID("files-input"), []string{upPath}), chromedp.Click(bxID("files-send")))
		saved := filepath.Join(novDir, "budget 2026.xlsx")
		nov.WaitLine(t, `^file saved: `+regexp.QuoteMeta(saved)+`$`, lineTimeout)
		same(t, saved, up)
		bxWait(t, ctx, `Object.values(window.assistExpertPage.files).includes("completed")`)
	})

	t.Run("from the novice", func(t *testing.T) {
		nov.Send(t, "send "+downPath)
		bxWait(t, ctx, `!!document.querySelector('[data-testid^="file-accept-"]')`)
		if got := bxEval[string](t, ctx, q("files-list")+`.textContent`); !strings.Contains(got, "scan.pdf") || !strings.Contains(got, "wants to send you this file") {
			t.Errorf("files list: %q", got)
		}
		bxRun(t, ctx, chromedp.Click(chromedp.CSS(`[data-testid^="file-accept-"]`)))
		nov.WaitLine(t, `^file sent: scan\.pdf reached `+expertName+`$`, lineTimeout)
		bxWait(t, ctx, `!!document.querySelector('[data-testid^="file-save-"]')`)
		bxSave(t, ctx)
		bxRun(t, ctx, chromedp.Click(chromedp.CSS(`[data-testid^="file-save-"]`)))
		got := filepath.Join(downloads, "scan.pdf")
		waitFor(t, "the browser's download of scan.pdf", func() bool {
			fi, err := os.Stat(got)
			return err == nil && fi.Size() == int64(len(down))
		})
		same(t, got, down)
	})
	stop(t, nov.LineProc, "assist invite")
}
