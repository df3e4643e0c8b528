// Package screen defines how Assist reads a desktop and drives its input:
// a Capturer reports what changed and grabs pixels, an Injector moves the
// pointer and presses keys, a Clipboard carries text. Platform backends
// (screen/x11) implement them; everything above is platform-neutral.
package screen

import (
	"context"
	"image"
)

// Image is a 32-bit frame in the layout X servers use for depth 24 on
// little-endian machines: each pixel is the bytes B, G, R, X. Keeping the
// capture layout end to end lets the common case (a 32bpp little-endian
// viewer) be a straight copy.
type Image struct {
	Pix    []byte
	Stride int
	Rect   image.Rectangle
}

// NewImage returns a zeroed image covering r.
func NewImage(r image.Rectangle) *Image {
	return &Image{Pix: make([]byte, 4*r.Dx()*r.Dy()), Stride: 4 * r.Dx(), Rect: r}
}

// PixOffset returns the index of the first byte of pixel (x, y).
func (m *Image) PixOffset(x, y int) int {
	return (y-m.Rect.Min.Y)*m.Stride + (x-m.Rect.Min.X)*4
}

// SubImage returns an image sharing m's pixels, restricted to r ∩ m.Rect.
func (m *Image) SubImage(r image.Rectangle) *Image {
	r = r.Intersect(m.Rect)
	if r.Empty() {
		return &Image{Rect: r}
	}
	i := m.PixOffset(r.Min.X, r.Min.Y)
	return &Image{Pix: m.Pix[i:], Stride: m.Stride, Rect: r}
}

// CopyFrom copies the pixels of r from src into m; r must lie in both.
func (m *Image) CopyFrom(src *Image, r image.Rectangle) {
	r = r.Intersect(m.Rect).Intersect(src.Rect)
	n := 4 * r.Dx()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		d := m.PixOffset(r.Min.X, y)
		s := src.PixOffset(r.Min.X, y)
		copy(m.Pix[d:d+n], src.Pix[s:s+n])
	}
}

// Cursor is the pointer's shape as the desktop draws it.
type Cursor struct {
	// Pix holds Size.X*Size.Y pixels, row by row, as 0xAARRGGBB with
	// premultiplied alpha (the XFIXES layout).
	Pix  []uint32
	Size image.Point
	Hot  image.Point
}

// Change is what a Capturer reports after the desktop changed.
type Change struct {
	// Damage lists areas whose pixels may have changed. They may overlap
	// and may be larger than what really changed.
	Damage []image.Rectangle
	// Resized is set when the screen size changed; Size is the new size.
	Resized bool
	Size    image.Point
	// CursorChanged is set when the pointer's shape changed.
	CursorChanged bool
	// Clipboard is set when the desktop's clipboard got new text (Text).
	Clipboard bool
	Text      string
}

// Capturer reads a desktop.
type Capturer interface {
	// Size is the current size of the screen.
	Size() image.Point
	// Next blocks until the desktop changed or ctx is done. Changes that
	// arrive while nobody calls Next are merged, never dropped.
	Next(ctx context.Context) (Change, error)
	// Grab copies the current pixels of r from the screen into dst at the
	// same coordinates. r must lie within dst.Rect and the screen.
	Grab(dst *Image, r image.Rectangle) error
	// Cursor returns the pointer's current shape.
	Cursor() (*Cursor, error)
	Close() error
}

// Injector drives a desktop's pointer and keyboard.
type Injector interface {
	// Pointer moves the pointer to (x, y) with the given button mask:
	// bit 0 is button 1 (left) ... bit 6 is button 7; buttons 4 and 5
	// are the vertical wheel, 6 and 7 the horizontal one.
	Pointer(x, y int, buttons uint8) error
	// Key presses (down) or releases a key given by its X keysym.
	Key(keysym uint32, down bool) error
}

// Clipboard sets the desktop's clipboard. Text that the desktop puts on
// its clipboard arrives through Capturer.Next.
type Clipboard interface {
	SetClipboard(text string) error
}
