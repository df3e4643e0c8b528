package lab

import (
	"bytes"
	"encoding/binary"
	"image"
	"testing"

	"github.com/assist-project/assist/screen"
)

func testImage(w, h int) *screen.Image {
	img := screen.NewImage(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2] = byte(x*7), byte(y*13), byte(x^y)
		}
	}
	return img
}

func TestXWDRoundTrip(t *testing.T) {
	img := testImage(13, 7)
	got, err := ParseXWD(EncodeXWD(img))
	if err != nil {
		t.Fatal(err)
	}
	if got.Rect != img.Rect || !bytes.Equal(got.Pix, img.Pix) {
		t.Fatalf("round trip changed the image")
	}
}

// xwdVariant rewrites an encoded 32-bit little-endian file into another
// layout real servers produce.
func xwdVariant(t *testing.T, img *screen.Image, bpp int, msb bool, pad int) []byte {
	t.Helper()
	enc := EncodeXWD(img)
	hs := binary.BigEndian.Uint32(enc)
	w, h := img.Rect.Dx(), img.Rect.Dy()
	bpl := w*bpp/8 + pad
	binary.BigEndian.PutUint32(enc[4*xwdFBitsPerPixel:], uint32(bpp))
	binary.BigEndian.PutUint32(enc[4*xwdFBytesPerLine:], uint32(bpl))
	if msb {
		binary.BigEndian.PutUint32(enc[4*xwdFByteOrder:], 1)
	}
	out := append([]byte(nil), enc[:hs]...)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := img.PixOffset(x, y)
			b, g, r := img.Pix[i], img.Pix[i+1], img.Pix[i+2]
			switch {
			case bpp == 32 && msb:
				out = append(out, 0, r, g, b)
			case bpp == 32:
				out = append(out, b, g, r, 0)
			case msb:
				out = append(out, r, g, b)
			default:
				out = append(out, b, g, r)
			}
		}
		out = append(out, make([]byte, pad)...)
	}
	return out
}

func TestParseXWDLayouts(t *testing.T) {
	img := testImage(5, 3)
	for _, tc := range []struct {
		name string
		bpp  int
		msb  bool
		pad  int
	}{
		{"32 lsb", 32, false, 0},
		{"32 msb", 32, true, 0},
		{"24 lsb padded", 24, false, 1},
		{"24 msb padded", 24, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseXWD(xwdVariant(t, img, tc.bpp, tc.msb, tc.pad))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Pix, img.Pix) {
				t.Fatalf("pixels differ")
			}
		})
	}
}

func TestParseXWDRejects(t *testing.T) {
	good := EncodeXWD(testImage(4, 4))
	set := func(field int, v uint32) []byte {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(b[4*field:], v)
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated pixels", good[:len(good)-1]},
		{"version", set(xwdFVersion, 6)},
		{"xy pixmap", set(xwdFFormat, 1)},
		{"pseudo colour", set(xwdFVisualClass, 3)},
		{"16 bpp", set(xwdFBitsPerPixel, 16)},
		{"huge", set(xwdFWidth, 1<<20)},
		{"zero height", set(xwdFHeight, 0)},
		{"short lines", set(xwdFBytesPerLine, 3)},
		{"split mask", set(xwdFRedMask, 0x0f0f00)},
		{"small header", set(xwdFHeaderSize, 8)},
		{"many colours", set(xwdFNColors, 1<<30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseXWD(tc.data); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func FuzzXWD(f *testing.F) {
	f.Add(EncodeXWD(testImage(3, 2)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := ParseXWD(data)
		if err != nil {
			return
		}
		if len(img.Pix) != 4*img.Rect.Dx()*img.Rect.Dy() {
			t.Fatalf("image buffer has %d bytes for %v", len(img.Pix), img.Rect)
		}
	})
}
