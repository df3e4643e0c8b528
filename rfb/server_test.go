package rfb

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/screen/screentest"
	"github.com/assist-project/assist/shadow"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memDesktop is an in-memory screen.Capturer (screentest.Desktop) and
// Injector: the X backend is tested against a real X server in screen/x11
// and end to end in cmd/assist; here the server's protocol logic is under
// test.
type memDesktop struct {
	*screentest.Desktop

	mu       sync.Mutex // guards the input below
	keys     []uint32
	pointers []image.Point
	clipSet  []string
}

// newMemDesktop returns a desktop of w by h showing fillPattern.
func newMemDesktop(w, h int) *memDesktop {
	img := screen.NewImage(image.Rect(0, 0, w, h))
	fillPattern(img, img.Rect, 0)
	return &memDesktop{Desktop: screentest.NewFrom(img)}
}

// fillPattern draws a deterministic, varied pattern into r.
func fillPattern(img *screen.Image, r image.Rectangle, seed int) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			i := img.PixOffset(x, y)
			v := x*7 + y*13 + seed*31
			img.Pix[i], img.Pix[i+1], img.Pix[i+2] = byte(v), byte(v>>3^y), byte(x^seed)
			if (x/8+y/16)%5 == 0 {
				img.Pix[i], img.Pix[i+1], img.Pix[i+2] = 255, 255, 255
			}
		}
	}
}

func (d *memDesktop) Key(keysym uint32, down bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if down {
		d.keys = append(d.keys, keysym)
	}
	return nil
}

func (d *memDesktop) Pointer(x, y int, buttons uint8) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pointers = append(d.pointers, image.Pt(x, y))
	return nil
}

func (d *memDesktop) SetClipboard(text string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clipSet = append(d.clipSet, text)
	return nil
}

// testServer runs a Server over a memDesktop on a loopback listener.
type testServer struct {
	desk *memDesktop
	srv  *Server
	addr string
}

func startServer(t *testing.T, w, h int, viewOnly bool) *testServer {
	t.Helper()
	return startServerClip(t, w, h, viewOnly, func(time.Time) bool { return true })
}

// startServerClip is startServer with out as the server's ClipboardOut.
func startServerClip(t *testing.T, w, h int, viewOnly bool, out func(time.Time) bool) *testServer {
	t.Helper()
	desk := newMemDesktop(w, h)
	sh := shadow.New(desk, shadow.Options{DetectScroll: true})
	srv := &Server{Screen: sh, Name: "test desktop", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ClipboardOut: out}
	if !viewOnly {
		srv.Input, srv.Clipboard = desk, desk
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sh.Run(ctx) })
	wg.Go(func() { srv.Serve(ctx, ln) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return &testServer{desk: desk, srv: srv, addr: ln.Addr().String()}
}

func (ts *testServer) dial(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(nc, cfg)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor requests incremental updates until the client's framebuffer
// equals want, or fails after 10 s of no progress.
func waitFor(t *testing.T, c *Client, want *screen.Image) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if equalImages(c.Framebuffer(), want) {
			return
		}
		if err := c.RequestUpdate(true, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("framebuffer never matched the desktop: %s", diffSummary(c.Framebuffer(), want))
}

func equalImages(a, b *screen.Image) bool {
	if a.Rect != b.Rect {
		return false
	}
	for y := a.Rect.Min.Y; y < a.Rect.Max.Y; y++ {
		ra := a.Pix[a.PixOffset(a.Rect.Min.X, y):]
		rb := b.Pix[b.PixOffset(b.Rect.Min.X, y):]
		for x := 0; x < a.Rect.Dx(); x++ {
			if !bytes.Equal(ra[4*x:4*x+3], rb[4*x:4*x+3]) {
				return false
			}
		}
	}
	return true
}

func diffSummary(a, b *screen.Image) string {
	if a.Rect != b.Rect {
		return "sizes differ: " + a.Rect.String() + " vs " + b.Rect.String()
	}
	n := 0
	var first image.Point
	for y := a.Rect.Min.Y; y < a.Rect.Max.Y; y++ {
		for x := a.Rect.Min.X; x < a.Rect.Max.X; x++ {
			i, j := a.PixOffset(x, y), b.PixOffset(x, y)
			if !bytes.Equal(a.Pix[i:i+3], b.Pix[j:j+3]) {
				if n == 0 {
					first = image.Pt(x, y)
				}
				n++
			}
		}
	}
	return image.Rect(0, 0, n, 0).String() + " pixels differ, first at " + first.String()
}

func TestServerLosslessEncodings(t *testing.T) {
	ts := startServer(t, 300, 200, false)
	for _, tc := range []struct {
		name string
		encs []int32
	}{
		{"Raw", []int32{EncRaw}},
		{"ZRLE", []int32{EncZRLE, EncCopyRect}},
		{"Tight", []int32{EncTight, EncCopyRect, EncCompressLevel0 + 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t, ClientConfig{Shared: true, Encodings: tc.encs})
			if c.Name() != "test desktop" || c.Size() != image.Pt(300, 200) {
				t.Fatalf("ServerInit: name %q size %v", c.Name(), c.Size())
			}
			if err := c.RequestUpdate(false, image.Rectangle{}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, c, ts.desk.Snapshot())

			ts.desk.Change(func(img *screen.Image) image.Rectangle {
				r := image.Rect(37, 41, 180, 90)
				fillPattern(img, r, 7)
				return r
			})
			waitFor(t, c, ts.desk.Snapshot())
		})
	}
}

func TestServerPixelFormats(t *testing.T) {
	ts := startServer(t, 130, 70, false)
	formats := map[string]PixelFormat{
		"32bpp big endian": {BPP: 32, Depth: 24, BigEndian: true, TrueColor: true, RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 0, GreenShift: 8, BlueShift: 16},
		"32bpp high bytes": {BPP: 32, Depth: 24, TrueColor: true, RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 24, GreenShift: 16, BlueShift: 8},
	}
	for name, pf := range formats {
		for _, enc := range []int32{EncRaw, EncZRLE, EncTight} {
			t.Run(name, func(t *testing.T) {
				c := ts.dial(t, ClientConfig{PixelFormat: &pf, Encodings: []int32{enc}})
				if err := c.RequestUpdate(false, image.Rectangle{}); err != nil {
					t.Fatal(err)
				}
				waitFor(t, c, ts.desk.Snapshot())
			})
		}
	}
}

func TestServerScrollSendsCopyRect(t *testing.T) {
	ts := startServer(t, 256, 256, false)
	c := ts.dial(t, ClientConfig{Encodings: []int32{EncZRLE, EncCopyRect}})
	if err := c.RequestUpdate(false, image.Rectangle{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, ts.desk.Snapshot())

	ts.desk.Change(func(img *screen.Image) image.Rectangle {
		// Scroll everything up by 16 rows and draw a new band at the bottom.
		old := screen.NewImage(img.Rect)
		old.CopyFrom(img, img.Rect)
		for y := 0; y < 240; y++ {
			copy(img.Pix[img.PixOffset(0, y):img.PixOffset(0, y+1)], old.Pix[old.PixOffset(0, y+16):old.PixOffset(0, y+17)])
		}
		fillPattern(img, image.Rect(0, 240, 256, 256), 3)
		return img.Rect
	})
	want := ts.desk.Snapshot()
	sawCopy := false
	deadline := time.Now().Add(10 * time.Second)
	for !equalImages(c.Framebuffer(), want) && time.Now().Before(deadline) {
		if err := c.RequestUpdate(true, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Rects {
			if r.Encoding == EncCopyRect {
				sawCopy = true
			}
		}
	}
	if !equalImages(c.Framebuffer(), want) {
		t.Fatalf("after scrolling: %s", diffSummary(c.Framebuffer(), want))
	}
	if !sawCopy {
		t.Error("a scroll was sent without CopyRect")
	}
}

func TestServerInput(t *testing.T) {
	for _, viewOnly := range []bool{false, true} {
		ts := startServer(t, 64, 64, viewOnly)
		c := ts.dial(t, ClientConfig{Encodings: []int32{EncRaw}})
		for _, err := range []error{
			c.KeyEvent(0x61, true), c.KeyEvent(0x61, false),
			c.PointerEvent(10, 20, 1), c.CutText("hé"),
			// A request after the input: its answer proves the input was handled.
			c.RequestUpdate(false, image.Rectangle{}),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		ts.desk.mu.Lock()
		keys, pointers, clips := len(ts.desk.keys), len(ts.desk.pointers), len(ts.desk.clipSet)
		ts.desk.mu.Unlock()
		if viewOnly && keys+pointers+clips != 0 {
			t.Errorf("view only: %d keys, %d pointer events, %d clipboard texts reached the desktop", keys, pointers, clips)
		}
		if !viewOnly && (keys != 1 || pointers != 1 || clips != 1 || ts.desk.clipSet[0] != "hé") {
			t.Errorf("got %d keys, %d pointer events, clipboard %q; want 1, 1, [hé]", keys, pointers, ts.desk.clipSet)
		}
	}
}

func TestServerClipboardToViewer(t *testing.T) {
	ts := startServer(t, 32, 32, false)
	c := ts.dial(t, ClientConfig{Encodings: []int32{EncRaw}})
	text := "copied on the desktop"
	ts.desk.Copy(text)
	if err := c.RequestUpdate(true, image.Rectangle{}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == ServerCutText {
			if m.Text != text {
				t.Fatalf("ServerCutText %q, want %q", m.Text, text)
			}
			return
		}
		if err := c.RequestUpdate(true, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServerContinuousUpdatesAndFence(t *testing.T) {
	ts := startServer(t, 64, 64, false)
	c := ts.dial(t, ClientConfig{Encodings: []int32{EncRaw, EncContinuousUpdates, EncFence}})
	var sawEndCU, sawFence bool
	for !sawEndCU || !sawFence {
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		sawEndCU = sawEndCU || m.Type == ServerEndOfContinuousUpdates
		sawFence = sawFence || m.Type == ServerFence
	}
	if err := c.Fence(fenceRequest|fenceBlockBefore, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := c.EnableContinuousUpdates(true, image.Rect(0, 0, 64, 64)); err != nil {
		t.Fatal(err)
	}
	var gotFence bool
	for !gotFence {
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == ServerFence {
			if m.FenceFlags != fenceBlockBefore || string(m.FencePayload) != "ping" {
				t.Fatalf("fence reply flags %#x payload %q", m.FenceFlags, m.FencePayload)
			}
			gotFence = true
		}
	}
	// With continuous updates on, changes arrive without requests.
	ts.desk.Change(func(img *screen.Image) image.Rectangle {
		r := image.Rect(5, 5, 30, 30)
		fillPattern(img, r, 9)
		return r
	})
	want := ts.desk.Snapshot()
	for !equalImages(c.Framebuffer(), want) {
		if _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServerHostileViewers(t *testing.T) {
	ts := startServer(t, 64, 64, false)
	hostile := [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		append([]byte("RFB 003.008\n"), 2), // security type not offered
		append([]byte("RFB 003.008\n\x01\x01"), 99),
		append([]byte("RFB 003.008\n\x01\x01"), 6, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff),                                  // huge cut text
		append([]byte("RFB 003.008\n\x01\x01"), 0, 0, 0, 0, 24, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0), // 24 bpp
	}
	for _, h := range hostile {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(h)
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, nc) // the server must hang up
		nc.Close()
		if err != nil {
			t.Errorf("hostile input %q: server did not hang up: %v", h, err)
		}
	}
	// The server still serves a well-behaved viewer.
	c := ts.dial(t, ClientConfig{Encodings: []int32{EncRaw}})
	if err := c.RequestUpdate(false, image.Rectangle{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, ts.desk.Snapshot())
}

func TestServerStalledViewerDoesNotBlockOthers(t *testing.T) {
	ts := startServer(t, 640, 480, false)
	// A viewer that asks for updates and then never reads.
	stalled, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	hs := []byte("RFB 003.008\n\x01\x01")
	hs = append(hs, msgSetEncodings, 0, 0, 1, 0, 0, 0, 0)
	for range 50 {
		hs = append(hs, msgFramebufferUpdateRequest, 0, 0, 0, 0, 0, 2, 0x80, 1, 0xe0)
	}
	if _, err := stalled.Write(hs); err != nil {
		t.Fatal(err)
	}
	c := ts.dial(t, ClientConfig{Encodings: []int32{EncRaw}})
	if err := c.RequestUpdate(false, image.Rectangle{}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		ts.desk.Change(func(img *screen.Image) image.Rectangle {
			fillPattern(img, img.Rect, i)
			return img.Rect
		})
		waitFor(t, c, ts.desk.Snapshot())
	}
}

func TestServerHandshakeVersions(t *testing.T) {
	ts := startServer(t, 16, 16, false)
	for _, tc := range []struct {
		version string
		reply   []byte // what the server sends after the version
		choose  bool
	}{
		{"RFB 003.003\n", []byte{0, 0, 0, 1}, false},
		{"RFB 003.007\n", []byte{1, 1}, true},
		{"RFB 003.008\n", []byte{1, 1}, true},
	} {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		v := make([]byte, 12)
		io.ReadFull(nc, v)
		if string(v) != "RFB 003.008\n" {
			t.Fatalf("server version %q", v)
		}
		nc.Write([]byte(tc.version))
		got := make([]byte, len(tc.reply))
		if _, err := io.ReadFull(nc, got); err != nil || !bytes.Equal(got, tc.reply) {
			t.Fatalf("%q: security %v (%v), want %v", tc.version, got, err, tc.reply)
		}
		if tc.choose {
			nc.Write([]byte{1})
			if tc.version == "RFB 003.008\n" {
				res := make([]byte, 4)
				if _, err := io.ReadFull(nc, res); err != nil || binary.BigEndian.Uint32(res) != 0 {
					t.Fatalf("SecurityResult %v %v", res, err)
				}
			}
		}
		nc.Write([]byte{1})
		init := make([]byte, 24)
		if _, err := io.ReadFull(nc, init); err != nil {
			t.Fatalf("%q: ServerInit: %v", tc.version, err)
		}
		if w, h := binary.BigEndian.Uint16(init), binary.BigEndian.Uint16(init[2:]); w != 16 || h != 16 {
			t.Errorf("%q: ServerInit size %dx%d", tc.version, w, h)
		}
		nc.Close()
	}
}

func TestServerResize(t *testing.T) {
	ts := startServer(t, 120, 80, false)
	for _, enc := range []int32{EncDesktopSize, EncExtendedDesktopSize} {
		c := ts.dial(t, ClientConfig{Encodings: []int32{EncRaw, enc}})
		if err := c.RequestUpdate(false, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, c, ts.desk.Snapshot())
		size := image.Pt(200, 150)
		if enc == EncExtendedDesktopSize {
			size = image.Pt(90, 60)
		}
		ts.desk.Resize(size, func(img *screen.Image) { fillPattern(img, img.Rect, 5) })
		waitFor(t, c, ts.desk.Snapshot())
		if c.Size() != size {
			t.Errorf("%d: viewer size %v, want %v", enc, c.Size(), size)
		}
	}
}

// TestServerPullModelKeepsRequests checks the pull model as benchmarks and
// simple viewers use it: the next request goes out the moment an update
// has been read, before anything changed, and must be answered by the
// next change. A request lost while the server finishes writing an update
// stalls the viewer for good.
func TestServerPullModelKeepsRequests(t *testing.T) {
	ts := startServer(t, 64, 64, false)
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(nc, ClientConfig{Encodings: []int32{EncRaw}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.RequestUpdate(false, image.Rectangle{}); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if _, err := c.ReadMessage(); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		if err := c.RequestUpdate(true, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
		ts.desk.Change(func(img *screen.Image) image.Rectangle {
			r := image.Rect(i%48, 0, i%48+16, 16)
			fillPattern(img, r, i+1)
			return r
		})
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	}
}
