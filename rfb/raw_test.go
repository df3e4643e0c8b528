package rfb

import (
	"bytes"
	"fmt"
	"image"
	"testing"
)

func TestRawRoundTrip(t *testing.T) {
	imgs := testImages(320, 240)
	for _, f := range testFormats() {
		for k, kind := range testImageKinds {
			img := imgs[k]
			for _, r := range testRects {
				t.Run(fmt.Sprintf("%s/%s/%v", f.name, kind, r), func(t *testing.T) {
					roundTrip(t, newRawEncoder(), newRawDecoder(), img, r, &f.pf)
				})
			}
		}
	}
}

// TestRawLarge covers a rectangle taller than the decoder's chunk.
func TestRawLarge(t *testing.T) {
	img := testImage("desktop", 1000, 700)
	roundTrip(t, newRawEncoder(), newRawDecoder(), img, img.Rect, &NativeFormat)
}

func TestRawShort(t *testing.T) {
	img := testImage("noise", 20, 20)
	wire, _ := newRawEncoder().encode(nil, img, img.Rect, &NativeFormat)
	fb := testImage("solid", 20, 20)
	err := newRawDecoder().decode(bytes.NewReader(wire[12:len(wire)-1]), fb, img.Rect, &NativeFormat)
	if err == nil {
		t.Fatal("decoding a truncated rectangle succeeded")
	}
}

func FuzzRawDecode(f *testing.F) {
	f.Add(byte(0), byte(3), byte(2), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24})
	f.Add(byte(8), byte(1), byte(1), []byte{7})
	formats := testFormats()
	f.Fuzz(func(t *testing.T, format, w, h byte, data []byte) {
		pf := &formats[int(format)%len(formats)].pf
		fb := testImage("solid", 64, 64)
		rect := image.Rect(1, 2, 1+int(w)%63, 2+int(h)%62)
		_ = newRawDecoder().decode(bytes.NewReader(data), fb, rect, pf)
	})
}
