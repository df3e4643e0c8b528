//go:build !windows

package main

import (
	"errors"
	"io"
	"log"

	"github.com/assist-project/assist/screen/x11"
	"github.com/jezek/xgb"
)

// openDisplay opens the X display to share.
func openDisplay(name string) (sharedDesktop, error) {
	if name == "" {
		return nil, errors.New("no display: set DISPLAY or pass --display :N")
	}
	// xgb logs to the standard logger on every connection it opens and
	// closes; assist reports errors itself.
	xgb.Logger = log.New(io.Discard, "", 0)
	d, err := x11.Open(name)
	if err != nil {
		return nil, err // not a nil *x11.Display in a non-nil interface
	}
	return d, nil
}
