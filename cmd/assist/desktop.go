package main

import "github.com/assist-project/assist/screen"

// sharedDesktop is the novice's screen, input and clipboard: screen/x11 on
// Linux and the BSDs, screen/windows on Windows (desktop_*.go open them).
type sharedDesktop interface {
	screen.Capturer
	screen.Injector
	screen.Clipboard
	// WatchHotKey takes the key keysym away from applications until stop
	// is called, except presses isInjected claims (session.NoviceConfig.HotKey).
	WatchHotKey(keysym uint32, isInjected func() bool, onPress func()) (stop func(), err error)
}
