// Package x11 is the X11 backend of Assist: it captures an X display
// (MIT-SHM or core GetImage, DAMAGE for change tracking, XFIXES for the
// cursor and clipboard ownership, RANDR for resizes), injects input with
// XTEST and carries clipboard text both ways. It speaks the X protocol
// itself through github.com/jezek/xgb, so it needs no C libraries.
//
// One Display owns one connection. Its event loop runs in a single
// goroutine that never waits for a reply from the server: xgb delivers
// replies on the same reader that queues events, so a loop blocked on a
// reply while the event queue is full would deadlock. Everything that
// needs a round trip (clipboard fetch, keyboard map refresh, SHM
// reallocation) happens in the caller of Next, Key or Grab instead.
//
// xgb registers extension event decoders in process-wide maps when an
// extension is initialised, so open Displays one after another rather
// than concurrently.
package x11

import (
	"errors"
	"fmt"
	"github.com/assist-project/assist/internal/xgbext"
	"image"
	"os"
	"strings"
	"sync"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/damage"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/shm"
	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"

	"github.com/assist-project/assist/screen"
)

// Display is a connection to an X server's default screen. It implements
// screen.Capturer, screen.Injector and screen.Clipboard. All methods are
// safe for concurrent use.
type Display struct {
	conn *xgb.Conn
	name string // display name as given or from $DISPLAY, for messages
	root xproto.Window
	win  xproto.Window // hidden window that owns our selections
	dmg  damage.Damage

	atoms       atoms
	maxReqBytes int // largest request the server takes without BIG-REQUESTS
	minKeycode  xproto.Keycode
	maxKeycode  xproto.Keycode

	grabMu sync.Mutex // serialises Grab: the SHM segment is shared
	seg    *shmSegment
	segFor image.Point // screen size seg was sized for
	useSHM bool

	inputMu sync.Mutex // serialises Pointer and Key
	kb      keyboard
	ptr     pointerState

	hot hotKeys // keys watched with WatchHotKey

	mu    sync.Mutex // guards the fields below, written by the event loop
	size  image.Point
	state pending
	clip  clipState
	err   error // why the connection ended, once it has

	wake      chan struct{} // cap 1: state changed
	loopDone  chan struct{} // closed when the event loop exits
	closeOnce sync.Once
}

// pending is what Next has not reported yet.
type pending struct {
	damage        region
	resized       bool
	cursorChanged bool
	clipboard     bool
	text          string
	keymapStale   bool
}

// options changes how a Display is opened; tests use it to force the
// GetImage path.
type options struct {
	noSHM bool
}

var (
	_ screen.Capturer  = (*Display)(nil)
	_ screen.Injector  = (*Display)(nil)
	_ screen.Clipboard = (*Display)(nil)
)

// Open connects to display ("" means $DISPLAY) and prepares capture,
// input injection and the clipboard. The screen must be a depth 24 or 32
// TrueColor visual with 32 bits per pixel in LSBFirst byte order (the
// layout of screen.Image); DAMAGE, XFIXES and XTEST are required, RANDR
// and MIT-SHM are used when present.
func Open(display string) (*Display, error) {
	return open(display, options{})
}

func open(display string, opts options) (*Display, error) {
	name := display
	if name == "" {
		name = os.Getenv("DISPLAY")
		if name == "" {
			return nil, errors.New("x11: no display given and $DISPLAY is not set")
		}
	}
	conn, err := xgb.NewConnDisplay(name)
	if err != nil {
		return nil, fmt.Errorf("x11: open display %q: %w", name, err)
	}
	d := &Display{
		conn:     conn,
		name:     name,
		wake:     make(chan struct{}, 1),
		loopDone: make(chan struct{}),
	}
	if err := d.setup(opts); err != nil {
		conn.Close()
		d.freeSegment()
		return nil, err
	}
	go d.eventLoop()
	return d, nil
}

// setup checks the screen and extensions and subscribes to everything
// the event loop handles.
func (d *Display) setup(opts options) error {
	c := d.conn
	info := xproto.Setup(c)
	scr := info.DefaultScreen(c)
	if scr == nil {
		return fmt.Errorf("x11: display %q has no screen %d", d.name, c.DefaultScreen)
	}
	if err := checkPixelFormat(info, scr); err != nil {
		return fmt.Errorf("x11: display %q: %w", d.name, err)
	}
	d.root = scr.Root
	d.size = image.Pt(int(scr.WidthInPixels), int(scr.HeightInPixels))
	d.maxReqBytes = 4 * int(info.MaximumRequestLength)
	d.minKeycode, d.maxKeycode = info.MinKeycode, info.MaxKeycode

	if err := xgbext.Init(c, "XTEST", xtest.Init); err != nil {
		return d.lacks("XTEST", "it is needed to inject the expert's input")
	}
	if err := xgbext.Init(c, "XFIXES", xfixes.Init); err != nil {
		return d.lacks("XFIXES", "it is needed for the cursor and the clipboard")
	}
	if err := xgbext.Init(c, "DAMAGE", damage.Init); err != nil {
		return d.lacks("DAMAGE", "it is needed to track screen changes")
	}
	// XFIXES and DAMAGE refuse requests until the client has announced
	// the version it speaks.
	if _, err := xfixes.QueryVersion(c, 5, 0).Reply(); err != nil {
		return fmt.Errorf("x11: display %q: XFIXES version: %w", d.name, err)
	}
	if _, err := damage.QueryVersion(c, 1, 1).Reply(); err != nil {
		return fmt.Errorf("x11: display %q: DAMAGE version: %w", d.name, err)
	}
	if _, err := xtest.GetVersion(c, 2, 2).Reply(); err != nil {
		return fmt.Errorf("x11: display %q: XTEST version: %w", d.name, err)
	}
	haveRandR := xgbext.Init(c, "RANDR", randr.Init) == nil
	if haveRandR {
		if _, err := randr.QueryVersion(c, 1, 5).Reply(); err != nil {
			haveRandR = false
		}
	}

	if err := d.internAtoms(); err != nil {
		return fmt.Errorf("x11: display %q: %w", d.name, err)
	}
	if err := d.createWindow(); err != nil {
		return fmt.Errorf("x11: display %q: %w", d.name, err)
	}

	dmg, err := damage.NewDamageId(c)
	if err != nil {
		return fmt.Errorf("x11: display %q: damage id: %w", d.name, err)
	}
	d.dmg = dmg
	// Raw rectangles give the exact areas without a region round trip
	// per event; the flood they can cause is coalesced in region.add.
	if err := damage.CreateChecked(c, dmg, xproto.Drawable(d.root), damage.ReportLevelRawRectangles).Check(); err != nil {
		return fmt.Errorf("x11: display %q: create damage: %w", d.name, err)
	}
	if err := xfixes.SelectCursorInputChecked(c, d.root, xfixes.CursorNotifyMaskDisplayCursor).Check(); err != nil {
		return fmt.Errorf("x11: display %q: select cursor input: %w", d.name, err)
	}
	// Only CLIPBOARD is watched: PRIMARY changes with every mouse
	// selection, which would flood the viewers with text the user never
	// meant to copy.
	if err := xfixes.SelectSelectionInputChecked(c, d.win, d.atoms.clipboard,
		xfixes.SelectionEventMaskSetSelectionOwner|
			xfixes.SelectionEventMaskSelectionWindowDestroy|
			xfixes.SelectionEventMaskSelectionClientClose).Check(); err != nil {
		return fmt.Errorf("x11: display %q: select selection input: %w", d.name, err)
	}
	if haveRandR {
		if err := randr.SelectInputChecked(c, d.root, randr.NotifyMaskScreenChange).Check(); err != nil {
			return fmt.Errorf("x11: display %q: select RANDR input: %w", d.name, err)
		}
	}

	if !opts.noSHM && isLocal(d.name) && xgbext.Init(c, "MIT-SHM", shm.Init) == nil {
		if _, err := shm.QueryVersion(c).Reply(); err == nil {
			// A failed attach (e.g. the server runs in another IPC
			// namespace) just means GetImage.
			d.useSHM = d.allocSegment(d.size) == nil
		}
	}
	return nil
}

func (d *Display) lacks(ext, why string) error {
	return fmt.Errorf("x11: display %q lacks the %s extension; %s", d.name, ext, why)
}

// checkPixelFormat makes sure the root window's pixels are BGRX bytes in
// memory, the layout of screen.Image, so Grab can copy them unchanged.
func checkPixelFormat(info *xproto.SetupInfo, scr *xproto.ScreenInfo) error {
	if info.ImageByteOrder != xproto.ImageOrderLSBFirst {
		return errors.New("unsupported image byte order MSBFirst (need LSBFirst)")
	}
	if scr.RootDepth != 24 && scr.RootDepth != 32 {
		return fmt.Errorf("unsupported root depth %d (need 24 or 32)", scr.RootDepth)
	}
	bpp := 0
	for _, f := range info.PixmapFormats {
		if f.Depth == scr.RootDepth {
			bpp = int(f.BitsPerPixel)
		}
	}
	if bpp != 32 {
		return fmt.Errorf("unsupported %d bits per pixel at depth %d (need 32)", bpp, scr.RootDepth)
	}
	for _, dep := range scr.AllowedDepths {
		for _, v := range dep.Visuals {
			if v.VisualId != scr.RootVisual {
				continue
			}
			if v.Class != xproto.VisualClassTrueColor || v.RedMask != 0xff0000 || v.GreenMask != 0xff00 || v.BlueMask != 0xff {
				return fmt.Errorf("unsupported root visual (class %d, masks %#x %#x %#x; need TrueColor 0xff0000 0xff00 0xff)",
					v.Class, v.RedMask, v.GreenMask, v.BlueMask)
			}
			return nil
		}
	}
	return errors.New("root visual not found in the setup")
}

// isLocal reports whether name reaches the server through a Unix socket
// on this machine, the only case where a System V segment is shared with
// it. "localhost:10" (ssh forwarding) is a TCP proxy to a remote server.
func isLocal(name string) bool {
	i := strings.LastIndex(name, ":")
	if i < 0 {
		return false
	}
	host := name[:i]
	if strings.HasPrefix(host, "/") {
		return true // a socket path
	}
	if j := strings.LastIndex(host, "/"); j >= 0 {
		if host[:j] != "unix" && host[:j] != "local" {
			return false
		}
		host = host[j+1:]
	}
	return host == "" || host == "unix"
}

func (d *Display) createWindow() error {
	win, err := xproto.NewWindowId(d.conn)
	if err != nil {
		return fmt.Errorf("window id: %w", err)
	}
	// InputOnly and never mapped: it exists only to own selections and
	// receive converted clipboard data.
	err = xproto.CreateWindowChecked(d.conn, 0, win, d.root, -10, -10, 1, 1, 0,
		xproto.WindowClassInputOnly, 0,
		xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{1, xproto.EventMaskPropertyChange}).Check()
	if err != nil {
		return fmt.Errorf("create window: %w", err)
	}
	d.win = win
	return nil
}

// Size returns the current screen size.
func (d *Display) Size() image.Point {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.size
}

// connErr returns why the connection ended, or nil while it is up.
func (d *Display) connErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Close releases held keys and buttons, removes temporary key bindings,
// closes the connection and waits for the event loop to exit.
func (d *Display) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.err = errClosed
		d.mu.Unlock()
		d.stopHotKeys()
		d.inputMu.Lock()
		d.releaseAll()
		d.inputMu.Unlock()
		// Close flushes pending requests before it hangs up.
		d.conn.Close()
		<-d.loopDone
		d.grabMu.Lock()
		d.freeSegment()
		d.grabMu.Unlock()
	})
	return nil
}
