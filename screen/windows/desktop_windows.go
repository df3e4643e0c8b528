package windows

import (
	"context"
	"errors"
	"fmt"
	"image"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/assist-project/assist/screen"
	"golang.org/x/sys/windows"
)

// Options tune a Desktop.
type Options struct {
	// PollInterval is how often Next looks at the screen, the cursor and
	// the clipboard: GDI reports no damage, so every poll reports the
	// whole screen and package shadow finds what really changed. Zero
	// means DefaultPollInterval. The interval stretches to three times
	// the last full grab, so a slow machine is not kept busy grabbing.
	PollInterval time.Duration
}

// DefaultPollInterval is Options.PollInterval's default: 15 looks a
// second, which a full-screen GDI grab (5-15 ms at 1080p on Windows,
// 17-40 ms at 1280x800 under Wine) affords.
const DefaultPollInterval = 66 * time.Millisecond

// Desktop is the interactive desktop of the Windows session this process
// runs in: the whole virtual screen (every monitor), its cursor, input
// and clipboard. It implements screen.Capturer, screen.Injector and
// screen.Clipboard.
type Desktop struct {
	opts Options
	ui   *uiThread

	mu      sync.Mutex // guards the fields below
	origin  image.Point
	size    image.Point
	cursor  windows.Handle // the shape last reported
	clipSeq uint32         // the clipboard's sequence number last seen
	ownSeq  uint32         // the sequence number our own SetClipboard left
	closed  bool

	grabMu   sync.Mutex // guards the GDI objects and grabTime
	gdi      *gdiGrabber
	grabTime time.Duration

	inputMu sync.Mutex // guards the input state
	in      inputState

	hook hookState
}

var (
	_ screen.Capturer  = (*Desktop)(nil)
	_ screen.Injector  = (*Desktop)(nil)
	_ screen.Clipboard = (*Desktop)(nil)
)

// Open opens the desktop. It makes the process per-monitor DPI aware
// first, so that at 150% scaling the pixels grabbed and the pointer's
// coordinates are the screen's real ones, not a scaled-down guess.
func Open(opts Options) (*Desktop, error) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	setDPIAware()
	d := &Desktop{opts: opts}
	d.origin, d.size = virtualScreen()
	if d.size.X <= 0 || d.size.Y <= 0 {
		return nil, fmt.Errorf("windows: the desktop reports size %v: is this an interactive session (not a service)?", d.size)
	}
	d.clipSeq = clipboardSequence()
	d.ui = startUIThread()
	return d, nil
}

// setDPIAware asks for per-monitor DPI awareness, falling back to the
// system-wide awareness older Windows (and Wine) offer.
func setDPIAware() {
	if procSetProcessDpiAwarenessContext.Find() == nil {
		if r, _, _ := procSetProcessDpiAwarenessContext.Call(dpiPerMonitorAwareV2); r != 0 {
			return
		}
	}
	if procSetProcessDPIAware.Find() == nil {
		procSetProcessDPIAware.Call()
	}
}

// virtualScreen returns the bounding box of all monitors, in screen
// coordinates (the origin is negative when a monitor sits left of or
// above the primary one).
func virtualScreen() (origin, size image.Point) {
	return image.Pt(systemMetric(smXVirtualScreen), systemMetric(smYVirtualScreen)),
		image.Pt(systemMetric(smCXVirtualScreen), systemMetric(smCYVirtualScreen))
}

// Size is the size of the virtual screen.
func (d *Desktop) Size() image.Point {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.size
}

// Next waits for the next poll and reports the whole screen as damaged,
// with any change of size, cursor shape or clipboard text since the last
// call.
func (d *Desktop) Next(ctx context.Context) (screen.Change, error) {
	d.grabMu.Lock()
	wait := max(d.opts.PollInterval, 3*d.grabTime)
	d.grabMu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return screen.Change{}, ctx.Err()
	case <-t.C:
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return screen.Change{}, errors.New("windows: desktop closed")
	}
	var ch screen.Change
	origin, size := virtualScreen()
	if origin != d.origin || size != d.size {
		d.origin, d.size = origin, size
		ch.Resized, ch.Size = true, size
	}
	ch.Damage = []image.Rectangle{{Max: d.size}}
	if h, ok := currentCursor(); ok && h != d.cursor {
		d.cursor = h
		ch.CursorChanged = true
	}
	if seq := clipboardSequence(); seq != d.clipSeq {
		d.clipSeq = seq
		if seq != d.ownSeq {
			text, err := d.readClipboard()
			if err != nil {
				return ch, fmt.Errorf("windows: reading the clipboard: %w", err)
			}
			ch.Clipboard, ch.Text = true, text
		}
	}
	return ch, nil
}

// Close releases what Open took: keys and buttons still held, the hot
// key, the GDI objects and the thread that owns the hook.
func (d *Desktop) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.inputMu.Lock()
	d.releaseAllLocked()
	d.inputMu.Unlock()
	d.hook.stopAll()
	d.ui.stop()
	d.grabMu.Lock()
	defer d.grabMu.Unlock()
	if d.gdi != nil {
		d.gdi.free()
		d.gdi = nil
	}
	return nil
}

// uiThread is an OS thread with a message loop: low-level hooks call back
// on the thread that installed them, and only while it pumps messages.
// Work reaches it through a queue, with a thread message to wake it.
type uiThread struct {
	tid  uint32
	done chan struct{}

	mu    sync.Mutex
	queue []func()
}

func startUIThread() *uiThread {
	u := &uiThread{done: make(chan struct{})}
	ready := make(chan struct{})
	go u.run(ready)
	<-ready
	return u
}

func (u *uiThread) run(ready chan<- struct{}) {
	// The thread is never unlocked, so it ends with the goroutine: it
	// may hold a hook or a queue Windows ties to it.
	runtime.LockOSThread()
	defer close(u.done)
	u.tid = windows.GetCurrentThreadId()
	// A thread gets its message queue on its first message call, and
	// PostThreadMessage to it fails until then.
	var m msg
	procPeekMessageW.Call(uintptr(unsafe.Pointer(&m)), 0, 0, 0, pmNoRemove)
	close(ready)
	for {
		r, _, _ := procGetMessageW.Call(uintptr(unsafe.Pointer(&m)), 0, 0, 0)
		if int32(r) == 0 || int32(r) == -1 { // WM_QUIT, or a bad argument
			return
		}
		if m.Message == wmApp {
			u.mu.Lock()
			q := u.queue
			u.queue = nil
			u.mu.Unlock()
			for _, f := range q {
				f()
			}
		}
	}
}

// do runs f on the thread and waits for it.
func (u *uiThread) do(f func()) error {
	done := make(chan struct{})
	u.mu.Lock()
	u.queue = append(u.queue, func() { f(); close(done) })
	u.mu.Unlock()
	if r, _, err := procPostThreadMessageW.Call(uintptr(u.tid), wmApp, 0, 0); r == 0 {
		return fmt.Errorf("windows: waking the input thread: %w", err)
	}
	select {
	case <-done:
		return nil
	case <-u.done:
		return errors.New("windows: the input thread has ended")
	}
}

func (u *uiThread) stop() {
	procPostThreadMessageW.Call(uintptr(u.tid), wmQuit, 0, 0)
	<-u.done
}
