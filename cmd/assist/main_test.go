package main

import (
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assist-project/assist/internal/lab"
)

// The end-to-end tests in this package run the real binary (built once by
// lab.AssistBinary) on Xvfb desktops and look at it through real VNC
// viewers. Each skips with the reason when a tool is missing; see
// internal/lab/doc.go for the packages.

func TestMain(m *testing.M) {
	os.Exit(lab.Main(m))
}

// Sizes: the desktop under test, and the viewers' own screens, which are
// larger so a viewer window (plus any menu bar) shows the whole desktop
// without scroll bars.
var (
	desktopSize = image.Pt(640, 480)
	viewerSize  = image.Pt(800, 600)
)

// desktop is an Xvfb showing rich, known content: lab.TestPattern over the
// whole screen and an xterm printing whatever the test appends to a log.
type desktop struct {
	*lab.X
	Pattern *lab.Window
	Term    *lab.Window
	log     string
	lines   int
}

func e2e(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: starts X servers and viewers")
	}
}

func newDesktop(t *testing.T) *desktop {
	t.Helper()
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	d := &desktop{X: x, log: filepath.Join(t.TempDir(), "term.log")}
	if err := os.WriteFile(d.log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.Pattern = x.ShowImage(t, lab.TestPattern(desktopSize.X, desktopSize.Y))
	// The xterm sits over the gradient; tail -f shows what Append writes.
	d.Term = x.StartXterm(t, "e2e-term", "40x12+280+150", "exec tail -n +1 -f "+d.log)
	// The pointer rests, invisible, outside the xterm: some servers send
	// the pointer's position and viewers then draw it into the picture,
	// which xwd screenshots never show.
	x.HideCursor(t)
	x.Xdotool(t, "mousemove", "--sync", "5", "5")
	d.Append(t, 14) // more lines than the xterm has: it has scrolled once
	return d
}

// Append adds n numbered lines to the xterm; past its 12 rows they scroll
// the text up, which servers can send as CopyRect.
func (d *desktop) Append(t *testing.T, n int) {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		d.lines++
		fmt.Fprintf(&b, "line %03d: The quick brown fox %x\n", d.lines, d.lines*0x9e37)
	}
	f, err := os.OpenFile(d.log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}
