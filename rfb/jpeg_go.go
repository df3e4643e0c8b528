//go:build !turbojpeg || !cgo

package rfb

import (
	"fmt"
	"image"
	"image/jpeg"

	"github.com/assist-project/assist/screen"
)

// goJPEG compresses with image/jpeg. It is the fallback when the program
// is built without libjpeg-turbo; image/jpeg always subsamples colour
// 4:2:0, so the subsampling argument is ignored.
type goJPEG struct {
	rgba image.RGBA // conversion buffer, reused
	out  jpegAppender
}

// jpegTurbo reports whether JPEG compression uses libjpeg-turbo.
const jpegTurbo = false

// jpegDecode decodes the JFIF stream data, which must be a picture of
// rect's size, into rect of fb, as BGRX with X = 0.
func jpegDecode(fb *screen.Image, rect image.Rectangle, data []byte) error {
	return jpegDecodeGo(fb, rect, data)
}

// newJPEGCompressor returns the image/jpeg compressor.
func newJPEGCompressor() jpegCompressor { return &goJPEG{} }

func (c *goJPEG) close() {}

func (c *goJPEG) appendJPEG(dst []byte, img *screen.Image, r image.Rectangle, quality int, _ jpegSubsampling) ([]byte, error) {
	if err := jpegCheckArea(img, r); err != nil {
		return dst, err
	}
	// image/jpeg reads *image.RGBA without an interface call per pixel;
	// anything else goes through At, which is many times slower.
	w, h := r.Dx(), r.Dy()
	c.rgba.Pix = tightGrow(c.rgba.Pix, 4*w*h)
	c.rgba.Stride, c.rgba.Rect = 4*w, image.Rect(0, 0, w, h)
	for y := 0; y < h; y++ {
		i := img.PixOffset(r.Min.X, r.Min.Y+y)
		src := img.Pix[i : i+4*w]
		out := c.rgba.Pix[4*w*y : 4*w*(y+1)]
		for x := 0; x+3 < len(src); x += 4 {
			out[x], out[x+1], out[x+2], out[x+3] = src[x+2], src[x+1], src[x], 0xff
		}
	}
	n := len(dst)
	c.out.b = dst
	err := jpeg.Encode(&c.out, &c.rgba, &jpeg.Options{Quality: quality})
	out := c.out.b
	c.out.b = nil
	if err != nil {
		return out[:n], fmt.Errorf("rfb: jpeg: %w", err)
	}
	return out, nil
}

// jpegAppender is an io.Writer appending to a slice. It has WriteByte
// and Flush so that image/jpeg uses it directly instead of wrapping it
// in a new bufio.Writer on every picture.
type jpegAppender struct{ b []byte }

func (a *jpegAppender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

func (a *jpegAppender) WriteByte(c byte) error {
	a.b = append(a.b, c)
	return nil
}

func (a *jpegAppender) Flush() error { return nil }
