//go:build !windows

package main

import (
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/assist-project/assist/screen/x11"
	"github.com/jezek/xgb"
)

// openDisplay opens the X display to share.
func openDisplay(name string) (sharedDesktop, error) {
	if name == "" {
		return nil, errors.New("no desktop to share: is a desktop running? set DISPLAY or pass --display :N")
	}
	// xgb logs to the standard logger on every connection it opens and
	// closes; assist reports errors itself.
	xgb.Logger = log.New(io.Discard, "", 0)
	d, err := x11.Open(name)
	if err != nil {
		// Not a nil *x11.Display in a non-nil interface.
		return nil, fmt.Errorf("cannot open the desktop %s: is a desktop running? set DISPLAY or pass --display :N (%w)", name, err)
	}
	return d, nil
}
