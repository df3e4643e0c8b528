package windows

import (
	"image"

	"github.com/assist-project/assist/screen"
)

// monoCursor turns a monochrome cursor's masks (the AND mask in the top
// half of mask, the XOR mask in the bottom half, each pixel black or
// white as GetDIBits reads them) into a shape. AND 1, XOR 0 is
// transparent; AND 0 draws XOR's black or white. AND 1, XOR 1 inverts
// the screen, which RFB cannot say: it becomes opaque black, so the text
// cursor (all inversion) stays visible on a white page, as Windows'
// own remote desktop draws it.
func monoCursor(mask []uint32, size image.Point) *screen.Cursor {
	c := &screen.Cursor{Pix: make([]uint32, size.X*size.Y), Size: size}
	n := size.X * size.Y
	for i := range n {
		and := mask[i]&0xffffff != 0
		xor := mask[n+i]&0xffffff != 0
		switch {
		case and && !xor:
			c.Pix[i] = 0
		case and && xor:
			c.Pix[i] = 0xff000000
		case xor:
			c.Pix[i] = 0xffffffff
		default:
			c.Pix[i] = 0xff000000
		}
	}
	return c
}

// colorCursor turns a colour cursor into a premultiplied shape. A
// 32-bit cursor with an alpha channel uses it (Windows stores it
// straight, RFB's cursor is premultiplied); one whose alpha is all zero
// (older 24-bit cursors) takes its transparency from the AND mask, whose
// set pixels are transparent.
func colorCursor(color, mask []uint32, size image.Point) *screen.Cursor {
	c := &screen.Cursor{Pix: make([]uint32, size.X*size.Y), Size: size}
	hasAlpha := false
	for _, p := range color {
		if p>>24 != 0 {
			hasAlpha = true
			break
		}
	}
	for i, p := range color {
		var a uint32
		switch {
		case hasAlpha:
			a = p >> 24
		case mask[i]&0xffffff == 0:
			a = 0xff
		}
		r := (p >> 16 & 0xff) * a / 255
		g := (p >> 8 & 0xff) * a / 255
		b := (p & 0xff) * a / 255
		c.Pix[i] = a<<24 | r<<16 | g<<8 | b
	}
	return c
}
