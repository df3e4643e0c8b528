package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
)

// TestNovicePage drives `assist invite` from its local page in headless
// Chromium, with `assist join` (direct, over loopback) as the expert: the
// page's Allow lets the expert see the screen, its Allow for control and
// Take back control move the state, chat goes both ways, a second tab
// shows the same state and history, End session ends the session and
// Withdraw invitation stops assist invite. The terminal runs alongside
// and prints what the page did.
func TestNovicePage(t *testing.T) {
	e2e(t)
	t.Parallel()
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	x.ShowImage(t, lab.TestPattern(desktopSize.X, desktopSize.Y))
	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "ask")
	code := lineWithPrefix(t, nov.LineProc, "code: ")
	pageURL := lineWithPrefix(t, nov.LineProc, "page: ")
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/s/[A-Za-z0-9_-]{43}/$`).MatchString(pageURL) {
		t.Fatalf("page: %q, want http://127.0.0.1:PORT/s/SECRET/", pageURL)
	}

	t.Run("secret and origin", func(t *testing.T) { pageGuarded(t, pageURL) })

	b := newPageBrowser(t, pageURL)
	b.wait(t, `s.socket === 'open' && s.state === 'waiting' && s.expert === ''`)
	if got := b.text(t, "code"); got != code {
		t.Errorf("the page shows the code %q, want %q (as printed)", got, code)
	}
	if got := b.text(t, "password"); got != password {
		t.Errorf("the page shows the password %q, want %q", got, password)
	}

	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
	b.wait(t, `s.state === 'asking' && s.question > 0 && s.expert === `+jsString(expertName))
	if who := b.text(t, "who"); !strings.Contains(who, expertName) || !strings.Contains(who, "directly, from 127.0.0.1:") {
		t.Errorf("the page says %q about who is connected, want the expert's name and the direct path", who)
	}
	wantContains(t, "view question", b.text(t, "question-text"), expertName, "see your screen")

	// Until the page's Allow, a viewer on the expert's side gets not even
	// the RFB greeting.
	early, err := net.Dial("tcp", exp.RFB)
	if err != nil {
		t.Fatalf("dial rfb on %s: %v", exp.RFB, err)
	}
	defer early.Close()
	early.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := early.Read(make([]byte, 12)); n > 0 || !os.IsTimeout(err) {
		t.Fatalf("before the novice allowed viewing, a viewer read %d bytes (%v), want nothing", n, err)
	}

	b.click(t, "allow")
	nov.WaitLines(t, lineTimeout, `^answered on the page: yes$`, `^state: viewing`)
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	early.SetReadDeadline(time.Now().Add(lineTimeout))
	greeting := make([]byte, 12)
	if _, err := early.Read(greeting); err != nil || !strings.HasPrefix(string(greeting), "RFB 003.") {
		t.Fatalf("after Allow on the page, the viewer read %q (%v), want an RFB greeting", greeting, err)
	}
	early.Close()
	if _, _, err := lab.DialRFB(t, exp.RFB).Screen(); err != nil {
		t.Fatalf("after Allow on the page, the expert gets no frame: %v", err)
	}
	b.wait(t, `s.state === 'viewing' && s.question === 0`)

	// The expert asks for control from their browser viewer.
	expPage := openPage(t, exp.Web)
	expPage.send(t, map[string]string{"type": "request_control"})
	b.wait(t, `s.state === 'control-asked' && s.question > 0`)
	wantContains(t, "control question", b.text(t, "question-text"), expertName, "control your mouse and keyboard")
	b.click(t, "allow")
	nov.WaitLine(t, `^state: controlling`, lineTimeout)
	exp.WaitLine(t, `^state: controlling`, lineTimeout)
	b.wait(t, `s.state === 'controlling' && !document.querySelector('[data-testid="take-back"]').disabled`)

	b.click(t, "take-back")
	nov.WaitLines(t, lineTimeout, `^control taken back on the page$`, `^state: viewing`)
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	b.wait(t, `s.state === 'viewing'`)

	// Chat, both ways.
	b.do(t, chromedp.SendKeys(testID("chat-input"), "hello from the novice's page"), chromedp.Click(testID("chat-send")))
	exp.WaitLine(t, `^`+noviceName+`: hello from the novice's page$`, lineTimeout)
	nov.WaitLine(t, `^you: hello from the novice's page$`, lineTimeout)
	expPage.send(t, map[string]string{"type": "chat", "text": "hello from the expert"})
	nov.WaitLine(t, `^`+expertName+`: hello from the expert$`, lineTimeout)
	b.wait(t, `s.chatLines === 2`)
	wantContains(t, "chat log", b.text(t, "chat-log"), "You:", "hello from the novice's page", expertName+":", "hello from the expert")

	// Another tab (or a reload) shows the same state and the history.
	tab := b.newTab(t)
	tab.wait(t, `s.socket === 'open' && s.state === 'viewing' && s.chatLines === 2 && s.expert === `+jsString(expertName))

	// A question answered in the terminal disappears from both tabs.
	expPage.send(t, map[string]string{"type": "request_control"})
	b.wait(t, `s.state === 'control-asked' && s.question > 0`)
	tab.wait(t, `s.state === 'control-asked' && s.question > 0`)
	nov.Send(t, "n")
	nov.WaitLine(t, `^state: viewing`, lineTimeout)
	b.wait(t, `s.state === 'viewing' && s.question === 0`)
	tab.wait(t, `s.state === 'viewing' && s.question === 0`)

	b.click(t, "end")
	exp.WaitLine(t, `^state: ended`, lineTimeout)
	if code := exp.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist join exited with %d after End session on the page, want 0\n%s", code, exp.Output())
	}
	nov.WaitLines(t, lineTimeout, `^session ended on the page$`, `^waiting for your helper`)
	b.wait(t, `s.state === 'waiting' && s.expert === ''`)

	tab.click(t, "withdraw")
	if code := nov.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist invite exited with %d after Withdraw invitation, want 0\n%s", code, nov.Output())
	}
	b.wait(t, `s.state === 'stopped'`)
	wantContains(t, "banner after withdrawing", b.text(t, "banner"), "withdrew")

	noSecrets(t, nov.LineProc, exp.LineProc)
	secret := pageURL[strings.Index(pageURL, "/s/")+3 : len(pageURL)-1]
	if strings.Contains(nov.Stderr(), secret) {
		t.Errorf("the page's secret appears in assist invite's log:\n%s", nov.Stderr())
	}
}

// TestNoPage: --no-page serves no page and prints no page line.
func TestNoPage(t *testing.T) {
	e2e(t)
	t.Parallel()
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page")
	for _, l := range nov.Lines() {
		if strings.HasPrefix(l, "page: ") {
			t.Errorf("assist invite --no-page printed %q", l)
		}
	}
	nov.Send(t, "q")
	if code := nov.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist invite exited with %d after q, want 0\n%s", code, nov.Output())
	}
}

// pageGuarded checks that the page needs its secret, and its WebSocket
// the page's own origin.
func pageGuarded(t *testing.T, pageURL string) {
	u, err := url.Parse(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + u.Host
	for _, tt := range []struct {
		path string
		want int
	}{
		{u.Path, http.StatusOK},
		{"/", http.StatusNotFound},
		{"/s/", http.StatusNotFound},
		{"/novice.js", http.StatusNotFound},
		{"/s/" + strings.Repeat("A", 43) + "/", http.StatusNotFound},
		{"/s/" + strings.Repeat("A", 43) + "/novice.js", http.StatusNotFound},
		{strings.TrimSuffix(u.Path, "/"), http.StatusNotFound},
	} {
		resp, err := http.Get(base + tt.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s: %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
	defer cancel()
	ws := "ws://" + u.Host + u.Path + "events"
	for _, origin := range []string{"http://evil.example", ""} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: h})
		if err == nil {
			c.CloseNow()
			t.Errorf("the page's WebSocket accepted Origin %q", origin)
		} else if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("the page's WebSocket with Origin %q: %v, want 403", origin, err)
		}
	}
}

// lineWithPrefix returns the rest of the first line of stdout so far that
// starts with prefix.
func lineWithPrefix(t *testing.T, p *lab.LineProc, prefix string) string {
	t.Helper()
	for _, l := range p.Lines() {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return rest
		}
	}
	t.Fatalf("no line %q...\n%s", prefix, p.Output())
	return ""
}

// pageBrowser is one tab of headless Chromium showing the novice's page.
type pageBrowser struct {
	ctx context.Context
	url string
}

func newPageBrowser(t *testing.T, pageURL string) *pageBrowser {
	t.Helper()
	ctx := lab.StartChromium(t, 1024, 900)
	logConsole(t, ctx)
	b := &pageBrowser{ctx: ctx, url: pageURL}
	b.do(t, chromedp.Navigate(pageURL))
	return b
}

// newTab opens the page again in another tab of the same browser.
func (b *pageBrowser) newTab(t *testing.T) *pageBrowser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	logConsole(t, ctx)
	tab := &pageBrowser{ctx: ctx, url: b.url}
	tab.do(t, chromedp.Navigate(b.url))
	return tab
}

// logConsole puts the tab's console into the log of a failed or verbose
// test.
func logConsole(t *testing.T, ctx context.Context) {
	var mu sync.Mutex
	var console strings.Builder
	cctx, stop := context.WithCancel(ctx)
	messages := chromedp.Console(cctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			fmt.Fprintf(&console, "%v\n", m)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if (t.Failed() || testing.Verbose()) && console.Len() > 0 {
			t.Logf("browser console:\n%s", console.String())
		}
	})
}

func testID(id string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, id)) }

func (b *pageBrowser) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, lineTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

func (b *pageBrowser) click(t *testing.T, id string) {
	t.Helper()
	b.do(t, chromedp.Click(testID(id)))
}

// wait waits until expr, in which s is window.assistNovice, is true.
func (b *pageBrowser) wait(t *testing.T, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, lineTimeout)
	defer cancel()
	full := `(() => { const s = window.assistNovice; return !!s && (` + expr + `); })()`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](full, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		status, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.stringify(window.assistNovice)`))
		t.Fatalf("the page never got to %s: %v (assistNovice: %s)", expr, err, status)
	}
}

func (b *pageBrowser) text(t *testing.T, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, lineTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('[data-testid=%q]').textContent`, id)))
	if err != nil {
		t.Fatalf("browser: text of %s: %v", id, err)
	}
	return strings.TrimSpace(v)
}

// jsString quotes s for a JavaScript expression (a Go quoted string is a
// valid JavaScript string for the names used here).
func jsString(s string) string { return fmt.Sprintf("%q", s) }
