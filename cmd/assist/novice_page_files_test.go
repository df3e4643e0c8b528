package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/assist-project/assist/internal/lab"
	"github.com/chromedp/chromedp"
)

// TestNovicePageSendFile: a file the novice picks on their page reaches
// assist join byte-exact. Before files are allowed the page offers no
// picker and assist invite refuses an upload; once allowed (on the page),
// the picked file goes to the expert, who accepts it, and the page shows
// it sent.
func TestNovicePageSendFile(t *testing.T) {
	e2e(t)
	t.Parallel()
	x := lab.StartXvfb(t, 320, 240)
	expDir := t.TempDir()
	data := make([]byte, 3<<20+7)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "holiday photo.jpg")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view",
		"--files-dir", t.TempDir())
	b := newPageBrowser(t, lineWithPrefix(t, nov.LineProc, "page: "))
	b.wait(t, `s.socket === 'open' && s.state === 'waiting'`)
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile, "--files-dir", expDir))
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	b.wait(t, `s.state === 'viewing' && !s.files && document.querySelector('[data-testid="send-file-box"]').hidden`)

	// Files not allowed: assist invite refuses what the page uploads.
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`fetch('upload', {method: 'POST',
		headers: {'X-Assist-Name': 'sneaky.txt'}, body: 'x'}).then(async (r) => r.status + ' ' + await r.text())`,
		chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("browser: upload: %v", err)
	}
	if !regexp.MustCompile(`^409 Files are not allowed`).MatchString(got) {
		t.Errorf("an upload before files are allowed got %q, want 409 and why", got)
	}

	b.click(t, "files")
	nov.WaitLine(t, `^files: allowed both ways`, lineTimeout)
	exp.WaitLine(t, `^files: `+noviceName+` allowed files both ways`, lineTimeout)
	b.wait(t, `s.files && !document.querySelector('[data-testid="send-file-box"]').hidden`)
	wantContains(t, "the picker's label", b.text(t, "send-file-label"), "Send a file to "+expertName)

	b.do(t, chromedp.SetUploadFiles(testID("send-file-input"), []string{src}))
	exp.WaitLine(t, `^file: `+noviceName+` wants to send you holiday photo\.jpg \(3\.1 MB\): type accept or refuse$`, lineTimeout)
	b.wait(t, `s.upload === 'sent' && s.transfers.length === 1`)
	shotAt(t, b, "novice-page-send-file", "send-file-box")
	exp.Send(t, "accept")
	saved := filepath.Join(expDir, "holiday photo.jpg")
	exp.WaitLine(t, `^file saved: `+regexp.QuoteMeta(saved)+`$`, lineTimeout)
	nov.WaitLine(t, `^file sent: holiday photo\.jpg reached `+expertName+`$`, lineTimeout)
	same(t, saved, data)
	b.wait(t, `s.transfers.length === 1 && s.transfers[0] === 'completed'`)
	wantContains(t, "the transfer on the page", b.text(t, "transfers"), "holiday photo.jpg", "to "+expertName, "Sent.")

	nov.Send(t, "q")
	nov.WaitExit(t, lineTimeout)
}

// TestNovicePageStillSharing: after --check-every of sharing the novice's
// page asks "Still sharing with Max?" as the terminal does. Keep sharing on
// the page keeps the session; a yes in the terminal takes the question off
// the page; no answer within --answer-timeout ends the session.
func TestNovicePageStillSharing(t *testing.T) {
	e2e(t)
	t.Parallel()
	x := lab.StartXvfb(t, 320, 240)
	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view",
		"--check-every", "2s", "--answer-timeout", "4s")
	b := newPageBrowser(t, lineWithPrefix(t, nov.LineProc, "page: "))
	b.wait(t, `s.socket === 'open' && s.state === 'waiting'`)
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
	exp.WaitLine(t, `^state: viewing`, lineTimeout)

	// Answered on the page.
	nov.WaitLine(t, `^Still sharing with `+expertName+`\? press y to keep sharing`, lineTimeout)
	b.wait(t, `s.stillSharing`)
	if got, want := b.text(t, "still-text"), "Still sharing your screen with "+expertName+"?"; got != want {
		t.Errorf("the page asks %q, want %q", got, want)
	}
	wantContains(t, "the countdown", b.text(t, "still-countdown"), "sharing stops in")
	shot(t, b, "novice-page-still-sharing")
	b.click(t, "keep-sharing")
	nov.WaitLine(t, `^still sharing with `+expertName+` \(answered on the page\)$`, lineTimeout)
	b.wait(t, `!s.stillSharing && s.state === 'viewing'`)

	// Answered in the terminal: the page's question goes too.
	nov.WaitLine(t, `^Still sharing with `+expertName+`\?`, lineTimeout)
	b.wait(t, `s.stillSharing`)
	nov.Send(t, "y")
	nov.WaitLine(t, `^still sharing with `+expertName+` \(answered in the terminal\)$`, lineTimeout)
	b.wait(t, `!s.stillSharing && s.state === 'viewing'`)
	if exited, _ := exp.Exited(); exited {
		t.Fatalf("assist join ended although the novice kept sharing:\n%s", exp.Output())
	}

	// Nobody answers: the session ends, and the page says why.
	nov.WaitLine(t, `^Still sharing with `+expertName+`\?`, lineTimeout)
	b.wait(t, `s.stillSharing`)
	exp.WaitLine(t, `^state: ended \(nobody answered "Still sharing with `+expertName+`\?" within 4 seconds\)`, lineTimeout)
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	b.wait(t, `!s.stillSharing && s.state === 'waiting'`)
	wantContains(t, "who after no answer", b.text(t, "who"), "nobody answered")

	nov.Send(t, "q")
	nov.WaitExit(t, lineTimeout)
}

// shotAt saves the tab, scrolled to show the element with data-testid id,
// as NAME.png in $ASSIST_E2E_ARTIFACTS (saveShot).
func shotAt(t *testing.T, b *pageBrowser, name, id string) {
	t.Helper()
	if os.Getenv("ASSIST_E2E_ARTIFACTS") == "" {
		return
	}
	jsValue[bool](t, b, `(document.querySelector('[data-testid=`+jsString(id)+`]').scrollIntoView({block: 'center'}), true)`)
	saveShot(t, b.ctx, name)
}
