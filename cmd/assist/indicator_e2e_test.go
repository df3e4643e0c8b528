package main

import (
	"fmt"
	"image/color"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/indicator"
	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
)

// indicatorDesktop is an Xvfb where the novice works in a focused xterm.
type indicatorDesktop struct {
	*lab.X
	work *lab.Window
}

func newIndicatorDesktop(t *testing.T) *indicatorDesktop {
	t.Helper()
	x := lab.StartXvfb(t, 800, 600)
	w := x.StartXterm(t, "novice-work", "60x20+100+150", "sleep 600")
	w.Focus(t)
	return &indicatorDesktop{X: x, work: w}
}

func (d *indicatorDesktop) focused(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(d.Xdotool(t, "getwindowfocus"))
}

// waitBar waits for the bar whose title says text, and for the frame's
// colour on the screen's edge, and returns a screenshot.
func (d *indicatorDesktop) waitBar(t *testing.T, s indicator.State) *screen.Image {
	t.Helper()
	d.FindWindow(t, "^Assist: "+regexpQuote(indicator.Text(s))+"$")
	want := indicator.FrameColour(s)
	deadline := time.Now().Add(lineTimeout)
	for {
		shot := d.Screenshot(t)
		if edgePixel(shot) == want {
			return shot
		}
		if time.Now().After(deadline) {
			lab.SaveArtifacts(t, map[string]*screen.Image{"no-frame": shot})
			t.Fatalf("the screen's edge is %v, want the frame's %v", edgePixel(shot), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitNoBar waits until no indicator window is visible.
func (d *indicatorDesktop) waitNoBar(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(lineTimeout)
	for {
		cmd := exec.Command("xdotool", "search", "--onlyvisible", "--name", "^Assist")
		cmd.Env = append(os.Environ(), d.Env()...)
		out, _ := cmd.Output()
		if strings.TrimSpace(string(out)) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("indicator windows still visible: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// click clicks button c of the bar for s.
func (d *indicatorDesktop) click(t *testing.T, s indicator.State, c indicator.Click) {
	t.Helper()
	r, ok := indicator.Button(s, d.Size, c)
	if !ok {
		t.Fatalf("the bar for %q has no %v button", indicator.Text(s), c)
	}
	p := r.Min.Add(r.Size().Div(2))
	d.Click(t, p.X, p.Y)
}

func edgePixel(img *screen.Image) color.RGBA {
	i := img.PixOffset(0, img.Rect.Dy()-1)
	return color.RGBA{img.Pix[i+2], img.Pix[i+1], img.Pix[i], 0xff}
}

func regexpQuote(s string) string {
	return strings.NewReplacer(".", `\.`, "?", `\?`, "(", `\(`, ")", `\)`).Replace(s)
}

// TestIndicator: while the expert sees the novice's screen, the novice's
// desktop shows a frame and a bar that say so, and what the expert may
// do; the bar's Take back control and End act on the session; the
// novice's focus never moves to the bar; and the bar goes with the
// session.
func TestIndicator(t *testing.T) {
	e2e(t)
	d := newIndicatorDesktop(t)
	work := d.work.ID
	nov := startInvite(t, []string{"env", "ASSIST_INDICATOR=on"}, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page")
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile, "--request-control"))
	nov.WaitLine(t, `wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	// A viewer that waits for the novice's yes: its first picture
	// already shows the frame the novice sees.
	type frame struct {
		img *screen.Image
		err error
	}
	first := make(chan frame, 1)
	go func() {
		c := lab.DialRFB(t, exp.RFB) // its handshake waits for the yes
		img, _, err := c.Screen()
		first <- frame{img, err}
	}()
	time.Sleep(200 * time.Millisecond) // let the viewer reach the novice's side; nothing to wait on
	nov.Send(t, "y")
	viewing := indicator.State{Mode: indicator.Viewing, Expert: expertName}
	lab.SaveArtifacts(t, map[string]*screen.Image{"viewing": d.waitBar(t, viewing)})
	select {
	case f := <-first:
		if f.err != nil {
			t.Fatalf("the expert's viewer: %v", f.err)
		}
		if got, want := edgePixel(f.img), indicator.FrameColour(viewing); got != want {
			lab.SaveArtifacts(t, map[string]*screen.Image{"first-frame": f.img})
			t.Errorf("the expert's first picture has %v at the screen's edge, want the frame's %v", got, want)
		}
	case <-time.After(lineTimeout):
		t.Fatal("the expert's viewer got no picture")
	}
	nov.WaitLine(t, `asks to control your mouse and keyboard\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "y")
	exp.WaitLine(t, `^state: controlling`, lineTimeout)
	controlling := indicator.State{Mode: indicator.Controlling, Expert: expertName}
	lab.SaveArtifacts(t, map[string]*screen.Image{"controlling": d.waitBar(t, controlling)})
	if f := d.focused(t); f != work {
		t.Errorf("the focus is on %s with the bar shown, want the novice's xterm %s", f, work)
	}

	d.click(t, controlling, indicator.TakeBack)
	nov.WaitLine(t, `^control taken back on the screen's bar$`, lineTimeout)
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	d.waitBar(t, viewing)
	if f := d.focused(t); f != work {
		t.Errorf("the focus moved to %s after a click on the bar, want the novice's xterm %s", f, work)
	}

	d.click(t, viewing, indicator.End)
	nov.WaitLine(t, `^session ended on the screen's bar$`, lineTimeout)
	exp.WaitLine(t, `^state: ended \(the novice ended the session\)`, lineTimeout)
	d.waitNoBar(t)
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	stop(t, nov.LineProc, "assist invite")
}

// TestStillSharing: after --check-every of sharing the novice is asked
// "Still sharing with Max?"; Keep sharing on the bar goes on for another
// round, and no answer ends the session.
func TestStillSharing(t *testing.T) {
	e2e(t)
	d := newIndicatorDesktop(t)
	nov := startInvite(t, []string{"env", "ASSIST_INDICATOR=on"}, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page",
		"--allow", "view", "--check-every", "2s", "--answer-timeout", "3s")
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	d.waitBar(t, indicator.State{Mode: indicator.Viewing, Expert: expertName})

	check := indicator.State{Mode: indicator.StillSharing, Expert: expertName}
	nov.WaitLine(t, `^Still sharing with `+expertName+`\? press y to keep sharing`, lineTimeout)
	lab.SaveArtifacts(t, map[string]*screen.Image{"check": d.waitBar(t, check)})
	d.click(t, check, indicator.KeepSharing)
	nov.WaitLine(t, `^still sharing with `+expertName+` \(answered on the screen's bar\)$`, lineTimeout)
	d.waitBar(t, indicator.State{Mode: indicator.Viewing, Expert: expertName})

	// The terminal answers too.
	nov.WaitLine(t, `^Still sharing with `+expertName+`\?`, lineTimeout)
	nov.Send(t, "y")
	nov.WaitLine(t, `^still sharing with `+expertName+` \(answered in the terminal\)$`, lineTimeout)

	// Nobody answers the third time.
	nov.WaitLine(t, `^Still sharing with `+expertName+`\?`, lineTimeout)
	exp.WaitLine(t, `^state: ended \(nobody answered "Still sharing with `+expertName+`\?" within 3 seconds\)`, lineTimeout)
	d.waitNoBar(t)
	if strings.Contains(exp.Stdout(), "state: ended") && !strings.Contains(nov.Stdout(), "nobody answered") {
		t.Errorf("the novice's terminal does not say why the session ended:\n%s", nov.Stdout())
	}
	stop(t, nov.LineProc, "assist invite")
}

// TestJoinTerminal: the expert at assist join's terminal chats, asks for
// control and leaves with typed commands, as the novice does at assist
// invite's.
func TestJoinTerminal(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, 320, 240)
	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page", "--allow", "view")
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
	exp.WaitLine(t, `^keys: m to write to `+noviceName+`, r to ask for control`, lineTimeout)
	exp.WaitLine(t, `^state: viewing`, lineTimeout)

	exp.Send(t, "say can you see the red icon?")
	exp.WaitLine(t, `^you: can you see the red icon\?$`, lineTimeout)
	nov.WaitLine(t, `^`+expertName+`: can you see the red icon\?$`, lineTimeout)
	nov.Send(t, "say yes, top left")
	exp.WaitLine(t, `^`+noviceName+`: yes, top left$`, lineTimeout)

	exp.Send(t, "control")
	exp.WaitLine(t, `^asked for control$`, lineTimeout)
	nov.WaitLine(t, `^`+expertName+` asks to control your mouse and keyboard\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "y")
	exp.WaitLine(t, `^state: controlling`, lineTimeout)

	exp.Send(t, "leave")
	exp.WaitLine(t, `^you left the session$`, lineTimeout)
	if code := exp.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist join exited with %d after leave, want 0\n%s", code, exp.Output())
	}
	nov.WaitLine(t, `^state: ended \(`+expertName+` left the session\)$`, lineTimeout)
	stop(t, nov.LineProc, "assist invite")
}

// TestTriesLeft: after a wrong password or code the novice reads how many
// tries are left, on the direct path and through the server; so does the
// expert's error, in the same words on both paths.
func TestTriesLeft(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, 320, 240)
	t.Run("direct", func(t *testing.T) {
		nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page")
		wrong := writePassword(t, "wrong-horse-battery")
		msg := joinFails(t, nil, nov.File, wrong)
		wantContains(t, "wrong password", msg, "wrong password", "4 attempts left")
		nov.WaitLine(t, `^Someone tried a wrong code: 4 tries left, then this invitation stops working\.$`, lineTimeout)
		joinFails(t, nil, nov.File, wrong)
		nov.WaitLine(t, `^Someone tried a wrong code: 3 tries left`, lineTimeout)
		stop(t, nov.LineProc, "assist invite")
	})
	t.Run("server", func(t *testing.T) {
		srv := startServe(t, t.TempDir())
		nov := startServerInvite(t, x.Display, srv)
		bad := fmt.Sprintf("%d-%s-%s", nov.Lookup, nov.Words[0], otherWord(nov.Words[1]))
		msg := joinCodeFails(t, nil, "--server", srv.URL, "--server-fingerprint", srv.Fingerprint, bad)
		// The same words as the direct path's.
		wantContains(t, "wrong code through the server", msg, "wrong password", "4 attempts left")
		nov.WaitLine(t, `^Someone tried a wrong code: 4 tries left, then this invitation stops working\.$`, lineTimeout)
		msg = joinCodeFails(t, nil, "--server", srv.URL, "--server-fingerprint", srv.Fingerprint, bad)
		wantContains(t, "second wrong code through the server", msg, "wrong password", "3 attempts left")
		stop(t, nov.LineProc, "assist invite")
	})
}
