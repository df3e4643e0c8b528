package windows

import (
	"errors"
	"fmt"
	"image"
	"unsafe"

	"github.com/assist-project/assist/screen"
	"golang.org/x/sys/windows"
)

// currentCursor returns the handle of the cursor shape showing now; ok
// is false when the cursor is hidden or the call fails.
func currentCursor() (windows.Handle, bool) {
	ci := cursorInfo{}
	ci.Size = uint32(unsafe.Sizeof(ci))
	if r, _, _ := procGetCursorInfo.Call(uintptr(unsafe.Pointer(&ci))); r == 0 {
		return 0, false
	}
	if ci.Flags&cursorShowing == 0 {
		return 0, false
	}
	return ci.Cursor, true
}

// CursorPos returns where the pointer is, in the captured image's
// coordinates.
func (d *Desktop) CursorPos() (image.Point, error) {
	var p point
	if r, _, err := procGetCursorPos.Call(uintptr(unsafe.Pointer(&p))); r == 0 {
		return image.Point{}, fmt.Errorf("windows: GetCursorPos: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return image.Pt(int(p.X), int(p.Y)).Sub(d.origin), nil
}

// Cursor returns the pointer's current shape. A hidden pointer is an
// empty 1x1 shape, which viewers draw as nothing.
func (d *Desktop) Cursor() (*screen.Cursor, error) {
	h, ok := currentCursor()
	if !ok {
		return &screen.Cursor{Pix: []uint32{0}, Size: image.Pt(1, 1)}, nil
	}
	var ii iconInfo
	if r, _, err := procGetIconInfo.Call(uintptr(h), uintptr(unsafe.Pointer(&ii))); r == 0 {
		// Wine hands out handles of cursors that belong to another
		// process, which GetIconInfo then refuses: the standard arrow
		// is a better guess than no pointer at all.
		arrow, _, _ := procLoadCursorW.Call(0, idcArrow)
		if arrow == 0 || arrow == uintptr(h) {
			return nil, fmt.Errorf("windows: GetIconInfo: %w", err)
		}
		if r, _, err := procGetIconInfo.Call(arrow, uintptr(unsafe.Pointer(&ii))); r == 0 {
			return nil, fmt.Errorf("windows: GetIconInfo of the arrow: %w", err)
		}
	}
	defer func() {
		if ii.MaskBmp != 0 {
			procDeleteObject.Call(uintptr(ii.MaskBmp))
		}
		if ii.ColorBmp != 0 {
			procDeleteObject.Call(uintptr(ii.ColorBmp))
		}
	}()
	if ii.MaskBmp == 0 {
		return nil, errors.New("windows: the cursor has no mask")
	}
	mask, mw, mh, err := bitmapPixels(ii.MaskBmp)
	if err != nil {
		return nil, fmt.Errorf("windows: cursor mask: %w", err)
	}
	var c *screen.Cursor
	if ii.ColorBmp == 0 {
		// Monochrome: the mask bitmap holds the AND mask above the
		// XOR mask, each half its height.
		c = monoCursor(mask, image.Pt(mw, mh/2))
	} else {
		color, cw, ch, err := bitmapPixels(ii.ColorBmp)
		if err != nil {
			return nil, fmt.Errorf("windows: cursor colour: %w", err)
		}
		if cw != mw || ch > mh {
			return nil, fmt.Errorf("windows: cursor colour %dx%d and mask %dx%d differ", cw, ch, mw, mh)
		}
		c = colorCursor(color, mask, image.Pt(cw, ch))
	}
	c.Hot = image.Pt(int(ii.HotX), int(ii.HotY))
	return c, nil
}

// bitmapPixels reads a bitmap as 32-bit top-down pixels 0xAARRGGBB (as
// GetDIBits converts any depth; a monochrome bitmap comes out black and
// white with alpha 0).
func bitmapPixels(bmp windows.Handle) (pix []uint32, w, h int, err error) {
	var bm bitmap
	if r, _, err := procGetObjectW.Call(uintptr(bmp), unsafe.Sizeof(bm), uintptr(unsafe.Pointer(&bm))); r == 0 {
		return nil, 0, 0, fmt.Errorf("GetObject: %w", err)
	}
	w, h = int(bm.Width), int(bm.Height)
	if w <= 0 || h <= 0 || w > 1024 || h > 2048 {
		return nil, 0, 0, fmt.Errorf("bitmap of %dx%d", w, h)
	}
	bi := bitmapInfo{Header: bitmapInfoHeader{Width: int32(w), Height: -int32(h), Planes: 1, BitCount: 32, Compression: biRGB}}
	bi.Header.Size = uint32(unsafe.Sizeof(bi.Header))
	pix = make([]uint32, w*h)
	dc, _, _ := procCreateCompatibleDC.Call(0)
	if dc == 0 {
		return nil, 0, 0, errors.New("CreateCompatibleDC failed")
	}
	defer procDeleteDC.Call(dc)
	if r, _, err := procGetDIBits.Call(dc, uintptr(bmp), 0, uintptr(h), uintptr(unsafe.Pointer(&pix[0])), uintptr(unsafe.Pointer(&bi)), dibRGBColors); r == 0 {
		return nil, 0, 0, fmt.Errorf("GetDIBits: %w", err)
	}
	return pix, w, h, nil
}
