package rfb

import (
	"bytes"
	"encoding/binary"
	"image"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/assist-project/assist/h264"
	"github.com/assist-project/assist/screen"
)

// drawMoving draws frame t of a moving picture into r: smooth gradients
// and a disc that moves a few pixels a frame.
func drawMoving(img *screen.Image, r image.Rectangle, t int) image.Rectangle {
	cx := float64(r.Dx())*0.2 + 4*float64(t)
	cy := float64(r.Dy())*0.4 + 2*float64(t)
	rad := float64(r.Dy()) / 5
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			fx, fy := float64(x-r.Min.X), float64(y-r.Min.Y)
			b := 110 + 60*math.Sin(fx*0.02+float64(t)*0.1)
			g := 120 + 50*math.Cos(fy*0.025-float64(t)*0.07)
			rr := 128 + 40*math.Sin((fx+fy)*0.01)
			if dx, dy := fx-cx, fy-cy; dx*dx+dy*dy < rad*rad {
				b, g, rr = 40, 200, 230
			}
			p := img.Pix[img.PixOffset(x, y):]
			p[0], p[1], p[2] = byte(b), byte(g), byte(rr)
		}
	}
	return r
}

// nextUpdate asks for an incremental update and reads until one comes.
func nextUpdate(t *testing.T, c *Client) Message {
	t.Helper()
	return askUpdate(t, c, true)
}

// askUpdate asks for an update and reads until one comes.
func askUpdate(t *testing.T, c *Client, incremental bool) Message {
	t.Helper()
	if err := c.RequestUpdate(incremental, image.Rectangle{}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == ServerFramebufferUpdate {
			return m
		}
	}
}

// scrollArea scrolls r up by 32 rows and draws new lines at its bottom.
func scrollArea(img *screen.Image, r image.Rectangle, seed int) image.Rectangle {
	for y := r.Min.Y; y < r.Max.Y-32; y++ {
		copy(img.Pix[img.PixOffset(r.Min.X, y):img.PixOffset(r.Max.X, y)], img.Pix[img.PixOffset(r.Min.X, y+32):img.PixOffset(r.Max.X, y+32)])
	}
	fillPattern(img, image.Rect(r.Min.X, r.Max.Y-32, r.Max.X, r.Max.Y), seed)
	return r
}

// TestServerH264 plays a video in one area of the desktop and, as often,
// changes a 16-pixel strip (as typing does). Encoding 50 may be used only
// for a viewer that names it and accepts lossy pictures, only for the
// video's area, and the area goes back to the viewer's other encoding
// once the video stops. Text scrolling as fast stays CopyRect.
func TestServerH264(t *testing.T) {
	video := image.Rect(64, 64, 320, 256)   // whole 64-pixel tiles
	strip := image.Rect(384, 320, 512, 336) // apart from both: two tiles, one row
	jpeg8 := EncJPEGQuality0 + 8
	// The scrolled lines straddle two rows of tiles: changed in every
	// update, 256x128 pixels of tiles, but one of the rows is under the
	// CopyRect.
	scrolled := image.Rect(64, 64, 320, 272)
	for _, tc := range []struct {
		name   string
		encs   []int32
		scroll bool
		want   bool
	}{
		{"asks for H.264", []int32{EncH264, EncTight, EncCopyRect, jpeg8}, false, h264.Available},
		{"does not name 50", []int32{EncTight, EncCopyRect, jpeg8}, false, false},
		{"lossless only", []int32{EncH264, EncTight, EncCopyRect}, false, false},
		{"scrolling text", []int32{EncH264, EncTight, EncCopyRect, jpeg8}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, 512, 384, true)
			c := ts.dial(t, ClientConfig{Shared: true, Encodings: tc.encs})
			nextUpdate(t, c) // the whole desktop
			var h264Rects []image.Rectangle
			var psnrs []float64
			// 60 frames a second, as a video plays.
			frame := time.NewTicker(time.Second / 60)
			defer frame.Stop()
			for i := 1; i <= 40; i++ {
				<-frame.C
				if tc.scroll {
					ts.desk.Change(func(img *screen.Image) image.Rectangle { return scrollArea(img, scrolled, i) })
				} else {
					ts.desk.Change(func(img *screen.Image) image.Rectangle { return drawMoving(img, video, i) })
				}
				ts.desk.Change(func(img *screen.Image) image.Rectangle { fillPattern(img, strip, i); return strip })
				m := nextUpdate(t, c)
				sent := false
				for _, r := range m.Rects {
					if r.Encoding == EncH264 {
						h264Rects = append(h264Rects, r.Rect)
						sent = true
					}
				}
				if sent {
					psnrs = append(psnrs, h264.PSNR(ts.desk.Snapshot(), c.Framebuffer(), video))
				}
			}
			if !tc.want {
				if len(h264Rects) > 0 {
					t.Fatalf("H.264 sent: %v", h264Rects)
				}
				return
			}
			if len(h264Rects) == 0 {
				t.Fatal("the video was never sent as H.264")
			}
			for _, r := range h264Rects {
				if r != video {
					t.Errorf("H.264 rectangle %v, want the video's area %v only", r, video)
				}
			}
			inOrder := slices.Clone(psnrs)
			slices.Sort(psnrs)
			t.Logf("%d H.264 updates, median PSNR %.1f dB", len(psnrs), psnrs[len(psnrs)/2])
			if p := psnrs[len(psnrs)/2]; p < 30 {
				// In the order sent, so that a failure shows whether the
				// pictures drifted after one went wrong (a decoder out of
				// step) or were low throughout (the encoder's quality).
				t.Errorf("median PSNR of the H.264 pictures %.1f dB, want at least 30; in the order sent: %.1f", p, inOrder)
			}
			// The video stopped: its area must come again as Tight.
			deadline := time.Now().Add(5 * time.Second)
			for {
				if time.Now().After(deadline) {
					t.Fatal("the video's area was not repainted with the other encoding after it stopped")
				}
				m := nextUpdate(t, c)
				area := 0
				for _, r := range m.Rects {
					if r.Encoding == EncH264 {
						continue
					}
					area += r.Rect.Intersect(video).Dx() * r.Rect.Intersect(video).Dy()
				}
				if area == video.Dx()*video.Dy() {
					break
				}
			}
			if p := h264.PSNR(ts.desk.Snapshot(), c.Framebuffer(), video); p < 35 {
				t.Errorf("after the repaint the PSNR is %.1f dB, want at least 35", p)
			}
		})
	}
}

// h264Seed returns a real stream of n pictures of w×h, one access unit
// each, as rectangle payloads (length, flags, data).
func h264Seed(tb testing.TB, w, h, n int) [][]byte {
	if !h264.Available {
		return nil
	}
	enc, err := h264.NewEncoder(w, h, 26, 30)
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	img := screen.NewImage(image.Rect(0, 0, w, h))
	var out [][]byte
	for i := range n {
		drawMoving(img, img.Rect, i)
		data, err := enc.Encode(make([]byte, 8), img, img.Rect, i == 0)
		if err != nil {
			tb.Fatal(err)
		}
		binary.BigEndian.PutUint32(data, uint32(len(data)-8))
		if i == 0 {
			binary.BigEndian.PutUint32(data[4:], h264ResetContext)
		}
		out = append(out, data)
	}
	return out
}

// FuzzH264Rect feeds the client's Open H.264 decoder a series of
// rectangles as a hostile server could send them: each starts with a
// byte choosing its rectangle, then the payload. Nothing may panic or
// crash; errors are fine.
func FuzzH264Rect(f *testing.F) {
	seeds := h264Seed(f, 64, 48, 3)
	if len(seeds) > 0 {
		all := []byte{0}
		all = append(all, seeds[0]...)
		for _, s := range seeds[1:] {
			all = append(append(all, 0), s...)
		}
		f.Add(all)
		f.Add(append([]byte{1}, seeds[0]...))                   // wrong size
		f.Add(append([]byte{0}, seeds[1]...))                   // no key frame first
		f.Add(append([]byte{0}, seeds[0][:len(seeds[0])/2]...)) // truncated
		bad := append([]byte{0}, seeds[0]...)
		for i := 30; i < len(bad); i += 7 {
			bad[i] ^= 0x5a
		}
		f.Add(bad)
	}
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 2})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1})
	rects := []image.Rectangle{
		image.Rect(0, 0, 64, 48), image.Rect(16, 16, 80, 80), image.Rect(0, 0, 17, 9), image.Rect(64, 64, 128, 128),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fb := screen.NewImage(image.Rect(0, 0, 128, 128))
		d := newH264Decoder()
		defer d.close()
		r := bytes.NewReader(data)
		for r.Len() > 0 {
			sel, _ := r.ReadByte()
			if err := d.decode(r, fb, rects[int(sel)%len(rects)], &NativeFormat); err != nil {
				return
			}
		}
	})
}

// TestH264ClientDecodes: the client draws a stream of the server's kind,
// keeps a decoder per rectangle, and refuses a payload over the limit
// without reading it.
func TestH264ClientDecodes(t *testing.T) {
	if !h264.Available {
		t.Skip("built without -tags openh264")
	}
	seeds := h264Seed(t, 64, 48, 3)
	fb := screen.NewImage(image.Rect(0, 0, 128, 128))
	d := newH264Decoder()
	defer d.close()
	for _, at := range []image.Rectangle{image.Rect(0, 0, 64, 48), image.Rect(32, 64, 96, 112)} {
		for i, s := range seeds {
			if err := d.decode(bytes.NewReader(s), fb, at, &NativeFormat); err != nil {
				t.Fatalf("picture %d at %v: %v", i, at, err)
			}
		}
	}
	if len(d.ctxs) != 2 {
		t.Errorf("%d decoder contexts, want 2", len(d.ctxs))
	}
	want := screen.NewImage(image.Rect(0, 0, 64, 48))
	drawMoving(want, want.Rect, 2)
	want.Rect = image.Rect(32, 64, 96, 112)
	if p := h264.PSNR(want, fb, want.Rect); p < 30 {
		t.Errorf("PSNR %.1f dB, want at least 30", p)
	}
	huge := []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}
	if err := d.decode(bytes.NewReader(huge), fb, image.Rect(0, 0, 64, 48), &NativeFormat); err == nil {
		t.Error("a 2 GiB payload was accepted")
	}
}
