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
	// Capture chooses how the screen is read; the zero value is GDI.
	Capture Capture
}

// Capture is a way of reading the screen.
type Capture int

const (
	// CaptureGDI polls the screen with BitBlt: works everywhere
	// (Windows 7, Wine, remote sessions), reports the whole screen as
	// damage at each poll.
	CaptureGDI Capture = iota
	// CaptureDXGI uses DXGI Desktop Duplication (Windows 8 and later)
	// when one display covers the desktop: frames arrive when the
	// compositor presents them, with their dirty and move rectangles as
	// damage. Where duplication cannot start, or stops working, the
	// Desktop falls back to GDI.
	CaptureDXGI
)

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
	// clipTries counts reads of a clipboard that had no text yet.
	clipTries int
	closed    bool

	grabMu   sync.Mutex // guards the GDI objects, the duplicator and grabTime
	gdi      *gdiGrabber
	dup      *duplicator // nil: GDI
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
	if opts.Capture == CaptureDXGI {
		// A failure here is not an error: GDI reads every desktop.
		d.dup, _ = newDuplicator(image.Rectangle{Min: d.origin, Max: d.origin.Add(d.size)})
	}
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

// Method says how the screen is read now: "dxgi" or "gdi".
func (d *Desktop) Method() string {
	d.grabMu.Lock()
	defer d.grabMu.Unlock()
	if d.dup != nil {
		return "dxgi"
	}
	return "gdi"
}

// Next waits for the next change: with GDI the next poll, which reports
// the whole screen as damaged; with DXGI the next frame the compositor
// presents, with its damage. Either way it reports any change of size,
// cursor shape or clipboard text since the last call.
func (d *Desktop) Next(ctx context.Context) (screen.Change, error) {
	for {
		damage, err := d.waitFrame(ctx)
		if err != nil {
			return screen.Change{}, err
		}
		ch, err := d.changes(damage)
		if err != nil {
			return ch, err
		}
		if ch.Resized {
			d.restartCapture()
		}
		if len(ch.Damage) > 0 || ch.Resized || ch.CursorChanged || ch.Clipboard {
			return ch, nil
		}
	}
}

// waitFrame waits for the next poll (GDI) or frame (DXGI) and returns
// what it damaged.
func (d *Desktop) waitFrame(ctx context.Context) ([]image.Rectangle, error) {
	d.grabMu.Lock()
	dup := d.dup
	wait := max(d.opts.PollInterval, 3*d.grabTime)
	d.grabMu.Unlock()
	if dup == nil {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		return []image.Rectangle{{Max: d.Size()}}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A short wait, so that ctx, the cursor and the clipboard are
	// looked at between frames.
	ms := uint32(min(wait, 100*time.Millisecond) / time.Millisecond)
	d.grabMu.Lock()
	defer d.grabMu.Unlock()
	if d.dup == nil {
		return []image.Rectangle{{Max: d.Size()}}, nil
	}
	damage, err := d.dup.next(ms)
	if err == nil {
		return damage, nil
	}
	// Access lost (a UAC prompt, the lock screen, a mode change) or a
	// failure: duplicate again, or fall back to GDI for good.
	d.dup.close()
	d.dup = nil
	if errors.Is(err, errAccessLost) {
		d.mu.Lock()
		rect := image.Rectangle{Min: d.origin, Max: d.origin.Add(d.size)}
		d.mu.Unlock()
		d.dup, _ = newDuplicator(rect)
	}
	return []image.Rectangle{{Max: d.Size()}}, nil
}

// restartCapture sets capture up again after the screen changed size.
func (d *Desktop) restartCapture() {
	d.grabMu.Lock()
	defer d.grabMu.Unlock()
	if d.dup == nil {
		return // the GDI grabber follows the size by itself
	}
	d.dup.close()
	d.mu.Lock()
	rect := image.Rectangle{Min: d.origin, Max: d.origin.Add(d.size)}
	d.mu.Unlock()
	d.dup, _ = newDuplicator(rect)
}

// changes adds to damage what else changed since the last call.
func (d *Desktop) changes(damage []image.Rectangle) (screen.Change, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return screen.Change{}, errors.New("windows: desktop closed")
	}
	ch := screen.Change{Damage: damage}
	origin, size := virtualScreen()
	if origin != d.origin || size != d.size {
		d.origin, d.size = origin, size
		ch.Resized, ch.Size = true, size
		ch.Damage = []image.Rectangle{{Max: size}}
	}
	if h, ok := currentCursor(); ok && h != d.cursor {
		d.cursor = h
		ch.CursorChanged = true
	}
	if seq := clipboardSequence(); seq != d.clipSeq {
		if seq == d.ownSeq {
			d.clipSeq = seq
			return ch, nil
		}
		text, err := d.readClipboard()
		if err != nil {
			return ch, fmt.Errorf("windows: reading the clipboard: %w", err)
		}
		// A clipboard without text (a picture, or emptied) is nothing
		// to share. It may also be text on its way: Wine empties the
		// clipboard when an X program takes the selection and renders
		// the text on request, so an empty read is tried again at the
		// next few polls before the sequence number counts as seen.
		switch {
		case text != "":
			d.clipSeq, d.clipTries = seq, 0
			ch.Clipboard, ch.Text = true, text
		case d.clipTries < maxClipboardTries:
			d.clipTries++
		default:
			d.clipSeq, d.clipTries = seq, 0
		}
	}
	return ch, nil
}

// maxClipboardTries is how many polls an empty clipboard is read again.
const maxClipboardTries = 10

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
	if d.dup != nil {
		d.dup.close()
		d.dup = nil
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
