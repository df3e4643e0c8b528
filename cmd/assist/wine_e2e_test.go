//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"image"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
)

// TestWindowsNoviceUnderWine runs the Windows build of assist as the
// novice (assist.exe invite under Wine, on a Wine virtual desktop drawn
// on Xvfb) and the Linux build as the expert (assist join), over
// loopback: the expert's viewer gets exactly the pixels Wine draws;
// nothing the expert sends moves the pointer before the novice allows
// control; once allowed it does, the expert's own Esc leaves control
// where it is, and Esc on the novice's keyboard (the X keyboard Wine
// reads) takes it back; clipboard text goes nowhere without the
// clipboard right and both ways with it.
func TestWindowsNoviceUnderWine(t *testing.T) {
	e2e(t)
	lab.Need(t, "wine", "Xvfb", "xdotool", "xclip")
	size := image.Pt(800, 600)
	x := lab.StartXvfb(t, size.X, size.Y)
	w := lab.StartWine(t, x)
	dir := t.TempDir()
	exe := lab.BuildWindows(t, dir, "./cmd/assist", false)
	// Something to look at besides the desktop's background.
	w.Start(t, nil, "notepad")
	x.Xdotool(t, "mousemove", "--sync", "5", "5")

	file := filepath.Join(dir, "help.assist")
	pw := writePassword(t, password)
	winPath := func(p string) string { return "Z:" + strings.ReplaceAll(p, "/", `\`) }
	nov := lab.StartLines(t, w.Env(), "wine", exe, "invite", "--file", winPath(file), "--password-file", winPath(pw),
		"--listen", "127.0.0.1:0", "--no-portmap", "--no-page", "--name", noviceName)
	nov.WaitLine(t, `^code: \S+\r?$`, lineTimeout)
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)

	exp := connected(t, startJoin(t, nil, file, pw, "--request-control"))
	nov.WaitLine(t, `wants to see your screen\. Allow\? \[y/N\]\r?$`, lineTimeout)
	nov.Send(t, "y")
	nov.WaitLine(t, `asks to control your mouse and keyboard\. Allow\? \[y/N\]\r?$`, lineTimeout)
	exp.WaitLine(t, `^state: control-asked`, lineTimeout)

	v := lab.DialRFB(t, exp.RFB)
	if v.Size != size {
		t.Fatalf("the expert's viewer got a desktop of %v, Wine's is %v", v.Size, size)
	}
	lab.WaitMatch(t, x, v.Screen, 0, matchTimeout)
	if n := colours(x.Screenshot(t)); n < 8 {
		t.Fatalf("the desktop shows %d colours: notepad is not on it, so the comparison proved little", n)
	}

	pointer := func(p image.Point) {
		t.Helper()
		m := []byte{5, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(m[2:], uint16(p.X))
		binary.BigEndian.PutUint16(m[4:], uint16(p.Y))
		if _, err := v.Conn.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	key := func(keysym uint32, down bool) {
		t.Helper()
		m := []byte{4, 0, 0, 0, 0, 0, 0, 0}
		if down {
			m[1] = 1
		}
		binary.BigEndian.PutUint32(m[4:], keysym)
		if _, err := v.Conn.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	// roundTrip returns once the novice's server has dealt with the
	// events sent before it (it answers a full update after them).
	roundTrip := func() {
		t.Helper()
		if _, _, err := v.Screen(); err != nil {
			t.Fatalf("the novice stopped answering: %v", err)
		}
	}
	waitPointer := func(want image.Point) {
		t.Helper()
		deadline := time.Now().Add(lineTimeout)
		for x.Pointer(t) != want {
			if time.Now().After(deadline) {
				t.Fatalf("the pointer is at %v, want %v\nnovice:\n%s\nexpert:\n%s", x.Pointer(t), want, nov.Output(), exp.Output())
			}
			time.Sleep(20 * time.Millisecond) // Wine moves the X pointer with no event we can wait on
		}
	}

	rest := x.Pointer(t)
	pointer(image.Pt(300, 200))
	roundTrip()
	if got := x.Pointer(t); got != rest {
		t.Fatalf("before the novice allowed control, the expert moved the pointer to %v", got)
	}

	nov.Send(t, "y")
	exp.WaitLine(t, `^state: controlling`, lineTimeout)
	pointer(image.Pt(300, 200))
	waitPointer(image.Pt(300, 200))

	// The expert's Esc reaches Windows and leaves control with them.
	key(0xff1b, true)
	key(0xff1b, false)
	pointer(image.Pt(420, 310))
	waitPointer(image.Pt(420, 310))

	// The novice's Esc, on the X keyboard, takes control back.
	w.Desktop.Focus(t)
	x.Xdotool(t, "key", "Escape")
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	nov.WaitLine(t, `^state: viewing`, lineTimeout)
	rest = x.Pointer(t)
	pointer(image.Pt(100, 100))
	roundTrip()
	if got := x.Pointer(t); got != rest {
		t.Fatalf("after Esc, the expert moved the pointer to %v", got)
	}

	// The clipboard, through the session to Windows' clipboard and on
	// to Wine's X CLIPBOARD. A viewer of its own for it: plain RFB cut
	// text (Latin-1), and no updates asked, so every message it reads
	// is cut text.
	cv := lab.DialRFB(t, exp.RFB)
	cut := func(text string) {
		t.Helper()
		m := binary.BigEndian.AppendUint32([]byte{6, 0, 0, 0}, uint32(len(text)))
		if _, err := cv.Conn.Write(append(m, text...)); err != nil {
			t.Fatal(err)
		}
	}
	// Without the clipboard right the expert's text is dropped: after a
	// round trip on the same connection it has been handled.
	cut("expert text before sharing")
	if _, _, err := cv.Screen(); err != nil {
		t.Fatal(err)
	}
	if got := xClipboardText(x); got == "expert text before sharing" {
		t.Fatal("the expert's clipboard text reached Windows without the clipboard right")
	}
	nov.Send(t, "c")
	nov.WaitLine(t, `^clipboard: shared with `+expertName, lineTimeout)
	// The novice copies on Windows' desktop (from X, through Wine).
	lab.Start(t, x.Env(), "sh", "-c", `printf %s "$0" | xclip -i -selection clipboard -quiet`, "novice copied this")
	cv.Conn.SetReadDeadline(time.Now().Add(lineTimeout))
	var h [8]byte
	if _, err := io.ReadFull(cv.Conn, h[:]); err != nil || h[0] != 3 {
		t.Fatalf("the expert's viewer got no cut text (%v, message %d)", err, h[0])
	}
	text := make([]byte, binary.BigEndian.Uint32(h[4:]))
	if _, err := io.ReadFull(cv.Conn, text); err != nil || string(text) != "novice copied this" {
		t.Fatalf("the expert's viewer got cut text %q (%v), want the novice's copy", text, err)
	}
	cut("expert text after sharing")
	deadline := time.Now().Add(lineTimeout)
	for xClipboardText(x) != "expert text after sharing" {
		if time.Now().After(deadline) {
			t.Fatalf("the expert's clipboard text did not reach Windows: X's CLIPBOARD holds %q", xClipboardText(x))
		}
		time.Sleep(50 * time.Millisecond) // Wine hands the text to X with no event we can wait on
	}

	nov.Send(t, "end")
	exp.WaitLine(t, `^state: ended`, lineTimeout)
	if code := exp.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist join exited with %d, want 0\n%s", code, exp.Output())
	}
	if code := nov.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist.exe invite exited with %d, want 0\n%s", code, nov.Output())
	}
}

// xClipboardText is X's CLIPBOARD as UTF-8 text, or "" when nobody
// offers it.
func xClipboardText(x *lab.X) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "xclip", "-o", "-selection", "clipboard", "-t", "UTF8_STRING")
	cmd.Env = append(os.Environ(), x.Env()...)
	out, _ := cmd.Output() // fails while nobody owns the selection
	return string(out)
}

// colours counts the distinct colours of img, up to 1000.
func colours(img *screen.Image) int {
	seen := map[[3]byte]bool{}
	for i := 0; i+3 < len(img.Pix) && len(seen) < 1000; i += 4 {
		seen[[3]byte(img.Pix[i:i+3])] = true
	}
	return len(seen)
}

// TestWindowsInstallerUnderWine builds assist.exe and the MSI with
// scripts/windows.sh (wixl, packaging/windows/assist.wxs) and installs
// and uninstalls it
// with Wine's msiexec: assist.exe lands in Program Files and runs, the
// Start menu gets its entry, the assist: URL handler points at assist
// join, and uninstalling takes all three away.
func TestWindowsInstallerUnderWine(t *testing.T) {
	e2e(t)
	lab.Need(t, "wine", "Xvfb", "wixl")
	x := lab.StartXvfb(t, 640, 480)
	w := lab.StartWine(t, x)
	// The release script builds both, as CI does.
	dir := t.TempDir()
	build := exec.Command("scripts/windows.sh", "0.1.0", dir)
	build.Dir = lab.ModuleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/windows.sh: %v: %s", err, out)
	}
	msi := filepath.Join(dir, "assist-0.1.0.msi")

	drive := filepath.Join(w.Prefix, "drive_c")
	installed := filepath.Join(drive, "Program Files", "Assist", "assist.exe")
	winMSI := "Z:" + strings.ReplaceAll(msi, "/", `\`)
	msiexec := func(args ...string) {
		t.Helper()
		if err := w.Run(t, time.Minute, "msiexec", args...); err != nil {
			t.Fatal(err)
		}
	}
	shortcut := func() bool {
		found := false
		filepath.WalkDir(drive, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "Get help (Assist).lnk" {
				found = true
			}
			return nil
		})
		return found
	}
	handler := func() string {
		cmd := w.Command(nil, "reg", "query", `HKCR\assist\shell\open\command`)
		out, _ := cmd.Output() // fails once the key is gone
		return string(out)
	}

	msiexec("/i", winMSI, "/qn")
	if _, err := os.Stat(installed); err != nil {
		t.Fatalf("after installing, no assist.exe in Program Files: %v", err)
	}
	if err := w.Run(t, time.Minute, installed, "help"); err != nil {
		t.Errorf("the installed assist.exe does not run: %v", err)
	}
	if !shortcut() {
		t.Error("after installing, no Start menu entry \"Get help (Assist)\"")
	}
	if h := handler(); !strings.Contains(h, `"C:\Program Files\Assist\assist.exe" join "%1"`) {
		t.Errorf("the assist: URL handler is %q, want assist.exe join \"%%1\"", h)
	}

	msiexec("/x", winMSI, "/qn")
	if _, err := os.Stat(installed); !os.IsNotExist(err) {
		t.Errorf("after uninstalling, assist.exe is still there (%v)", err)
	}
	if shortcut() {
		t.Error("after uninstalling, the Start menu entry is still there")
	}
	if h := handler(); strings.Contains(h, "assist.exe") {
		t.Errorf("after uninstalling, the URL handler is still there: %q", h)
	}
}

// TestWindowsExpertUnderWine runs the Windows build of assist as the
// expert (assist.exe join under Wine) against the Linux novice: a VNC
// viewer on the expert's loopback port gets exactly the novice's X
// desktop, and the browser viewer's page is served.
func TestWindowsExpertUnderWine(t *testing.T) {
	e2e(t)
	lab.Need(t, "wine", "Xvfb")
	d := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	d.ShowImage(t, lab.TestPattern(desktopSize.X, desktopSize.Y))
	w := lab.StartWine(t, lab.StartXvfb(t, 640, 480))
	exe := lab.BuildWindows(t, t.TempDir(), "./cmd/assist", false)

	nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view")
	winPath := func(p string) string { return "Z:" + strings.ReplaceAll(p, "/", `\`) }
	p := lab.StartLines(t, w.Env(), "wine", exe, "join", "--password-file", winPath(nov.PasswordFile),
		"--no-browser", "--name", expertName, winPath(nov.File))
	exp := connected(t, p)
	exp.WaitLine(t, `^state: viewing`, lineTimeout)

	v := lab.DialRFB(t, exp.RFB)
	lab.WaitMatch(t, d, v.Screen, 0, matchTimeout)

	resp, err := http.Get(exp.Web)
	if err != nil {
		t.Fatalf("the browser viewer of assist.exe join: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the browser viewer answered %s", resp.Status)
	}

	nov.Send(t, "end")
	exp.WaitLine(t, `^state: ended`, lineTimeout)
	if code := exp.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist.exe join exited with %d, want 0\n%s", code, exp.Output())
	}
}
