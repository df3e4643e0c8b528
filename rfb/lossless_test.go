package rfb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/assist-project/assist/bench/workload"
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

// losslessEncodings are the private lossless encodings.
var losslessEncodings = []int32{EncAssistLossless, EncAssistLosslessFSE}

// losslessPayload encodes area r of img with enc and returns the
// rectangle's payload (after its header).
func losslessPayload(t testing.TB, enc int32, img *screen.Image, r image.Rectangle) []byte {
	t.Helper()
	e := newLosslessEncoder(enc)
	defer e.close()
	buf, n := e.encode(nil, img, r, &NativeFormat)
	if n != 1 || len(buf) < 12 {
		t.Fatalf("encode made %d rectangles in %d bytes", n, len(buf))
	}
	if got, gotEnc := readRect(buf[:8]), int32(binary.BigEndian.Uint32(buf[8:])); got != r || gotEnc != enc {
		t.Fatalf("rectangle header %v encoding %#x, want %v %#x", got, gotEnc, r, enc)
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
		for _, enc := range losslessEncodings {
			t.Run(fmt.Sprintf("%s/%#x", tc.name, enc), func(t *testing.T) {
				payload := losslessPayload(t, enc, tc.img, tc.r)
				// Drawn elsewhere in a bigger picture: predictors read
				// the rectangle's own pixels only.
				dst := tightNewImage(tc.r.Dx()+20, tc.r.Dy()+10)
				tightFillRect(dst, dst.Rect, 0x123456)
				dr := tc.r.Sub(tc.r.Min).Add(image.Pt(13, 7))
				var d losslessDecoder
				if err := d.decode(bytes.NewReader(payload), enc, tc.r, dst, dr); err != nil {
					t.Fatal(err)
				}
				if !sameRGB(dst, dr, tc.img, tc.r) {
					t.Error("decoded pixels differ from the original")
				}
				// Its neighbours untouched.
				if got := dst.Pix[dst.PixOffset(dr.Min.X-1, dr.Min.Y):][:3]; !bytes.Equal(got, []byte{0x56, 0x34, 0x12}) {
					t.Errorf("pixel left of the rectangle became %x", got)
				}
				// A decoder that drew a bigger rectangle before draws
				// this one alike (its buffers are reused).
				big := grainImage(300, 200, 9)
				if err := d.decode(bytes.NewReader(losslessPayload(t, enc, big, big.Rect)), enc, big.Rect, screen.NewImage(big.Rect), big.Rect); err != nil {
					t.Fatal(err)
				}
				if err := d.decode(bytes.NewReader(payload), enc, tc.r, dst, dr); err != nil {
					t.Fatal(err)
				}
				if !sameRGB(dst, dr, tc.img, tc.r) {
					t.Error("decoded pixels differ from the original after a bigger rectangle")
				}
			})
		}
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
			for _, enc := range losslessEncodings {
				ours := losslessPayload(t, enc, tc.img, tc.img.Rect)
				share := float64(len(ours)) / float64(len(tight))
				t.Logf("%s %#x: %d bytes, Tight gradient %d: %.0f%%", tc.name, enc, len(ours), len(tight), 100*share)
				if share > tc.max {
					t.Errorf("%#x: %d bytes, %.0f%% of Tight gradient's %d: want at most %.0f%%", enc, len(ours), 100*share, len(tight), 100*tc.max)
				}
			}
		})
	}
}

func TestLosslessRejects(t *testing.T) {
	r := image.Rect(0, 0, 16, 8)
	good := losslessPayload(t, EncAssistLossless, tightImgPhoto(16, 8), r)
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
	checkLosslessRejects(t, EncAssistLossless, []losslessReject{
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
	})
}

// losslessReject is a malformed payload and what the decoder's error must
// name.
type losslessReject struct {
	name    string
	payload []byte
	rect    image.Rectangle
	want    string
}

// checkLosslessRejects decodes each case as enc and checks its error.
func checkLosslessRejects(t *testing.T, enc int32, cases []losslessReject) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := screen.NewImage(tc.rect)
			var d losslessDecoder
			err := d.decode(bytes.NewReader(tc.payload), enc, tc.rect, dst, tc.rect)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

// TestLosslessFSESmaller: the point of EncAssistLosslessFSE. Against
// EncAssistLossless on the same pictures, whole and in slices of rows as
// refinement sends them.
func TestLosslessFSESmaller(t *testing.T) {
	for _, tc := range []struct {
		name string
		img  *screen.Image
		rows int     // rows a slice
		max  float64 // the most bytes, as a share of EncAssistLossless's
	}{
		// The benchmark's full-screen scene, grain shared by the
		// channels, in refinement's slices (one row of cells, 8 pixels,
		// on the links of the benchmark): what the encoding is for.
		{"scene in slices", workload.Scene(1280, 800, 7.3, 3), 8, 0.93},
		{"scene in larger slices", workload.Scene(1280, 800, 7.3, 3), 48, 0.92},
		{"scene whole", workload.Scene(1280, 800, 2.1, 3), 800, 0.9},
		// Each channel with grain of its own as well: less to gain.
		{"grain", grainImage(640, 400, 2), 400, 0.95},
		{"grain in slices", grainImage(640, 400, 2), 8, 1},
		// Each channel's noise its own only: about the same.
		{"photo", tightImgPhoto(640, 400), 8, 1},
		// Flat areas beside grain.
		{"grain with flat band", photoWithFlatBand(640, 400), 8, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var size [2]int
			for i, enc := range losslessEncodings {
				for y := 0; y < tc.img.Rect.Dy(); y += tc.rows {
					r := image.Rect(0, y, tc.img.Rect.Dx(), min(y+tc.rows, tc.img.Rect.Dy()))
					size[i] += len(losslessPayload(t, enc, tc.img, r))
				}
			}
			share := float64(size[1]) / float64(size[0])
			t.Logf("%d bytes against %d: %.0f%%", size[1], size[0], 100*share)
			if share > tc.max {
				t.Errorf("EncAssistLosslessFSE took %d bytes, %.0f%% of EncAssistLossless's %d: want at most %.0f%%", size[1], 100*share, size[0], 100*tc.max)
			}
		})
	}
}

// photoWithFlatBand is grain with a flat band across its middle third.
func photoWithFlatBand(w, h int) *screen.Image {
	img := grainImage(w, h, 7)
	tightFillRect(img, image.Rect(0, h/3, w, 2*h/3), 0x3060a0)
	return img
}

// fsePayload builds an EncAssistLosslessFSE payload by hand: the row
// predictors, then for each plane the streams given (sorted by context),
// each a count and raw bytes.
func fsePayload(predictors []byte, streams [3][losslessContexts][]byte) []byte {
	p := append([]byte(nil), predictors...)
	for _, plane := range streams {
		p = append(p, losslessContexts)
		for _, s := range plane {
			p = binary.AppendUvarint(p, uint64(len(s)))
			if len(s) > 0 {
				p = append(append(p, losslessStreamRaw), s...)
			}
		}
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
}

// TestLosslessFSERejects: every malformed EncAssistLosslessFSE payload is
// an error naming what is wrong, never a panic or a picture.
func TestLosslessFSERejects(t *testing.T) {
	r := image.Rect(0, 0, 4, 2) // 8 bytes a plane
	zeros := make([]byte, 8)
	// A flat picture: every error 0, all in context 0.
	flat := [3][losslessContexts][]byte{{zeros}, {zeros}, {zeros}}
	good := fsePayload([]byte{0, 0}, flat)
	withPlane0 := func(streams ...[]byte) []byte {
		s := flat
		s[0] = [losslessContexts][]byte{}
		copy(s[0][:], streams)
		return fsePayload([]byte{0, 0}, s)
	}
	// body rewraps the bytes after the length with a new length.
	body := func(b []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }
	noContexts := body([]byte{0, 0, losslessContexts})
	// Predictors, then plane 0 as one stream of 8 bytes: its count.
	one := []byte{0, 0, 1, 8}
	checkLosslessRejects(t, EncAssistLosslessFSE, []losslessReject{
		{"truncated length", good[:2], r, "length"},
		{"truncated", good[:len(good)-3], r, "EOF"},
		{"claims too much", binary.BigEndian.AppendUint32(nil, uint32(losslessMaxFrame(losslessSize(4, 2))+1)), r, "claims"},
		{"no predictors", body([]byte{0}), r, "predictors"},
		{"no counts", noContexts, r, "bad byte count"},
		{"count over the plane", withPlane0(make([]byte, 9)), r, "bad byte count"},
		{"plane short", withPlane0(make([]byte, 7)), r, "holds 7 bytes, want 8"},
		// An error of 1 at the first pixel: the next is in context 1,
		// whose stream is empty.
		{"stream ends", withPlane0(append([]byte{2}, zeros[1:]...)), r, "stream ends at (1,0)"},
		{"plane missing", body([]byte{0, 0}), r, "plane 0 missing"},
		{"unknown stream count", body([]byte{0, 0, 2}), r, "in 2 streams"},
		{"one stream short", body([]byte{0, 0, 1, 7, losslessStreamRaw, 0, 0, 0, 0, 0, 0, 0}), r, "holds 7 bytes, want 8"},
		{"unknown mode", body(append(append(one, 7), zeros...)), r, "unknown mode 7"},
		{"raw short", body(append(one, losslessStreamRaw, 0, 0)), r, "raw bytes"},
		{"repeat without its byte", body(append(one, losslessStreamRepeat)), r, "no byte to repeat"},
		{"no mode", body(one), r, "no mode"},
		{"FSE length over the payload", body(append(one, losslessStreamFSE, 100, 1, 2)), r, "bad FSE length"},
		{"FSE garbage", body(append(one, losslessStreamFSE, 4, 0xff, 0xff, 0xff, 0xff)), r, "FSE"},
		{"bytes left over", body(append(good[4:], 9)), r, "left over"},
		{"bad predictor", fsePayload([]byte{0, losslessPredictors}, flat), r, "predictor"},
		{"too big", good, image.Rect(0, 0, 5000, 5000), "limit"},
	})
	// The hand-built payloads themselves are good: sorted, and with
	// plane 0 as one stream.
	// (Plane 0 of good: its stream count, context 0's count, mode and 8
	// bytes, the other contexts' counts.)
	oneStream := body(append(append(one, losslessStreamRepeat, 0), good[4+2+1+2+8+losslessContexts-1:]...))
	for _, p := range [][]byte{good, oneStream} {
		dst := screen.NewImage(r)
		var d losslessDecoder
		if err := d.decode(bytes.NewReader(p), EncAssistLosslessFSE, r, dst, r); err != nil {
			t.Errorf("a good payload: %v", err)
		}
	}
}

// TestLosslessFSEStreams: each stream goes in the mode of fewest bytes,
// and each decodes.
func TestLosslessFSEStreams(t *testing.T) {
	skewed := make([]byte, 4000) // mostly 0: FSE
	for i := range skewed {
		if i%5 == 0 {
			skewed[i] = byte(i % 3)
		}
	}
	uniform := make([]byte, 4000) // every value alike: raw
	for i := range uniform {
		uniform[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name string
		s    []byte
		mode byte
		max  int // most bytes after the count
	}{
		{"repeat", bytes.Repeat([]byte{5}, 1000), losslessStreamRepeat, 2},
		{"one byte", []byte{9}, losslessStreamRaw, 2},
		{"skewed", skewed, losslessStreamFSE, 1200},
		{"uniform", uniform, losslessStreamRaw, 4001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLosslessEncoder(EncAssistLosslessFSE)
			out := e.appendStream(nil, tc.s)
			n, k := binary.Uvarint(out)
			if n != uint64(len(tc.s)) {
				t.Fatalf("count %d, want %d", n, len(tc.s))
			}
			out = out[k:]
			if out[0] != tc.mode || len(out) > tc.max {
				t.Errorf("mode %d in %d bytes, want mode %d in at most %d", out[0], len(out), tc.mode, tc.max)
			}
			var d losslessDecoder
			got := make([]byte, len(tc.s))
			rest, err := d.readStream(out, got)
			if err != nil || len(rest) != 0 || !bytes.Equal(got, tc.s) {
				t.Errorf("decoded %d bytes equal: %v, %d left, error %v", len(got), bytes.Equal(got, tc.s), len(rest), err)
			}
		})
	}
}

// FuzzLosslessRect: whatever the payload, the decoder returns an error
// or draws within its rectangle, and never panics.
func FuzzLosslessRect(f *testing.F) {
	for i, enc := range losslessEncodings {
		f.Add(uint8(i), uint16(16), uint16(8), losslessPayload(f, enc, tightImgPhoto(16, 8), image.Rect(0, 0, 16, 8)))
		f.Add(uint8(i), uint16(1), uint16(1), losslessPayload(f, enc, tightImgPhoto(1, 1), image.Rect(0, 0, 1, 1)))
		f.Add(uint8(i), uint16(40), uint16(30), losslessPayload(f, enc, grainImage(40, 30, 5), image.Rect(0, 0, 40, 30)))
	}
	f.Add(uint8(0), uint16(3), uint16(2), []byte{0, 0, 0, 4, 0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, which uint8, w, h uint16, payload []byte) {
		enc := losslessEncodings[int(which)%len(losslessEncodings)]
		rect := image.Rect(0, 0, int(w%300), int(h%300))
		dst := screen.NewImage(image.Rect(0, 0, 300, 300))
		var d losslessDecoder
		d.decode(bytes.NewReader(payload), enc, rect, dst, rect)
	})
}

func BenchmarkLosslessEncode(b *testing.B) {
	img := grainImage(1280, 800, 3)
	for _, enc := range losslessEncodings {
		b.Run(fmt.Sprintf("%#x", enc), func(b *testing.B) {
			e := newLosslessEncoder(enc)
			defer e.close()
			var buf []byte
			b.SetBytes(int64(4 * 1280 * 800))
			for b.Loop() {
				buf, _ = e.encode(buf[:0], img, img.Rect, &NativeFormat)
			}
			b.ReportMetric(float64(len(buf)*8)/float64(1280*800), "bits/pixel")
		})
	}
}

func BenchmarkLosslessDecode(b *testing.B) {
	img := grainImage(1280, 800, 3)
	for _, enc := range losslessEncodings {
		b.Run(fmt.Sprintf("%#x", enc), func(b *testing.B) {
			payload := losslessPayload(b, enc, img, img.Rect)
			dst := screen.NewImage(img.Rect)
			var d losslessDecoder
			b.SetBytes(int64(4 * 1280 * 800))
			for b.Loop() {
				if err := d.decode(bytes.NewReader(payload), enc, img.Rect, dst, img.Rect); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
