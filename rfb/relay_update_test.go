package rfb

import (
	"bytes"
	"context"
	"image"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// relayServerHello is the server's side of a 3.8 handshake with a w×h
// framebuffer.
func relayServerHello(w, h int) []byte {
	init := cat(u16(w), u16(h), pfBytes(NativeFormat), wireString("desk"))
	return cat([]byte("RFB 003.008\n"), []byte{1, secNone}, u32(0), init)
}

// relayEveryMessage is a server stream after the handshake with every
// message and encoding this package's server sends (Tight in all its
// kinds, from the real encoder), none of them private.
func relayEveryMessage(t testing.TB) []byte {
	t.Helper()
	var rects []byte
	n := 0
	add := func(b []byte, k int) { rects = append(rects, b...); n += k }
	img := tightImgUI(64, 48)
	photoImg := tightImgPhoto(64, 48)
	add(appendPixels(appendRectHeader(nil, image.Rect(0, 0, 4, 3), EncRaw), img, image.Rect(0, 0, 4, 3), &NativeFormat), 1)
	add(cat(appendRectHeader(nil, image.Rect(10, 10, 20, 20), EncCopyRect), u16(0), u16(0)), 1)
	for _, tc := range []struct {
		img *screen.Image
		r   image.Rectangle
		q   int
	}{
		{tightImgSolid(64, 48), image.Rect(0, 0, 64, 48), -1}, // fill
		{img, image.Rect(0, 0, 64, 48), -1},                   // palette, basic
		{img, image.Rect(3, 3, 5, 4), -1},                     // under 12 bytes: no zlib
		{tightImgText(64, 48), image.Rect(0, 0, 64, 48), -1},  // mono
		{photoImg, image.Rect(0, 0, 64, 48), -1},              // full colour
		{photoImg, image.Rect(0, 0, 64, 48), 5},               // JPEG
	} {
		e := newTightEncoder()
		e.setQuality(tc.q)
		b, k := e.encode(nil, tc.img, tc.r, &NativeFormat)
		e.gradient = true
		b2, k2 := e.encode(nil, photoImg, image.Rect(0, 0, 30, 20), &NativeFormat) // gradient
		e.close()
		add(b, k)
		add(b2, k2)
	}
	z := newZRLEEncoder()
	add(z.encode(nil, img, image.Rect(0, 0, 64, 48), &NativeFormat))
	add(cat(appendRectHeader(nil, image.Rect(0, 0, 32, 32), EncH264), u32(5), u32(h264ResetContext), []byte{0, 0, 0, 1, 0x67}), 1)
	add(cat(appendRectHeader(nil, image.Rect(1, 1, 4, 3), EncCursor), make([]byte, 3*2*4), []byte{0xe0, 0x40}), 1)
	add(appendRectHeader(nil, image.Rect(0, 0, 64, 48), EncDesktopSize), 1)
	add(cat(appendRectHeader(nil, image.Rect(1, 1, 65, 49), EncExtendedDesktopSize), []byte{1, 0, 0, 0}, u32(0), u16(0), u16(0), u16(64), u16(48), u32(0)), 1)
	upd := cat([]byte{msgFramebufferUpdate, 0}, u16(n), rects)
	// An update of unknown length ended by LastRect.
	last := cat([]byte{msgFramebufferUpdate, 0}, u16(0xffff), appendRectHeader(nil, image.Rect(0, 0, 1, 1), EncCopyRect), u32(0),
		appendRectHeader(nil, image.Rectangle{}, EncLastRect))
	return cat(upd,
		[]byte{msgBell},
		[]byte{msgServerCutText, 0, 0, 0}, u32(2), []byte("hi"),
		[]byte{msgServerCutText, 0, 0, 0}, u32(uint32(0xffffffff-3)), []byte{0, 0, 0, 1}, // Extended Clipboard: 4 bytes
		[]byte{msgServerFence, 0, 0, 0}, u32(fenceRequest), []byte{3, 'a', 'b', 'c'},
		[]byte{msgEndOfContinuousUpdates},
		[]byte{msgSetColourMapEntries, 0}, u16(0), u16(2), make([]byte, 12),
		last)
}

// relayRun relays in to out as ToViewer does after a viewer of minor
// version minor connected.
func relayRun(minor int, in []byte, passScaled bool) ([]byte, *Relay, error) {
	rl := NewRelay()
	if passScaled {
		rl.PassingScaled()
	}
	rl.setMinor(minor)
	var out bytes.Buffer
	err := rl.ToViewer(&out, bytes.NewReader(in))
	return out.Bytes(), rl, err
}

// TestRelayFlushesBeforeWaiting: an update that has come whole goes on to
// the viewer at once, even when the start of the next one came with it
// and the relay waits for the rest of that (a small change, then a video
// picture still crossing the link). The relay once held it until the
// next picture's payload had all come.
func TestRelayFlushesBeforeWaiting(t *testing.T) {
	for _, tc := range []struct {
		name string
		next []byte // the start of the update that follows
	}{
		{"raw", cat([]byte{msgFramebufferUpdate, 0}, u16(1), appendRectHeader(nil, image.Rect(0, 0, 64, 48), EncRaw), make([]byte, 1000))},
		{"tight jpeg", cat([]byte{msgFramebufferUpdate, 0}, u16(1), appendRectHeader(nil, image.Rect(0, 0, 64, 48), EncTight),
			[]byte{tightCtlJPEG, 0x90, 0x4e}, make([]byte, 1000))}, // 10000 bytes of JPEG
		{"lossless", cat([]byte{msgFramebufferUpdate, 0}, u16(1), appendRectHeader(nil, image.Rect(0, 0, 64, 48), EncAssistLosslessFSE),
			u32(5000), make([]byte, 1000))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hello := relayServerHello(64, 48)
			small := cat([]byte{msgFramebufferUpdate, 0}, u16(1), appendRectHeader(nil, image.Rect(8, 8, 12, 11), EncRaw), make([]byte, 4*3*4))
			sr, sw := io.Pipe()
			v1, v2 := net.Pipe()
			rl := NewRelay()
			rl.setMinor(8)
			done := make(chan error, 1)
			go func() { done <- rl.ToViewer(v2, sr) }()
			defer func() {
				sw.Close()
				v1.Close()
				<-done
			}()
			go sw.Write(cat(hello, appendAssistPixelFormat(nil, &NativeFormat), small, tc.next))

			want := cat(hello, small)
			got := make([]byte, len(want))
			v1.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := io.ReadFull(v1, got); err != nil {
				t.Fatalf("the viewer got %d of the %d bytes of the handshake and the small update, while the next update is under way: %v", n, len(want), err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the viewer got\n%x\nwant\n%x", got, want)
			}
		})
	}
}

// The relay passes every message and encoding it does not change through
// byte for byte, and drops the server's pixel-format announcements
// (following them: a 16-bit Raw rectangle is half the bytes).
func TestRelayToViewerPassThrough(t *testing.T) {
	every := relayEveryMessage(t)
	pf16 := PixelFormat{BPP: 16, Depth: 16, TrueColor: true, RedMax: 31, GreenMax: 63, BlueMax: 31, RedShift: 11, GreenShift: 5}
	raw16 := cat([]byte{msgFramebufferUpdate, 0}, u16(2), appendRectHeader(nil, image.Rect(0, 0, 3, 2), EncRaw), make([]byte, 3*2*2),
		appendRectHeader(nil, image.Rect(0, 0, 3, 2), EncTight), []byte{tightCtlFill, 1, 2})
	announce := appendAssistPixelFormat(nil, &pf16)
	announceNative := appendAssistPixelFormat(nil, &NativeFormat)
	hextile := cat([]byte{msgFramebufferUpdate, 0}, u16(1), appendRectHeader(nil, image.Rect(0, 0, 4, 4), EncHextile))
	for _, tc := range []struct {
		name    string
		minor   int
		in, out []byte
	}{
		{"every message, 3.8", 8, cat(relayServerHello(64, 48), every), cat(relayServerHello(64, 48), every)},
		{"3.7", 7, cat([]byte("RFB 003.008\n"), []byte{1, secNone}, relayServerHello(64, 48)[18:], every),
			cat([]byte("RFB 003.008\n"), []byte{1, secNone}, relayServerHello(64, 48)[18:], every)},
		{"3.3", 3, cat([]byte("RFB 003.008\n"), u32(secNone), relayServerHello(64, 48)[18:], every),
			cat([]byte("RFB 003.008\n"), u32(secNone), relayServerHello(64, 48)[18:], every)},
		{"refused", 8, cat([]byte("RFB 003.008\n"), []byte{0}, wireString("no")), cat([]byte("RFB 003.008\n"), []byte{0}, wireString("no"))},
		{"every message, announced", 8, cat(relayServerHello(64, 48), announceNative, every), cat(relayServerHello(64, 48), every)},
		{"pixel format announced", 8, cat(relayServerHello(64, 48), announce, raw16), cat(relayServerHello(64, 48), raw16)},
		// A novice of an older version announces nothing: its updates,
		// in a format the relay cannot know, pass as they are.
		{"no announcement", 8, cat(relayServerHello(64, 48), raw16, hextile), cat(relayServerHello(64, 48), raw16, hextile)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := relayRun(tc.minor, tc.in, false)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tc.out) {
				i := 0
				for i < min(len(out), len(tc.out)) && out[i] == tc.out[i] {
					i++
				}
				t.Fatalf("relayed %d bytes, want %d; first difference at byte %d", len(out), len(tc.out), i)
			}
		})
	}
	// An encoding the relay cannot measure ends it with an error.
	bad := cat(relayServerHello(64, 48), announceNative, hextile)
	if _, _, err := relayRun(8, bad, false); err == nil {
		t.Error("a Hextile rectangle relayed without error")
	}
	if _, _, err := relayRun(8, cat(relayServerHello(64, 48), []byte{77}), false); err == nil {
		t.Error("an unknown message type relayed without error")
	}
}

// Across a slow paced link, through the relay, a viewer that knows
// nothing of scaling gets a large changing area as Raw close to the
// source, then exact after refinement; the link carries far fewer bytes
// than at full size.
// relayPipeline connects a Client asking for encs to ts's server through
// rl, across a pipe paced like a session stream at mbits Mbit/s. It
// returns the client, the server's side of the pipe counting the bytes
// that cross it, and a function that closes everything and waits.
func relayPipeline(t *testing.T, ts *testServer, rl *Relay, mbits float64, encs ...int32) (*Client, *countingConn, func()) {
	t.Helper()
	a, b := net.Pipe()
	pp := &pacedPipe{Conn: a, room: make(chan struct{}, 1)}
	pp.set(false, mbits)
	v1, v2 := net.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() { ts.srv.ServeConn(context.Background(), pp) })
	counted := &countingConn{Conn: b}
	wg.Go(func() {
		fromViewer, toViewer := rl.Run(v2, counted)
		if fromViewer != nil {
			t.Errorf("relay from the viewer: %v", fromViewer)
		}
		if toViewer != nil {
			t.Errorf("relay to the viewer: %v", toViewer)
		}
	})
	stop := func() {
		v1.Close()
		a.Close()
		wg.Wait()
	}
	t.Cleanup(stop) // after a failure; closing twice is harmless
	v1.SetReadDeadline(time.Now().Add(30 * time.Second))
	c, err := NewClient(v1, ClientConfig{Encodings: encs})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	return c, counted, stop
}

// TestRelayScaled: on a slow path a large changing area crosses the link
// scaled, in at most half the bytes, and reaches the viewer as Raw, or
// as it came when the relay passes scaled rectangles (the web pages'
// noVNC decodes them itself); either way the picture ends exact.
func TestRelayScaled(t *testing.T) {
	video := image.Rect(0, 0, 480, 320)
	sent := map[string]int{}
	for _, mode := range []string{"rewritten", "passed", "full size"} {
		scaled := mode != "full size"
		ts := startServer(t, 640, 480, false)
		// No refinement between frames, which a loaded machine can
		// space more than 200 ms apart: its bytes would count too.
		ts.srv.refineDelay = 2 * time.Second
		rl := &Relay{}
		switch mode {
		case "rewritten":
			rl = NewRelay()
		case "passed":
			rl = NewRelay().PassingScaled()
		}
		c, counted, stop := relayPipeline(t, ts, rl, 2, EncTight, EncJPEGQuality0+8)
		// frame reads updates (pushed: the relay asked for push) until
		// they have covered the changing area, and returns their
		// rectangles.
		frame := func() []RectInfo {
			t.Helper()
			var got []RectInfo
			covered := make([]bool, video.Dx()*video.Dy())
			left := len(covered)
			for left > 0 {
				m, err := c.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range m.Rects {
					got = append(got, r)
					in := r.Rect.Intersect(video)
					for y := in.Min.Y; y < in.Max.Y; y++ {
						for x := in.Min.X; x < in.Max.X; x++ {
							if i := y*video.Dx() + x; !covered[i] {
								covered[i] = true
								left--
							}
						}
					}
				}
			}
			return got
		}
		waitFor(t, c, ts.desk.Snapshot())
		watch := ts.srv.Screen.Subscribe()
		watch.Take(nil)
		var last []RectInfo
		var before int64
		for i := range 6 {
			before = counted.n.Load()
			ts.desk.Change(func(img *screen.Image) image.Rectangle {
				smooth(img, video, float64(i))
				return video
			})
			for seen := false; !seen; {
				<-watch.Ready()
				for _, d := range watch.Take(nil).Dirty {
					seen = seen || d.Overlaps(video)
				}
			}
			last = frame()
		}
		watch.Close()
		n := int(counted.n.Load() - before)
		t.Logf("%s: last frame %d bytes on the link, rectangles %+v", mode, n, last)
		sent[mode] = n
		if scaled {
			want := map[string]int32{"rewritten": EncRaw, "passed": EncAssistScaled}[mode]
			got, all := 0, 0
			for _, r := range last {
				all += r.Rect.Dx() * r.Rect.Dy()
				if r.Encoding == want {
					got += r.Rect.Dx() * r.Rect.Dy()
				}
				if mode == "rewritten" && r.Encoding == EncAssistScaled {
					t.Errorf("the viewer got a scaled rectangle %v from a relay that rewrites them", r.Rect)
				}
			}
			if got*4 < all*3 {
				t.Errorf("the changing area reached the viewer as %+v, want encoding %#x", last, want)
			}
			if psnr := tightPSNR(ts.desk.Snapshot(), c.Framebuffer(), video); psnr < 28 {
				t.Errorf("scaled area at PSNR %.1f dB, want at least 28", psnr)
			}
		}
		waitFor(t, c, ts.desk.Snapshot())
		stop()
		switch {
		case mode == "rewritten" && (rl.Rewritten() == 0 || rl.Passed() != 0):
			t.Errorf("the relay rewrote %d rectangles and passed %d; want some rewritten, none passed", rl.Rewritten(), rl.Passed())
		case mode == "passed" && rl.Passed() == 0:
			t.Error("the relay passed no scaled rectangle")
		}
	}
	for _, mode := range []string{"rewritten", "passed"} {
		if sent[mode]*2 > sent["full size"] {
			t.Errorf("%s: a frame took %d bytes on the link scaled, %d at full size: want at most half", mode, sent[mode], sent["full size"])
		}
	}
}

// TestRelayPassingRejects: a relay that passes scaled rectangles still
// checks them, and copies nothing of one it cannot frame.
func TestRelayPassingRejects(t *testing.T) {
	img := screen.NewImage(image.Rect(0, 0, 40, 30))
	photo(img, img.Rect)
	good := scaledPayload(t, img, image.Rect(2, 2, 40, 29), 3)
	with := func(r image.Rectangle, payload []byte) []byte {
		return cat(relayServerHello(64, 48), appendAssistPixelFormat(nil, &NativeFormat),
			[]byte{msgFramebufferUpdate, 0}, u16(1), appendRectHeader(nil, r, EncAssistScaled), payload)
	}
	header := func(sw, sh int, n uint32) []byte { return cat(u16(sw), u16(sh), u32(n)) }
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"outside the framebuffer", with(image.Rect(30, 30, 70, 50), good)},
		{"empty", with(image.Rect(3, 3, 3, 9), header(1, 1, 0))},
		{"zero width picture", with(image.Rect(0, 0, 40, 30), header(0, 10, 10))},
		{"picture larger than the area", with(image.Rect(0, 0, 40, 30), header(41, 30, 10))},
		{"too many bytes", with(image.Rect(0, 0, 40, 30), header(2, 2, 1<<30))},
		{"not a picture", with(image.Rect(0, 0, 40, 30), cat(header(20, 15, 4), []byte("JFIF")))},
		{"picture of another size", with(image.Rect(2, 2, 40, 29), cat(header(18, 13, uint32(len(good)-8)), good[8:]))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := NewRelay().PassingScaled()
			rl.setMinor(8)
			var out bytes.Buffer
			err := rl.ToViewer(&out, bytes.NewReader(tc.in))
			if err == nil {
				t.Fatal("relayed without an error")
			}
			if i := bytes.Index(out.Bytes(), u32(uint32(EncAssistScaled))); i >= 0 {
				t.Errorf("copied the rejected rectangle's header to the viewer (at %d of %d bytes): %v", i, out.Len(), err)
			}
			t.Log(err)
		})
	}
	// The good one passes byte for byte.
	rl := NewRelay().PassingScaled()
	rl.setMinor(8)
	var out bytes.Buffer
	in := with(image.Rect(2, 2, 40, 29), good)
	if err := rl.ToViewer(&out, bytes.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if rect := cat(appendRectHeader(nil, image.Rect(2, 2, 40, 29), EncAssistScaled), good); !bytes.HasSuffix(out.Bytes(), rect) {
		t.Errorf("the scaled rectangle was not copied as it came")
	}
	if rl.Passed() != 1 || rl.Rewritten() != 0 {
		t.Errorf("passed %d, rewritten %d; want 1 and 0", rl.Passed(), rl.Rewritten())
	}
}

// TestRelayLossless: through a Relay, a photo sent as JPEG is refined with
// EncAssistLosslessFSE, which the viewer gets as Raw, in fewer bytes across
// the link than Tight's lossless refinement.
func TestRelayLossless(t *testing.T) {
	var link [2]int64
	for i, private := range []bool{true, false} {
		ts := startServer(t, 320, 240, false)
		rl := &Relay{}
		if private {
			rl = NewRelay()
		}
		// 20 Mbit/s: JPEG at full size, never scaled.
		c, counted, stop := relayPipeline(t, ts, rl, 20, EncTight, EncJPEGQuality0+5)
		waitFor(t, c, ts.desk.Snapshot())
		photo := grainImage(320, 240, 4)
		ts.desk.Change(func(img *screen.Image) image.Rectangle {
			img.CopyFrom(photo, img.Rect)
			return img.Rect
		})
		want := ts.desk.Snapshot()
		for tightPSNR(want, c.Framebuffer(), want.Rect) < 25 {
			if _, err := c.ReadMessage(); err != nil {
				t.Fatal(err)
			}
		}
		if equalImages(c.Framebuffer(), want) {
			t.Fatal("the photo came exact at once: not as JPEG")
		}
		before := counted.n.Load()
		for !equalImages(c.Framebuffer(), want) {
			m, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("%v, with the picture not exact: %s", err, diffSummary(c.Framebuffer(), want))
			}
			for _, r := range m.Rects {
				if r.Encoding == EncAssistLossless || r.Encoding == EncAssistLosslessFSE || r.Encoding == EncAssistScaled {
					t.Fatalf("the viewer got private encoding %#x", r.Encoding)
				}
			}
		}
		link[i] = counted.n.Load() - before
		stop()
		// At 20 Mbit/s nothing went scaled: what the relay rewrote
		// was refinement.
		if private && rl.Rewritten() == 0 {
			t.Error("the relay rewrote no refinement")
		}
	}
	t.Logf("refinement took %d bytes on the link with the relay's private encodings, %d with Tight", link[0], link[1])
	if float64(link[0]) > 0.85*float64(link[1]) {
		t.Errorf("refinement took %d bytes with the relay's private encodings, %d with Tight: want at most 85%%", link[0], link[1])
	}
}

// FuzzRelayToViewer: whatever the server sends, the relay does not
// panic, and what it passes on unchanged is exactly what came.
func FuzzRelayToViewer(f *testing.F) {
	every := relayEveryMessage(f)
	img := screen.NewImage(image.Rect(0, 0, 40, 30))
	photo(img, img.Rect)
	scaledRect := cat([]byte{msgFramebufferUpdate, 0}, u16(1), appendRectHeader(nil, image.Rect(2, 2, 40, 29), EncAssistScaled),
		scaledPayload(f, img, image.Rect(2, 2, 40, 29), 3))
	f.Add(byte(8), cat(relayServerHello(64, 48), every))
	f.Add(byte(7), cat([]byte("RFB 003.008\n"), []byte{1, secNone}, relayServerHello(64, 48)[18:], every))
	f.Add(byte(3), cat([]byte("RFB 003.008\n"), u32(secNone), relayServerHello(64, 48)[18:], scaledRect))
	f.Add(byte(8), cat(relayServerHello(64, 48), scaledRect, appendAssistPixelFormat(nil, &NativeFormat), every))
	f.Add(byte(128+8), cat(relayServerHello(64, 48), appendAssistPixelFormat(nil, &NativeFormat), scaledRect, every))
	for _, enc := range losslessEncodings {
		lossless, _ := newLosslessEncoder(enc).encode(nil, tightImgPhoto(20, 10), image.Rect(0, 0, 20, 10), &NativeFormat)
		f.Add(byte(8), cat(relayServerHello(64, 48), appendAssistPixelFormat(nil, &NativeFormat), []byte{msgFramebufferUpdate, 0}, u16(1), lossless, every))
	}
	f.Fuzz(func(t *testing.T, minor byte, in []byte) {
		out, rl, _ := relayRun([]int{3, 7, 8}[int(minor)%3], in, minor >= 128)
		if rl.changed == 0 && !bytes.HasPrefix(in, out) {
			t.Fatalf("relayed bytes that did not come:\n%x\n%x", in, out)
		}
	})
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}
