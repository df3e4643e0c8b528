package rfb

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"

	"github.com/assist-project/assist/screen"
)

// jpegSOFSampling returns the luma sampling factors (h, v) from the
// start-of-frame marker of a baseline or progressive JFIF stream.
func jpegSOFSampling(t *testing.T, data []byte) (int, int) {
	t.Helper()
	for i := 2; i+9 < len(data); {
		if data[i] != 0xff {
			t.Fatalf("no marker at %d", i)
		}
		m := data[i+1]
		n := int(data[i+2])<<8 | int(data[i+3])
		if m == 0xc0 || m == 0xc1 || m == 0xc2 {
			// SOF: length, precision, height, width, components, then
			// per component: id, sampling (h<<4|v), table.
			s := data[i+11]
			return int(s >> 4), int(s & 15)
		}
		i += 2 + n
	}
	t.Fatal("no SOF marker")
	return 0, 0
}

// The compressor of this build (libjpeg-turbo with -tags turbojpeg,
// image/jpeg otherwise) makes pictures image/jpeg can read, of the right
// size and close to the source, from a sub-area of a larger image whose
// stride is not its width.
func TestJPEGCompressor(t *testing.T) {
	src := tightImgPhoto(300, 200)
	area := image.Rect(17, 11, 217, 161)
	c := newJPEGCompressor()
	defer c.close()
	for _, sub := range []jpegSubsampling{jpegSub444, jpegSub422, jpegSub420} {
		prefix := []byte("keep")
		out, err := c.appendJPEG(prefix, src, area, 90, sub)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out, []byte("keep")) {
			t.Fatal("prefix lost")
		}
		data := out[4:]
		m, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if m.Bounds().Size() != area.Size() {
			t.Fatalf("size %v, want %v", m.Bounds().Size(), area.Size())
		}
		fb := screen.NewImage(src.Rect)
		if err := jpegDraw(fb, area, data, &NativeFormat); err != nil {
			t.Fatal(err)
		}
		// Quality 90 on smooth content: well over 30 dB. Swapped red and
		// blue, or a shifted area, would be far below.
		if p := tightPSNR(src, fb, area); p < 30 {
			t.Errorf("subsampling %d: PSNR %.1f dB", sub, p)
		}
		h, v := jpegSOFSampling(t, data)
		if jpegTurbo {
			want := map[jpegSubsampling][2]int{jpegSub444: {1, 1}, jpegSub422: {2, 1}, jpegSub420: {2, 2}}[sub]
			if h != want[0] || v != want[1] {
				t.Errorf("subsampling %d: luma sampling %dx%d, want %dx%d", sub, h, v, want[0], want[1])
			}
		}
	}
	// Usable again after close.
	c.close()
	if _, err := c.appendJPEG(nil, src, area, 50, jpegSub420); err != nil {
		t.Fatalf("after close: %v", err)
	}
}

func TestJPEGCompressorBadArea(t *testing.T) {
	src := tightImgPhoto(30, 20)
	c := newJPEGCompressor()
	defer c.close()
	for _, r := range []image.Rectangle{{}, image.Rect(10, 10, 40, 15), image.Rect(-1, 0, 5, 5)} {
		out, err := c.appendJPEG([]byte{1, 2}, src, r, 80, jpegSub444)
		if err == nil {
			t.Errorf("%v: no error", r)
		}
		if !bytes.Equal(out, []byte{1, 2}) {
			t.Errorf("%v: dst changed to %v", r, out)
		}
	}
	short := &screen.Image{Pix: src.Pix[:100], Stride: src.Stride, Rect: src.Rect}
	if _, err := c.appendJPEG(nil, short, image.Rect(0, 0, 30, 20), 80, jpegSub444); err == nil {
		t.Error("short pixel buffer: no error")
	}
}

// jpegDraw refuses pictures whose size is not the rectangle's before
// decoding them.
func TestJPEGDrawSizeMismatch(t *testing.T) {
	src := tightImgPhoto(40, 30)
	c := newJPEGCompressor()
	defer c.close()
	data, err := c.appendJPEG(nil, src, src.Rect, 80, jpegSub420)
	if err != nil {
		t.Fatal(err)
	}
	fb := screen.NewImage(image.Rect(0, 0, 64, 64))
	if err := jpegDraw(fb, image.Rect(0, 0, 40, 31), data, &NativeFormat); err == nil {
		t.Error("no error for a picture of the wrong size")
	}
	if err := jpegDraw(fb, image.Rect(0, 0, 40, 30), data[:len(data)/2], &NativeFormat); err == nil {
		t.Error("no error for a truncated picture")
	}
}

func TestJPEGLevels(t *testing.T) {
	prev := 0
	for i, l := range tightJPEGLevels {
		if l.quality <= prev || l.quality > 100 {
			t.Errorf("level %d: quality %d not increasing within 1..100", i, l.quality)
		}
		prev = l.quality
	}
}

func BenchmarkJPEGCompress640x480(b *testing.B) {
	src := tightImgPhoto(640, 480)
	c := newJPEGCompressor()
	defer c.close()
	var out []byte
	b.SetBytes(int64(len(src.Pix)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = c.appendJPEG(out[:0], src, src.Rect, 92, jpegSub444); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJPEGCompress640x480Bands compresses the same picture as
// BenchmarkJPEGCompress640x480 as five bands of 96 rows, as assist sends a
// video whose frames X reports band by band: the difference is what
// compressing a frame in pieces costs.
func BenchmarkJPEGCompress640x480Bands(b *testing.B) {
	src := tightImgPhoto(640, 480)
	c := newJPEGCompressor()
	defer c.close()
	var out []byte
	b.SetBytes(int64(len(src.Pix)))
	b.ReportAllocs()
	for b.Loop() {
		for y := 0; y < 480; y += 96 {
			var err error
			if out, err = c.appendJPEG(out[:0], src, image.Rect(0, y, 640, y+96), 92, jpegSub444); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// This build's decoder (libjpeg-turbo with -tags turbojpeg) and
// image/jpeg both draw a picture into the right area of a framebuffer
// whose stride is not the picture's width, close to the source, with
// X = 0, and they agree with each other.
func TestJPEGDecoders(t *testing.T) {
	src := tightImgPhoto(300, 200)
	area := image.Rect(17, 11, 217, 161)
	c := newJPEGCompressor()
	defer c.close()
	for _, sub := range []jpegSubsampling{jpegSub444, jpegSub420} {
		data, err := c.appendJPEG(nil, src, area, 90, sub)
		if err != nil {
			t.Fatal(err)
		}
		fast, slow := screen.NewImage(src.Rect), screen.NewImage(src.Rect)
		for i := range fast.Pix {
			fast.Pix[i], slow.Pix[i] = 0x5a, 0x5a
		}
		if err := jpegDecode(fast, area, data); err != nil {
			t.Fatal(err)
		}
		if err := jpegDecodeGo(slow, area, data); err != nil {
			t.Fatal(err)
		}
		for _, fb := range []*screen.Image{fast, slow} {
			if p := tightPSNR(src, fb, area); p < 30 {
				t.Errorf("subsampling %d: PSNR %.1f dB", sub, p)
			}
			for y := 0; y < fb.Rect.Dy(); y++ {
				for x := 0; x < fb.Rect.Dx(); x++ {
					i := fb.PixOffset(x, y)
					in := image.Pt(x, y).In(area)
					if in && fb.Pix[i+3] != 0 || !in && fb.Pix[i] != 0x5a {
						t.Fatalf("subsampling %d: pixel (%d,%d) = %v: X not 0 inside %v, or written outside", sub, x, y, fb.Pix[i:i+4], area)
					}
				}
			}
		}
		if p := tightPSNR(slow, fast, area); p < 40 {
			t.Errorf("subsampling %d: the decoders differ, PSNR %.1f dB", sub, p)
		}
	}
}
