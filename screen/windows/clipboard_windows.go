package windows

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

func clipboardSequence() uint32 {
	r, _, _ := procGetClipboardSequenceNumber.Call()
	return uint32(r)
}

// openClipboard opens the clipboard, retrying for a moment: another
// program may hold it open for a few milliseconds.
func openClipboard() error {
	var err error
	for i := 0; i < 20; i++ {
		var r uintptr
		if r, _, err = procOpenClipboard.Call(0); r != 0 {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("OpenClipboard: %w (another program holds the clipboard)", err)
}

// readClipboard returns the clipboard's CF_UNICODETEXT, or "" when it
// holds no text. The caller holds d.mu.
func (d *Desktop) readClipboard() (string, error) {
	// The clipboard is opened for the calling thread: the goroutine must
	// not move to another thread before CloseClipboard.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := openClipboard(); err != nil {
		return "", err
	}
	defer procCloseClipboard.Call()
	h, _, _ := procGetClipboardData.Call(cfUnicodeText)
	if h == 0 {
		return "", nil
	}
	p, _, err := procGlobalLock.Call(h)
	if p == 0 {
		return "", fmt.Errorf("GlobalLock: %w", err)
	}
	defer procGlobalUnlock.Call(h)
	size, _, _ := procGlobalSize.Call(h)
	units := unsafe.Slice(ptrTo[uint16](p), size/2)
	for i, u := range units {
		if u == 0 {
			units = units[:i]
			break
		}
	}
	return windows.UTF16ToString(units), nil
}

// SetClipboard puts text on the clipboard as CF_UNICODETEXT. Next does
// not report it back.
func (d *Desktop) SetClipboard(text string) error {
	u, err := windows.UTF16FromString(text)
	if err != nil {
		return errors.New("windows: clipboard text holds a NUL character")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := writeClipboard(u); err != nil {
		return fmt.Errorf("windows: %w", err)
	}
	// After CloseClipboard: our own text is not news to the viewers.
	d.ownSeq = clipboardSequence()
	d.clipSeq = d.ownSeq
	return nil
}

// writeClipboard replaces the clipboard's contents with u (NUL-terminated
// UTF-16).
func writeClipboard(u []uint16) error {
	// As in readClipboard: OpenClipboard, EmptyClipboard and
	// SetClipboardData must run on one thread ("Clipboard not open"
	// otherwise, seen under Wine when the goroutine moved).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := openClipboard(); err != nil {
		return err
	}
	defer procCloseClipboard.Call()
	if r, _, err := procEmptyClipboard.Call(); r == 0 {
		return fmt.Errorf("EmptyClipboard: %w", err)
	}
	h, _, err := procGlobalAlloc.Call(gmemMoveable, uintptr(2*len(u)))
	if h == 0 {
		return fmt.Errorf("GlobalAlloc: %w", err)
	}
	p, _, err := procGlobalLock.Call(h)
	if p == 0 {
		procGlobalFree.Call(h)
		return fmt.Errorf("GlobalLock: %w", err)
	}
	copy(unsafe.Slice(ptrTo[uint16](p), len(u)), u)
	procGlobalUnlock.Call(h)
	if r, _, err := procSetClipboardData.Call(cfUnicodeText, h); r == 0 {
		procGlobalFree.Call(h)
		return fmt.Errorf("SetClipboardData: %w", err)
	}
	return nil // the clipboard owns h now
}
