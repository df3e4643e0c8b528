package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/mailer"
)

// The novice's app (assist with no arguments) in headless Chromium, with
// the real binary: a direct invitation made with Get help (its code, its QR
// code, Save as file, and an expert joining with that file), and a contact
// asked for help through a real assist serve.

// startApp runs `assist app` as u (its own config dir) on display and
// returns it with the app's address.
func startApp(t *testing.T, u *cliUser, display string, args ...string) (*proc, string) {
	t.Helper()
	argv := append([]string{"app", "--no-browser", "--display", display, "--no-portmap", "--listen", "127.0.0.1:0",
		"--name", noviceName}, args...)
	p := u.start(t, argv...)
	url := p.expect(`^app: (http://127\.0\.0\.1:\d+/s/\S+/)$`)[1]
	return p, url
}

// decodeQR reads the QR code the page shows with zbarimg and returns what
// it holds.
func decodeQR(t *testing.T, b *pageBrowser) string {
	t.Helper()
	lab.Need(t, "zbarimg")
	src, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="qr"]').getAttribute('src') || ''`))
	if err != nil {
		t.Fatal(err)
	}
	b64, ok := strings.CutPrefix(src, "data:image/png;base64,")
	if !ok {
		t.Fatalf("the QR code's src is %.60q, want a PNG data: URL", src)
	}
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(f, png, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zbarimg", "--quiet", "--raw", "-Sbinary", f).Output()
	if err != nil {
		t.Fatalf("zbarimg could not read the QR code: %v", err)
	}
	return strings.TrimRight(string(out), "\n")
}

// jsValue evaluates expr in the page.
func jsValue[T any](t *testing.T, b *pageBrowser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, lineTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// TestAppGetHelp: with no account, Get help makes a direct invitation; the
// app shows its code and password in large type, how long it is valid in
// plain words, and a QR code that decodes to the assist:// link assist
// invite prints; Save as file downloads a valid invitation with which an
// expert joins; the novice is asked in the app and says yes there; Withdraw
// brings Get help back.
func TestAppGetHelp(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	nora := newCLIUser(t, "nora")
	// Nora's mail server, as she set it up in mail.json.
	m := lab.StartMailpit(t, lab.MailpitOptions{})
	host, port := lab.HostPort(t, m.SMTP)
	if err := os.MkdirAll(nora.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	settings := fmt.Sprintf(`{"host":%q,"port":%d,"security":"none","from":"nora@example.net"}`, host, port)
	if err := os.WriteFile(filepath.Join(nora.dir, mailer.SettingsFile), []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	app, url := startApp(t, nora, x.Display)
	b := newPageBrowser(t, url)
	b.wait(t, `s.app && !s.busy && s.state === 'waiting'`)
	if !jsValue[bool](t, b, `!document.querySelector('[data-testid="start"]').hidden && document.querySelector('[data-testid="invitation-box"]').hidden`) {
		t.Fatal("the app does not start with Get help alone")
	}
	if got := b.text(t, "no-account"); !strings.Contains(got, "assist login") {
		t.Errorf("without an account the app says %q", got)
	}
	shot(t, b, "app-start")

	start := time.Now()
	b.click(t, "get-help")
	code := app.expect(`^code: (\S+)$`)[1]
	link := app.expect(`^link: (assist://\S+)$`)[1]
	b.wait(t, `s.busy && s.link !== ''`)
	t.Logf("Get help: the code and the QR code on the page %v after the click", time.Since(start))
	if got := b.text(t, "code"); got != code {
		t.Errorf("the app shows the code %q, assist printed %q", got, code)
	}
	password := b.text(t, "password")
	var err error
	if password == "" {
		t.Fatal("a direct invitation's password is not shown")
	}
	if got := jsValue[string](t, b, `window.assistNovice.link`); got != link {
		t.Errorf("the app's link is %q, want %q", got, link)
	}
	valid := b.text(t, "valid")
	if !regexp.MustCompile(`^Valid for (59|60) more minutes \(until (\w+ )?\d{1,2}:\d\d( [AP]M)?\)\.$`).MatchString(valid) {
		t.Errorf("the app says %q, want how long in plain words", valid)
	}
	if got := decodeQR(t, b); got != link {
		t.Errorf("the QR code holds %q, want the link %q", got, link)
	}
	shot(t, b, "app-invitation")

	// Send by e-mail, through nora's mail server: the invitation arrives
	// attached, without its password.
	b.do(t, chromedp.SendKeys(testID("email-to"), "max@example.com"))
	b.click(t, "email")
	b.wait(t, `s.notice === 'The invitation is sent to max@example.com. Read out the password to them: the e-mail does not have it.'`)
	mail := lab.ParseMail(t, m.WaitMessage(t, lineTimeout))
	if to := mail.Header.Get("To"); !strings.Contains(to, "max@example.com") {
		t.Errorf("the e-mail went to %q", to)
	}
	var attached *invitation.Invitation
	for name, data := range mail.Attachments {
		if strings.HasSuffix(name, invitation.FileExtension) {
			if attached, err = invitation.Parse(data); err != nil {
				t.Fatalf("the attached invitation %s: %v", name, err)
			}
		}
	}
	if fromLink, err := invitation.ParseURL(link); attached == nil || err != nil || attached.ID != fromLink.ID {
		t.Errorf("the e-mail's attachment %v is not the invitation of %s (%v)", attached, link, err)
	}
	if strings.Contains(mail.Text, password) {
		t.Error("the e-mail holds the password")
	}

	// Save as file: the browser downloads the invitation.
	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	b.click(t, "save-file")
	file := filepath.Join(downloads, "invitation.assist")
	var inv *invitation.Invitation
	deadline := time.Now().Add(lineTimeout)
	for {
		if inv, err = invitation.ReadFile(file); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no valid invitation downloaded: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fromLink, err := invitation.ParseURL(link); err != nil || fromLink.ID != inv.ID {
		t.Fatalf("the saved invitation %s is not the link's (%v)", inv.ID, err)
	}
	if err := inv.Validate(time.Now()); err != nil {
		t.Fatalf("the saved invitation: %v", err)
	}

	// An expert joins with the saved file; the app asks the novice.
	exp := startJoin(t, nil, file, writePassword(t, password))
	b.wait(t, `s.question !== 0 && s.expert === `+jsString(expertName))
	if got := b.text(t, "question-text"); got != expertName+" wants to see your screen." {
		t.Errorf("the app asks %q", got)
	}
	shot(t, b, "app-question")
	b.click(t, "allow")
	connected(t, exp)
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	b.wait(t, `s.state === 'viewing'`)

	// Withdraw: the session ends and the app is ready again.
	b.click(t, "withdraw")
	exp.WaitLine(t, `^state: ended`, lineTimeout)
	b.wait(t, `s.app && !s.busy`)
	if got := b.text(t, "last"); !strings.Contains(got, "Your invitation is over") {
		t.Errorf("after the withdrawal the app says %q", got)
	}
	app.interrupt()
	if err := app.wait(); err != nil {
		t.Errorf("assist app after SIGINT: %v; stderr: %s", err, app.stderr)
	}
}

// TestAppAskContact: nora's app lists her contact eddie with his presence;
// Ask for help reaches eddie's assist requests; he accepts and the app asks
// nora whether he may see her screen. Her app's Get help then goes through
// the server she logged in to, with a QR code of the browser address.
func TestAppAskContact(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	srv := startServe(t, t.TempDir())
	nora, eddie, carl := newCLIUser(t, "nora"), newCLIUser(t, "eddie"), newCLIUser(t, "carl")
	nora.login(t, srv, "--display-name", "Nora Novice")
	eddie.login(t, srv, "--display-name", "Eddie Expert")
	carl.login(t, srv, "--display-name", "Carl Contact")
	pairCLI(t, nora, eddie)
	pairCLI(t, nora, carl)

	app, url := startApp(t, nora, x.Display)
	b := newPageBrowser(t, url)
	b.wait(t, `s.app && s.contacts.includes('eddie:offline')`)
	if got := b.text(t, "contacts"); !strings.Contains(got, "Eddie Expert") || !strings.Contains(got, "not connected") {
		t.Errorf("the contacts read %q", got)
	}
	reqs := eddie.start(t, "requests", "--no-browser", "--no-page")
	b.wait(t, `s.contacts.includes('eddie:online') && s.contacts.includes('carl:offline')`)
	shot(t, b, "app-contacts")

	// Carl is away: nora stops asking him, and can ask someone else.
	b.do(t, chromedp.Click(chromedp.CSS(`li[data-user="carl"] [data-testid="ask"]`)))
	b.wait(t, `s.asking === 'carl'`)
	b.click(t, "stop-asking")
	b.wait(t, `s.asking === ''`)
	if got := b.text(t, "last"); got != "You stopped asking Carl Contact." {
		t.Errorf("after Stop asking the app says %q", got)
	}
	app.expect(`^stopped asking Carl Contact$`)

	start := time.Now()
	b.do(t, chromedp.Click(chromedp.CSS(`li[data-user="eddie"] [data-testid="ask"]`)))
	b.wait(t, `s.asking === 'eddie'`)
	if got := b.text(t, "asking"); got != "Waiting for Eddie Expert to answer…" {
		t.Errorf("while asking the app says %q", got)
	}
	id := reqs.expect(`^request: (\S+) from nora$`)[1]
	t.Logf("Ask for help: eddie's assist requests has the request %v after the click", time.Since(start))
	reqs.send("accept " + id)
	app.expect(`^accepted by eddie$`)
	b.wait(t, `s.busy && s.question !== 0`)
	if got := b.text(t, "question-text"); got != "Eddie Expert wants to see your screen." {
		t.Errorf("the app asks %q", got)
	}
	shot(t, b, "app-contact-question")
	b.click(t, "allow")
	reqs.expect(`^state: viewing`)
	b.wait(t, `s.state === 'viewing'`)
	b.click(t, "end")
	reqs.expect(`^state: ended`)
	b.wait(t, `!s.busy && s.asking === ''`)
	if got := b.text(t, "last"); !strings.Contains(got, "The session with Eddie Expert is over") {
		t.Errorf("after the session the app says %q", got)
	}

	// Get help goes through nora's server: a word code, and the QR code
	// is the server's browser address with it.
	start = time.Now()
	b.click(t, "get-help")
	code := app.expect(`^code: (\S+)$`)[1]
	browserLink := app.expect(`^browser: (https://\S+)$`)[1]
	b.wait(t, `s.busy && s.link !== ''`)
	t.Logf("Get help through the server: the code and the QR code on the page %v after the click", time.Since(start))
	if got := decodeQR(t, b); got != browserLink || !strings.HasSuffix(got, "/#"+code) {
		t.Errorf("the QR code holds %q, want %q", got, browserLink)
	}
	if b.text(t, "password") != "" {
		t.Error("a server invitation shows a password besides its code")
	}
	shot(t, b, "app-invitation-server")
	app.interrupt()
	if err := app.wait(); err != nil {
		t.Errorf("assist app after SIGINT: %v; stderr: %s", err, app.stderr)
	}
}

// shot saves the app's tab, scrolled to the top, as NAME.png in
// $ASSIST_E2E_ARTIFACTS (saveShot).
func shot(t *testing.T, b *pageBrowser, name string) {
	t.Helper()
	if os.Getenv("ASSIST_E2E_ARTIFACTS") == "" {
		return
	}
	jsValue[bool](t, b, `(window.scrollTo(0, 0), true)`)
	saveShot(t, b.ctx, name)
}

// TestDesktopLinkJoins: assist install-desktop in a temporary HOME, then
// the desktop opens an assist:// link as it would on a click (xdg-open):
// the handler runs assist join with the link in a terminal (a stand-in
// that types the password), and the expert reaches the novice's question.
func TestDesktopLinkJoins(t *testing.T) {
	e2e(t)
	lab.Need(t, "xdg-open", "xdg-mime")
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap")
	link := lineWithPrefix(t, nov.LineProc, "link: ")

	home := t.TempDir()
	dir := t.TempDir()
	out := filepath.Join(dir, "terminal.out")
	// The terminal: xdg-open runs "$TERMINAL -e assist join LINK".
	term := filepath.Join(dir, "terminal")
	script := "#!/bin/sh\n[ \"$1\" = -e ] && shift\nexec \"$@\" <" + nov.PasswordFile + " >" + out + " 2>&1\n"
	if err := os.WriteFile(term, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, ".local/share"),
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CURRENT_DESKTOP=", "DESKTOP_SESSION=",
		"DISPLAY="+x.Display, "TERMINAL="+term, "ASSIST_LOG=warn")

	install := exec.Command(lab.AssistBinary(t), "install-desktop")
	install.Env = env
	if b, err := install.CombinedOutput(); err != nil || !strings.Contains(string(b), "assist:// links now open with assist-link.desktop") {
		t.Fatalf("assist install-desktop: %v\n%s", err, b)
	}
	q := exec.Command("xdg-mime", "query", "default", "x-scheme-handler/assist")
	q.Env = env
	if b, err := q.Output(); err != nil || strings.TrimSpace(string(b)) != "assist-link.desktop" {
		t.Fatalf("xdg-mime query default x-scheme-handler/assist = %q, %v", b, err)
	}

	open := exec.Command("xdg-open", link)
	open.Env = env
	// No controlling terminal, as when a browser or a file manager opens
	// the link: xdg-open then starts the entry's terminal.
	open.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := open.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-open.Process.Pid, syscall.SIGKILL)
		_ = open.Wait()
	})
	nov.WaitLine(t, `wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "y")
	deadline := time.Now().Add(lineTimeout)
	for {
		b, _ := os.ReadFile(out)
		if regexp.MustCompile(`(?m)connected to `+noviceName+` via direct \S+$`).Match(b) &&
			regexp.MustCompile(`(?m)^state: viewing`).Match(b) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the link's assist join did not connect; its terminal shows:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAppNoArguments: assist with no arguments opens the app in the
// desktop's browser (xdg-open, here with a stand-in browser that records
// what it was asked to open), also when started with no terminal, as the
// menu entry starts it; the address it opens is the app.
func TestAppNoArguments(t *testing.T) {
	e2e(t)
	lab.Need(t, "xdg-open")
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	home, dir := t.TempDir(), t.TempDir()
	opened := filepath.Join(dir, "opened")
	stub := filepath.Join(dir, "browser")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\necho \"$1\" >"+opened+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	u := newCLIUser(t, "nora")
	cmd := u.cmd(t)
	// No desktop's own browser: xdg-open falls back to $BROWSER.
	cmd.Env = append(cmd.Env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local/share"), "XDG_DATA_DIRS="+dir, "XDG_CURRENT_DESKTOP=",
		"DESKTOP_SESSION=", "DISPLAY="+x.Display, "BROWSER="+stub)
	cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setpgid = true, false
	p := startProc(t, "assist (no arguments)", cmd)
	url := p.expect(`^app: (http://127\.0\.0\.1:\d+/s/\S+/)$`)[1]
	deadline := time.Now().Add(lineTimeout)
	for {
		b, _ := os.ReadFile(opened)
		if got := strings.TrimSpace(string(b)); got == url {
			break
		} else if got != "" {
			t.Fatalf("the browser was asked to open %q, want %q", got, url)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the browser was not asked to open the app; stderr: %s", p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := newPageBrowser(t, url)
	b.wait(t, `s.app && !s.busy`)
}

// TestAppServerDown: when the server nora logged in to cannot be reached,
// Get help still makes an invitation, a direct one, and says why.
func TestAppServerDown(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	srv := startServe(t, t.TempDir())
	nora := newCLIUser(t, "nora")
	nora.login(t, srv, "--display-name", "Nora Novice")
	srv.stop(t)

	app, url := startApp(t, nora, x.Display)
	b := newPageBrowser(t, url)
	b.wait(t, `s.app && !s.busy`)
	b.click(t, "get-help")
	link := app.expect(`^link: (assist://\S+)$`)[1]
	b.wait(t, `s.busy && s.link === `+jsString(link))
	if b.text(t, "password") == "" {
		t.Error("the direct invitation shows no password")
	}
	if got := b.text(t, "last"); !strings.HasPrefix(got, "Could not reach https://127.0.0.1:") {
		t.Errorf("the app says %q, want why the invitation is direct", got)
	}
	shot(t, b, "app-server-down")
}
