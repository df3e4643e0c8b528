package rfb

import (
	"fmt"
	"image"
	"io"

	"github.com/assist-project/assist/screen"
)

// The Cursor pseudo-encoding (RFC 6143 §7.8.1) gives the viewer the
// pointer's shape so it can draw the pointer locally, without a round
// trip: pixels in the viewer's format, then a bitmask of which are shown.

// cursorMaxPixels bounds the cursor a decoder accepts. Desktop cursors
// are at most a few hundred pixels square; without a bound a hostile
// server could make the client allocate 16 GiB with one header.
const cursorMaxPixels = 1 << 20

// cursorOpaque is the alpha from which a pixel is shown: the bitmask has
// no partial transparency, so half-transparent pixels go to the nearer
// end.
const cursorOpaque = 128

// appendCursorRect appends one EncCursor rectangle for c: x, y are the
// hotspot and w, h the size. A nil cursor is sent as an empty one, which
// viewers take as "no local cursor".
func appendCursorRect(buf []byte, c *screen.Cursor, pf *PixelFormat) []byte {
	if c == nil || c.Size.X <= 0 || c.Size.Y <= 0 || c.Size.X > 0xffff || c.Size.Y > 0xffff {
		return appendRectHeader(buf, image.Rectangle{}, EncCursor)
	}
	w, h := c.Size.X, c.Size.Y
	// The hotspot must be a pixel of the cursor.
	hot := image.Pt(min(max(c.Hot.X, 0), w-1), min(max(c.Hot.Y, 0), h-1))
	buf = appendRectHeader(buf, image.Rectangle{Min: hot, Max: hot.Add(c.Size)}, EncCursor)
	for i := range w * h {
		var p uint32
		if i < len(c.Pix) {
			p = c.Pix[i]
		}
		var r, g, b byte
		if a := p >> 24; a >= cursorOpaque {
			r, g, b = unpremultiply(p>>16, a), unpremultiply(p>>8, a), unpremultiply(p, a)
		}
		buf = pf.appendValue(buf, pf.pixel(b, g, r))
	}
	stride := (w + 7) / 8
	for y := range h {
		start := len(buf)
		buf = growLen(buf, stride)
		mask := buf[start:]
		clear(mask)
		for x := range w {
			if i := y*w + x; i < len(c.Pix) && c.Pix[i]>>24 >= cursorOpaque {
				mask[x/8] |= 0x80 >> (x % 8)
			}
		}
	}
	return buf
}

// unpremultiply undoes premultiplied alpha a on the low byte of c.
func unpremultiply(c, a uint32) byte {
	v := ((c&0xff)*255 + a/2) / a
	return byte(min(v, 255))
}

// decodeCursor reads the payload of an EncCursor rectangle. Hidden pixels
// become fully transparent, shown ones opaque.
func decodeCursor(r io.Reader, rect image.Rectangle, pf *PixelFormat) (*screen.Cursor, error) {
	w, h := rect.Dx(), rect.Dy()
	c := &screen.Cursor{Size: image.Pt(w, h), Hot: rect.Min}
	if w <= 0 || h <= 0 {
		c.Size = image.Point{}
		return c, nil
	}
	if w*h > cursorMaxPixels {
		return nil, fmt.Errorf("rfb: cursor: %dx%d is larger than the %d pixels allowed", w, h, cursorMaxPixels)
	}
	n := pf.bytesPerPixel()
	stride := (w + 7) / 8
	data := make([]byte, w*h*n+stride*h)
	if err := readFull(r, data, "cursor"); err != nil {
		return nil, err
	}
	px, mask := data[:w*h*n], data[w*h*n:]
	c.Pix = make([]uint32, w*h)
	for y := range h {
		for x := range w {
			i := y*w + x
			if mask[y*stride+x/8]&(0x80>>(x%8)) == 0 {
				continue
			}
			red, g, b := pf.rgb(pf.readValue(px[i*n:], n))
			c.Pix[i] = 0xff000000 | uint32(red)<<16 | uint32(g)<<8 | uint32(b)
		}
	}
	return c, nil
}
