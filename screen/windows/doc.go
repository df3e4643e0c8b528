// Package windows is the Windows backend of package screen, in pure Go
// over golang.org/x/sys/windows and COM vtables (no cgo): capture of the
// whole virtual screen by GDI BitBlt, polled, or by DXGI Desktop
// Duplication with its dirty and move rectangles as damage
// (Options.Capture, falling back to GDI); the cursor's shape; SendInput
// for the pointer and keys (X keysyms mapped to virtual keys with scan
// codes, KEYEVENTF_UNICODE for characters the layout lacks);
// CF_UNICODETEXT for the clipboard; and a low-level keyboard hook for the
// hot key that takes control back.
//
// The key tables, the cursor conversion and the parsing of duplication
// metadata build everywhere and are tested on Linux. The rest needs
// Windows: wine_test.go builds the package's Windows test binary, runs
// it in a Wine prefix with a virtual desktop on Xvfb, and checks from
// Linux what only Linux sees (the X server's pixels, X's CLIPBOARD, a key
// pressed on the X keyboard).
package windows
