package screentest

import (
	"context"
	"image"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// TestDesktop: each change is reported once by Next (damage, a new size,
// clipboard text), Grab and Snapshot show the picture, and Next waits
// until ctx ends when nothing changed.
func TestDesktop(t *testing.T) {
	d := New(8, 4)
	d.Change(func(img *screen.Image) image.Rectangle {
		img.Pix[img.PixOffset(1, 1)] = 200
		return image.Rect(1, 1, 2, 2)
	})
	d.Copy("copied")
	ctx := context.Background()
	c, err := d.Next(ctx)
	if err != nil || len(c.Damage) != 1 || c.Damage[0] != image.Rect(1, 1, 2, 2) || !c.Clipboard || c.Text != "copied" || c.Resized {
		t.Fatalf("Next = %+v, %v", c, err)
	}
	dst := screen.NewImage(image.Rect(0, 0, 8, 4))
	if err := d.Grab(dst, image.Rect(0, 0, 8, 4)); err != nil || dst.Pix[dst.PixOffset(1, 1)] != 200 {
		t.Errorf("Grab: %v", err)
	}
	d.Resize(image.Pt(16, 6), func(img *screen.Image) { img.Pix[0] = 7 })
	c, err = d.Next(ctx)
	if err != nil || !c.Resized || c.Size != image.Pt(16, 6) || d.Size() != image.Pt(16, 6) {
		t.Fatalf("Next after Resize = %+v, %v", c, err)
	}
	if s := d.Snapshot(); s.Rect.Size() != image.Pt(16, 6) || s.Pix[0] != 7 {
		t.Errorf("Snapshot after Resize: %v %d", s.Rect, s.Pix[0])
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if c, err := d.Next(short); err == nil {
		t.Errorf("Next with nothing changed = %+v", c)
	}
}
