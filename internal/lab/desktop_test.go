package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDesktop checks the harness itself: a pattern shown on Xvfb reads back
// exactly through xwd, and typing into an xterm lands in its file.
func TestDesktop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Xvfb")
	}
	x := StartXvfb(t, 320, 240)
	pat := TestPattern(320, 240)
	w := x.ShowImage(t, pat)
	if w.Rect.Min.X != 0 || w.Rect.Min.Y != 0 {
		t.Fatalf("pattern window at %v, want the origin", w.Rect)
	}
	if m := Mismatch(pat, x.Screenshot(t), w.Rect.Min, 0); m != "" {
		t.Fatal(m)
	}
	if got, want := x.Pixel(t, 5, 5), At(pat, 5, 5); got != want {
		t.Fatalf("pixel (5,5) = %v, want %v", got, want)
	}

	file := filepath.Join(t.TempDir(), "typed")
	term := x.StartXterm(t, "lab-xterm", "30x5+10+10", "cat > "+file)
	term.Focus(t)
	x.Type(t, "hello lab\n")
	if !waitFor(10*time.Second, func() bool {
		b, _ := os.ReadFile(file)
		return strings.Contains(string(b), "hello lab")
	}) {
		b, _ := os.ReadFile(file)
		t.Fatalf("typed text did not arrive; file has %q", b)
	}
}
