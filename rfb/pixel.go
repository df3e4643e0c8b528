package rfb

import (
	"encoding/binary"
	"image"
	"math/bits"
	"slices"

	"github.com/assist-project/assist/screen"
)

// bytesPerPixel is the size of one pixel on the wire.
func (pf *PixelFormat) bytesPerPixel() int { return int(pf.BPP) / 8 }

// isNative reports whether pf is exactly the layout of screen.Image, so
// pixels can be copied without conversion.
func (pf *PixelFormat) isNative() bool {
	return pf.BPP == 32 && pf.TrueColor && !pf.BigEndian &&
		pf.RedMax == 255 && pf.GreenMax == 255 && pf.BlueMax == 255 &&
		pf.RedShift == 16 && pf.GreenShift == 8 && pf.BlueShift == 0
}

// compactSize is the size of a ZRLE CPIXEL / Tight TPIXEL: 3 when pf is a
// 32bpp true-colour format of depth 24 or less whose colour bits all fit
// in the low or the high three bytes (RFC 6143 §7.7.6), else the full
// pixel size.
func (pf *PixelFormat) compactSize() int {
	if pf.BPP == 32 && pf.Depth <= 24 && pf.TrueColor {
		if m := pf.colourMask(); m&0xff000000 == 0 || m&0xff == 0 {
			return 3
		}
	}
	return pf.bytesPerPixel()
}

// colourMask has the bits that carry colour set.
func (pf *PixelFormat) colourMask() uint32 {
	return uint32(pf.RedMax)<<pf.RedShift | uint32(pf.GreenMax)<<pf.GreenShift | uint32(pf.BlueMax)<<pf.BlueShift
}

// compactHigh reports whether a compact pixel is the high three bytes of
// the 32-bit value (colour in bits 8..31) rather than the low three.
func (pf *PixelFormat) compactHigh() bool { return pf.colourMask()&0xff000000 != 0 }

// pixel maps a native BGRX pixel to pf's value.
func (pf *PixelFormat) pixel(b, g, r byte) uint32 {
	if pf.RedMax == 255 && pf.GreenMax == 255 && pf.BlueMax == 255 {
		return uint32(r)<<pf.RedShift | uint32(g)<<pf.GreenShift | uint32(b)<<pf.BlueShift
	}
	return (uint32(r)*uint32(pf.RedMax)+127)/255<<pf.RedShift |
		(uint32(g)*uint32(pf.GreenMax)+127)/255<<pf.GreenShift |
		(uint32(b)*uint32(pf.BlueMax)+127)/255<<pf.BlueShift
}

// rgb maps pf's value back to 8-bit colour components.
func (pf *PixelFormat) rgb(v uint32) (r, g, b byte) {
	return scale8(v>>pf.RedShift&uint32(pf.RedMax), pf.RedMax),
		scale8(v>>pf.GreenShift&uint32(pf.GreenMax), pf.GreenMax),
		scale8(v>>pf.BlueShift&uint32(pf.BlueMax), pf.BlueMax)
}

func scale8(v uint32, max uint16) byte {
	if max == 255 {
		return byte(v)
	}
	return byte((v*255 + uint32(max)/2) / uint32(max))
}

// appendValue appends one pixel value in pf's size and byte order.
func (pf *PixelFormat) appendValue(buf []byte, v uint32) []byte {
	switch pf.BPP {
	case 8:
		return append(buf, byte(v))
	case 16:
		if pf.BigEndian {
			return append(buf, byte(v>>8), byte(v))
		}
		return append(buf, byte(v), byte(v>>8))
	default:
		if pf.BigEndian {
			return append(buf, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
		}
		return append(buf, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
}

// appendCompactValue appends one pixel value as a CPIXEL/TPIXEL.
func (pf *PixelFormat) appendCompactValue(buf []byte, v uint32) []byte {
	if pf.compactSize() != 3 {
		return pf.appendValue(buf, v)
	}
	if pf.compactHigh() {
		v >>= 8
	}
	if pf.BigEndian {
		return append(buf, byte(v>>16), byte(v>>8), byte(v))
	}
	return append(buf, byte(v), byte(v>>8), byte(v>>16))
}

// readValue reads one pixel value of size n (a full pixel, or 3 for a
// compact one) from b.
func (pf *PixelFormat) readValue(b []byte, n int) uint32 {
	switch n {
	case 1:
		return uint32(b[0])
	case 2:
		if pf.BigEndian {
			return uint32(b[0])<<8 | uint32(b[1])
		}
		return uint32(b[1])<<8 | uint32(b[0])
	case 3:
		var v uint32
		if pf.BigEndian {
			v = uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
		} else {
			v = uint32(b[2])<<16 | uint32(b[1])<<8 | uint32(b[0])
		}
		if pf.compactHigh() {
			v <<= 8
		}
		return v
	default:
		if pf.BigEndian {
			return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		}
		return uint32(b[3])<<24 | uint32(b[2])<<16 | uint32(b[1])<<8 | uint32(b[0])
	}
}

// pixelTable turns native colour components into pixel values with three
// look-ups and two ORs, instead of the per-component scaling (a multiply
// and a divide each) in pixel. Entries are already in wire order (see
// wireOrder), so a value only has to be stored little-endian.
type pixelTable struct{ r, g, b [256]uint32 }

// tableMinPixels is the size of area from which filling a pixelTable
// (768 calls to pixel) pays for itself.
const tableMinPixels = 512

// fill makes t produce pf's values in the wire order of n-byte pixels.
func (t *pixelTable) fill(pf *PixelFormat, n int) {
	for c := 0; c < 256; c++ {
		t.r[c] = pf.wireOrder(pf.pixel(0, 0, byte(c)), n)
		t.g[c] = pf.wireOrder(pf.pixel(0, byte(c), 0), n)
		t.b[c] = pf.wireOrder(pf.pixel(byte(c), 0, 0), n)
	}
}

// value converts the native pixel starting at p[0] (B, G, R).
func (t *pixelTable) value(p []byte) uint32 {
	_ = p[2]
	return t.r[p[2]] | t.g[p[1]] | t.b[p[0]]
}

// wireOrder rearranges pixel value v so that its n low bytes, stored
// little-endian, are the wire bytes of a full pixel (n = bytesPerPixel)
// or of a compact one (n = 3). Both steps only move bits, so they commute
// with OR and can be applied to each colour component on its own.
func (pf *PixelFormat) wireOrder(v uint32, n int) uint32 {
	if n == 3 && pf.compactHigh() {
		v >>= 8
	}
	if pf.BigEndian {
		switch n {
		case 2:
			v = uint32(bits.ReverseBytes16(uint16(v)))
		case 3:
			v = bits.ReverseBytes32(v) >> 8
		case 4:
			v = bits.ReverseBytes32(v)
		}
	}
	return v
}

// putWire stores the n low bytes of a wire-ordered value at b.
func putWire(b []byte, v uint32, n int) {
	switch n {
	case 1:
		b[0] = byte(v)
	case 2:
		_ = b[1]
		b[0], b[1] = byte(v), byte(v>>8)
	case 3:
		_ = b[2]
		b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16)
	default:
		binary.LittleEndian.PutUint32(b, v)
	}
}

// appendPixels appends area r of img, converted to pf, row by row.
func appendPixels(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat) []byte {
	if pf.isNative() {
		n := 4 * r.Dx()
		for y := r.Min.Y; y < r.Max.Y; y++ {
			i := img.PixOffset(r.Min.X, y)
			buf = append(buf, img.Pix[i:i+n]...)
		}
		return buf
	}
	return appendConverted(buf, img, r, pf, pf.bytesPerPixel())
}

// appendCompactPixels is appendPixels with CPIXEL/TPIXEL values.
func appendCompactPixels(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat) []byte {
	n := pf.compactSize()
	if n != 3 {
		return appendPixels(buf, img, r, pf)
	}
	return appendConverted(buf, img, r, pf, n)
}

// appendConverted appends area r of img as n-byte pixels (full or
// compact) of pf.
func appendConverted(buf []byte, img *screen.Image, r image.Rectangle, pf *PixelFormat, n int) []byte {
	w, h := r.Dx(), r.Dy()
	if w <= 0 || h <= 0 {
		return buf
	}
	start := len(buf)
	buf = slices.Grow(buf, n*w*h)[:start+n*w*h]
	out := buf[start:]
	if w*h < tableMinPixels {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := img.Pix[img.PixOffset(r.Min.X, y):]
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+3]
				putWire(out, pf.wireOrder(pf.pixel(p[0], p[1], p[2]), n), n)
				out = out[n:]
			}
		}
		return buf
	}
	var t pixelTable
	t.fill(pf, n)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := img.Pix[img.PixOffset(r.Min.X, y):][:4*w]
		switch n {
		case 1:
			for x := 0; x < w; x++ {
				out[x] = byte(t.value(row[4*x:]))
			}
		case 2:
			for x := 0; x < w; x++ {
				v := t.value(row[4*x:])
				out[2*x], out[2*x+1] = byte(v), byte(v>>8)
			}
		case 3:
			for x := 0; x < w; x++ {
				v := t.value(row[4*x:])
				out[3*x], out[3*x+1], out[3*x+2] = byte(v), byte(v>>8), byte(v>>16)
			}
		default:
			for x := 0; x < w; x++ {
				binary.LittleEndian.PutUint32(out[4*x:], t.value(row[4*x:]))
			}
		}
		out = out[n*w:]
	}
	return buf
}

// putPixels draws wire pixels of size n (full or compact) from src into
// area r of dst. src holds r.Dx()*r.Dy()*n bytes.
func putPixels(dst *screen.Image, r image.Rectangle, src []byte, pf *PixelFormat, n int) {
	if n == 4 && pf.isNative() {
		w := 4 * r.Dx()
		for y := r.Min.Y; y < r.Max.Y; y++ {
			i := dst.PixOffset(r.Min.X, y)
			copy(dst.Pix[i:i+w], src[:w])
			src = src[w:]
		}
		return
	}
	if n == 3 && pf.isNative() {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := dst.Pix[dst.PixOffset(r.Min.X, y):][:4*r.Dx()]
			for x := 0; x < r.Dx(); x++ {
				s := src[3*x : 3*x+3]
				row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = s[0], s[1], s[2], 0
			}
			src = src[3*r.Dx():]
		}
		return
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := dst.Pix[dst.PixOffset(r.Min.X, y):]
		for x := 0; x < r.Dx(); x++ {
			red, g, b := pf.rgb(pf.readValue(src, n))
			src = src[n:]
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = b, g, red, 0
		}
	}
}
