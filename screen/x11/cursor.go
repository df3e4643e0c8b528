package x11

import (
	"fmt"
	"image"

	"github.com/jezek/xgb/xfixes"

	"github.com/assist-project/assist/screen"
)

// Cursor returns the pointer's current shape from XFIXES, as
// premultiplied 0xAARRGGBB pixels.
func (d *Display) Cursor() (*screen.Cursor, error) {
	rep, err := xfixes.GetCursorImage(d.conn).Reply()
	if err != nil {
		return nil, fmt.Errorf("x11: get cursor image: %w", err)
	}
	w, h := int(rep.Width), int(rep.Height)
	if len(rep.CursorImage) < w*h {
		return nil, fmt.Errorf("x11: get cursor image: %d pixels for %dx%d", len(rep.CursorImage), w, h)
	}
	return &screen.Cursor{
		Pix:  rep.CursorImage[:w*h],
		Size: image.Pt(w, h),
		Hot:  image.Pt(int(rep.Xhot), int(rep.Yhot)),
	}, nil
}
