package windows

import (
	"errors"
	"fmt"
	"image"
	"runtime"
	"time"
	"unsafe"

	"github.com/assist-project/assist/screen"
	"golang.org/x/sys/windows"
)

// gdiGrabber is a memory DC with a top-down 32-bit DIB section selected,
// so that BitBlt from the screen leaves B, G, R, X bytes in memory we can
// read: the layout of screen.Image, copied row by row.
type gdiGrabber struct {
	dc   windows.Handle
	bmp  windows.Handle
	old  windows.Handle
	bits []byte
	size image.Point
}

func newGDIGrabber(size image.Point) (*gdiGrabber, error) {
	dc, _, err := procCreateCompatibleDC.Call(0)
	if dc == 0 {
		return nil, fmt.Errorf("CreateCompatibleDC: %w", err)
	}
	bi := bitmapInfo{Header: bitmapInfoHeader{
		Width: int32(size.X), Height: -int32(size.Y), // negative: top-down rows
		Planes: 1, BitCount: 32, Compression: biRGB,
	}}
	bi.Header.Size = uint32(unsafe.Sizeof(bi.Header))
	var bits unsafe.Pointer
	bmp, _, err := procCreateDIBSection.Call(dc, uintptr(unsafe.Pointer(&bi)), dibRGBColors, uintptr(unsafe.Pointer(&bits)), 0, 0)
	if bmp == 0 {
		procDeleteDC.Call(dc)
		return nil, fmt.Errorf("CreateDIBSection %dx%d: %w", size.X, size.Y, err)
	}
	old, _, _ := procSelectObject.Call(dc, bmp)
	g := &gdiGrabber{dc: windows.Handle(dc), bmp: windows.Handle(bmp), old: windows.Handle(old), size: size}
	// The section's memory belongs to GDI until DeleteObject.
	g.bits = unsafe.Slice((*byte)(bits), 4*size.X*size.Y)
	return g, nil
}

func (g *gdiGrabber) free() {
	procSelectObject.Call(uintptr(g.dc), uintptr(g.old))
	procDeleteObject.Call(uintptr(g.bmp))
	procDeleteDC.Call(uintptr(g.dc))
	g.bits = nil
}

// Grab copies the pixels of r (in the virtual screen's coordinates, 0,0
// at its top-left corner) into dst with one BitBlt from the screen DC.
// CAPTUREBLT includes layered windows (tooltips, menus with shadows).
func (d *Desktop) Grab(dst *screen.Image, r image.Rectangle) error {
	d.mu.Lock()
	origin, size, closed := d.origin, d.size, d.closed
	d.mu.Unlock()
	if closed {
		return errors.New("windows: desktop closed")
	}
	r = r.Intersect(image.Rectangle{Max: size}).Intersect(dst.Rect)
	if r.Empty() {
		return nil
	}
	d.grabMu.Lock()
	defer d.grabMu.Unlock()
	if d.dup != nil && d.dup.size == size && !d.dup.fresh {
		// The latest frame Next received.
		n := 4 * r.Dx()
		for y := r.Min.Y; y < r.Max.Y; y++ {
			s := y*4*size.X + 4*r.Min.X
			o := dst.PixOffset(r.Min.X, y)
			copy(dst.Pix[o:o+n], d.dup.frame[s:s+n])
		}
		return nil
	}
	if d.gdi == nil || d.gdi.size != size {
		if d.gdi != nil {
			d.gdi.free()
			d.gdi = nil
		}
		g, err := newGDIGrabber(size)
		if err != nil {
			return fmt.Errorf("windows: GDI capture: %w", err)
		}
		d.gdi = g
	}
	start := time.Now()
	// GetDC and ReleaseDC must run on one thread.
	runtime.LockOSThread()
	screenDC, _, err := procGetDC.Call(0)
	if screenDC == 0 {
		runtime.UnlockOSThread()
		return fmt.Errorf("windows: GetDC of the screen: %w (is the desktop locked or on the secure desktop?)", err)
	}
	ok, _, err := procBitBlt.Call(uintptr(d.gdi.dc), uintptr(r.Min.X), uintptr(r.Min.Y), uintptr(r.Dx()), uintptr(r.Dy()),
		screenDC, uintptr(origin.X+r.Min.X), uintptr(origin.Y+r.Min.Y), srcCopy|captureBlt)
	procReleaseDC.Call(0, screenDC)
	runtime.UnlockOSThread()
	if ok == 0 {
		return fmt.Errorf("windows: BitBlt %v: %w", r, err)
	}
	procGdiFlush.Call()
	stride := 4 * size.X
	n := 4 * r.Dx()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		s := y*stride + 4*r.Min.X
		o := dst.PixOffset(r.Min.X, y)
		copy(dst.Pix[o:o+n], d.gdi.bits[s:s+n])
	}
	if r.Size() == size {
		d.grabTime = time.Since(start)
	}
	return nil
}
