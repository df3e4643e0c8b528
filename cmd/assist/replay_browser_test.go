package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/chromedp/chromedp"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
)

// TestReplayBrowser: a recorded session (two pictures, the second about
// two seconds in) plays on assist replay --browser's page in headless
// Chromium: seeking to the start shows the first picture the expert saw
// pixel-exactly; while paused the position and the picture stay; seeking
// to the end shows the second picture the expert saw pixel-exactly; and
// seeking back to the start shows the first again.
func TestReplayBrowser(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, 320, 240)
	x.ShowImage(t, lab.TestPattern(320, 240))
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	if err := os.WriteFile(keyFile, []byte(key.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	recDir := t.TempDir()
	novU, expU := newAuditUser(t), newAuditUser(t)
	nov := startInvite(t, novU.prefix(), x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page",
		"--allow", "ask", "--record-to", key.Recipient().String(), "--record-dir", recDir)
	exp := connected(t, startJoin(t, expU.prefix(), nov.File, nov.PasswordFile))
	nov.WaitLine(t, `wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "y")
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	lab.WaitMatch(t, x, lab.DialRFB(t, exp.RFB).Screen, 0, matchTimeout)
	first, _, err := lab.DialRFB(t, exp.RFB).Screen()
	if err != nil {
		t.Fatal(err)
	}
	// A gap in the recording's time, for pause and seek to act on.
	time.Sleep(2 * time.Second)
	x.StartXterm(t, "second-picture", "30x8+20+20", "sleep 600")
	lab.WaitMatch(t, x, lab.DialRFB(t, exp.RFB).Screen, 0, matchTimeout)
	second, _, err := lab.DialRFB(t, exp.RFB).Screen()
	if err != nil {
		t.Fatal(err)
	}
	if sameRGB(first, second) {
		t.Fatal("the two pictures are the same: the test would prove nothing")
	}
	nov.Send(t, "end")
	exp.WaitLine(t, `^state: ended`, lineTimeout)
	exp.WaitExit(t, lineTimeout)
	nov.WaitExit(t, lineTimeout)
	recs, _ := filepath.Glob(filepath.Join(recDir, "*.rec"))
	if len(recs) != 1 {
		t.Fatalf("recordings %q, want one", recs)
	}

	// Another key opens nothing, on the page either.
	other, _ := age.GenerateX25519Identity()
	otherFile := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(otherFile, []byte(other.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runAssistEnv(t, nil, "replay", recs[0], "--identity", otherFile, "--browser"); code != 1 || !strings.Contains(stderr, "this key cannot open the recording") {
		t.Errorf("replay --browser with another key: exit %d, %q", code, stderr)
	}

	play := lab.StartLines(t, nil, lab.AssistBinary(t), "replay", recs[0], "--identity", keyFile, "--browser")
	pageURL := play.WaitLine(t, `^page: (\S+)$`, lineTimeout)[1]
	ctx := lab.StartChromium(t, 1024, 768)
	logConsole(t, ctx)
	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, lineTimeout)
		defer cancel()
		if err := chromedp.Do(c, actions...); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
	state := func() (at, length float64, epoch float64) {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`[window.assistReplay.at, window.assistReplay.length, window.assistReplay.epoch]`))
		if err != nil {
			t.Fatal(err)
		}
		return v[0], v[1], v[2]
	}
	waitJS := func(expr string) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, lineTimeout)
		defer cancel()
		if _, err := chromedp.Run(c, chromedp.Poll[bool](`(() => { const s = window.assistReplay; return !!s && (`+expr+`); })()`, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("the page never got to %s: %v", expr, err)
		}
	}
	// waitPicture waits until the page's canvas is want, pixel for pixel.
	waitPicture := func(name string, want *screen.Image) {
		t.Helper()
		deadline := time.Now().Add(matchTimeout)
		for {
			got, err := lab.ReadCanvas(ctx, `[data-testid="screen"] canvas`)
			if err == nil && sameRGB(got, want) {
				return
			}
			if time.Now().After(deadline) {
				if got != nil {
					lab.SaveArtifacts(t, map[string]*screen.Image{name + "-want": want, name + "-got": got})
				}
				t.Fatalf("the page never showed the %s picture (%v)", name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	seek := func(ms int) {
		t.Helper()
		run(chromedp.Evaluate[chromedp.Void](`fetch('control', {method: 'POST', body: JSON.stringify({action: 'seek', to: ` + strconv.Itoa(ms) + `})})`))
	}

	run(chromedp.Navigate(pageURL))
	waitJS(`s.length > 1500 && s.rfb === 'connected'`)
	run(chromedp.Click(`[data-testid="pause"]`))
	waitJS(`!s.playing`)
	// Back to the start: a new run, paused at 0.
	_, _, epoch := state()
	seek(0)
	waitJS(`s.epoch > ` + strconv.FormatFloat(epoch, 'f', -1, 64) + ` && s.rfb === 'connected' && s.at < 500`)
	waitPicture("first", first)

	// Paused: neither the position nor the picture moves.
	at0, length, _ := state()
	time.Sleep(time.Second)
	if at1, _, _ := state(); at1 != at0 {
		t.Errorf("paused, the position moved from %v to %v ms", at0, at1)
	}
	waitPicture("first-still", first)

	// Seek forwards to the end: the second picture.
	seek(int(length))
	waitJS(`s.at >= s.length`)
	waitPicture("second", second)

	// And back to the start.
	_, _, epoch = state()
	seek(0)
	waitJS(`s.epoch > ` + strconv.FormatFloat(epoch, 'f', -1, 64) + ` && s.rfb === 'connected'`)
	waitPicture("first-again", first)

	play.Send(t, "quit")
	if code := play.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist replay --browser exited with %d\n%s", code, play.Output())
	}
}

// sameRGB reports whether a and b are the same picture, alpha aside.
func sameRGB(a, b *screen.Image) bool {
	if a.Rect.Size() != b.Rect.Size() {
		return false
	}
	for y := 0; y < a.Rect.Dy(); y++ {
		for x := 0; x < a.Rect.Dx(); x++ {
			p, q := lab.At(a, a.Rect.Min.X+x, a.Rect.Min.Y+y), lab.At(b, b.Rect.Min.X+x, b.Rect.Min.Y+y)
			if p.R != q.R || p.G != q.G || p.B != q.B {
				return false
			}
		}
	}
	return true
}
