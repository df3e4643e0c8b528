package h264

import (
	"bytes"
	"errors"
	"image"
	"math"
	"testing"

	"github.com/assist-project/assist/screen"
)

// scene draws frame t of a moving picture into area r of img: smooth
// gradients, a fixed grain and a disc that moves a few pixels a frame,
// like the benchmark's video.
func scene(img *screen.Image, r image.Rectangle, t int) {
	cx := float64(r.Dx())*0.3 + 3*float64(t)
	cy := float64(r.Dy())*0.5 + 2*float64(t)
	rad := float64(r.Dy()) / 5
	grain := uint32(12345)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			grain ^= grain << 13
			grain ^= grain >> 17
			grain ^= grain << 5
			n := float64(int(grain&7) - 4)
			fx, fy := float64(x-r.Min.X), float64(y-r.Min.Y)
			b := 110 + 60*math.Sin(fx*0.01+float64(t)*0.05) + n
			g := 120 + 50*math.Cos(fy*0.013-float64(t)*0.03) + n
			rr := 128 + 40*math.Sin((fx+fy)*0.007) + n
			if dx, dy := fx-cx, fy-cy; dx*dx+dy*dy < rad*rad {
				b, g, rr = 40, 200, 230
			}
			p := img.Pix[img.PixOffset(x, y):]
			p[0], p[1], p[2], p[3] = clampf(b), clampf(g), clampf(rr), 0
		}
	}
}

func clampf(v float64) byte { return byte(math.Max(0, math.Min(255, v))) }

func TestNotAvailable(t *testing.T) {
	if Available {
		t.Skip("this build has the codec")
	}
	if _, err := NewEncoder(64, 64, 26, 30); !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("NewEncoder: %v, want ErrNotAvailable", err)
	}
	if _, err := NewDecoder(); !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("NewDecoder: %v, want ErrNotAvailable", err)
	}
}

// TestRoundTrip encodes a moving picture, placed off the image's origin,
// and decodes it into another image at another place: every decoded
// picture must be close to its source, and the pictures after the first
// must cost far less than the first (inter prediction works).
func TestRoundTrip(t *testing.T) {
	if !Available {
		t.Skip("built without -tags openh264")
	}
	for _, tc := range []struct {
		name    string
		w, h    int
		qp      int
		minPSNR float64
	}{
		{"qvga qp22", 320, 240, 22, 33},
		{"odd macroblocks qp30", 200, 118, 30, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := screen.NewImage(image.Rect(0, 0, tc.w+40, tc.h+20))
			area := image.Rect(24, 10, 24+tc.w, 10+tc.h)
			dst := screen.NewImage(image.Rect(0, 0, tc.w+8, tc.h+8))
			at := image.Rect(8, 8, 8+tc.w, 8+tc.h)
			enc, err := NewEncoder(tc.w, tc.h, tc.qp, 30)
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			dec, err := NewDecoder()
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			var first, rest int
			for i := range 20 {
				scene(src, area, i)
				data, err := enc.Encode(nil, src, area, i == 0)
				if err != nil {
					t.Fatal(err)
				}
				sizes, err := PictureSizes(data)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if i == 0 && (len(sizes) != 1 || sizes[0] != image.Pt(tc.w, tc.h)) {
					t.Fatalf("first frame's parameter sets announce %v, want one %dx%d", sizes, tc.w, tc.h)
				}
				drawn, err := dec.Decode(data, dst, at)
				if err != nil || !drawn {
					t.Fatalf("frame %d: drawn %v, %v", i, drawn, err)
				}
				moved := screen.NewImage(area)
				moved.CopyFrom(src, area)
				moved.Rect = at
				if p := PSNR(moved, dst, at); p < tc.minPSNR {
					t.Errorf("frame %d: PSNR %.1f dB, want at least %.0f", i, p, tc.minPSNR)
				}
				if i == 0 {
					first = len(data)
				} else {
					rest += len(data)
				}
			}
			t.Logf("first picture %d bytes, the next 19 %d bytes on average", first, rest/19)
			if rest/19 > first/2 {
				t.Errorf("pictures after the first average %d bytes, first %d: no inter prediction", rest/19, first)
			}
		})
	}
}

// TestDecodeRefusesWrongSize: a stream announcing another size than the
// rectangle is refused before the codec sees it.
func TestDecodeRefusesWrongSize(t *testing.T) {
	if !Available {
		t.Skip("built without -tags openh264")
	}
	src := screen.NewImage(image.Rect(0, 0, 64, 48))
	scene(src, src.Rect, 0)
	enc, err := NewEncoder(64, 48, 26, 30)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	data, err := enc.Encode(nil, src, src.Rect, true)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	fb := screen.NewImage(image.Rect(0, 0, 128, 128))
	if _, err := dec.Decode(data, fb, image.Rect(0, 0, 64, 64)); err == nil {
		t.Fatal("a 64x48 stream decoded into a 64x64 rectangle")
	}
	if drawn, err := dec.Decode(data, fb, image.Rect(10, 10, 74, 58)); err != nil || !drawn {
		t.Fatalf("right size: drawn %v, %v", drawn, err)
	}
}

func TestNALUnits(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want [][]byte
	}{
		{nil, nil},
		{[]byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3}, [][]byte{{0x67, 1, 2}, {0x68, 3}}},
		{[]byte{9, 0, 0, 1, 0x65}, [][]byte{{9}, {0x65}}},
		{[]byte{0x65, 1}, [][]byte{{0x65, 1}}},
		{[]byte{0, 0, 1}, [][]byte{{}}},
	} {
		got := NALUnits(tc.in)
		if len(got) != len(tc.want) {
			t.Errorf("NALUnits(% x) = %x, want %x", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], tc.want[i]) {
				t.Errorf("NALUnits(% x) = %x, want %x", tc.in, got, tc.want)
			}
		}
	}
}

// sps320 is openh264's SPS for 320x240 (Constrained Baseline, level
// 1.3, with VUI).
var sps320 = []byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0d, 0x8c, 0x8d, 0x40, 0xa0, 0xf9, 0x35, 0x01, 0x0d, 0x06, 0x07, 0x84, 0x42, 0x35}

func TestPictureSizes(t *testing.T) {
	sizes, err := PictureSizes(sps320)
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 1 || sizes[0] != image.Pt(320, 240) {
		t.Fatalf("sizes %v, want [320x240]", sizes)
	}
	for _, bad := range [][]byte{
		{0, 0, 1, 0x67, 100, 0, 0x1f, 0xff}, // High profile
		{0, 0, 1, 0x67, 0x42},               // truncated
		{0, 0, 1, 0xe7, 0x42, 0, 0},         // forbidden bit
	} {
		if _, err := PictureSizes(bad); err == nil {
			t.Errorf("PictureSizes(% x) accepted", bad)
		}
	}
}

func FuzzPictureSizes(f *testing.F) {
	f.Add(sps320)
	f.Add([]byte{0, 0, 1, 0x67, 66, 0, 10, 0xf8, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 1, 0x65, 0x88, 0, 0, 3, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		sizes, err := PictureSizes(data)
		if err != nil {
			return
		}
		for _, s := range sizes {
			if s.X <= 0 || s.Y <= 0 || s.X > 2*MaxSide || s.Y > 2*MaxSide {
				t.Fatalf("size %v out of range", s)
			}
		}
	})
}
