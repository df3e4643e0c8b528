package main

import (
	"fmt"
	"image"
	"log/slog"
	"os"
	"time"

	"github.com/assist-project/assist/indicator"
	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/shadow"
)

// DefaultCheckEvery is how long the novice shares before being asked
// "Still sharing with NAME?" (Chrome Remote Desktop asks after 30 minutes).
const DefaultCheckEvery = 30 * time.Minute

// openIndicator opens the frame and bar on the novice's desktop, or Nop
// when asked for none or when it cannot be shown (the session goes on:
// the terminal and the page still say who is connected).
func openIndicator(opts noviceOptions) indicator.Indicator {
	// ASSIST_INDICATOR=off is --no-indicator for a whole environment:
	// the test harness sets it, since a frame that appears a moment into
	// the session races every test that compares the expert's first
	// picture with the desktop; the indicator's own tests turn it on.
	if opts.NoIndicator || os.Getenv("ASSIST_INDICATOR") == "off" {
		return indicator.Nop{}
	}
	ind, err := indicator.Open(opts.Display, slog.Default())
	if err != nil {
		fmt.Fprintf(os.Stderr, "note: no frame on your screen while someone sees it (%v)\n", err)
		return indicator.Nop{}
	}
	return ind
}

// indicatorState is what the indicator shows in state st: the expert only
// sees the screen while viewing and while control is asked.
func indicatorState(st session.State, expert string, checking bool) indicator.State {
	s := indicator.State{Expert: expert}
	switch st {
	case session.Viewing, session.ControlAsked:
		s.Mode = indicator.Viewing
	case session.Controlling:
		s.Mode = indicator.Controlling
	default:
		return indicator.State{}
	}
	if checking {
		s.Controlled = s.Mode == indicator.Controlling
		s.Mode = indicator.StillSharing
	}
	return s
}

// sharing reports whether the expert sees the screen in state st.
func sharing(st session.State) bool {
	return st == session.Viewing || st == session.ControlAsked || st == session.Controlling
}

// showBeforeView is the consent's audit hook for the indicator: it shows
// the frame and bar as the expert starts to see the screen, before the
// transition reaches the expert (the hook runs synchronously, before the
// display streams open), and waits until the capture has the frame, so
// the expert's first picture already shows what the novice's screen
// shows. A grant of control turns the frame red at once too; everything
// else (the words of the check, the end) follows in runSession, which
// shows the final state whatever the hook did.
func showBeforeView(ind indicator.Indicator, sh *shadow.Screen, expert string, ev session.Event) {
	if !sharing(ev.To) || sharing(ev.From) && ev.To != session.Controlling {
		return
	}
	s := indicatorState(ev.To, expert, false)
	if err := ind.Show(s); err != nil {
		slog.Warn("the indicator on the screen could not be shown", "err", err)
		return
	}
	if _, nop := ind.(indicator.Nop); nop || sharing(ev.From) {
		return
	}
	// The capture follows the X server's damage events within
	// milliseconds; a stopped capture must not hold the session, but a
	// loaded machine may take a while (1 s was too little in CI). The
	// frame is four windows whose damage arrives apart, so wait for a
	// pixel of each side: with only the top one checked, the expert's
	// first picture once lacked the bottom of the frame.
	want := indicator.FrameColour(s)
	size := sh.Size()
	sides := []image.Point{
		{size.X / 2, 0}, {size.X / 2, size.Y - 1}, // top, bottom
		{0, size.Y / 2}, {size.X - 1, size.Y / 2}, // left, right
		{0, 0}, {0, size.Y - 1}, {size.X - 1, 0}, {size.X - 1, size.Y - 1}, // corners
	}
	px := screen.NewImage(image.Rect(0, 0, size.X, size.Y))
	framed := func() bool {
		for _, p := range sides {
			r := image.Rectangle{Min: p, Max: p.Add(image.Pt(1, 1))}
			sh.Read(px, r)
			i := px.PixOffset(p.X, p.Y)
			if px.Pix[i+2] != want.R || px.Pix[i+1] != want.G || px.Pix[i] != want.B {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if framed() {
			return
		}
	}
	slog.Debug("the capture did not show the indicator's frame within 5 s")
}
