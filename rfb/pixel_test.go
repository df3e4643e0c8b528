package rfb

import (
	"bytes"
	"fmt"
	"image"
	"testing"
)

func TestTestFormatsValid(t *testing.T) {
	for _, f := range testFormats() {
		if err := f.pf.Validate(); err != nil {
			t.Errorf("%s: %v", f.name, err)
		}
	}
}

func TestPixelCompactSize(t *testing.T) {
	want := map[string]int{
		"native": 3, "32be": 3, "32le-rgb0-8-16": 3, "32be-rgb0-8-16": 3,
		"32le-rgb8-16-24": 3, "32be-rgb8-16-24": 3, "32le-depth32": 4, "32le-10bit": 4,
		"16le-565": 2, "16be-565": 2, "16le-555": 2, "8-bgr233": 1,
	}
	for _, f := range testFormats() {
		if got := f.pf.compactSize(); got != want[f.name] {
			t.Errorf("%s: compactSize = %d, want %d", f.name, got, want[f.name])
		}
	}
}

// TestPixelRGBRoundTrip checks that every 8-bit component survives a
// trip through a format as well as the format's depth allows.
func TestPixelRGBRoundTrip(t *testing.T) {
	for _, f := range testFormats() {
		pf := f.pf
		for c := 0; c < 256; c++ {
			r, g, b := pf.rgb(pf.pixel(byte(c), byte(c), byte(c)))
			for _, comp := range []struct {
				name string
				got  byte
				max  uint16
			}{{"red", r, pf.RedMax}, {"green", g, pf.GreenMax}, {"blue", b, pf.BlueMax}} {
				// The nearest level, scaled back to 8 bits.
				lvl := (c*int(comp.max) + 127) / 255
				want := byte((lvl*255 + int(comp.max)/2) / int(comp.max))
				if comp.max >= 255 {
					want = byte(c)
				}
				if comp.got != want {
					t.Fatalf("%s: %s %d came back as %d, want %d", f.name, comp.name, c, comp.got, want)
				}
			}
		}
	}
}

// TestPixelAppendMatchesReference checks the table-driven conversions
// against the plain per-pixel ones, on areas on both sides of
// tableMinPixels.
func TestPixelAppendMatchesReference(t *testing.T) {
	img := testImage("noise", 64, 64)
	for _, f := range testFormats() {
		pf := &f.pf
		for _, r := range []image.Rectangle{image.Rect(3, 5, 10, 9), image.Rect(1, 2, 64, 64)} {
			t.Run(fmt.Sprintf("%s/%v", f.name, r), func(t *testing.T) {
				var full, compact []byte
				for y := r.Min.Y; y < r.Max.Y; y++ {
					for x := r.Min.X; x < r.Max.X; x++ {
						p := img.Pix[img.PixOffset(x, y):]
						v := pf.pixel(p[0], p[1], p[2])
						full = pf.appendValue(full, v)
						compact = pf.appendCompactValue(compact, v)
					}
				}
				if got := appendPixels([]byte{9}, img, r, pf); !bytes.Equal(got[1:], full) || got[0] != 9 {
					t.Errorf("appendPixels differs from appendValue")
				}
				if got := appendCompactPixels(nil, img, r, pf); !bytes.Equal(got, compact) {
					t.Errorf("appendCompactPixels differs from appendCompactValue")
				}
				// And back: readValue undoes both.
				n := pf.compactSize()
				for i := 0; i+n <= len(compact); i += n {
					j := i / n * pf.bytesPerPixel()
					if a, b := pf.readValue(compact[i:], n), pf.readValue(full[j:], pf.bytesPerPixel()); a != b {
						t.Fatalf("pixel %d: compact value %#x, full value %#x", i/n, a, b)
					}
				}
			})
		}
	}
}

// TestPixelPutPixels checks putPixels against quantisation, for full and
// compact pixels.
func TestPixelPutPixels(t *testing.T) {
	img := testImage("gradient", 50, 40)
	r := image.Rect(2, 3, 47, 40)
	for _, f := range testFormats() {
		pf := &f.pf
		want := quantized(img, pf)
		for _, compact := range []bool{false, true} {
			var src []byte
			n := pf.bytesPerPixel()
			if compact {
				src, n = appendCompactPixels(nil, img, r, pf), pf.compactSize()
			} else {
				src = appendPixels(nil, img, r, pf)
			}
			fb := testImage("solid", 50, 40)
			putPixels(fb, r, src, pf, n)
			checkSameArea(t, want, fb, r)
		}
	}
}

func BenchmarkAppendPixels(b *testing.B) {
	img := testImage("desktop", 640, 480)
	for _, f := range testFormats() {
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(img.Pix)))
			var buf []byte
			for b.Loop() {
				buf = appendPixels(buf[:0], img, img.Rect, &f.pf)
			}
		})
	}
}
