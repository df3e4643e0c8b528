// Package windows is the Windows backend of package screen, in pure Go
// over golang.org/x/sys/windows (no cgo): GDI capture of the whole
// virtual screen, polled for change, the cursor's shape, SendInput for
// the pointer and keys (X keysyms mapped to virtual keys, scan codes and
// KEYEVENTF_UNICODE), CF_UNICODETEXT for the clipboard, and a low-level
// keyboard hook for the hot key that takes control back.
//
// Everything but the key mapping and the damage bookkeeping builds only
// for Windows. The tests that need Windows run under Wine from Linux
// (wine_test.go): the package's Windows test binary is built, started in
// a Wine prefix with a virtual desktop on Xvfb, and checked from both
// sides.
package windows
