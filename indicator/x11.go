//go:build !windows

package indicator

import (
	"errors"
	"fmt"
	"github.com/assist-project/assist/internal/xgbext"
	"image"
	"image/color"
	"io"
	"log"
	"log/slog"
	"sync"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xproto"
)

// x11 is the indicator on an X display: four override-redirect windows
// for the frame (so clicks pass through its middle to the novice's
// windows) and one for the bar. Override-redirect windows are left alone
// by the window manager: no decoration, no place in the task bar, and
// never the keyboard focus, which only moves to a window someone gives it
// to, and this package never does.
type x11 struct {
	c      *xgb.Conn
	root   xproto.Window
	depth  byte
	visual xproto.Visualid
	maxReq int  // the largest request in bytes
	randr  bool // RANDR 1.3 or later: the bar goes on the primary monitor
	log    *slog.Logger

	frame [4]xproto.Window
	bar   xproto.Window

	mu      sync.Mutex
	state   State
	drawn   *bar // the bar as shown, for hit tests; nil while Off
	size    image.Point
	pressed Click // the button under the last press on the bar

	clicks chan Click
	done   chan struct{}
}

// Open shows nothing yet: it connects to the X display (":0") and
// prepares the indicator's windows, unmapped. Close frees them.
func Open(display string, logger *slog.Logger) (Indicator, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// xgb logs every connection to the standard logger; errors are ours.
	xgb.Logger = log.New(io.Discard, "", 0)
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		return nil, fmt.Errorf("indicator: open display %s: %w", display, err)
	}
	x, err := setup(c, logger)
	if err != nil {
		c.Close()
		return nil, err
	}
	go x.loop()
	return x, nil
}

func setup(c *xgb.Conn, logger *slog.Logger) (*x11, error) {
	info := xproto.Setup(c)
	scr := info.DefaultScreen(c)
	if info.ImageByteOrder != xproto.ImageOrderLSBFirst {
		return nil, errors.New("indicator: X server with MSB-first images is not supported")
	}
	bpp := 0
	for _, f := range info.PixmapFormats {
		if f.Depth == scr.RootDepth {
			bpp = int(f.BitsPerPixel)
		}
	}
	if scr.RootDepth < 24 || bpp != 32 {
		return nil, fmt.Errorf("indicator: screen depth %d at %d bits per pixel is not supported (24 or 32 at 32 bits)", scr.RootDepth, bpp)
	}
	x := &x11{
		c: c, root: scr.Root, depth: scr.RootDepth, visual: scr.RootVisual,
		maxReq: 4 * int(info.MaximumRequestLength), log: logger,
		size:   image.Pt(int(scr.WidthInPixels), int(scr.HeightInPixels)),
		clicks: make(chan Click, 8), done: make(chan struct{}),
	}
	if xgbext.Init(c, "RANDR", randr.Init) == nil {
		if v, err := randr.QueryVersion(c, 1, 3).Reply(); err == nil && (v.MajorVersion > 1 || v.MinorVersion >= 3) {
			x.randr = true
		}
	}
	// Other clients' maps and restacks, to stay on top; the root's own
	// size, to follow a resolution change.
	if err := xproto.ChangeWindowAttributesChecked(c, x.root, xproto.CwEventMask,
		[]uint32{xproto.EventMaskSubstructureNotify | xproto.EventMaskStructureNotify}).Check(); err != nil {
		return nil, fmt.Errorf("indicator: watch the root window: %w", err)
	}
	for i := range x.frame {
		w, err := x.window(0, "Assist frame")
		if err != nil {
			return nil, err
		}
		x.frame[i] = w
	}
	w, err := x.window(xproto.EventMaskButtonPress|xproto.EventMaskButtonRelease, "Assist")
	if err != nil {
		return nil, err
	}
	x.bar = w
	return x, nil
}

// window creates an unmapped 1×1 override-redirect window.
func (x *x11) window(events uint32, name string) (xproto.Window, error) {
	w, err := xproto.NewWindowId(x.c)
	if err != nil {
		return 0, fmt.Errorf("indicator: window id: %w", err)
	}
	// Values in the order of their mask bits.
	err = xproto.CreateWindowChecked(x.c, x.depth, w, x.root, 0, 0, 1, 1, 0,
		xproto.WindowClassInputOutput, x.visual,
		xproto.CwBackPixel|xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{0, 1, events}).Check()
	if err != nil {
		return 0, fmt.Errorf("indicator: create window: %w", err)
	}
	x.setName(w, name)
	// WM_HINTS input=False: should a window manager ever manage it, it
	// still must not give it the focus.
	hints := []byte{1, 0, 0, 0, 0, 0, 0, 0} // flags=InputHint, input=False
	hints = append(hints, make([]byte, 7*4)...)
	xproto.ChangeProperty(x.c, xproto.PropModeReplace, w, xproto.AtomWmHints, xproto.AtomWmHints, 32, 9, hints)
	return w, nil
}

func (x *x11) setName(w xproto.Window, name string) {
	xproto.ChangeProperty(x.c, xproto.PropModeReplace, w, xproto.AtomWmName, xproto.AtomString, 8, uint32(len(name)), []byte(name))
}

func (x *x11) Clicks() <-chan Click { return x.clicks }

func (x *x11) Show(s State) error {
	mon := x.primary() // round trips: before x.mu
	x.mu.Lock()
	x.state = s
	err := x.show(mon)
	x.mu.Unlock()
	if err != nil {
		return err
	}
	// Not under x.mu: the event loop may need it to drain the events
	// queued before the reply.
	return x.sync()
}

// show sends the requests that put x.state on the screen; x.mu is held.
// mon is the primary monitor (x.primary).
func (x *x11) show(mon image.Rectangle) error {
	if x.state.Mode == Off {
		x.drawn = nil
		for _, w := range x.all() {
			xproto.UnmapWindow(x.c, w)
		}
		return nil
	}
	// The frame goes round the whole screen, the bar at the top of the
	// primary monitor: in the middle of two monitors it would straddle
	// their seam.
	b, at, err := layout(x.state, mon.Size())
	if err != nil {
		return err
	}
	at = at.Add(mon.Min)
	W, H := x.size.X, x.size.Y
	fw := frameWidth * scale(x.size)
	rects := [4]image.Rectangle{
		image.Rect(0, 0, W, fw),       // top
		image.Rect(0, H-fw, W, H),     // bottom
		image.Rect(0, fw, fw, H-fw),   // left
		image.Rect(W-fw, fw, W, H-fw), // right
	}
	pixel := pixelOf(frameColour(x.state))
	for i, w := range x.frame {
		x.place(w, rects[i])
		xproto.ChangeWindowAttributes(x.c, w, xproto.CwBackPixel, []uint32{pixel})
		xproto.ClearArea(x.c, false, w, 0, 0, 0, 0)
	}
	x.place(x.bar, at)
	if err := x.paint(b.img); err != nil {
		return err
	}
	x.setName(x.bar, "Assist: "+Text(x.state))
	x.drawn = b
	for _, w := range x.frame {
		if x.state.Mode == Offer {
			// Nobody sees the screen yet: no frame says so.
			xproto.UnmapWindow(x.c, w)
		} else {
			xproto.MapWindow(x.c, w)
		}
	}
	xproto.MapWindow(x.c, x.bar)
	x.raise()
	return nil
}

// primary is the primary monitor's rectangle on the screen, or the whole
// screen when RANDR does not say.
func (x *x11) primary() image.Rectangle {
	x.mu.Lock()
	whole := image.Rectangle{Max: x.size}
	x.mu.Unlock()
	if !x.randr {
		return whole
	}
	p, err := randr.GetOutputPrimary(x.c, x.root).Reply()
	if err != nil || p.Output == 0 {
		return whole
	}
	o, err := randr.GetOutputInfo(x.c, p.Output, 0).Reply()
	if err != nil || o.Crtc == 0 {
		return whole
	}
	cr, err := randr.GetCrtcInfo(x.c, o.Crtc, 0).Reply()
	if err != nil {
		return whole
	}
	r := image.Rect(int(cr.X), int(cr.Y), int(cr.X)+int(cr.Width), int(cr.Y)+int(cr.Height)).Intersect(whole)
	if r.Dx() < 320 || r.Dy() < 200 {
		return whole
	}
	return r
}

func (x *x11) all() []xproto.Window {
	return append(x.frame[:len(x.frame):len(x.frame)], x.bar)
}

func (x *x11) place(w xproto.Window, r image.Rectangle) {
	xproto.ConfigureWindow(x.c, w,
		xproto.ConfigWindowX|xproto.ConfigWindowY|xproto.ConfigWindowWidth|xproto.ConfigWindowHeight,
		[]uint32{uint32(int32(r.Min.X)), uint32(int32(r.Min.Y)), uint32(r.Dx()), uint32(r.Dy())})
}

// raise puts the frame, then the bar, above every other window.
func (x *x11) raise() {
	for _, w := range x.all() {
		xproto.ConfigureWindow(x.c, w, xproto.ConfigWindowStackMode, []uint32{xproto.StackModeAbove})
	}
}

// paint makes img the bar's background: the X server then redraws it
// on every expose by itself, so no expose handling can lag behind.
func (x *x11) paint(img *image.RGBA) error {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	pix, err := xproto.NewPixmapId(x.c)
	if err != nil {
		return fmt.Errorf("indicator: pixmap id: %w", err)
	}
	// Unchecked, as every request under x.mu: a round trip here could
	// wait on the event loop, which waits on x.mu. Errors reach the loop.
	xproto.CreatePixmap(x.c, x.depth, pix, xproto.Drawable(x.root), uint16(w), uint16(h))
	defer xproto.FreePixmap(x.c, pix)
	gc, err := xproto.NewGcontextId(x.c)
	if err != nil {
		return fmt.Errorf("indicator: gc id: %w", err)
	}
	xproto.CreateGC(x.c, gc, xproto.Drawable(pix), 0, nil)
	defer xproto.FreeGC(x.c, gc)
	// PutImage in bands that fit one request.
	rows := max(1, (x.maxReq-32)/(4*w))
	buf := make([]byte, 0, 4*w*min(rows, h))
	for y0 := 0; y0 < h; y0 += rows {
		y1 := min(h, y0+rows)
		buf = buf[:0]
		for y := y0; y < y1; y++ {
			row := img.Pix[y*img.Stride : y*img.Stride+4*w]
			for i := 0; i < len(row); i += 4 {
				buf = append(buf, row[i+2], row[i+1], row[i], 0) // BGRX
			}
		}
		xproto.PutImage(x.c, xproto.ImageFormatZPixmap, xproto.Drawable(pix), gc,
			uint16(w), uint16(y1-y0), 0, int16(y0), 0, x.depth, buf)
	}
	xproto.ChangeWindowAttributes(x.c, x.bar, xproto.CwBackPixmap, []uint32{uint32(pix)})
	xproto.ClearArea(x.c, false, x.bar, 0, 0, 0, 0)
	return nil
}

// sync waits until the X server has carried out every request so far,
// so that Show returns with the indicator on the screen.
func (x *x11) sync() error {
	if _, err := xproto.GetInputFocus(x.c).Reply(); err != nil {
		return fmt.Errorf("indicator: X server: %w", err)
	}
	return nil
}

func pixelOf(c color.RGBA) uint32 {
	return uint32(c.R)<<16 | uint32(c.G)<<8 | uint32(c.B)
}

func (x *x11) ours(w xproto.Window) bool {
	if w == x.bar {
		return true
	}
	for _, f := range x.frame {
		if w == f {
			return true
		}
	}
	return false
}

// loop handles the X events until the connection closes: clicks on the
// bar, and other windows coming above it.
func (x *x11) loop() {
	defer close(x.clicks)
	defer close(x.done)
	for {
		ev, err := x.c.WaitForEvent()
		if ev == nil && err == nil {
			return // the connection is closed
		}
		if err != nil {
			// An asynchronous error of one of our unchecked requests.
			x.log.Debug("indicator: X error", "err", err)
			continue
		}
		switch e := ev.(type) {
		case xproto.ButtonPressEvent:
			if e.Event != x.bar || e.Detail != 1 {
				continue
			}
			x.mu.Lock()
			x.pressed = 0
			if x.drawn != nil {
				x.pressed, _ = x.drawn.hit(image.Pt(int(e.EventX), int(e.EventY)))
			}
			x.mu.Unlock()
		case xproto.ButtonReleaseEvent:
			if e.Event != x.bar || e.Detail != 1 {
				continue
			}
			// A click is a press and a release on the same button, as
			// everywhere else: sliding off a button cancels it.
			x.mu.Lock()
			var c Click
			if x.drawn != nil {
				if hit, ok := x.drawn.hit(image.Pt(int(e.EventX), int(e.EventY))); ok && hit == x.pressed {
					c = hit
				}
			}
			x.pressed = 0
			x.mu.Unlock()
			if c != 0 {
				select {
				case x.clicks <- c:
				default:
					x.log.Warn("indicator: click dropped: nobody reads clicks", "click", c)
				}
			}
		case xproto.MapNotifyEvent:
			if !x.ours(e.Window) {
				x.keepOnTop()
			}
		case xproto.ConfigureNotifyEvent:
			switch {
			case e.Window == x.root:
				x.mu.Lock()
				x.size = image.Pt(int(e.Width), int(e.Height))
				x.mu.Unlock()
				mon := x.primary()
				x.mu.Lock()
				if x.state.Mode != Off {
					if err := x.show(mon); err != nil {
						x.log.Warn("indicator: redraw after a screen size change", "err", err)
					}
				}
				x.mu.Unlock()
			case !x.ours(e.Window):
				x.keepOnTop()
			}
		}
	}
}

// keepOnTop raises the indicator again after another window was mapped
// or restacked, possibly above it.
func (x *x11) keepOnTop() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.state.Mode != Off {
		x.raise()
	}
}

// Close removes the windows (they go with the connection) and stops the
// event loop.
func (x *x11) Close() error {
	x.c.Close()
	<-x.done
	return nil
}
