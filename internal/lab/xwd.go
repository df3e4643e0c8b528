package lab

import (
	"encoding/binary"
	"fmt"
	"image"
	"math/bits"

	"github.com/assist-project/assist/screen"
)

// XWD file layout (X11 XWDFile.h, version 7): a header of 25 big-endian
// 32-bit fields, the window name, ncolors 12-byte colour entries, then the
// pixels in the header's byte order.
const (
	xwdHeaderFields = 25
	xwdHeaderSize   = 4 * xwdHeaderFields
	xwdVersion      = 7
	xwdZPixmap      = 2
	xwdColorSize    = 12
	xwdTrueColor    = 4
	xwdDirectColor  = 5
	// xwdMaxPixels bounds what the parser accepts so a corrupt header
	// cannot make it allocate gigabytes.
	xwdMaxPixels = 1 << 26
)

// header field indexes
const (
	xwdFHeaderSize = iota
	xwdFVersion
	xwdFFormat
	xwdFDepth
	xwdFWidth
	xwdFHeight
	xwdFXOffset
	xwdFByteOrder
	xwdFBitmapUnit
	xwdFBitOrder
	xwdFBitmapPad
	xwdFBitsPerPixel
	xwdFBytesPerLine
	xwdFVisualClass
	xwdFRedMask
	xwdFGreenMask
	xwdFBlueMask
	xwdFBitsPerRGB
	xwdFColormapEntries
	xwdFNColors
)

// ParseXWD decodes a true-colour ZPixmap XWD image (what `xwd` writes for
// a 24- or 32-bit display) into a screen.Image at the origin.
func ParseXWD(data []byte) (*screen.Image, error) {
	if len(data) < xwdHeaderSize {
		return nil, fmt.Errorf("lab: xwd: %d bytes is shorter than the header", len(data))
	}
	var h [xwdHeaderFields]uint32
	for i := range h {
		h[i] = binary.BigEndian.Uint32(data[4*i:])
	}
	if h[xwdFVersion] != xwdVersion {
		return nil, fmt.Errorf("lab: xwd: file version %d, want %d", h[xwdFVersion], xwdVersion)
	}
	if h[xwdFFormat] != xwdZPixmap {
		return nil, fmt.Errorf("lab: xwd: pixmap format %d is not ZPixmap", h[xwdFFormat])
	}
	if c := h[xwdFVisualClass]; c != xwdTrueColor && c != xwdDirectColor {
		return nil, fmt.Errorf("lab: xwd: visual class %d is not true or direct colour", c)
	}
	bpp := h[xwdFBitsPerPixel]
	if bpp != 32 && bpp != 24 {
		return nil, fmt.Errorf("lab: xwd: %d bits per pixel is not 24 or 32", bpp)
	}
	w, ht := h[xwdFWidth], h[xwdFHeight]
	if w == 0 || ht == 0 || uint64(w)*uint64(ht) > xwdMaxPixels {
		return nil, fmt.Errorf("lab: xwd: bad size %dx%d", w, ht)
	}
	bpl := uint64(h[xwdFBytesPerLine])
	if bpl < uint64(w)*uint64(bpp/8) {
		return nil, fmt.Errorf("lab: xwd: %d bytes per line is too few for %d pixels", bpl, w)
	}
	masks := [3]uint32{h[xwdFRedMask], h[xwdFGreenMask], h[xwdFBlueMask]}
	var shifts [3]int
	var widths [3]int
	for i, m := range masks {
		if m == 0 {
			return nil, fmt.Errorf("lab: xwd: colour mask %d is empty", i)
		}
		shifts[i] = bits.TrailingZeros32(m)
		widths[i] = bits.OnesCount32(m)
		if m>>shifts[i] != 1<<widths[i]-1 || widths[i] > 8 {
			return nil, fmt.Errorf("lab: xwd: colour mask %#x is not 1 to 8 contiguous bits", m)
		}
	}
	off := uint64(h[xwdFHeaderSize])
	if off < xwdHeaderSize {
		return nil, fmt.Errorf("lab: xwd: header size %d is too small", off)
	}
	off += uint64(h[xwdFNColors]) * xwdColorSize
	need := off + bpl*uint64(ht)
	if need > uint64(len(data)) {
		return nil, fmt.Errorf("lab: xwd: need %d bytes, have %d", need, len(data))
	}
	pix := data[off:need]
	msb := h[xwdFByteOrder] != 0
	img := screen.NewImage(image.Rect(0, 0, int(w), int(ht)))
	step := int(bpp / 8)
	for y := 0; y < int(ht); y++ {
		row := pix[uint64(y)*bpl:]
		d := img.Pix[y*img.Stride:]
		for x := 0; x < int(w); x++ {
			s := row[x*step : x*step+step]
			var v uint32
			switch {
			case step == 4 && msb:
				v = binary.BigEndian.Uint32(s)
			case step == 4:
				v = binary.LittleEndian.Uint32(s)
			case msb:
				v = uint32(s[0])<<16 | uint32(s[1])<<8 | uint32(s[2])
			default:
				v = uint32(s[2])<<16 | uint32(s[1])<<8 | uint32(s[0])
			}
			d[4*x+2] = scale8(v&masks[0]>>shifts[0], widths[0])
			d[4*x+1] = scale8(v&masks[1]>>shifts[1], widths[1])
			d[4*x+0] = scale8(v&masks[2]>>shifts[2], widths[2])
		}
	}
	return img, nil
}

// scale8 widens an n-bit channel value to 8 bits.
func scale8(v uint32, n int) byte {
	if n == 8 {
		return byte(v)
	}
	return byte(v * 255 / (1<<n - 1))
}

// EncodeXWD writes img as a 32-bit little-endian true-colour XWD file, the
// form `xwud` shows on a depth-24 display without any colour conversion.
func EncodeXWD(img *screen.Image) []byte {
	w, ht := img.Rect.Dx(), img.Rect.Dy()
	name := []byte("assist-lab\x00")
	var h [xwdHeaderFields]uint32
	h[xwdFHeaderSize] = uint32(xwdHeaderSize + len(name))
	h[xwdFVersion] = xwdVersion
	h[xwdFFormat] = xwdZPixmap
	h[xwdFDepth] = 24
	h[xwdFWidth], h[xwdFHeight] = uint32(w), uint32(ht)
	h[xwdFByteOrder] = 0
	h[xwdFBitmapUnit] = 32
	h[xwdFBitOrder] = 0
	h[xwdFBitmapPad] = 32
	h[xwdFBitsPerPixel] = 32
	h[xwdFBytesPerLine] = uint32(4 * w)
	h[xwdFVisualClass] = xwdTrueColor
	h[xwdFRedMask], h[xwdFGreenMask], h[xwdFBlueMask] = 0xff0000, 0xff00, 0xff
	h[xwdFBitsPerRGB] = 8
	h[xwdFColormapEntries] = 256
	h[20], h[21] = uint32(w), uint32(ht) // window size
	out := make([]byte, 0, int(h[xwdFHeaderSize])+4*w*ht)
	for _, v := range h {
		out = binary.BigEndian.AppendUint32(out, v)
	}
	out = append(out, name...)
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		i := img.PixOffset(img.Rect.Min.X, y)
		row := img.Pix[i : i+4*w]
		for x := 0; x < w; x++ {
			out = append(out, row[4*x], row[4*x+1], row[4*x+2], 0)
		}
	}
	return out
}
