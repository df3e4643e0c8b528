// Package indicator shows the novice, on their own desktop and on top of
// everything, that someone sees or controls it: a coloured frame around
// the screen and a small bar that says who and what ("Bob is seeing your
// screen", "Bob is controlling your mouse and keyboard") with buttons to
// take control back and to end the session, as Quick Assist and
// TeamViewer do. The bar never takes the keyboard focus from the novice's
// work, and the frame lets clicks through everywhere but its edges.
//
// The package draws and reports clicks; it does not act on them: the
// caller turns a Click into the session's own TakeBack or End, the same
// paths the terminal and the novice's page use.
//
// Open returns the X11 indicator on Linux and the BSDs; on Windows it
// returns Nop (a visible indicator there is still to do).
package indicator

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mode is what the indicator says.
type Mode int

const (
	// Off: nothing on the screen.
	Off Mode = iota
	// Viewing: the expert sees the screen.
	Viewing
	// Controlling: the expert's pointer and keys reach the desktop.
	Controlling
	// StillSharing asks the novice whether the session should go on
	// (the check after a long time of sharing). The screen is still shared.
	StillSharing
	// Offer asks "NAME from ORG offers to help you. Accept?" with Accept
	// and Decline, before any session: the bar alone, with no frame,
	// since nobody sees the screen yet.
	Offer
)

// State is everything the indicator shows.
type State struct {
	Mode Mode
	// Expert is the helper's name. It comes from the remote party (or the
	// novice's contact list) and is cleaned by Name before it is drawn.
	Expert string
	// Controlled, in StillSharing mode, says the expert also controls
	// (the bar then keeps its Take back control button and red frame).
	Controlled bool
	// Org, in Offer mode, is the helper's organisation, cleaned by Name
	// like Expert.
	Org string
}

// Click is a button the novice clicked on the bar.
type Click int

const (
	// TakeBack: "Take back control".
	TakeBack Click = iota + 1
	// End: "End" (the session).
	End
	// KeepSharing: "Keep sharing", the answer to the StillSharing check.
	KeepSharing
	// Accept: "Accept", the yes to an Offer.
	Accept
	// Decline: "Decline", the no to an Offer.
	Decline
)

func (c Click) String() string {
	switch c {
	case TakeBack:
		return "take back control"
	case End:
		return "end"
	case KeepSharing:
		return "keep sharing"
	case Accept:
		return "accept"
	case Decline:
		return "decline"
	}
	return "unknown"
}

// Indicator is the on-screen indicator of one desktop.
type Indicator interface {
	// Show changes what the indicator shows; Mode Off hides it.
	Show(State) error
	// Clicks delivers the novice's clicks on the bar's buttons. It is
	// closed by Close.
	Clicks() <-chan Click
	// Close removes the indicator from the screen and frees it.
	Close() error
}

// Nop is an Indicator that shows nothing, for systems without one.
type Nop struct{}

// Show does nothing.
func (Nop) Show(State) error { return nil }

// Clicks never delivers.
func (Nop) Clicks() <-chan Click { return nil }

// Close does nothing.
func (Nop) Close() error { return nil }

// maxNameRunes bounds the drawn name: the bar must stay small and the
// buttons on screen, whatever the expert calls themselves.
const maxNameRunes = 24

// Name cleans a remote party's name for drawing: control and format
// characters (bidi overrides among them, which could turn the sentence
// around) are dropped, runs of white space become one space, and the
// name is cut to 24 characters with an ellipsis. An empty result is
// "Your helper".
func Name(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if !unicode.IsGraphic(r) {
			continue
		}
		if n == maxNameRunes {
			return strings.TrimSpace(b.String()) + "…"
		}
		if space {
			b.WriteByte(' ')
			space = false
			n++
			if n == maxNameRunes {
				return strings.TrimSpace(b.String()) + "…"
			}
		}
		b.WriteRune(r)
		n++
	}
	if b.Len() == 0 {
		return "Your helper"
	}
	return b.String()
}

// Text is the sentence the bar shows for s.
func Text(s State) string {
	name := Name(s.Expert)
	switch s.Mode {
	case Viewing:
		return name + " is seeing your screen"
	case Controlling:
		return name + " is controlling your mouse and keyboard"
	case StillSharing:
		return "Still sharing with " + name + "?"
	case Offer:
		return name + " from " + Name(s.Org) + " offers to help you. Accept?"
	}
	return ""
}

// buttons lists the bar's buttons for s, left to right.
func buttons(s State) []Click {
	switch s.Mode {
	case Viewing:
		return []Click{End}
	case Controlling:
		return []Click{TakeBack, End}
	case StillSharing:
		if s.Controlled {
			return []Click{KeepSharing, TakeBack, End}
		}
		return []Click{KeepSharing, End}
	case Offer:
		return []Click{Accept, Decline}
	}
	return nil
}

// label is a button's text.
func label(c Click) string {
	switch c {
	case TakeBack:
		return "Take back control"
	case End:
		return "End"
	case KeepSharing:
		return "Keep sharing"
	case Accept:
		return "Accept"
	case Decline:
		return "Decline"
	}
	return ""
}
