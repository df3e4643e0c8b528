package rfb

import (
	"image"
	"io"

	"github.com/assist-project/assist/screen"
)

// rectEncoder turns screen pixels into rectangles of one encoding, for
// one connection: it may keep state (zlib streams) from call to call.
type rectEncoder interface {
	// encode appends to buf the complete rectangles, headers included,
	// that carry area r of img in the viewer's pixel format pf, and
	// returns the extended buf and the number of rectangles appended.
	// r lies within img.Rect.
	encode(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat) ([]byte, int)
}

// rectDecoder is the client side of one encoding, for one connection.
type rectDecoder interface {
	// decode reads the payload of one rectangle (its 12-byte header
	// already read) from r and draws it into fb, which is in the native
	// layout. rect lies within fb.Rect; the payload's pixels are in pf.
	decode(r io.Reader, fb *screen.Image, rect image.Rectangle, pf *PixelFormat) error
}

// appendRectHeader appends a FramebufferUpdate rectangle header.
func appendRectHeader(buf []byte, r image.Rectangle, enc int32) []byte {
	return append(buf,
		byte(r.Min.X>>8), byte(r.Min.X), byte(r.Min.Y>>8), byte(r.Min.Y),
		byte(r.Dx()>>8), byte(r.Dx()), byte(r.Dy()>>8), byte(r.Dy()),
		byte(enc>>24), byte(enc>>16), byte(enc>>8), byte(enc))
}
