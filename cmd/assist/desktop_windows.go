package main

import (
	"log/slog"
	"os"

	"github.com/assist-project/assist/screen/windows"
)

// openDisplay opens the Windows desktop this process runs on. name is
// --display, which means nothing here (under Wine, DISPLAY is set to
// Wine's own X display, so it cannot be refused either).
//
// ASSIST_CAPTURE=dxgi asks for DXGI Desktop Duplication instead of GDI:
// off by default until it has run on a real Windows (Wine lacks it).
func openDisplay(string) (sharedDesktop, error) {
	opts := windows.Options{}
	if os.Getenv("ASSIST_CAPTURE") == "dxgi" {
		opts.Capture = windows.CaptureDXGI
	}
	d, err := windows.Open(opts)
	if err != nil {
		return nil, err
	}
	slog.Info("sharing the Windows desktop", "size", d.Size(), "capture", d.Method())
	return d, nil
}
