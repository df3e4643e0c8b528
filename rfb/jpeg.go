package rfb

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"

	"github.com/assist-project/assist/screen"
)

// jpegSubsampling is how much a JPEG picture thins out its colour
// (chroma) planes.
type jpegSubsampling int

const (
	jpegSub444 jpegSubsampling = iota // full colour resolution
	jpegSub422                        // half horizontally
	jpegSub420                        // half in both directions
)

// tightJPEGLevels maps a Tight JPEG quality level (what the viewer asks
// for with pseudo-encodings -32..-23) to a libjpeg quality and a
// subsampling. These are TigerVNC's values, measured by the VirtualGL
// project: 9 is near lossless, 8 perceptually lossless, 0 about 100:1.
var tightJPEGLevels = [10]struct {
	quality int
	sub     jpegSubsampling
}{
	{15, jpegSub420}, {29, jpegSub420}, {41, jpegSub420},
	{42, jpegSub422}, {62, jpegSub422}, {77, jpegSub422},
	{79, jpegSub444}, {86, jpegSub444}, {92, jpegSub444}, {100, jpegSub444},
}

// jpegCompressor turns areas of a BGRX image into JFIF streams. Two
// implementations exist, chosen at build time: libjpeg-turbo through cgo
// (build tag turbojpeg; several times faster) and image/jpeg.
type jpegCompressor interface {
	// appendJPEG appends the JFIF stream of area r of img, at libjpeg
	// quality 1..100, to dst. On error dst's contents are unchanged.
	appendJPEG(dst []byte, img *screen.Image, r image.Rectangle, quality int, sub jpegSubsampling) ([]byte, error)
	// close frees what the compressor holds outside the Go heap. It may
	// be used again afterwards: it then allocates anew.
	close()
}

// jpegCheckArea reports an error unless r is a non-empty area of img
// whose pixels are all within img.Pix, so that code outside Go's bounds
// checks can read it.
func jpegCheckArea(img *screen.Image, r image.Rectangle) error {
	if r.Empty() || !r.In(img.Rect) || img.Stride < 4*img.Rect.Dx() {
		return fmt.Errorf("rfb: jpeg: area %v is empty or not within the image %v", r, img.Rect)
	}
	if end := img.PixOffset(r.Max.X-1, r.Max.Y-1) + 4; end > len(img.Pix) {
		return fmt.Errorf("rfb: jpeg: image buffer of %d bytes is too short for %v", len(img.Pix), r)
	}
	return nil
}

// jpegDraw decodes the JFIF stream data into area rect of fb. The
// picture must be exactly rect's size; the size is checked before the
// pixels are decoded, so a hostile header cannot make it allocate more
// than the rectangle needs. When pf is coarser than 8 bits per colour,
// colours are rounded to pf as a real viewer in that format would show
// them. The decoder is this build's (see jpegDecode).
func jpegDraw(fb *screen.Image, rect image.Rectangle, data []byte, pf *PixelFormat) error {
	if !rect.In(fb.Rect) || rect.Empty() {
		return fmt.Errorf("rfb: tight: jpeg rectangle %v outside the framebuffer %v", rect, fb.Rect)
	}
	if err := jpegDecode(fb, rect, data); err != nil {
		return err
	}
	if !tightIs888(pf) {
		jpegQuantize(fb, rect, pf)
	}
	return nil
}

// jpegDecodeGo is jpegDecode with image/jpeg.
func jpegDecodeGo(fb *screen.Image, rect image.Rectangle, data []byte) error {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("rfb: tight: jpeg header: %w", err)
	}
	if cfg.Width != rect.Dx() || cfg.Height != rect.Dy() {
		return fmt.Errorf("rfb: tight: jpeg picture is %dx%d, rectangle is %dx%d",
			cfg.Width, cfg.Height, rect.Dx(), rect.Dy())
	}
	m, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("rfb: tight: jpeg: %w", err)
	}
	if m.Bounds().Size() != rect.Size() {
		return fmt.Errorf("rfb: tight: jpeg picture is %v, rectangle is %v", m.Bounds().Size(), rect.Size())
	}
	switch m := m.(type) {
	case *image.YCbCr:
		jpegDrawYCbCr(fb, rect, m)
	case *image.Gray:
		for y := 0; y < rect.Dy(); y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+rect.Dx()]
			dst := fb.Pix[fb.PixOffset(rect.Min.X, rect.Min.Y+y):]
			for x, v := range src {
				d := dst[4*x : 4*x+4]
				d[0], d[1], d[2], d[3] = v, v, v, 0
			}
		}
	default:
		// CMYK and other rarities: slow, but correct.
		b := m.Bounds()
		for y := 0; y < rect.Dy(); y++ {
			dst := fb.Pix[fb.PixOffset(rect.Min.X, rect.Min.Y+y):]
			for x := 0; x < rect.Dx(); x++ {
				c := color.RGBAModel.Convert(m.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
				d := dst[4*x : 4*x+4]
				d[0], d[1], d[2], d[3] = c.B, c.G, c.R, 0
			}
		}
	}
	return nil
}

// jpegDrawYCbCr converts m (of rect's size) to BGRX into rect of fb.
func jpegDrawYCbCr(fb *screen.Image, rect image.Rectangle, m *image.YCbCr) {
	var hs, vs uint // chroma subsampling shifts
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio440:
		vs = 1
	case image.YCbCrSubsampleRatio411:
		hs = 2
	case image.YCbCrSubsampleRatio410:
		hs, vs = 2, 1
	}
	w := rect.Dx()
	for y := 0; y < rect.Dy(); y++ {
		ys := m.Y[y*m.YStride : y*m.YStride+w]
		ci := (y >> vs) * m.CStride
		cbs := m.Cb[ci : ci+((w-1)>>hs)+1]
		crs := m.Cr[ci : ci+((w-1)>>hs)+1]
		i := fb.PixOffset(rect.Min.X, rect.Min.Y+y)
		dst := fb.Pix[i : i+4*w]
		for x, yv := range ys {
			r, g, b := jpegRGB(yv, cbs[x>>hs], crs[x>>hs])
			d := dst[4*x : 4*x+4]
			d[0], d[1], d[2], d[3] = b, g, r, 0
		}
	}
}

// jpegRGB converts JFIF's full-range YCbCr to RGB in 16.16 fixed point
// (the JFIF matrix: R = Y + 1.402 Cr', G = Y - 0.344136 Cb' - 0.714136 Cr',
// B = Y + 1.772 Cb').
func jpegRGB(y, cb, cr byte) (byte, byte, byte) {
	yy := int32(y)<<16 + 1<<15
	cb1, cr1 := int32(cb)-128, int32(cr)-128
	return jpegClamp(yy + 91881*cr1), jpegClamp(yy - 22554*cb1 - 46802*cr1), jpegClamp(yy + 116130*cb1)
}

func jpegClamp(v int32) byte {
	if v < 0 {
		return 0
	}
	if v > 255<<16 {
		return 255
	}
	return byte(v >> 16)
}

// jpegQuantize rounds the colours of rect in fb to what pf can show.
func jpegQuantize(fb *screen.Image, rect image.Rectangle, pf *PixelFormat) {
	for y := rect.Min.Y; y < rect.Max.Y; y++ {
		i := fb.PixOffset(rect.Min.X, y)
		row := fb.Pix[i : i+4*rect.Dx()]
		for x := 0; x+3 < len(row); x += 4 {
			r, g, b := pf.rgb(pf.pixel(row[x], row[x+1], row[x+2]))
			row[x], row[x+1], row[x+2] = b, g, r
		}
	}
}
