package main

import "os/exec"

// browserCommand returns the command that opens url in the default
// browser. url.dll's handler takes the URL as one argument, unlike
// "cmd /c start", where & in the URL would end the command.
func browserCommand(url string) *exec.Cmd {
	return exec.Command("rundll32.exe", "url.dll,FileProtocolHandler", url)
}
