//go:build !windows

package main

import (
	"os"
	"os/exec"
)

// browserCommand returns the command that opens url in the desktop's
// default browser, or nil when there is no desktop or no xdg-open.
func browserCommand(url string) *exec.Cmd {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return nil
	}
	p, err := exec.LookPath("xdg-open")
	if err != nil {
		return nil
	}
	return exec.Command(p, url)
}
