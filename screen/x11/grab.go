package x11

import (
	"fmt"
	"image"

	"github.com/jezek/xgb/shm"
	"github.com/jezek/xgb/xproto"

	"github.com/assist-project/assist/screen"
)

// Grab copies the pixels of r from the root window into dst. With MIT-SHM
// it costs one round trip and one memcpy of r; without, a pipelined
// series of GetImage requests.
func (d *Display) Grab(dst *screen.Image, r image.Rectangle) error {
	if r.Empty() {
		return nil
	}
	size := d.Size()
	if !r.In(dst.Rect) {
		return fmt.Errorf("x11: grab %v: outside the destination %v", r, dst.Rect)
	}
	if !r.In(image.Rectangle{Max: size}) {
		return fmt.Errorf("x11: grab %v: outside the screen %v", r, size)
	}
	d.grabMu.Lock()
	defer d.grabMu.Unlock()
	if d.useSHM {
		err := d.grabSHM(dst, r, size)
		if err == nil {
			return nil
		}
		if _, bad := err.(shmUnusable); !bad {
			return err
		}
		// The segment cannot be (re)made: carry on without SHM.
		d.useSHM = false
		d.freeSegment()
	}
	return d.grabCore(dst, r)
}

// shadow.Screen looks for this method (an interface of its own, so that
// shadow does not depend on X11) to compare frames without copying them.
var _ interface {
	GrabView(image.Rectangle) (*screen.Image, func(), error)
} = (*Display)(nil)

// GrabView grabs r like Grab, but with MIT-SHM it leaves the pixels where
// the X server put them, in the memory shared with it, and returns that
// memory as an image covering r: no copy. Until release is called, the
// image stays valid and every other grab waits; release must be called
// exactly once, and the image not used after it. Without MIT-SHM the
// image is a new one.
func (d *Display) GrabView(r image.Rectangle) (img *screen.Image, release func(), err error) {
	size := d.Size()
	if r.Empty() || !r.In(image.Rectangle{Max: size}) {
		return nil, nil, fmt.Errorf("x11: grab %v: empty or outside the screen %v", r, size)
	}
	d.grabMu.Lock()
	if d.useSHM {
		err := d.shmGetImage(r, size)
		if err == nil {
			img := &screen.Image{Pix: d.seg.mem[:4*r.Dx()*r.Dy()], Stride: 4 * r.Dx(), Rect: r}
			return img, d.grabMu.Unlock, nil
		}
		if _, bad := err.(shmUnusable); !bad {
			d.grabMu.Unlock()
			return nil, nil, err
		}
		d.useSHM = false
		d.freeSegment()
	}
	img = screen.NewImage(r)
	err = d.grabCore(img, r)
	d.grabMu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	return img, func() {}, nil
}

// shmUnusable marks errors after which SHM is given up for good.
type shmUnusable struct{ error }

func (d *Display) grabSHM(dst *screen.Image, r image.Rectangle, size image.Point) error {
	if err := d.shmGetImage(r, size); err != nil {
		return err
	}
	copyRows(dst, r, d.seg.mem, 4*r.Dx())
	return nil
}

// shmGetImage has the X server write r, packed (4*r.Dx() bytes a row), at
// the start of the segment. The caller holds grabMu.
func (d *Display) shmGetImage(r image.Rectangle, size image.Point) error {
	if d.seg == nil || d.segFor != size {
		if err := d.allocSegment(size); err != nil {
			return shmUnusable{err}
		}
	}
	_, err := shm.GetImage(d.conn, xproto.Drawable(d.root), int16(r.Min.X), int16(r.Min.Y),
		uint16(r.Dx()), uint16(r.Dy()), 0xffffffff, xproto.ImageFormatZPixmap, d.seg.seg, 0).Reply()
	if err != nil {
		return fmt.Errorf("x11: grab %v: ShmGetImage: %w", r, err)
	}
	return nil
}

// grabCore reads r with core GetImage requests, each reply under the
// maximum request size, all sent before the first reply is read.
func (d *Display) grabCore(dst *screen.Image, r image.Rectangle) error {
	w := r.Dx()
	rows := d.maxReqBytes / (4 * w)
	if rows < 1 {
		rows = 1
	}
	type chunk struct {
		y, h   int
		cookie xproto.GetImageCookie
	}
	chunks := make([]chunk, 0, (r.Dy()+rows-1)/rows)
	for y := r.Min.Y; y < r.Max.Y; y += rows {
		h := min(rows, r.Max.Y-y)
		ck := xproto.GetImage(d.conn, xproto.ImageFormatZPixmap, xproto.Drawable(d.root),
			int16(r.Min.X), int16(y), uint16(w), uint16(h), 0xffffffff)
		chunks = append(chunks, chunk{y, h, ck})
	}
	var first error
	for _, c := range chunks {
		// Every reply is read, even after an error, so none is left
		// queued on the connection.
		rep, err := c.cookie.Reply()
		if first != nil {
			continue
		}
		cr := image.Rect(r.Min.X, c.y, r.Max.X, c.y+c.h)
		switch {
		case err != nil:
			first = fmt.Errorf("x11: grab %v: GetImage: %w", cr, err)
		case len(rep.Data) < 4*w*c.h:
			first = fmt.Errorf("x11: grab %v: GetImage returned %d bytes, want %d", cr, len(rep.Data), 4*w*c.h)
		default:
			copyRows(dst, cr, rep.Data, 4*w)
		}
	}
	return first
}

// copyRows copies r from src, packed with stride bytes per row, into dst.
func copyRows(dst *screen.Image, r image.Rectangle, src []byte, stride int) {
	n := 4 * r.Dx()
	if dst.Stride == n && stride == n {
		i := dst.PixOffset(r.Min.X, r.Min.Y)
		copy(dst.Pix[i:i+n*r.Dy()], src[:n*r.Dy()])
		return
	}
	s := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		i := dst.PixOffset(r.Min.X, y)
		copy(dst.Pix[i:i+n], src[s:s+n])
		s += stride
	}
}
