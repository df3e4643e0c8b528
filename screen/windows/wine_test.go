//go:build linux

package windows

import (
	"context"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestUnderWine runs this package's Windows tests under Wine, on a Wine
// virtual desktop drawn on Xvfb, and then checks from Linux what only
// Linux sees: that the capture equals the X server's pixels, that the
// clipboard reaches X's CLIPBOARD and back, and that Esc pressed on the
// X keyboard (the novice's own) takes control back while the expert's
// injected Esc passes.
func TestUnderWine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Xvfb and a Wine prefix")
	}
	lab.Need(t, "wine", "Xvfb", "xwd", "xclip", "xdotool")
	x := lab.StartXvfb(t, 1024, 768)
	w := lab.StartWine(t, x)
	dir := t.TempDir()
	exe := lab.BuildWindows(t, dir, "./screen/windows", true)

	t.Run("windows tests", func(t *testing.T) {
		f, err := os.Create(filepath.Join(dir, "windows-tests.log"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := w.Command(nil, exe, "-test.v", "-test.timeout", "2m")
		cmd.Stdout, cmd.Stderr = f, f
		err = cmd.Run()
		out, _ := os.ReadFile(f.Name())
		t.Logf("under Wine:\n%s", out)
		if err != nil {
			t.Fatalf("the Windows tests failed under Wine: %v", err)
		}
		if !strings.Contains(string(out), "--- PASS: TestGrabShowsWindow") {
			t.Fatal("the Windows tests did not run")
		}
	})

	h := lab.StartLines(t, append(w.Env(), "ASSIST_WINE_HELPER=1"), "wine", exe, "-test.run", "^TestWineHelper$", "-test.v", "-test.timeout", "2m")
	wait := func(pattern string) []string {
		t.Helper()
		return h.WaitLine(t, pattern, 30*time.Second)
	}

	t.Run("capture equals the X server's pixels", func(t *testing.T) {
		file := filepath.Join(dir, "grab.bgrx")
		h.Send(t, "grab Z:"+strings.ReplaceAll(file, "/", `\`))
		m := wait(`^grabbed (\d+) (\d+)`)
		wd, _ := strconv.Atoi(m[1])
		ht, _ := strconv.Atoi(m[2])
		pix, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		got := &screen.Image{Pix: pix, Stride: 4 * wd, Rect: image.Rect(0, 0, wd, ht)}
		if got.Rect.Size() != x.Size {
			t.Fatalf("Wine's desktop is %v, Xvfb's screen %v", got.Rect.Size(), x.Size)
		}
		want := x.Screenshot(t)
		if msg := lab.Mismatch(want, got, image.Point{}, 0); msg != "" {
			lab.SaveArtifacts(t, map[string]*screen.Image{"x": want, "wine-grab": got})
			t.Fatalf("the capture differs from the X server: %s", msg)
		}
		// Not a blank screen either: the test window's picture is there.
		if lab.At(got, 64+10, 48+10) == lab.At(got, 10, 10) {
			t.Fatal("the test window is not in the capture")
		}
	})

	t.Run("clipboard both ways", func(t *testing.T) {
		const fromWindows = "from Windows: héllo ✓"
		h.Send(t, "setclip "+strconv.Quote(fromWindows))
		wait(`^clip-set$`)
		if got := xClipboard(t, x, fromWindows); got != fromWindows {
			t.Fatalf("X's CLIPBOARD holds %q, want %q", got, fromWindows)
		}
		const fromLinux = "from Linux: naïve ☂"
		h.Send(t, "waitclip")
		// xclip stays to serve the selection; the process ends on cleanup.
		cp := lab.Start(t, x.Env(), "sh", "-c", "printf %s \"$0\" | xclip -i -selection clipboard -quiet", fromLinux)
		defer cp.Stop()
		m := wait(`^clip-got (.*)$`)
		if got, _ := strconv.Unquote(m[1]); got != fromLinux {
			t.Fatalf("Windows' clipboard reported %s, want %q", m[1], fromLinux)
		}
	})

	t.Run("Esc on the X keyboard takes control back", func(t *testing.T) {
		h.Send(t, "hotkey")
		if m := wait(`^expert-esc (\d+)$`); m[1] != "1" {
			t.Fatalf("the expert's Esc reached the window %s times, want 1", m[1])
		}
		wait(`^armed$`)
		w.Desktop.Focus(t)
		x.Run(t, "xdotool", "key", "Escape")
		if m := wait(`^taken-back (\d+)$`); m[1] != "0" {
			t.Fatalf("the novice's Esc reached the window (%s events): it should have been swallowed", m[1])
		}
	})

	h.Send(t, "quit")
	if code := h.WaitExit(t, 30*time.Second); code != 0 {
		t.Fatalf("the Windows helper exited with %d: %s", code, h.Stderr())
	}
}

// xClipboard reads X's CLIPBOARD as UTF-8 until it holds want or 15 s
// pass: Wine takes the X selection over a moment after a Windows program
// sets the clipboard, and xclip reads whatever is there at the time.
func xClipboard(t *testing.T, x *lab.X, want string) string {
	t.Helper()
	var got string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cmd := exec.CommandContext(ctx, "xclip", "-o", "-selection", "clipboard", "-t", "UTF8_STRING")
		cmd.Env = append(os.Environ(), x.Env()...)
		out, err := cmd.Output()
		cancel()
		got = string(out)
		if err == nil && got == want {
			break
		}
		time.Sleep(100 * time.Millisecond) // X has no event for "Wine owns it now" that xclip can wait on
	}
	return got
}
