package marker

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"testing"

	"github.com/assist-project/assist/screen"
)

func TestRoundTrip(t *testing.T) {
	img := screen.NewImage(image.Rect(0, 0, 200, 40))
	at := image.Pt(16, 16)
	for v := uint32(0); v < Modulus; v++ {
		Draw(img, at, v)
		got, ok := Decode(img, at)
		if !ok || got != v {
			t.Fatalf("Decode after Draw(%d) = %d, %v", v, got, ok)
		}
	}
}

func TestImage(t *testing.T) {
	at := image.Pt(48, 32)
	m := Image(at, 1234)
	if m.Rect != Bounds(at) {
		t.Fatalf("Image rect = %v, want %v", m.Rect, Bounds(at))
	}
	if v, ok := Decode(m, at); !ok || v != 1234 {
		t.Fatalf("Decode(Image(1234)) = %d, %v", v, ok)
	}
}

func TestRejects(t *testing.T) {
	tests := []struct {
		name string
		fill func(img *screen.Image)
		at   image.Point
	}{
		{"black", func(img *screen.Image) {}, image.Pt(0, 0)},
		{"white", func(img *screen.Image) { fill(img, 255, 255, 255) }, image.Pt(0, 0)},
		{"grey", func(img *screen.Image) { fill(img, 128, 128, 128) }, image.Pt(0, 0)},
		{"outside", func(img *screen.Image) { Draw(img, image.Pt(0, 0), 7) }, image.Pt(10, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := screen.NewImage(image.Rect(0, 0, 100, 20))
			tt.fill(img)
			if v, ok := Decode(img, tt.at); ok {
				t.Errorf("Decode = %d, true; want rejection", v)
			}
		})
	}
}

// TestTorn checks that a marker whose left part shows one value and
// right part another is almost always rejected, as happens when a server
// grabs the screen while the marker is being drawn.
func TestTorn(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	img := screen.NewImage(image.Rect(0, 0, Size.X, Size.Y))
	accepted, trials := 0, 20000
	for i := 0; i < trials; i++ {
		a, b := rng.Uint32N(Modulus), rng.Uint32N(Modulus)
		if a == b {
			continue
		}
		split := 1 + rng.IntN(Blocks-1)
		Draw(img, image.Pt(0, 0), a)
		right := Image(image.Pt(0, 0), b)
		img.CopyFrom(right, image.Rect(split*BlockSize, 0, Size.X, Size.Y))
		if v, ok := Decode(img, image.Pt(0, 0)); ok && v != a && v != b {
			accepted++
		}
	}
	// The check blocks hold 6 bits: about 1/64 of torn markers pass, and
	// only when the data blocks happen to form a value other than a or b.
	if accepted > trials/32 {
		t.Errorf("%d of %d torn markers accepted as a third value", accepted, trials)
	}
}

// TestJPEG draws markers on a busy background at positions that do not
// line up with the JPEG block grid, compresses the whole image with JPEG
// at quality 50 (below what the benchmark asks of servers) and decodes.
func TestJPEG(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, at := range []image.Point{{16, 16}, {5, 3}, {37, 21}} {
		for trial := 0; trial < 50; trial++ {
			img := screen.NewImage(image.Rect(0, 0, 160, 64))
			for i := range img.Pix {
				img.Pix[i] = byte(rng.IntN(256))
			}
			v := rng.Uint32N(Modulus)
			Draw(img, at, v)
			back := jpegRoundTrip(t, img, 50)
			if got, ok := Decode(back, at); !ok || got != v {
				t.Fatalf("at %v: Decode after JPEG = %d, %v; want %d", at, got, ok, v)
			}
		}
	}
}

func TestUnwrap(t *testing.T) {
	tests := []struct {
		v      uint32
		latest uint64
		want   uint64
		ok     bool
	}{
		{0, 0, 0, true},
		{5, 10, 5, true},
		{10, 10, 10, true},
		{11, 10, 0, false},
		{5, Modulus + 10, Modulus + 5, true},
		{Modulus - 1, Modulus + 10, Modulus - 1, true},
		{3, 3 * Modulus, 2*Modulus + 3, true},
	}
	for _, tt := range tests {
		got, ok := Unwrap(tt.v, tt.latest)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Unwrap(%d, %d) = %d, %v; want %d, %v", tt.v, tt.latest, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(make([]byte, 4*Size.X*Size.Y), 0, 0)
	f.Fuzz(func(t *testing.T, pix []byte, x, y int) {
		w := Size.X + 8
		h := len(pix) / (4 * w)
		img := &screen.Image{Pix: pix[:4*w*h], Stride: 4 * w, Rect: image.Rect(0, 0, w, h)}
		v, ok := Decode(img, image.Pt(x, y))
		if ok && v >= Modulus {
			t.Fatalf("Decode = %d >= Modulus", v)
		}
	})
}

func fill(img *screen.Image, b, g, r byte) {
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2] = b, g, r
	}
}

func jpegRoundTrip(t *testing.T, img *screen.Image, quality int) *screen.Image {
	t.Helper()
	rgba := image.NewRGBA(img.Rect)
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
			p := img.Pix[img.PixOffset(x, y):]
			rgba.Set(x, y, color.RGBA{p[2], p[1], p[0], 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, rgba, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	out := screen.NewImage(img.Rect)
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
			r, g, b, _ := dec.At(x, y).RGBA()
			p := out.Pix[out.PixOffset(x, y):]
			p[0], p[1], p[2] = byte(b>>8), byte(g>>8), byte(r>>8)
		}
	}
	return out
}
