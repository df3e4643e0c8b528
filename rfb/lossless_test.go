package rfb

import (
	"bytes"
	"encoding/binary"
	"image"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/assist-project/assist/screen"
)

// grainImage is a smooth picture with camera-like grain: noise mostly
// shared by the three channels (brightness), partly each channel's own.
func grainImage(w, h int, seed uint64) *screen.Image {
	img := tightNewImage(w, h)
	rng := rand.New(rand.NewPCG(seed, 9))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			lum := float64(rng.IntN(13) - 6)
			n := func(v float64) uint32 {
				return uint32(max(0, min(255, v+lum+float64(rng.IntN(3)-1))))
			}
			r := 128 + 100*math.Sin(6*fx+2*fy)
			g := 128 + 100*math.Cos(5*fy-3*fx)
			b := 128 + 90*math.Sin(9*fx*fy+1)
			tightSet(img, x, y, n(r)<<16|n(g)<<8|n(b))
		}
	}
	return img
}

// losslessPayload encodes area r of img and returns the rectangle's
// payload (after its header).
func losslessPayload(t testing.TB, img *screen.Image, r image.Rectangle) []byte {
	t.Helper()
	buf, n := newLosslessEncoder().encode(nil, img, r, &NativeFormat)
	if n != 1 || len(buf) < 12 {
		t.Fatalf("encode made %d rectangles in %d bytes", n, len(buf))
	}
	if got, enc := readRect(buf[:8]), int32(binary.BigEndian.Uint32(buf[8:])); got != r || enc != EncAssistLossless {
		t.Fatalf("rectangle header %v encoding %#x, want %v %#x", got, enc, r, EncAssistLossless)
	}
	return buf[12:]
}

// sameRGB reports whether area a of x holds the pixels of area b of y,
// ignoring the unused fourth byte.
func sameRGB(x *screen.Image, a image.Rectangle, y *screen.Image, b image.Rectangle) bool {
	for row := 0; row < a.Dy(); row++ {
		p := x.Pix[x.PixOffset(a.Min.X, a.Min.Y+row):][:4*a.Dx()]
		q := y.Pix[y.PixOffset(b.Min.X, b.Min.Y+row):][:4*a.Dx()]
		for i := 0; i < len(p); i += 4 {
			if p[i] != q[i] || p[i+1] != q[i+1] || p[i+2] != q[i+2] {
				return false
			}
		}
	}
	return true
}

func TestLosslessRoundTrip(t *testing.T) {
	extremes := tightNewImage(64, 48)
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			// Neighbours at opposite ends of the range: every error
			// wraps around.
			v := uint32(0)
			if (x+y)%2 == 0 {
				v = 0xffffff
			}
			if x%7 == 3 {
				v = 0xff00ff
			}
			tightSet(extremes, x, y, v)
		}
	}
	for _, tc := range []struct {
		name string
		img  *screen.Image
		r    image.Rectangle
	}{
		{"grain", grainImage(200, 120, 1), image.Rect(0, 0, 200, 120)},
		{"photo inside", tightImgPhoto(200, 120), image.Rect(17, 9, 150, 101)},
		{"noise", tightImgNoise(64, 64), image.Rect(0, 0, 64, 64)},
		{"gradient", tightImgGradient(100, 60), image.Rect(0, 0, 100, 60)},
		{"flat", tightImgSolid(40, 40), image.Rect(0, 0, 40, 40)},
		{"extremes", extremes, extremes.Rect},
		{"one pixel", tightImgPhoto(8, 8), image.Rect(3, 4, 4, 5)},
		{"one row", tightImgPhoto(90, 8), image.Rect(0, 2, 90, 3)},
		{"one column", tightImgPhoto(8, 90), image.Rect(5, 0, 6, 90)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := losslessPayload(t, tc.img, tc.r)
			// Drawn elsewhere in a bigger picture: predictors read the
			// rectangle's own pixels only.
			dst := tightNewImage(tc.r.Dx()+20, tc.r.Dy()+10)
			tightFillRect(dst, dst.Rect, 0x123456)
			dr := tc.r.Sub(tc.r.Min).Add(image.Pt(13, 7))
			var d losslessDecoder
			if err := d.decode(bytes.NewReader(payload), tc.r, dst, dr); err != nil {
				t.Fatal(err)
			}
			if !sameRGB(dst, dr, tc.img, tc.r) {
				t.Error("decoded pixels differ from the original")
			}
			// Its neighbours untouched.
			if got := dst.Pix[dst.PixOffset(dr.Min.X-1, dr.Min.Y):][:3]; !bytes.Equal(got, []byte{0x56, 0x34, 0x12}) {
				t.Errorf("pixel left of the rectangle became %x", got)
			}
		})
	}
}

// TestLosslessSmallerThanGradient: the point of the encoding. Against
// Tight's gradient filter with zlib at its best level, on the same
// pictures.
func TestLosslessSmallerThanGradient(t *testing.T) {
	for _, tc := range []struct {
		name string
		img  *screen.Image
		max  float64 // the most bytes, as a share of Tight's
	}{
		// Grain mostly shared by the channels: what subtracting green
		// takes out.
		{"grain", grainImage(640, 400, 2), 0.8},
		// Each channel's noise its own: prediction alone.
		{"photo", tightImgPhoto(640, 400), 1.0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pf := NativeFormat
			e := newTightEncoder()
			e.setQuality(-1)
			e.setCompression(9)
			e.gradient = true
			tight, _ := e.encode(nil, tc.img, tc.img.Rect, &pf)
			e.close()
			ours := losslessPayload(t, tc.img, tc.img.Rect)
			share := float64(len(ours)) / float64(len(tight))
			t.Logf("%s: %d bytes, Tight gradient %d: %.0f%%", tc.name, len(ours), len(tight), 100*share)
			if share > tc.max {
				t.Errorf("%d bytes, %.0f%% of Tight gradient's %d: want at most %.0f%%", len(ours), 100*share, len(tight), 100*tc.max)
			}
		})
	}
}

func TestLosslessRejects(t *testing.T) {
	r := image.Rect(0, 0, 16, 8)
	good := losslessPayload(t, tightImgPhoto(16, 8), r)
	// parts is a payload of one well-formed zstd frame per content.
	parts := func(contents ...[]byte) []byte {
		z, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithSingleSegment(true))
		defer z.Close()
		var p []byte
		for _, c := range contents {
			f := z.EncodeAll(c, nil)
			p = append(binary.BigEndian.AppendUint32(p, uint32(len(f))), f...)
		}
		return p
	}
	sizes := losslessParts(16, 8)
	first, plane := make([]byte, sizes[0]), make([]byte, sizes[1])
	badPredictor := make([]byte, sizes[0])
	badPredictor[3] = losslessPredictors
	for _, tc := range []struct {
		name    string
		payload []byte
		rect    image.Rectangle
		want    string
	}{
		{"truncated length", good[:2], r, "length"},
		{"truncated frame", good[:len(good)-3], r, "EOF"},
		{"claims too much", binary.BigEndian.AppendUint32(nil, uint32(losslessMaxFrame(sizes[0])+1)), r, "claims"},
		{"part too short", parts(first, plane[1:], plane), r, "declare"},
		{"part too long", parts(first, plane, append(plane, 0)), r, "declare"},
		{"part missing", parts(first, plane), r, "EOF"},
		{"no content size", append(binary.BigEndian.AppendUint32(nil, 10), 0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0x21, 0, 0, 0), r, "declare"},
		{"not zstd", append(binary.BigEndian.AppendUint32(nil, 8), "notzstd!"...), r, "lossless rectangle"},
		{"bad predictor", parts(badPredictor, plane, plane), r, "predictor"},
		{"too big", good, image.Rect(0, 0, 5000, 5000), "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := screen.NewImage(tc.rect)
			var d losslessDecoder
			err := d.decode(bytes.NewReader(tc.payload), tc.rect, dst, tc.rect)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

// FuzzLosslessRect: whatever the payload, the decoder returns an error
// or draws within its rectangle, and never panics.
func FuzzLosslessRect(f *testing.F) {
	f.Add(uint16(16), uint16(8), losslessPayload(f, tightImgPhoto(16, 8), image.Rect(0, 0, 16, 8)))
	f.Add(uint16(1), uint16(1), losslessPayload(f, tightImgPhoto(1, 1), image.Rect(0, 0, 1, 1)))
	f.Add(uint16(3), uint16(2), []byte{0, 0, 0, 4, 0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, w, h uint16, payload []byte) {
		rect := image.Rect(0, 0, int(w%300), int(h%300))
		dst := screen.NewImage(image.Rect(0, 0, 300, 300))
		var d losslessDecoder
		d.decode(bytes.NewReader(payload), rect, dst, rect)
	})
}

func BenchmarkLosslessEncode(b *testing.B) {
	img := grainImage(1280, 800, 3)
	e := newLosslessEncoder()
	defer e.close()
	var buf []byte
	b.SetBytes(int64(4 * 1280 * 800))
	for b.Loop() {
		buf, _ = e.encode(buf[:0], img, img.Rect, &NativeFormat)
	}
	b.ReportMetric(float64(len(buf)*8)/float64(1280*800), "bits/pixel")
}

func BenchmarkLosslessDecode(b *testing.B) {
	img := grainImage(1280, 800, 3)
	payload := losslessPayload(b, img, img.Rect)
	dst := screen.NewImage(img.Rect)
	var d losslessDecoder
	b.SetBytes(int64(4 * 1280 * 800))
	for b.Loop() {
		if err := d.decode(bytes.NewReader(payload), img.Rect, dst, img.Rect); err != nil {
			b.Fatal(err)
		}
	}
}
