package rfb

// Shared helpers for codec tests: pixel formats, synthetic images and a
// round trip through an encoder/decoder pair. Other codec tests use them.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"math/rand/v2"
	"testing"

	"github.com/assist-project/assist/screen"
)

// namedFormat is a pixel format with a name for sub-tests.
type namedFormat struct {
	name string
	pf   PixelFormat
}

// testFormats are the pixel formats codecs are tested with: the ones real
// viewers ask for, and odd ones that exercise every conversion path.
func testFormats() []namedFormat {
	rgb32 := func(big bool, rs, gs, bs uint8) PixelFormat {
		return PixelFormat{BPP: 32, Depth: 24, BigEndian: big, TrueColor: true,
			RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: rs, GreenShift: gs, BlueShift: bs}
	}
	rgb565 := func(big bool) PixelFormat {
		return PixelFormat{BPP: 16, Depth: 16, BigEndian: big, TrueColor: true,
			RedMax: 31, GreenMax: 63, BlueMax: 31, RedShift: 11, GreenShift: 5, BlueShift: 0}
	}
	return []namedFormat{
		{"native", NativeFormat},
		{"32be", rgb32(true, 16, 8, 0)},
		{"32le-rgb0-8-16", rgb32(false, 0, 8, 16)},
		{"32be-rgb0-8-16", rgb32(true, 0, 8, 16)},
		{"32le-rgb8-16-24", rgb32(false, 8, 16, 24)},
		{"32be-rgb8-16-24", rgb32(true, 8, 16, 24)},
		{"32le-depth32", PixelFormat{BPP: 32, Depth: 32, TrueColor: true,
			RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 16, GreenShift: 8, BlueShift: 0}},
		{"32le-10bit", PixelFormat{BPP: 32, Depth: 30, TrueColor: true,
			RedMax: 1023, GreenMax: 1023, BlueMax: 1023, RedShift: 20, GreenShift: 10, BlueShift: 0}},
		{"16le-565", rgb565(false)},
		{"16be-565", rgb565(true)},
		{"16le-555", PixelFormat{BPP: 16, Depth: 15, TrueColor: true,
			RedMax: 31, GreenMax: 31, BlueMax: 31, RedShift: 10, GreenShift: 5, BlueShift: 0}},
		{"8-bgr233", PixelFormat{BPP: 8, Depth: 8, TrueColor: true,
			RedMax: 7, GreenMax: 7, BlueMax: 3, RedShift: 0, GreenShift: 3, BlueShift: 6}},
	}
}

// testImageKinds are the kinds testImage draws.
var testImageKinds = []string{"solid", "few", "text", "gradient", "noise", "runs", "palette100", "desktop"}

// testImages returns one w x h image of each kind, in testImageKinds order.
func testImages(w, h int) []*screen.Image {
	imgs := make([]*screen.Image, len(testImageKinds))
	for i, kind := range testImageKinds {
		imgs[i] = testImage(kind, w, h)
	}
	return imgs
}

// testImage draws a deterministic w x h image (origin 0,0) of a kind:
//
//	solid       one colour
//	few         blocks of 5 colours
//	text        black and grey glyph-like strokes on white
//	gradient    smooth colour ramps (every pixel differs from its neighbour)
//	noise       random pixels
//	runs        horizontal runs of random colours, many colours per tile
//	palette100  about 100 colours in short runs
//	desktop     windows, title bar gradients, text and a photo-like area
func testImage(kind string, w, h int) *screen.Image {
	img := screen.NewImage(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	set := func(x, y int, c uint32) {
		binary.LittleEndian.PutUint32(img.Pix[img.PixOffset(x, y):], c&0xffffff)
	}
	fill := func(r image.Rectangle, c uint32) {
		r = r.Intersect(img.Rect)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				set(x, y, c)
			}
		}
	}
	switch kind {
	case "solid":
		fill(img.Rect, 0x3a6ea5)
	case "few":
		colours := []uint32{0xffffff, 0x000000, 0xd4d0c8, 0x0a246a, 0x808080}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				set(x, y, colours[(x/7+y/5*3)%len(colours)])
			}
		}
	case "text":
		drawText(img, img.Rect, rng)
	case "gradient":
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				set(x, y, uint32(x*255/max(w, 1))<<16|uint32(y*255/max(h, 1))<<8|uint32((x+y)&255))
			}
		}
	case "noise":
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				set(x, y, rng.Uint32())
			}
		}
	case "runs":
		for y := 0; y < h; y++ {
			for x := 0; x < w; {
				c, n := rng.Uint32(), 2+rng.IntN(40)
				for ; n > 0 && x < w; n-- {
					set(x, y, c)
					x++
				}
			}
		}
	case "palette100":
		pal := make([]uint32, 100)
		for i := range pal {
			pal[i] = rng.Uint32()
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; {
				c, n := pal[rng.IntN(len(pal))], 1+rng.IntN(3)
				for ; n > 0 && x < w; n-- {
					set(x, y, c)
					x++
				}
			}
		}
	case "desktop":
		fill(img.Rect, 0x3a6ea5) // wallpaper
		for i := 0; i < 6; i++ {
			win := image.Rect(rng.IntN(max(w, 1)), rng.IntN(max(h, 1)), 0, 0)
			win.Max = win.Min.Add(image.Pt(200+rng.IntN(500), 150+rng.IntN(400)))
			fill(win, 0xece9d8)
			for x := win.Min.X; x < win.Max.X && x < w; x++ { // title bar
				for y := win.Min.Y; y < win.Min.Y+22 && y < h; y++ {
					set(x, y, uint32(0x0a+((x-win.Min.X)*0xa0/max(win.Dx(), 1)))<<16|0x24<<8|0x6a+uint32(y-win.Min.Y))
				}
			}
			body := image.Rect(win.Min.X+4, win.Min.Y+26, win.Max.X-4, win.Max.Y-4).Intersect(img.Rect)
			if i%3 == 2 { // a photo
				for y := body.Min.Y; y < body.Max.Y; y++ {
					for x := body.Min.X; x < body.Max.X; x++ {
						set(x, y, uint32(x*3+y)&255<<16|uint32(x+y*2)&255<<8|uint32(x^y)&255^uint32(rng.IntN(8)))
					}
				}
			} else {
				fill(body, 0xffffff)
				drawText(img, body, rng)
			}
		}
	default:
		panic(fmt.Sprintf("testImage: unknown kind %q", kind))
	}
	return img
}

// drawText paints text-like 8x16 glyphs with anti-aliased edges in r.
func drawText(img *screen.Image, r image.Rectangle, rng *rand.Rand) {
	shades := []uint32{0x000000, 0x404040, 0x808080, 0xc0c0c0}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := uint32(0xffffff)
			cx, cy := (x-r.Min.X)%8, (y-r.Min.Y)%16
			// Glyph strokes: vertical and horizontal bars that vary per cell.
			cell := uint32((x-r.Min.X)/8*31 + (y-r.Min.Y)/16*17)
			if cy >= 3 && cy < 13 && cx < 7 && (y-r.Min.Y)/16%5 != 4 && (x-r.Min.X)/8%9 != 8 {
				if (cell>>uint(cx%4))&1 == 1 && cx%3 == 1 || cy == 3+int(cell%9) {
					c = shades[rng.IntN(2)]
				} else if (cell>>uint(cy%5))&3 == 3 && cx == int(cell%7) {
					c = shades[2+rng.IntN(2)]
				}
			}
			binary.LittleEndian.PutUint32(img.Pix[img.PixOffset(x, y):], c)
		}
	}
}

// quantized is what img looks like after a trip through pf. Pass a
// SubImage to convert only part of an image.
func quantized(img *screen.Image, pf *PixelFormat) *screen.Image {
	out := screen.NewImage(img.Rect)
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
			p := img.Pix[img.PixOffset(x, y):]
			r, g, b := pf.rgb(pf.pixel(p[0], p[1], p[2]))
			o := out.Pix[out.PixOffset(x, y):]
			o[0], o[1], o[2] = b, g, r
		}
	}
	return out
}

// checkSameArea fails t unless want and got have the same colours (the
// X byte aside) in r.
func checkSameArea(t testing.TB, want, got *screen.Image, r image.Rectangle) {
	t.Helper()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		// Fast path: whole rows equal, X bytes included.
		wr := want.Pix[want.PixOffset(r.Min.X, y):][:4*r.Dx()]
		gr := got.Pix[got.PixOffset(r.Min.X, y):][:4*r.Dx()]
		if bytes.Equal(wr, gr) {
			continue
		}
		for x := r.Min.X; x < r.Max.X; x++ {
			w := want.Pix[want.PixOffset(x, y):][:3]
			g := got.Pix[got.PixOffset(x, y):][:3]
			if !bytes.Equal(w, g) {
				t.Fatalf("pixel (%d,%d): got BGR %v, want %v", x, y, g, w)
			}
		}
	}
}

// encodeDecode encodes area r of img with enc, checks the rectangle
// headers, decodes every rectangle with dec into fb, and returns the
// number of bytes on the wire.
func encodeDecode(t testing.TB, enc rectEncoder, dec rectDecoder, img, fb *screen.Image, r image.Rectangle, pf *PixelFormat) int {
	t.Helper()
	wire, n := enc.encode(nil, img, r, pf)
	rd := bytes.NewReader(wire)
	for i := 0; i < n; i++ {
		var h [12]byte
		if _, err := rd.Read(h[:]); err != nil {
			t.Fatalf("rectangle %d of %d: header: %v", i, n, err)
		}
		x, y := int(binary.BigEndian.Uint16(h[0:])), int(binary.BigEndian.Uint16(h[2:]))
		w, hh := int(binary.BigEndian.Uint16(h[4:])), int(binary.BigEndian.Uint16(h[6:]))
		rect := image.Rect(x, y, x+w, y+hh)
		if !rect.In(r) {
			t.Fatalf("rectangle %d: %v is outside the encoded area %v", i, rect, r)
		}
		if err := dec.decode(rd, fb, rect, pf); err != nil {
			t.Fatalf("rectangle %d (%v): decode: %v", i, rect, err)
		}
	}
	if rd.Len() != 0 {
		t.Fatalf("%d bytes left after %d rectangles", rd.Len(), n)
	}
	return len(wire)
}

// roundTrip encodes area r of img, decodes it into a fresh framebuffer,
// checks that r came back as img quantised to pf, and returns the
// framebuffer.
func roundTrip(t testing.TB, enc rectEncoder, dec rectDecoder, img *screen.Image, r image.Rectangle, pf *PixelFormat) *screen.Image {
	t.Helper()
	fb := screen.NewImage(img.Rect)
	encodeDecode(t, enc, dec, img, fb, r, pf)
	checkSameArea(t, quantized(img.SubImage(r), pf), fb, r)
	return fb
}

// testRects are the areas codec round trips cover within a 320x240
// image: a pixel, sizes just off the 64-pixel tile grid, and large ones,
// at the origin and at offsets that are not tile-aligned.
var testRects = []image.Rectangle{
	image.Rect(0, 0, 1, 1),
	image.Rect(5, 3, 6, 4),
	image.Rect(0, 0, 63, 65),
	image.Rect(13, 7, 76, 72),
	image.Rect(0, 0, 300, 200),
	image.Rect(17, 33, 317, 233),
}
