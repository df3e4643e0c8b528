package rfb

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"math"
	"net"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// scaledRect is a scaled rectangle of area r of img, as a server sends it
// at Tight JPEG level level (payload only, no header).
func scaledPayload(t testing.TB, img *screen.Image, r image.Rectangle, level int) []byte {
	t.Helper()
	c := &conn{tight: newTightEncoder(), scratch: img}
	defer c.tight.close()
	defer func() {
		if c.scaleJPEG != nil {
			c.scaleJPEG.close()
		}
	}()
	buf, n := c.appendScaled(nil, r, level, c.tight, &NativeFormat)
	if n != 1 || int32(binary.BigEndian.Uint32(buf[8:])) != EncAssistScaled {
		t.Fatalf("appendScaled made %d rectangles, header %x", n, buf[:min(12, len(buf))])
	}
	return buf[12:]
}

// A scaled picture decodes to its area's size and, for content without
// fine detail, close to the original; the same size scales to itself.
func TestScaledRoundTrip(t *testing.T) {
	img := screen.NewImage(image.Rect(0, 0, 200, 120))
	photo(img, img.Rect)
	for _, tc := range []struct {
		name    string
		r       image.Rectangle
		minPSNR float64
	}{
		{"even", image.Rect(0, 0, 200, 120), 26},
		{"odd sides, offset", image.Rect(3, 5, 180, 118), 26},
		{"one pixel", image.Rect(7, 7, 8, 8), 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := scaledPayload(t, img, tc.r, 5)
			sw, sh := int(binary.BigEndian.Uint16(p)), int(binary.BigEndian.Uint16(p[2:]))
			if sw != (tc.r.Dx()+1)/2 || sh != (tc.r.Dy()+1)/2 {
				t.Errorf("picture of %dx%d for a %v area", sw, sh, tc.r.Size())
			}
			got := screen.NewImage(img.Rect)
			var d scaledDecoder
			rd := bytes.NewReader(p)
			if err := d.decode(rd, tc.r, got, tc.r); err != nil {
				t.Fatal(err)
			}
			if rd.Len() != 0 {
				t.Errorf("%d bytes left unread", rd.Len())
			}
			if psnr := tightPSNR(img, got, tc.r); psnr < tc.minPSNR {
				t.Errorf("PSNR %.1f dB, want at least %.0f", psnr, tc.minPSNR)
			}
		})
	}
	src := screen.NewImage(image.Rect(0, 0, 9, 7))
	fillPattern(src, src.Rect, 3)
	dst := screen.NewImage(image.Rect(0, 0, 20, 20))
	upscale(dst, image.Rect(5, 6, 14, 13), src)
	for y := 0; y < 7; y++ {
		for x := 0; x < 9; x++ {
			a, b := src.Pix[src.PixOffset(x, y):][:3], dst.Pix[dst.PixOffset(x+5, y+6):][:3]
			if !bytes.Equal(a, b) {
				t.Fatalf("upscale to the same size changed pixel %d,%d: %v -> %v", x, y, a, b)
			}
		}
	}
}

// Over a slow paced link, a large area that keeps changing goes at half
// resolution (far fewer bytes), close to the source, and exact after
// lossless refinement once it stops; a small change and a large area
// that changed once go as usual. Over a fast link nothing goes scaled,
// and neither to a viewer that did not name the encoding.
func TestServerScaled(t *testing.T) {
	bytes := map[string]int{}
	for _, tc := range []struct {
		name       string
		mbits      float64
		encs       []int32
		wantScaled bool
	}{
		{"slow link", 2, []int32{EncTight, EncJPEGQuality0 + 8, EncAssistScaled}, true},
		{"fast link", 100, []int32{EncTight, EncJPEGQuality0 + 8, EncAssistScaled}, false},
		{"not offered", 2, []int32{EncTight, EncJPEGQuality0 + 8}, false},
		{"lossless viewer", 2, []int32{EncTight, EncAssistScaled}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bytes[tc.name] = testServerScaled(t, tc.mbits, tc.encs, tc.wantScaled)
		})
	}
	// The same frame of a large changing area, on the same slow link.
	if s, n := bytes["slow link"], bytes["not offered"]; s*2 > n {
		t.Errorf("a scaled frame took %d bytes, at full size %d: want at most half", s, n)
	}
}

// testServerScaled returns the bytes of the last frame of the changing
// area.
func testServerScaled(t *testing.T, mbits float64, encs []int32, wantScaled bool) int {
	ts := startServer(t, 640, 480, false)
	// No refinement between frames, which a loaded machine can space
	// more than 200 ms apart: it would ride in the frames' updates.
	ts.srv.refineDelay = 2 * time.Second
	a, b := net.Pipe()
	pp := &pacedPipe{Conn: a, room: make(chan struct{}, 1)}
	pp.set(false, mbits)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.srv.ServeConn(context.Background(), pp)
	}()
	defer func() { b.Close(); <-done }()
	b.SetReadDeadline(time.Now().Add(30 * time.Second))
	c, err := NewClient(b, ClientConfig{Encodings: encs})
	if err != nil {
		t.Fatal(err)
	}
	count := func(m Message, enc int32) int {
		n := 0
		for _, r := range m.Rects {
			if r.Encoding == enc {
				n++
			}
		}
		return n
	}
	askUpdate(t, c, false)
	// A watcher sees each change captured before the viewer asks for it.
	watch := ts.srv.Screen.Subscribe()
	defer watch.Close()
	watch.Take(nil)
	change := func(r image.Rectangle, draw func(*screen.Image, image.Rectangle)) {
		t.Helper()
		ts.desk.Change(func(img *screen.Image) image.Rectangle {
			draw(img, r)
			return r
		})
		for seen := false; !seen; {
			<-watch.Ready()
			for _, d := range watch.Take(nil).Dirty {
				seen = seen || d.Overlaps(r)
			}
		}
	}

	video := image.Rect(0, 0, 480, 320)
	var first, last Message
	for i := range 6 {
		change(video, func(img *screen.Image, r image.Rectangle) { smooth(img, r, float64(i)) })
		last = nextUpdate(t, c)
		if i == 0 {
			first = last
		}
	}
	t.Logf("%g Mbit/s: first frame %d bytes (%d scaled), last %d bytes (%d scaled)",
		mbits, first.Bytes, count(first, EncAssistScaled), last.Bytes, count(last, EncAssistScaled))
	if count(first, EncAssistScaled) != 0 {
		t.Errorf("the first change of an area went scaled: it was not changing yet")
	}
	if got := count(last, EncAssistScaled) > 0; got != wantScaled {
		t.Fatalf("a large area changing 6 times went scaled: %v, want %v", got, wantScaled)
	}
	if !wantScaled {
		return last.Bytes
	}
	want := ts.desk.Snapshot()
	if psnr := tightPSNR(want, c.Framebuffer(), video); psnr < 28 {
		t.Errorf("scaled area at PSNR %.1f dB, want at least 28", psnr)
	}

	// A small change, and a large area changing for the first time, go
	// at full size.
	key := image.Rect(600, 440, 608, 456)
	change(key, func(img *screen.Image, r image.Rectangle) { fillPattern(img, r, 7) })
	if m := nextUpdate(t, c); count(m, EncAssistScaled) != 0 {
		t.Errorf("a small change went scaled: %+v", m.Rects)
	} else {
	}
	text := image.Rect(0, 360, 640, 480)
	change(text, func(img *screen.Image, r image.Rectangle) { fillPattern(img, r, 9) })
	if m := nextUpdate(t, c); count(m, EncAssistScaled) != 0 {
		t.Errorf("a large area changed once went scaled: %+v", m.Rects)
	}

	// Still, everything becomes exact: the scaled area counted as lossy.
	waitFor(t, c, ts.desk.Snapshot())
	return last.Bytes
}

// smooth draws soft waves of colour, a frame of a video: phase moves them.
func smooth(img *screen.Image, r image.Rectangle, phase float64) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			fx, fy := float64(x), float64(y)
			i := img.PixOffset(x, y)
			img.Pix[i] = byte(128 + 60*math.Sin(fx/23+phase) + 50*math.Cos(fy/17-phase))
			img.Pix[i+1] = byte(128 + 80*math.Sin((fx+fy)/41+2*phase))
			img.Pix[i+2] = byte(128 + 100*math.Cos(fx/57-fy/31+phase))
		}
	}
}

// FuzzScaledRect: whatever a scaled rectangle holds, the decoder does not
// panic, allocates within the limits, and draws only inside its area.
func FuzzScaledRect(f *testing.F) {
	img := screen.NewImage(image.Rect(0, 0, 40, 30))
	photo(img, img.Rect)
	f.Add(byte(38), byte(27), scaledPayload(f, img, image.Rect(1, 2, 39, 29), 3))
	f.Add(byte(1), byte(1), scaledPayload(f, img, image.Rect(0, 0, 1, 1), 0))
	f.Add(byte(4), byte(4), []byte{0, 2, 0, 2, 0, 0, 0, 3, 0xff, 0xd8, 0xff})
	f.Add(byte(4), byte(4), []byte{0, 9, 0, 2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, w, h byte, data []byte) {
		fb := screen.NewImage(image.Rect(0, 0, 64, 64))
		rect := image.Rect(2, 3, 2+int(w)%62, 3+int(h)%61)
		var d scaledDecoder
		rd := bytes.NewReader(data)
		for i := 0; i < 3 && rd.Len() > 0; i++ {
			if err := d.decode(rd, rect, fb, rect); err != nil {
				return
			}
		}
		for y := 0; y < 64; y++ {
			for x := 0; x < 64; x++ {
				if image.Pt(x, y).In(rect) {
					continue
				}
				if p := fb.Pix[fb.PixOffset(x, y):][:4]; p[0]|p[1]|p[2]|p[3] != 0 {
					t.Fatalf("pixel %d,%d outside %v drawn", x, y, rect)
				}
			}
		}
	})
}

func BenchmarkScaledRelay(b *testing.B) {
	img := screen.NewImage(image.Rect(0, 0, 1280, 128))
	smooth(img, img.Rect, 1)
	p := scaledPayload(b, img, img.Rect, 5)
	big := screen.NewImage(img.Rect)
	var d scaledDecoder
	var out []byte
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if err := d.read(bytes.NewReader(p), img.Rect); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("upscale", func(b *testing.B) {
		for b.Loop() {
			upscale(big, img.Rect, d.small)
		}
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			out = appendPixels(out[:0], big, img.Rect, &NativeFormat)
		}
	})
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			scaledPayload(b, img, img.Rect, 5)
		}
	})
}
