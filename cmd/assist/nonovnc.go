package main

import (
	"fmt"
	"io"

	"github.com/assist-project/assist/web"
)

// warnNoVNC tells the person, once, that this binary has no browser
// viewer (built with -tags nonovnc, as go install does) and what to use
// instead; a binary with noVNC says nothing.
func warnNoVNC(w io.Writer) {
	if !web.HasNoVNC() {
		fmt.Fprintf(w, "Note: %s.\n", web.NoVNCMissing)
	}
}
