package main

import "github.com/assist-project/assist/screen/windows"

// openDisplay opens the Windows desktop this process runs on. name is
// --display, which means nothing here (under Wine, DISPLAY is set to
// Wine's own X display, so it cannot be refused either).
func openDisplay(string) (sharedDesktop, error) {
	d, err := windows.Open(windows.Options{})
	if err != nil {
		return nil, err
	}
	return d, nil
}
