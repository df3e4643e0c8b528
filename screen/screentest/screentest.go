// Package screentest is an in-memory desktop for the tests of what serves
// a screen (rfb, session): a screen.Capturer whose picture, size and
// clipboard the test changes, each change reported by Next as the X
// backend reports damage. The X backend itself is tested against a real X
// server in screen/x11.
package screentest

import (
	"context"
	"image"
	"sync"

	"github.com/assist-project/assist/screen"
)

// Desktop is an in-memory screen.Capturer. Its methods are safe for
// concurrent use.
type Desktop struct {
	mu      sync.Mutex
	img     *screen.Image
	damage  []image.Rectangle
	resized bool
	clip    *string
	changed chan struct{}
}

// New returns a black desktop of w by h pixels.
func New(w, h int) *Desktop {
	return NewFrom(screen.NewImage(image.Rect(0, 0, w, h)))
}

// NewFrom returns a desktop showing img, which it keeps.
func NewFrom(img *screen.Image) *Desktop {
	return &Desktop{img: img, changed: make(chan struct{}, 1)}
}

// Change draws on the picture with fn, under the desktop's lock, and
// reports the rectangle fn returns as damaged.
func (d *Desktop) Change(fn func(img *screen.Image) image.Rectangle) {
	d.mu.Lock()
	d.damage = append(d.damage, fn(d.img))
	d.mu.Unlock()
	d.notify()
}

// Resize replaces the picture with one of size, drawn by fn, and reports
// the new size.
func (d *Desktop) Resize(size image.Point, fn func(img *screen.Image)) {
	img := screen.NewImage(image.Rectangle{Max: size})
	fn(img)
	d.mu.Lock()
	d.img = img
	d.resized = true
	d.mu.Unlock()
	d.notify()
}

// Copy reports text as copied to the desktop's clipboard.
func (d *Desktop) Copy(text string) {
	d.mu.Lock()
	d.clip = &text
	d.mu.Unlock()
	d.notify()
}

// Snapshot returns a copy of the picture.
func (d *Desktop) Snapshot() *screen.Image {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := screen.NewImage(d.img.Rect)
	c.CopyFrom(d.img, d.img.Rect)
	return c
}

func (d *Desktop) notify() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// Size implements screen.Capturer.
func (d *Desktop) Size() image.Point {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.img.Rect.Size()
}

// Next implements screen.Capturer: it returns the changes since the last
// call, waiting for one.
func (d *Desktop) Next(ctx context.Context) (screen.Change, error) {
	for {
		d.mu.Lock()
		if len(d.damage) > 0 || d.resized || d.clip != nil {
			c := screen.Change{Damage: d.damage, Resized: d.resized, Size: d.img.Rect.Size()}
			if d.clip != nil {
				c.Clipboard, c.Text = true, *d.clip
			}
			d.damage, d.resized, d.clip = nil, false, nil
			d.mu.Unlock()
			return c, nil
		}
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return screen.Change{}, ctx.Err()
		case <-d.changed:
		}
	}
}

// Grab implements screen.Capturer.
func (d *Desktop) Grab(dst *screen.Image, r image.Rectangle) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	dst.CopyFrom(d.img, r)
	return nil
}

// Cursor implements screen.Capturer: a 4x4 shape of greys with its hot
// spot at (1,2).
func (d *Desktop) Cursor() (*screen.Cursor, error) {
	c := &screen.Cursor{Size: image.Pt(4, 4), Hot: image.Pt(1, 2), Pix: make([]uint32, 16)}
	for i := range c.Pix {
		c.Pix[i] = 0xff000000 | uint32(i)*0x101010
	}
	return c, nil
}

// Close implements screen.Capturer.
func (d *Desktop) Close() error { return nil }

var _ screen.Capturer = (*Desktop)(nil)
