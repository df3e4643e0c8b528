package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/chromedp/chromedp"
)

// internalWord matches the program's own words, which the novice must not
// read in the terminal or on the page (the page's Details may show them),
// and timestamps in UTC or in a machine's format.
var internalWord = regexp.MustCompile(`(?i)\b(rendezvous|punched|relay-(udp|tcp|tls)|novice|expert|session id|UTC|path (direct|punched|relay))\b|` +
	`\bICE\b|\d{4}-\d\d-\d\dT\d\d:\d\d`)

// interfaceLine matches the novice's stdout lines that scripts and the
// README rely on: they keep their form, whatever words they hold.
var interfaceLine = regexp.MustCompile(`^(code|password|invitation|link|expires|addresses|server|browser|page|app): `)

// TestNoviceWords runs a whole session, direct and through the server,
// with the novice's page open: view and control asked and allowed, chat,
// clipboard and files allowed, "Still sharing?" asked and answered on the
// page, control taken back, the helper leaving, the invitation withdrawn.
// Neither the novice's terminal (its interface lines aside) nor the page,
// at any of those moments, says "novice", "expert", "rendezvous", a path's
// name or a timestamp; the page's Details do name the path.
func TestNoviceWords(t *testing.T) {
	e2e(t)
	t.Parallel()
	for _, via := range []string{"direct", "server"} {
		t.Run(via, func(t *testing.T) {
			x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
			x.ShowImage(t, lab.TestPattern(desktopSize.X, desktopSize.Y))
			// Still sharing? is asked 2 s into the sharing, and again
			// 2 s after each yes.
			noviceFlags := []string{"--listen", "127.0.0.1:0", "--no-portmap", "--allow", "ask",
				"--check-every", "2s", "--answer-timeout", "1m", "--files-dir", t.TempDir()}
			var nov *lab.LineProc
			var join func() *lab.LineProc
			detail := "direct connection"
			if via == "direct" {
				n := startInvite(t, nil, x.Display, noviceFlags...)
				nov = n.LineProc
				join = func() *lab.LineProc { return startJoin(t, nil, n.File, n.PasswordFile, "--request-control") }
			} else {
				srv := startServe(t, t.TempDir(), "--turn-listen", "127.0.0.1:0", "--turns-listen", "127.0.0.1:0")
				nov = lab.StartLines(t, nil, lab.AssistBinary(t), append([]string{"invite", "--server", srv.URL,
					"--server-fingerprint", srv.Fingerprint, "--display", x.Display, "--name", noviceName}, noviceFlags...)...)
				code := nov.WaitLine(t, `^code: (\S+)$`, lineTimeout)[1]
				nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
				join = func() *lab.LineProc {
					return lab.StartLines(t, nil, lab.AssistBinary(t), "join", "--server", srv.URL, "--server-fingerprint", srv.Fingerprint,
						"--no-browser", "--name", expertName, "--request-control", code)
				}
				detail = "path "
			}
			b := newPageBrowser(t, lineWithPrefix(t, nov, "page: "))
			pageSays := func(when string) {
				t.Helper()
				text, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`[document.title, document.body.innerText,
					...[...document.querySelectorAll('[placeholder], [aria-label], [alt], [title]')].flatMap((e) =>
						[e.getAttribute('placeholder'), e.getAttribute('aria-label'), e.getAttribute('alt'), e.getAttribute('title')])
				].filter(Boolean).join('\n')`))
				if err != nil {
					t.Fatalf("browser: the page's text: %v", err)
				}
				if w := internalWord.FindString(text); w != "" {
					t.Errorf("%s, the page says %q:\n%s", when, w, text)
				}
			}
			b.wait(t, `s.socket === 'open' && s.state === 'waiting'`)
			pageSays("waiting")
			exp := join()

			nov.WaitLine(t, `^`+expertName+` connected from \S+`, lineTimeout)
			nov.WaitLine(t, `wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
			b.wait(t, `s.state === 'asking' && s.question > 0`)
			pageSays("asked to view")
			nov.Send(t, "y")
			nov.WaitLine(t, `^state: viewing`, lineTimeout)
			nov.WaitLine(t, `asks to control your mouse and keyboard\. Allow\? \[y/N\]$`, lineTimeout)
			b.wait(t, `s.state === 'control-asked' && s.question > 0`)
			pageSays("asked for control")
			b.click(t, "allow")
			nov.WaitLine(t, `^state: controlling`, lineTimeout)
			b.wait(t, `s.state === 'controlling'`)
			exp.Send(t, "say can you see it?")
			nov.WaitLine(t, `^`+expertName+`: can you see it\?$`, lineTimeout)
			nov.Send(t, "c")
			nov.WaitLine(t, `^clipboard: shared with `+expertName, lineTimeout)
			nov.Send(t, "f")
			nov.WaitLine(t, `^files: allowed`, lineTimeout)
			b.wait(t, `s.clipboard && s.files && s.chatLines === 1`)
			pageSays("controlling")
			// The technical path is there, under Details.
			if got := b.text(t, "detail"); !strings.Contains(got, detail) {
				t.Errorf("the page's Details say %q about the connection, want %q in it", got, detail)
			}

			// On a loaded machine the question may come before control
			// was allowed, its line already behind the waits above.
			asked := slices.ContainsFunc(nov.Lines(), func(l string) bool {
				return strings.HasPrefix(l, "Still sharing with "+expertName+"?")
			})
			if !asked {
				nov.WaitLine(t, `^Still sharing with `+expertName+`\?`, lineTimeout)
			}
			b.wait(t, `s.stillSharing`)
			pageSays("asking whether to go on sharing")
			b.click(t, "keep-sharing")
			nov.WaitLine(t, `^still sharing with `+expertName+` \(answered on the page\)$`, lineTimeout)

			nov.Send(t, "esc")
			nov.WaitLine(t, `^state: viewing`, lineTimeout)
			exp.Send(t, "leave")
			nov.WaitLine(t, `^state: ended`, lineTimeout)
			nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
			b.wait(t, `s.state === 'waiting' && s.expert === ''`)
			pageSays("after the session")
			nov.Send(t, "q")
			if code := nov.WaitExit(t, lineTimeout); code != 0 {
				t.Errorf("assist invite exited with %d after q, want 0\n%s", code, nov.Output())
			}
			b.wait(t, `s.state === 'stopped' || s.socket === 'closed'`)
			pageSays("once the invitation is withdrawn")

			for _, l := range nov.Lines() {
				if interfaceLine.MatchString(l) {
					continue
				}
				if w := internalWord.FindString(l); w != "" {
					t.Errorf("assist invite says %q: %q", w, l)
				}
			}
			if t.Failed() {
				t.Logf("assist invite:\n%s", nov.Output())
			}
		})
	}
}

// novicePathFromLog returns the path assist invite logged for the latest
// expert to connect (the "expert connected" line), waiting for it a
// little: stderr is copied apart from stdout.
func novicePathFromLog(t *testing.T, p *lab.LineProc) string {
	t.Helper()
	return waitLogPath(t, p, `msg="expert connected" via=\S+ path=(\S+)`)
}

// waitLogPath waits for a line of p's log that matches pattern and
// returns the first submatch of the latest such line.
func waitLogPath(t *testing.T, p *lab.LineProc, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(lineTimeout)
	for {
		if m := re.FindAllStringSubmatch(p.Stderr(), -1); m != nil {
			return m[len(m)-1][1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in assist invite's log:\n%s", re, p.Stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
