package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/assist-project/assist/indicator"
	"github.com/assist-project/assist/session"
)

// DefaultCheckEvery is how long the novice shares before being asked
// "Still sharing with NAME?" (Chrome Remote Desktop asks after 30 minutes).
const DefaultCheckEvery = 30 * time.Minute

// openIndicator opens the frame and bar on the novice's desktop, or Nop
// when asked for none or when it cannot be shown (the session goes on:
// the terminal and the page still say who is connected).
func openIndicator(opts noviceOptions) indicator.Indicator {
	if opts.NoIndicator {
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
