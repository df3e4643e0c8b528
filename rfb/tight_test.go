package rfb

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// Test images. Every generator is deterministic.

func tightNewImage(w, h int) *screen.Image { return screen.NewImage(image.Rect(0, 0, w, h)) }

func tightSet(img *screen.Image, x, y int, c uint32) {
	i := img.PixOffset(x, y)
	img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = byte(c), byte(c>>8), byte(c>>16), 0xff
}

func tightFillRect(img *screen.Image, r image.Rectangle, c uint32) {
	r = r.Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			tightSet(img, x, y, c)
		}
	}
}

// tightImgSolid is one colour.
func tightImgSolid(w, h int) *screen.Image {
	img := tightNewImage(w, h)
	tightFillRect(img, img.Rect, 0x3366cc)
	return img
}

// tightImgText is black "glyphs" on white: two colours, like a terminal.
func tightImgText(w, h int) *screen.Image {
	img := tightNewImage(w, h)
	tightFillRect(img, img.Rect, 0xffffff)
	rng := rand.New(rand.NewPCG(1, 2))
	for ly := 4; ly+12 < h; ly += 16 {
		for cx := 4; cx+7 < w; cx += 8 {
			if rng.IntN(6) == 0 {
				continue // a space
			}
			for y := 0; y < 12; y++ {
				bits := rng.Uint32()
				for x := 0; x < 7; x++ {
					if bits>>x&3 == 0 {
						tightSet(img, cx+x, ly+y, 0x000000)
					}
				}
			}
		}
	}
	return img
}

// tightImgUI is flat panels, buttons and text in 20 colours.
func tightImgUI(w, h int) *screen.Image {
	img := tightNewImage(w, h)
	rng := rand.New(rand.NewPCG(3, 4))
	var pal [20]uint32
	for i := range pal {
		pal[i] = rng.Uint32() & 0xffffff
	}
	tightFillRect(img, img.Rect, pal[0])
	for i := 0; i < 60; i++ {
		x, y := rng.IntN(w), rng.IntN(h)
		tightFillRect(img, image.Rect(x, y, x+8+rng.IntN(w/3+1), y+6+rng.IntN(h/4+1)), pal[1+rng.IntN(19)])
	}
	for i := 0; i < w*h/20; i++ {
		tightSet(img, rng.IntN(w), rng.IntN(h), pal[rng.IntN(20)])
	}
	return img
}

// tightImgGradient is a smooth two-dimensional gradient: many colours,
// no noise.
func tightImgGradient(w, h int) *screen.Image {
	img := tightNewImage(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			tightSet(img, x, y, uint32(x*255/max(1, w-1))<<16|uint32(y*255/max(1, h-1))<<8|uint32((x+y)*255/max(1, w+h-2)))
		}
	}
	return img
}

// tightImgPhoto is smooth shapes with mild noise, like a photograph.
func tightImgPhoto(w, h int) *screen.Image {
	img := tightNewImage(w, h)
	rng := rand.New(rand.NewPCG(5, 6))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			r := 128 + 100*math.Sin(6*fx+2*fy)
			g := 128 + 100*math.Cos(5*fy-3*fx)
			b := 128 + 90*math.Sin(9*fx*fy+1)
			n := func(v float64) uint32 { return uint32(max(0, min(255, v+float64(rng.IntN(13)-6)))) }
			tightSet(img, x, y, n(r)<<16|n(g)<<8|n(b))
		}
	}
	return img
}

// tightImgNoise is random pixels: the worst case for every encoder.
func tightImgNoise(w, h int) *screen.Image {
	img := tightNewImage(w, h)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < len(img.Pix); i += 8 {
		binary.LittleEndian.PutUint64(img.Pix[i:], rng.Uint64())
	}
	return img
}

// tightImgDesktop is a flat background with a few windows: the case for
// the solid-area search.
func tightImgDesktop(w, h int) *screen.Image {
	img := tightNewImage(w, h)
	tightFillRect(img, img.Rect, 0x204060)
	photo := tightImgPhoto(w/3, h/3)
	img.CopyFrom(&screen.Image{Pix: photo.Pix, Stride: photo.Stride, Rect: photo.Rect.Add(image.Pt(w/2, h/2))}, photo.Rect.Add(image.Pt(w/2, h/2)))
	text := tightImgText(w/3, h/4)
	img.CopyFrom(&screen.Image{Pix: text.Pix, Stride: text.Stride, Rect: text.Rect.Add(image.Pt(w/8, h/8))}, text.Rect.Add(image.Pt(w/8, h/8)))
	return img
}

// Pixel formats under test.
var (
	tightPF32BE  = PixelFormat{BPP: 32, Depth: 24, BigEndian: true, TrueColor: true, RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 16, GreenShift: 8, BlueShift: 0}
	tightPFRGBX  = PixelFormat{BPP: 32, Depth: 24, TrueColor: true, RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 0, GreenShift: 8, BlueShift: 16}
	tightPF565   = PixelFormat{BPP: 16, Depth: 16, TrueColor: true, RedMax: 31, GreenMax: 63, BlueMax: 31, RedShift: 11, GreenShift: 5, BlueShift: 0}
	tightPF565BE = PixelFormat{BPP: 16, Depth: 16, BigEndian: true, TrueColor: true, RedMax: 31, GreenMax: 63, BlueMax: 31, RedShift: 11, GreenShift: 5, BlueShift: 0}
	tightPF233   = PixelFormat{BPP: 8, Depth: 8, TrueColor: true, RedMax: 7, GreenMax: 7, BlueMax: 3, RedShift: 0, GreenShift: 3, BlueShift: 6}
	tightPF30    = PixelFormat{BPP: 32, Depth: 30, TrueColor: true, RedMax: 1023, GreenMax: 1023, BlueMax: 1023, RedShift: 20, GreenShift: 10, BlueShift: 0}
)

var tightFormats = []struct {
	name string
	pf   *PixelFormat
}{
	{"native", &NativeFormat}, {"32be", &tightPF32BE}, {"rgbx", &tightPFRGBX},
	{"565", &tightPF565}, {"565be", &tightPF565BE}, {"bgr233", &tightPF233}, {"30bit", &tightPF30},
}

// tightRect is one rectangle of an encoded update, as the tests saw it.
type tightRect struct {
	r   image.Rectangle
	ctl byte
}

// tightDecodeAll decodes n Tight rectangles from buf into fb, checking
// the rectangle headers and that buf holds nothing more.
func tightDecodeAll(t testing.TB, dec rectDecoder, buf []byte, n int, fb *screen.Image, pf *PixelFormat) []tightRect {
	t.Helper()
	var rects []tightRect
	rd := bytes.NewReader(buf)
	for i := 0; i < n; i++ {
		var h [12]byte
		if _, err := io.ReadFull(rd, h[:]); err != nil {
			t.Fatalf("rect %d header: %v", i, err)
		}
		x, y := int(binary.BigEndian.Uint16(h[0:])), int(binary.BigEndian.Uint16(h[2:]))
		w, hh := int(binary.BigEndian.Uint16(h[4:])), int(binary.BigEndian.Uint16(h[6:]))
		if enc := int32(binary.BigEndian.Uint32(h[8:])); enc != EncTight {
			t.Fatalf("rect %d: encoding %d", i, enc)
		}
		r := image.Rect(x, y, x+w, y+hh)
		ctl, _ := rd.ReadByte()
		_ = rd.UnreadByte()
		if ctl>>4 != tightCtlFill>>4 && w > tightMaxWidth {
			t.Fatalf("rect %d: %v wider than %d", i, r, tightMaxWidth)
		}
		if ctl&0x80 == 0 && w*hh > tightMaxArea {
			t.Fatalf("rect %d: basic rect %v has %d pixels", i, r, w*hh)
		}
		if err := dec.decode(rd, fb, r, pf); err != nil {
			t.Fatalf("rect %d %v (ctl %#x): %v", i, r, ctl, err)
		}
		rects = append(rects, tightRect{r, ctl})
	}
	if rd.Len() != 0 {
		t.Fatalf("%d bytes left after %d rectangles", rd.Len(), n)
	}
	return rects
}

// tightCheckCover checks that rects tile area exactly.
func tightCheckCover(t testing.TB, rects []tightRect, area image.Rectangle) {
	t.Helper()
	seen := make([]uint8, area.Dx()*area.Dy())
	for _, tr := range rects {
		if !tr.r.In(area) {
			t.Fatalf("rect %v outside %v", tr.r, area)
		}
		for y := tr.r.Min.Y; y < tr.r.Max.Y; y++ {
			for x := tr.r.Min.X; x < tr.r.Max.X; x++ {
				seen[(y-area.Min.Y)*area.Dx()+x-area.Min.X]++
			}
		}
	}
	for i, v := range seen {
		if v != 1 {
			t.Fatalf("pixel %d,%d covered %d times", area.Min.X+i%area.Dx(), area.Min.Y+i/area.Dx(), v)
		}
	}
}

// tightExpect is what a lossless round trip through pf gives for c.
func tightExpect(pf *PixelFormat, p []byte) (byte, byte, byte) {
	r, g, b := pf.rgb(pf.pixel(p[0], p[1], p[2]))
	return b, g, r
}

// tightCompare fails unless area r of got is img seen through pf.
func tightCompare(t testing.TB, img, got *screen.Image, r image.Rectangle, pf *PixelFormat) {
	t.Helper()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p := img.Pix[img.PixOffset(x, y):]
			q := got.Pix[got.PixOffset(x, y):]
			b, g, rr := tightExpect(pf, p)
			if q[0] != b || q[1] != g || q[2] != rr {
				t.Fatalf("pixel %d,%d: got %v, want %v (source %v)", x, y, q[:3], []byte{b, g, rr}, p[:3])
			}
		}
	}
}

// tightPSNR is the peak signal-to-noise ratio of area r of got against
// img, in dB, over the three colour components.
func tightPSNR(img, got *screen.Image, r image.Rectangle) float64 {
	var se float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p := img.Pix[img.PixOffset(x, y):]
			q := got.Pix[got.PixOffset(x, y):]
			for c := 0; c < 3; c++ {
				d := float64(p[c]) - float64(q[c])
				se += d * d
			}
		}
	}
	mse := se / float64(3*r.Dx()*r.Dy())
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

var tightImages = []struct {
	name string
	gen  func(w, h int) *screen.Image
}{
	{"solid", tightImgSolid}, {"text", tightImgText}, {"ui", tightImgUI},
	{"gradient", tightImgGradient}, {"photo", tightImgPhoto}, {"noise", tightImgNoise},
	{"desktop", tightImgDesktop},
}

func TestTightLosslessRoundTrip(t *testing.T) {
	areas := []image.Rectangle{
		image.Rect(0, 0, 300, 200),  // whole image
		image.Rect(17, 9, 18, 10),   // one pixel
		image.Rect(3, 5, 10, 6),     // under 12 bytes of data
		image.Rect(40, 30, 237, 91), // odd sizes, mono rows with padding
	}
	for _, im := range tightImages {
		img := im.gen(300, 200)
		for _, f := range tightFormats {
			for _, level := range []int{0, 2, 9} {
				t.Run(im.name+"/"+f.name+"/"+string(rune('0'+level)), func(t *testing.T) {
					enc := newTightEncoder()
					defer enc.close()
					enc.setCompression(level)
					enc.setQuality(-1)
					dec := newTightDecoder()
					fb := tightNewImage(300, 200)
					for _, a := range areas {
						buf, n := enc.encode(nil, img, a, f.pf)
						rects := tightDecodeAll(t, dec, buf, n, fb, f.pf)
						tightCheckCover(t, rects, a)
						tightCompare(t, img, fb, a, f.pf)
						for _, tr := range rects {
							if tr.ctl>>4 == tightCtlJPEG>>4 {
								t.Fatalf("JPEG rectangle with quality -1")
							}
						}
					}
				})
			}
		}
	}
}

// Large areas must be split: no basic rectangle over 65536 pixels, none
// wider than 2048, and the whole area covered once.
func TestTightSplitsLargeAreas(t *testing.T) {
	img := tightImgNoise(2600, 300)
	for _, q := range []int{-1, 5} {
		enc := newTightEncoder()
		enc.setQuality(q)
		buf, n := enc.encode(nil, img, img.Rect, &NativeFormat)
		fb := tightNewImage(2600, 300)
		rects := tightDecodeAll(t, newTightDecoder(), buf, n, fb, &NativeFormat)
		tightCheckCover(t, rects, img.Rect)
		if q < 0 {
			tightCompare(t, img, fb, img.Rect, &NativeFormat)
		}
		enc.close()
	}
}

// A flat desktop must come out mostly as fills, in few bytes.
func TestTightSolidAreas(t *testing.T) {
	img := tightImgDesktop(1024, 768)
	enc := newTightEncoder()
	defer enc.close()
	buf, n := enc.encode(nil, img, img.Rect, &NativeFormat)
	fb := tightNewImage(1024, 768)
	rects := tightDecodeAll(t, newTightDecoder(), buf, n, fb, &NativeFormat)
	tightCheckCover(t, rects, img.Rect)
	tightCompare(t, img, fb, img.Rect, &NativeFormat)
	filled := 0
	for _, tr := range rects {
		if tr.ctl>>4 == tightCtlFill>>4 {
			filled += tr.r.Dx() * tr.r.Dy()
		}
	}
	// The windows cover 1/9 + 1/12 of the screen; the rest is flat.
	if want := 1024 * 768 * 3 / 4; filled < want {
		t.Errorf("%d pixels sent as fills, want at least %d (%d rects, %d bytes)", filled, want, n, len(buf))
	}
}

// One encoder and one decoder through many updates: the zlib streams
// carry on from rectangle to rectangle, across compression level
// changes (which reset streams) and JPEG on and off.
func TestTightStreamsAcrossRects(t *testing.T) {
	imgs := []*screen.Image{tightImgText(320, 240), tightImgUI(320, 240), tightImgPhoto(320, 240), tightImgGradient(320, 240)}
	enc := newTightEncoder()
	defer enc.close()
	dec := newTightDecoder()
	fb := tightNewImage(320, 240)
	rng := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < 200; i++ {
		if i%37 == 0 {
			enc.setCompression(rng.IntN(10))
		}
		lossless := i%50 < 25
		if lossless {
			enc.setQuality(-1)
		} else {
			enc.setQuality(rng.IntN(10))
		}
		img := imgs[rng.IntN(len(imgs))]
		x, y := rng.IntN(300), rng.IntN(220)
		a := image.Rect(x, y, x+1+rng.IntN(320-x), y+1+rng.IntN(240-y))
		buf, n := enc.encode(nil, img, a, &NativeFormat)
		rects := tightDecodeAll(t, dec, buf, n, fb, &NativeFormat)
		tightCheckCover(t, rects, a)
		if lossless {
			tightCompare(t, img, fb, a, &NativeFormat)
		}
	}
}

// With JPEG on, pictures come out close to the original. The bound is
// loose on purpose: JPEG at libjpeg quality >= 79 on smooth content
// gives well over 35 dB, quality 15 over 25 dB; a wrong colour order or
// a broken YCbCr conversion gives under 15 dB.
func TestTightJPEGQuality(t *testing.T) {
	img := tightImgPhoto(400, 300)
	for level := 0; level <= 9; level++ {
		for _, f := range tightFormats {
			if f.pf.BPP == 8 {
				continue
			}
			enc := newTightEncoder()
			enc.setQuality(level)
			buf, n := enc.encode(nil, img, img.Rect, f.pf)
			fb := tightNewImage(400, 300)
			rects := tightDecodeAll(t, newTightDecoder(), buf, n, fb, f.pf)
			tightCheckCover(t, rects, img.Rect)
			jpegs := 0
			for _, tr := range rects {
				if tr.ctl == tightCtlJPEG {
					jpegs++
				}
			}
			if jpegs == 0 {
				t.Errorf("level %d %s: no JPEG rectangle", level, f.name)
			}
			want := 30.0
			if level < 3 {
				want = 24
			}
			if f.pf.BPP == 16 {
				want = min(want, 28) // 5-6 bits per colour cost some dB on their own
			}
			if p := tightPSNR(img, fb, img.Rect); p < want {
				t.Errorf("level %d %s: PSNR %.1f dB, want >= %.0f (%d bytes)", level, f.name, p, want, len(buf))
			}
			enc.close()
		}
	}
}

// JPEG is never used for 8 bits per pixel, nor for few colours.
func TestTightJPEGChoice(t *testing.T) {
	for _, c := range []struct {
		name string
		img  *screen.Image
		pf   *PixelFormat
		jpeg bool
	}{
		{"photo-8bpp", tightImgPhoto(200, 100), &tightPF233, false},
		{"text", tightImgText(200, 100), &NativeFormat, false},
		{"ui", tightImgUI(200, 100), &NativeFormat, false},
		{"photo", tightImgPhoto(200, 100), &NativeFormat, true},
	} {
		enc := newTightEncoder()
		enc.setQuality(6)
		buf, n := enc.encode(nil, c.img, c.img.Rect, c.pf)
		fb := tightNewImage(200, 100)
		rects := tightDecodeAll(t, newTightDecoder(), buf, n, fb, c.pf)
		got := false
		for _, tr := range rects {
			got = got || tr.ctl == tightCtlJPEG
		}
		if got != c.jpeg {
			t.Errorf("%s: JPEG used = %v, want %v", c.name, got, c.jpeg)
		}
		if !c.jpeg {
			tightCompare(t, c.img, fb, c.img.Rect, c.pf)
		}
		enc.close()
	}
}

func TestTightCompactLength(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0}}, {127, []byte{0x7f}}, {128, []byte{0x80, 0x01}},
		{10000, []byte{0x90, 0x4e}}, {16383, []byte{0xff, 0x7f}},
		{16384, []byte{0x80, 0x80, 0x01}}, {tightMaxCompact, []byte{0xff, 0xff, 0xff}},
	} {
		got := tightAppendCompact(nil, c.n)
		if !bytes.Equal(got, c.want) {
			t.Errorf("%d: got % x, want % x", c.n, got, c.want)
		}
		n, err := tightReadCompact(bytes.NewReader(got))
		if err != nil || n != c.n {
			t.Errorf("%d: read back %d, %v", c.n, n, err)
		}
		// tightFixCompact: length written after the data.
		buf := append([]byte{0xaa, 0, 0, 0}, make([]byte, min(c.n, 20000))...)
		if c.n <= 20000 {
			buf = tightFixCompact(buf, 1)
			if !bytes.Equal(buf[1:1+len(c.want)], c.want) || len(buf) != 1+len(c.want)+c.n {
				t.Errorf("%d: fixed to % x (len %d)", c.n, buf[:min(len(buf), 5)], len(buf))
			}
		}
	}
}

// A Tight stream built by hand from the specification, not by the
// encoder, so that the two cannot share a misreading.
func TestTightDecodeHandMade(t *testing.T) {
	var stream []byte
	hdr := func(x, y, w, h int) {
		stream = appendRectHeader(stream, image.Rect(x, y, x+w, y+h), EncTight)
	}
	zlibChunk := func(zw *zlib.Writer, sink *bytes.Buffer, data []byte) []byte {
		sink.Reset()
		zw.Write(data)
		zw.Flush()
		return append(tightAppendCompact(nil, sink.Len()), sink.Bytes()...)
	}
	fb := tightNewImage(64, 32)
	pf := &NativeFormat

	// 1. Fill 64x32 with R=0x11 G=0x22 B=0x33: TPIXEL is R, G, B.
	hdr(0, 0, 64, 32)
	stream = append(stream, 0x80, 0x11, 0x22, 0x33)
	// 2. Copy filter, no filter-id, 3x1 = 9 bytes: sent raw.
	hdr(0, 0, 3, 1)
	stream = append(stream, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	// 3. Mono palette on stream 1: 20x2, 3 bytes per row, 6 bytes: raw.
	//    Palette: 0 = white, 1 = red. Row 0 = 1010..., row 1 = all 1.
	hdr(0, 1, 20, 2)
	stream = append(stream, 0x50, 0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
		0xaa, 0xaa, 0xa0, 0xff, 0xff, 0xf0)
	// 4. Indexed palette (3 colours) on stream 2, compressed: 16x2.
	var sink2 bytes.Buffer
	z2 := zlib.NewWriter(&sink2)
	hdr(0, 3, 16, 2)
	stream = append(stream, 0x60, 0x01, 0x02, 0, 0, 0, 0xff, 0, 0, 0, 0, 0xff)
	idx := make([]byte, 32)
	for i := range idx {
		idx[i] = byte(i % 3)
	}
	stream = append(stream, zlibChunk(z2, &sink2, idx)...)
	// 5. Same stream, next rectangle continues it: 16x1 all index 2.
	hdr(0, 5, 16, 1)
	stream = append(stream, 0x60, 0x01, 0x02, 0, 0, 0, 0xff, 0, 0, 0, 0, 0xff)
	stream = append(stream, zlibChunk(z2, &sink2, bytes.Repeat([]byte{2}, 16))...)
	// 6. Copy filter via explicit filter-id on stream 0, 5x1 = 15 bytes.
	var sink0 bytes.Buffer
	z0 := zlib.NewWriter(&sink0)
	hdr(0, 6, 5, 1)
	stream = append(stream, 0x40, 0x00)
	stream = append(stream, zlibChunk(z0, &sink0, []byte{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150})...)
	// 7. Stream 2 reset (bit 2) and started anew: 12x1 index 1.
	sink2.Reset()
	z2 = zlib.NewWriter(&sink2)
	hdr(0, 7, 12, 1)
	stream = append(stream, 0x64, 0x01, 0x02, 0, 0, 0, 0xff, 0, 0, 0, 0, 0xff)
	stream = append(stream, zlibChunk(z2, &sink2, bytes.Repeat([]byte{1}, 12))...)
	// 8. Gradient filter, 3x2, stream 3. The differences are computed
	//    here from the spec's pseudo-code.
	src := [2][3][3]int{
		{{10, 20, 30}, {12, 25, 31}, {200, 10, 0}},
		{{11, 19, 29}, {255, 255, 255}, {0, 0, 0}},
	}
	var diffs []byte
	for y := 0; y < 2; y++ {
		for x := 0; x < 3; x++ {
			for c := 0; c < 3; c++ {
				v := func(i, j int) int {
					if i < 0 || j < 0 {
						return 0
					}
					return src[j][i][c]
				}
				p := v(x-1, y) + v(x, y-1) - v(x-1, y-1)
				p = max(0, min(255, p))
				diffs = append(diffs, byte(src[y][x][c]-p))
			}
		}
	}
	var sink3 bytes.Buffer
	z3 := zlib.NewWriter(&sink3)
	hdr(10, 10, 3, 2)
	stream = append(stream, 0x70, 0x02)
	stream = append(stream, zlibChunk(z3, &sink3, diffs)...)
	// 9. JPEG of a 40x20 orange area, length in two bytes.
	var jb bytes.Buffer
	orange := image.NewRGBA(image.Rect(0, 0, 40, 20))
	for i := 0; i < len(orange.Pix); i += 4 {
		copy(orange.Pix[i:], []byte{250, 128, 10, 255})
	}
	if err := jpeg.Encode(&jb, orange, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	hdr(20, 10, 40, 20)
	stream = append(stream, 0x90)
	stream = append(stream, tightAppendCompact(nil, jb.Len())...)
	stream = append(stream, jb.Bytes()...)

	dec := newTightDecoder()
	tightDecodeAll(t, dec, stream, 9, fb, pf)

	at := func(x, y int) [3]byte {
		p := fb.Pix[fb.PixOffset(x, y):]
		return [3]byte{p[2], p[1], p[0]} // R, G, B
	}
	checks := []struct {
		x, y int
		want [3]byte
	}{
		{63, 31, [3]byte{0x11, 0x22, 0x33}},
		{0, 0, [3]byte{1, 2, 3}}, {2, 0, [3]byte{7, 8, 9}}, {3, 0, [3]byte{0x11, 0x22, 0x33}},
		{0, 1, [3]byte{0xff, 0, 0}}, {1, 1, [3]byte{0xff, 0xff, 0xff}}, {18, 1, [3]byte{0xff, 0, 0}}, {19, 1, [3]byte{0xff, 0xff, 0xff}},
		{19, 2, [3]byte{0xff, 0, 0}},
		{0, 3, [3]byte{0, 0, 0}}, {1, 3, [3]byte{0xff, 0, 0}}, {2, 3, [3]byte{0, 0, 0xff}}, {15, 4, [3]byte{0xff, 0, 0}},
		{7, 5, [3]byte{0, 0, 0xff}},
		{0, 6, [3]byte{10, 20, 30}}, {4, 6, [3]byte{130, 140, 150}},
		{11, 7, [3]byte{0xff, 0, 0}},
		{10, 10, [3]byte{10, 20, 30}}, {11, 10, [3]byte{12, 25, 31}}, {12, 10, [3]byte{200, 10, 0}},
		{10, 11, [3]byte{11, 19, 29}}, {11, 11, [3]byte{255, 255, 255}}, {12, 11, [3]byte{0, 0, 0}},
	}
	for _, c := range checks {
		if got := at(c.x, c.y); got != c.want {
			t.Errorf("pixel %d,%d: got %v, want %v", c.x, c.y, got, c.want)
		}
	}
	got := at(30, 20)
	for i, want := range [3]int{250, 128, 10} {
		if d := int(got[i]) - want; d < -4 || d > 4 {
			t.Errorf("JPEG pixel: got %v, want about 250,128,10", got)
		}
	}
}

// Hand-made rectangles in 16-bit and 32-bit non-888 formats, where
// TPIXEL is the whole pixel in the client's byte order.
func TestTightDecodeHandMadeFormats(t *testing.T) {
	fb := tightNewImage(8, 8)
	// 565 little-endian fill: pure red = 0xf800.
	var s []byte
	s = appendRectHeader(s, image.Rect(0, 0, 8, 8), EncTight)
	s = append(s, 0x80, 0x00, 0xf8)
	// 565 big-endian is tested with a 2x1 raw copy: green 0x07e0, blue 0x001f.
	tightDecodeAll(t, newTightDecoder(), s, 1, fb, &tightPF565)
	if p := fb.Pix[fb.PixOffset(7, 7):]; p[2] != 255 || p[1] != 0 || p[0] != 0 {
		t.Errorf("565 fill: got %v", p[:3])
	}
	s = appendRectHeader(nil, image.Rect(0, 0, 2, 1), EncTight)
	s = append(s, 0x00, 0x07, 0xe0, 0x00, 0x1f)
	tightDecodeAll(t, newTightDecoder(), s, 1, fb, &tightPF565BE)
	if p := fb.Pix[0:8]; p[1] != 255 || p[0] != 0 || p[2] != 0 || p[4] != 255 || p[5] != 0 {
		t.Errorf("565be copy: got %v", p)
	}
	// 32bpp depth 24 big-endian is 888: TPIXEL still R, G, B.
	s = appendRectHeader(nil, image.Rect(0, 0, 1, 1), EncTight)
	s = append(s, 0x80, 0x01, 0x02, 0x03)
	tightDecodeAll(t, newTightDecoder(), s, 1, fb, &tightPF32BE)
	if p := fb.Pix[0:3]; p[2] != 1 || p[1] != 2 || p[0] != 3 {
		t.Errorf("32be fill: got %v", p)
	}
}

// Malformed input gives errors, not panics or huge allocations.
func TestTightDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		r    image.Rectangle
		pf   *PixelFormat
		data []byte
	}{
		{"empty", image.Rect(0, 0, 4, 4), &NativeFormat, nil},
		{"bad type", image.Rect(0, 0, 4, 4), &NativeFormat, []byte{0xa0}},
		{"bad filter", image.Rect(0, 0, 4, 4), &NativeFormat, []byte{0x40, 7}},
		{"too wide", image.Rect(0, 0, 2049, 1), &NativeFormat, []byte{0x00}},
		{"jpeg at 8bpp", image.Rect(0, 0, 4, 4), &tightPF233, []byte{0x90, 1, 0}},
		{"gradient at 8bpp", image.Rect(0, 0, 4, 4), &tightPF233, []byte{0x40, 2}},
		{"short zlib", image.Rect(0, 0, 8, 8), &NativeFormat, []byte{0x00, 5, 0x78, 0x9c, 0, 0, 0}},
		{"zlib garbage", image.Rect(0, 0, 8, 8), &NativeFormat, []byte{0x00, 5, 1, 2, 3, 4, 5}},
		{"jpeg garbage", image.Rect(0, 0, 8, 8), &NativeFormat, []byte{0x90, 3, 1, 2, 3}},
		{"huge claimed length", image.Rect(0, 0, 8, 8), &NativeFormat, []byte{0x90, 0xff, 0xff, 0xff}},
		{"outside framebuffer", image.Rect(60, 60, 70, 70), &NativeFormat, []byte{0x80, 1, 2, 3}},
	} {
		fb := tightNewImage(64, 64)
		if err := newTightDecoder().decode(bytes.NewReader(c.data), fb, c.r, c.pf); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func FuzzTightDecode(f *testing.F) {
	img := tightImgUI(40, 30)
	for q := -1; q < 10; q += 5 {
		for i, tf := range tightFormats {
			enc := newTightEncoder()
			enc.setQuality(q)
			buf, _ := enc.encode(nil, img, image.Rect(1, 2, 39, 29), tf.pf)
			f.Add(byte(i), byte(38), byte(27), buf[12:])
			enc.close()
		}
	}
	f.Add(byte(0), byte(3), byte(2), []byte{0x70, 0x02, 0x78, 0x9c})
	f.Fuzz(func(t *testing.T, fi, w, h byte, data []byte) {
		pf := tightFormats[int(fi)%len(tightFormats)].pf
		fb := tightNewImage(64, 64)
		rect := image.Rect(0, 0, int(w)%65, int(h)%65)
		dec := newTightDecoder()
		rd := bytes.NewReader(data)
		// Several rectangles from one stream, so stream state is fuzzed too.
		for i := 0; i < 4 && rd.Len() > 0; i++ {
			if err := dec.decode(rd, fb, rect, pf); err != nil {
				return
			}
		}
	})
}

func BenchmarkTightJPEG640x480(b *testing.B) {
	for _, c := range []struct {
		name string
		img  *screen.Image
	}{{"photo", tightImgPhoto(640, 480)}, {"noise", tightImgNoise(640, 480)}} {
		b.Run(c.name, func(b *testing.B) {
			enc := newTightEncoder()
			defer enc.close()
			enc.setQuality(8)
			buf := make([]byte, 0, 4<<20)
			var n int
			b.SetBytes(int64(len(c.img.Pix)))
			b.ReportAllocs()
			for b.Loop() {
				buf, n = enc.encode(buf[:0], c.img, c.img.Rect, &NativeFormat)
			}
			b.ReportMetric(float64(len(buf)), "wire-bytes")
			b.ReportMetric(float64(n), "rects")
		})
	}
}

func BenchmarkTightText(b *testing.B) {
	img := tightImgText(1280, 800)
	for _, level := range []int{1, 2, 6} {
		b.Run("level"+string(rune('0'+level)), func(b *testing.B) {
			enc := newTightEncoder()
			defer enc.close()
			enc.setCompression(level)
			buf := make([]byte, 0, 4<<20)
			var n int
			b.SetBytes(int64(len(img.Pix)))
			b.ReportAllocs()
			for b.Loop() {
				buf, n = enc.encode(buf[:0], img, img.Rect, &NativeFormat)
			}
			b.ReportMetric(float64(len(buf)), "wire-bytes")
			b.ReportMetric(float64(n), "rects")
		})
	}
}

func BenchmarkTightDecode(b *testing.B) {
	for _, c := range []struct {
		name string
		img  *screen.Image
		q    int
	}{{"text", tightImgText(1280, 800), -1}, {"photo-jpeg", tightImgPhoto(640, 480), 8}} {
		b.Run(c.name, func(b *testing.B) {
			enc := newTightEncoder()
			defer enc.close()
			enc.setQuality(c.q)
			fb := screen.NewImage(c.img.Rect)
			// One pair for the whole run keeps the zlib streams going,
			// as on a connection.
			dec := newTightDecoder()
			b.SetBytes(int64(len(c.img.Pix)))
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				buf, n := enc.encode(nil, c.img, c.img.Rect, &NativeFormat)
				b.StartTimer()
				rd := bytes.NewReader(buf)
				for i := 0; i < n; i++ {
					var h [12]byte
					rd.Read(h[:])
					r := image.Rect(int(binary.BigEndian.Uint16(h[0:])), int(binary.BigEndian.Uint16(h[2:])), 0, 0)
					r.Max = r.Min.Add(image.Pt(int(binary.BigEndian.Uint16(h[4:])), int(binary.BigEndian.Uint16(h[6:]))))
					if err := dec.decode(rd, fb, r, &NativeFormat); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// tightServeOnce is just enough of an RFB 3.3 server to hand img to one
// viewer: it answers each update request with the whole screen in Tight,
// using the viewer's pixel format, compression and JPEG quality.
func tightServeOnce(t *testing.T, conn io.ReadWriter, img *screen.Image) error {
	t.Helper()
	if _, err := conn.Write([]byte("RFB 003.003\n")); err != nil {
		return err
	}
	var v [12]byte
	if _, err := io.ReadFull(conn, v[:]); err != nil {
		return err
	}
	var b [20]byte
	binary.BigEndian.PutUint32(b[:], 1) // security None
	if _, err := conn.Write(b[:4]); err != nil {
		return err
	}
	if _, err := io.ReadFull(conn, b[:1]); err != nil { // ClientInit
		return err
	}
	init := make([]byte, 24, 28)
	binary.BigEndian.PutUint16(init[0:], uint16(img.Rect.Dx()))
	binary.BigEndian.PutUint16(init[2:], uint16(img.Rect.Dy()))
	NativeFormat.marshal(init[4:20])
	binary.BigEndian.PutUint32(init[20:], 4)
	if _, err := conn.Write(append(init, "test"...)); err != nil {
		return err
	}
	pf := NativeFormat
	enc := newTightEncoder()
	defer enc.close()
	for {
		if _, err := io.ReadFull(conn, b[:1]); err != nil {
			return nil // the viewer is done
		}
		switch b[0] {
		case msgSetPixelFormat:
			if _, err := io.ReadFull(conn, b[1:20]); err != nil {
				return err
			}
			pf = unmarshalPixelFormat(b[4:20])
		case msgSetEncodings:
			if _, err := io.ReadFull(conn, b[1:4]); err != nil {
				return err
			}
			list := make([]byte, 4*int(binary.BigEndian.Uint16(b[2:])))
			if _, err := io.ReadFull(conn, list); err != nil {
				return err
			}
			for i := 0; i < len(list); i += 4 {
				e := int32(binary.BigEndian.Uint32(list[i:]))
				switch {
				case e >= EncJPEGQuality0 && e <= EncJPEGQuality9:
					enc.setQuality(int(e - EncJPEGQuality0))
				case e >= EncCompressLevel0 && e <= EncCompressLevel9:
					enc.setCompression(int(e - EncCompressLevel0))
				}
			}
		case msgFramebufferUpdateRequest:
			if _, err := io.ReadFull(conn, b[1:10]); err != nil {
				return err
			}
			rects, n := enc.encode(nil, img, img.Rect, &pf)
			msg := append([]byte{0, 0, byte(n >> 8), byte(n)}, rects...)
			if _, err := conn.Write(msg); err != nil {
				return nil
			}
		case msgKeyEvent:
			io.ReadFull(conn, b[1:8])
		case msgPointerEvent:
			io.ReadFull(conn, b[1:6])
		default:
			return nil
		}
	}
}

// A real Tight decoder (TightVNC's, in vncsnapshot) reads what the
// encoder sends, lossless and JPEG. vncsnapshot saves a JPEG (quality
// 100), so the check is a PSNR bound: lossless Tight comes out near
// 67 dB and JPEG level 6 near 36 dB, while swapped red and blue give
// 14 dB and a garbled rectangle about as little.
func TestTightInteropVncsnapshot(t *testing.T) {
	bin, err := exec.LookPath("vncsnapshot")
	if err != nil {
		t.Skip("vncsnapshot not installed")
	}
	img := tightImgDesktop(800, 600)
	photo := tightImgPhoto(800, 600)
	for _, c := range []struct {
		name string
		img  *screen.Image
		args []string
		want float64
	}{
		{"lossless", img, []string{"-nojpeg", "-compresslevel", "6"}, 45},
		{"lossless-level1", img, []string{"-nojpeg", "-compresslevel", "1"}, 45},
		{"jpeg", photo, []string{"-vncQuality", "6"}, 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			if port < 5900 {
				t.Skipf("port %d below 5900 cannot be named as a display", port)
			}
			done := make(chan error, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					done <- err
					return
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(20 * time.Second))
				done <- tightServeOnce(t, conn, c.img)
			}()
			out := filepath.Join(t.TempDir(), "snap.jpg")
			args := append([]string{"-quiet", "-encodings", "tight"}, c.args...)
			args = append(args, fmt.Sprintf("127.0.0.1:%d", port-5900), out)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if msg, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
				t.Fatalf("vncsnapshot: %v\n%s", err, msg)
			}
			if err := <-done; err != nil {
				t.Fatalf("server: %v", err)
			}
			f, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			m, err := jpeg.Decode(bytes.NewReader(f))
			if err != nil {
				t.Fatal(err)
			}
			got := tightNewImage(800, 600)
			for y := 0; y < 600; y++ {
				for x := 0; x < 800; x++ {
					r, g, b, _ := m.At(x, y).RGBA()
					tightSet(got, x, y, (r>>8)<<16|(g>>8)<<8|b>>8)
				}
			}
			if p := tightPSNR(c.img, got, c.img.Rect); p < c.want {
				t.Errorf("PSNR %.1f dB, want >= %.0f", p, c.want)
			}
		})
	}
}
