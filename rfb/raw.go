package rfb

import (
	"image"
	"io"

	"github.com/assist-project/assist/screen"
)

// Raw (RFC 6143 §7.7.1) sends every pixel of a rectangle in the viewer's
// format, row by row. Every viewer must understand it.

// rawEncoder is stateless.
type rawEncoder struct{}

// newRawEncoder returns the Raw encoder.
func newRawEncoder() rectEncoder { return rawEncoder{} }

func (rawEncoder) encode(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat) ([]byte, int) {
	buf = appendRectHeader(buf, r, EncRaw)
	return appendPixels(buf, img, r, pf), 1
}

// rawChunk is how many bytes of pixels the decoder reads at a time, so a
// large rectangle needs no buffer of its size.
const rawChunk = 64 << 10

// rawDecoder reads Raw rectangles through one reused buffer.
type rawDecoder struct{ buf []byte }

// newRawDecoder returns a Raw decoder.
func newRawDecoder() rectDecoder { return &rawDecoder{} }

func (d *rawDecoder) decode(r io.Reader, fb *screen.Image, rect image.Rectangle, pf *PixelFormat) error {
	n := pf.bytesPerPixel()
	rowBytes := n * rect.Dx()
	if rowBytes == 0 {
		return nil
	}
	rows := max(1, rawChunk/rowBytes)
	if want := rows * rowBytes; cap(d.buf) < want {
		d.buf = make([]byte, want)
	}
	for y := rect.Min.Y; y < rect.Max.Y; y += rows {
		part := image.Rect(rect.Min.X, y, rect.Max.X, min(y+rows, rect.Max.Y))
		b := d.buf[:part.Dy()*rowBytes]
		if err := readFull(r, b, "raw pixels"); err != nil {
			return err
		}
		putPixels(fb, part, b, pf, n)
	}
	return nil
}
