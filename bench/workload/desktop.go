// Package workload draws reproducible desktop activity (typing,
// scrolling, video, full-screen changes) on an X server through its own X
// connection, for benchmarking VNC servers that share that X server.
package workload

import (
	"fmt"
	"image"
	"sync"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/assist-project/assist/bench/marker"
	"github.com/assist-project/assist/screen"
)

// Desktop is an X connection with one window covering the whole screen,
// into which workloads draw with core X requests.
type Desktop struct {
	conn *xgb.Conn
	win  xproto.Window
	gc   xproto.Gcontext
	size image.Point
	// maxPut is the most image bytes one PutImage request may carry.
	maxPut int
	buf    []byte

	// Font metrics of "fixed": cell width, line height, ascent.
	CharWidth, LineHeight, Ascent int

	mu       sync.Mutex
	asyncErr error
}

// Open connects to display, checks that the screen is 24-bit with 32-bit
// little-endian pixels (the layout of screen.Image, which PutImage then
// takes as it is), maps a borderless override-redirect window over the
// whole screen and loads the "fixed" font.
func Open(display string) (*Desktop, error) {
	conn, err := xgb.NewConnDisplay(display)
	if err != nil {
		return nil, fmt.Errorf("workload: connect to %s: %w", display, err)
	}
	d := &Desktop{conn: conn}
	if err := d.init(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("workload: %s: %w", display, err)
	}
	go d.drainEvents()
	return d, nil
}

func (d *Desktop) init() error {
	setup := xproto.Setup(d.conn)
	scr := setup.DefaultScreen(d.conn)
	if scr.RootDepth != 24 {
		return fmt.Errorf("root depth is %d, want 24", scr.RootDepth)
	}
	bpp := 0
	for _, f := range setup.PixmapFormats {
		if f.Depth == 24 {
			bpp = int(f.BitsPerPixel)
		}
	}
	if bpp != 32 || setup.ImageByteOrder != xproto.ImageOrderLSBFirst {
		return fmt.Errorf("depth 24 images are %d bpp, byte order %d; want 32 bpp LSB first", bpp, setup.ImageByteOrder)
	}
	// The request length is in 4-byte units; leave room for the header.
	d.maxPut = 4*int(setup.MaximumRequestLength) - 64
	d.size = image.Pt(int(scr.WidthInPixels), int(scr.HeightInPixels))

	win, err := xproto.NewWindowId(d.conn)
	if err != nil {
		return fmt.Errorf("new window id: %w", err)
	}
	d.win = win
	err = xproto.CreateWindowChecked(d.conn, 0, win, scr.Root, 0, 0,
		uint16(d.size.X), uint16(d.size.Y), 0, xproto.WindowClassInputOutput, 0,
		xproto.CwBackPixel|xproto.CwOverrideRedirect, []uint32{0xffffff, 1}).Check()
	if err != nil {
		return fmt.Errorf("create window: %w", err)
	}
	if err := xproto.MapWindowChecked(d.conn, win).Check(); err != nil {
		return fmt.Errorf("map window: %w", err)
	}

	font, err := xproto.NewFontId(d.conn)
	if err != nil {
		return fmt.Errorf("new font id: %w", err)
	}
	const fontName = "fixed"
	if err := xproto.OpenFontChecked(d.conn, font, uint16(len(fontName)), fontName).Check(); err != nil {
		return fmt.Errorf("open font %q: %w", fontName, err)
	}
	fi, err := xproto.QueryFont(d.conn, xproto.Fontable(font)).Reply()
	if err != nil {
		return fmt.Errorf("query font %q: %w", fontName, err)
	}
	d.CharWidth = int(fi.MaxBounds.CharacterWidth)
	d.Ascent = int(fi.FontAscent)
	d.LineHeight = int(fi.FontAscent) + int(fi.FontDescent)

	gc, err := xproto.NewGcontextId(d.conn)
	if err != nil {
		return fmt.Errorf("new gc id: %w", err)
	}
	d.gc = gc
	// No graphics exposures: CopyArea would otherwise queue NoExposure
	// events that nobody wants.
	err = xproto.CreateGCChecked(d.conn, gc, xproto.Drawable(win),
		xproto.GcForeground|xproto.GcBackground|xproto.GcFont|xproto.GcGraphicsExposures,
		[]uint32{0, 0xffffff, uint32(font), 0}).Check()
	if err != nil {
		return fmt.Errorf("create gc: %w", err)
	}
	return nil
}

// drainEvents keeps xgb's event queue from filling up (it blocks the
// connection when full) and remembers the first X error of an unchecked
// drawing request.
func (d *Desktop) drainEvents() {
	for {
		ev, xerr := d.conn.WaitForEvent()
		if ev == nil && xerr == nil {
			return
		}
		if xerr != nil {
			d.mu.Lock()
			if d.asyncErr == nil {
				d.asyncErr = xerr
			}
			d.mu.Unlock()
		}
	}
}

// Size is the screen's size.
func (d *Desktop) Size() image.Point { return d.size }

// Close destroys the window and closes the connection.
func (d *Desktop) Close() {
	xproto.DestroyWindow(d.conn, d.win)
	xproto.GetInputFocus(d.conn).Reply()
	d.conn.Close()
}

// PutImage draws img at img.Rect, in horizontal strips small enough for
// one request each.
func (d *Desktop) PutImage(img *screen.Image) {
	r := img.Rect
	w := r.Dx()
	if w <= 0 || r.Dy() <= 0 {
		return
	}
	rows := max(1, d.maxPut/(4*w))
	for y := r.Min.Y; y < r.Max.Y; y += rows {
		h := min(rows, r.Max.Y-y)
		var data []byte
		if img.Stride == 4*w {
			i := img.PixOffset(r.Min.X, y)
			data = img.Pix[i : i+4*w*h]
		} else {
			d.buf = d.buf[:0]
			for yy := y; yy < y+h; yy++ {
				i := img.PixOffset(r.Min.X, yy)
				d.buf = append(d.buf, img.Pix[i:i+4*w]...)
			}
			data = d.buf
		}
		xproto.PutImage(d.conn, xproto.ImageFormatZPixmap, xproto.Drawable(d.win), d.gc,
			uint16(w), uint16(h), int16(r.Min.X), int16(y), 0, 24, data)
	}
}

// Fill paints r with colour rgb (0xRRGGBB).
func (d *Desktop) Fill(r image.Rectangle, rgb uint32) {
	xproto.ChangeGC(d.conn, d.gc, xproto.GcForeground, []uint32{rgb})
	xproto.PolyFillRectangle(d.conn, xproto.Drawable(d.win), d.gc, []xproto.Rectangle{{
		X: int16(r.Min.X), Y: int16(r.Min.Y), Width: uint16(r.Dx()), Height: uint16(r.Dy()),
	}})
}

// Text draws s (at most 255 bytes of Latin-1) with ImageText8, its cell
// tops at y, in colour fg on bg.
func (d *Desktop) Text(x, y int, s string, fg, bg uint32) {
	if len(s) > 255 {
		s = s[:255]
	}
	xproto.ChangeGC(d.conn, d.gc, xproto.GcForeground|xproto.GcBackground, []uint32{fg, bg})
	xproto.ImageText8(d.conn, byte(len(s)), xproto.Drawable(d.win), d.gc, int16(x), int16(y+d.Ascent), s)
}

// Copy moves the pixels of src so that its top-left corner lands on dst.
func (d *Desktop) Copy(src image.Rectangle, dst image.Point) {
	xproto.CopyArea(d.conn, xproto.Drawable(d.win), xproto.Drawable(d.win), d.gc,
		int16(src.Min.X), int16(src.Min.Y), int16(dst.X), int16(dst.Y), uint16(src.Dx()), uint16(src.Dy()))
}

// Marker draws the marker for sequence number n with its top-left
// corner at at.
func (d *Desktop) Marker(at image.Point, n uint64) {
	d.PutImage(marker.Image(at, uint32(n%marker.Modulus)))
}

// Sync waits until the X server has executed every request sent so far
// (a GetInputFocus round trip) and reports any X error they caused.
func (d *Desktop) Sync() error {
	if _, err := xproto.GetInputFocus(d.conn).Reply(); err != nil {
		return fmt.Errorf("workload: sync: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.asyncErr; err != nil {
		d.asyncErr = nil
		return fmt.Errorf("workload: drawing: %v", err)
	}
	return nil
}

// Grab reads area r of the screen back from the X server (GetImage on
// the root window), for checking what was drawn.
func (d *Desktop) Grab(r image.Rectangle) (*screen.Image, error) {
	root := xproto.Setup(d.conn).DefaultScreen(d.conn).Root
	reply, err := xproto.GetImage(d.conn, xproto.ImageFormatZPixmap, xproto.Drawable(root),
		int16(r.Min.X), int16(r.Min.Y), uint16(r.Dx()), uint16(r.Dy()), 0xffffffff).Reply()
	if err != nil {
		return nil, fmt.Errorf("workload: grab %v: %w", r, err)
	}
	img := screen.NewImage(r)
	if len(reply.Data) < len(img.Pix) {
		return nil, fmt.Errorf("workload: grab %v: got %d bytes, want %d", r, len(reply.Data), len(img.Pix))
	}
	copy(img.Pix, reply.Data)
	return img, nil
}

// Pointer returns where the mouse pointer is, so that a comparison of a
// viewer's picture with the screen can leave out the cursor, which some
// servers draw into the picture.
func (d *Desktop) Pointer() (image.Point, error) {
	root := xproto.Setup(d.conn).DefaultScreen(d.conn).Root
	r, err := xproto.QueryPointer(d.conn, root).Reply()
	if err != nil {
		return image.Point{}, fmt.Errorf("workload: query pointer: %w", err)
	}
	return image.Pt(int(r.RootX), int(r.RootY)), nil
}
