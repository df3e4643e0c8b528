package main

import (
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
)

// inputDesktop is a desktop with an xterm at the top-left whose input goes
// to a file, so typed text can be read back.
type inputDesktop struct {
	*lab.X
	term *lab.Window
	file string
}

func newInputDesktop(t *testing.T) *inputDesktop {
	t.Helper()
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	d := &inputDesktop{X: x, file: filepath.Join(t.TempDir(), "typed")}
	d.term = x.StartXterm(t, "e2e-input", "50x10+0+0", "exec cat > "+d.file)
	return d
}

func (d *inputDesktop) typed() string {
	b, _ := os.ReadFile(d.file)
	return string(b)
}

// waitTyped waits until the file contains text.
func (d *inputDesktop) waitTyped(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(matchTimeout)
	for !strings.Contains(d.typed(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("%q did not arrive; the xterm got %q", text, d.typed())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// typeThroughViewer focuses the viewer, clicks once into the xterm through
// it (there is no window manager on either side: the click moves the
// desktop's pointer into the xterm, which gives it the focus) and types.
func typeThroughViewer(t *testing.T, v *lab.Viewer, at image.Point, text string) {
	t.Helper()
	vx := v.Window.X
	v.Window.Focus(t)
	p := v.ToDesktop(at)
	vx.Click(t, p.X, p.Y)
	time.Sleep(time.Second) // the viewer and the desktop settle the focus
	vx.Type(t, text)
}

// TestVNCTyping types into a TigerVNC viewer and checks what reaches the
// desktop, with and without --view-only.
func TestVNCTyping(t *testing.T) {
	e2e(t)
	t.Parallel()
	d := newInputDesktop(t)
	inTerm := image.Pt(40, 40)

	t.Run("control", func(t *testing.T) {
		addr := lab.StartAssistVNC(t, d.Display)
		vx := lab.StartXvfb(t, viewerSize.X, viewerSize.Y)
		v := lab.StartTigerVNC(t, vx, addr, desktopSize)
		typeThroughViewer(t, v, inTerm, "hello from the expert\n")
		d.waitTyped(t, "hello from the expert\n")
		if got := d.Pointer(t); got != inTerm {
			t.Errorf("desktop pointer at %v after the click, want %v", got, inTerm)
		}
	})

	t.Run("view-only", func(t *testing.T) {
		addr := lab.StartAssistVNC(t, d.Display, "--view-only")
		// The desktop's pointer rests in the xterm, away from where the
		// viewer clicks, so the xterm has the focus: any key that got
		// through would land in the file.
		rest := image.Pt(200, 100)
		d.Xdotool(t, "mousemove", "--sync", "200", "100")
		before := len(d.typed())
		vx := lab.StartXvfb(t, viewerSize.X, viewerSize.Y)
		v := lab.StartTigerVNC(t, vx, addr, desktopSize)
		typeThroughViewer(t, v, inTerm, "must not arrive\n")

		// Events from one client are handled in order: once the server
		// answers an update request sent after a pointer and a key
		// event, it has dealt with them.
		c := lab.DialRFB(t, addr)
		m := []byte{5, 0, 0, 10, 0, 10, 4, 1, 0, 0, 0, 0, 0, 'x', 4, 0, 0, 0, 0, 0, 0, 'x'}
		if _, err := c.Conn.Write(m); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Screen(); err != nil {
			t.Fatalf("view-only server stopped answering: %v", err)
		}
		// Then a marker typed on the desktop itself shows the xterm was
		// listening all along.
		d.Type(t, "marker\n")
		d.waitTyped(t, "marker\n")
		if got := d.typed()[before:]; got != "marker\n" {
			t.Errorf("view-only server let keys through: the xterm got %q", got)
		}
		if got := d.Pointer(t); got != rest {
			t.Errorf("view-only server moved the pointer to %v (it rested at %v)", got, rest)
		}
	})
}
