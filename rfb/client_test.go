package rfb

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
)

// scriptStep is one step of a scripted server: bytes it sends, then
// bytes it expects from the client.
type scriptStep struct {
	send, expect []byte
}

// runScript plays steps as the server side of a net.Pipe and reports
// the first mismatch (or nil) on the returned channel.
func runScript(t *testing.T, steps []scriptStep) (client, server net.Conn, done <-chan error) {
	t.Helper()
	client, server = net.Pipe()
	// A client that waits for bytes the script never sends would hang
	// the test; the deadline turns that into a failure.
	deadline := time.Now().Add(20 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	t.Cleanup(func() { client.Close(); server.Close() })
	result := make(chan error, 1)
	go func() {
		for i, s := range steps {
			if len(s.send) > 0 {
				if _, err := server.Write(s.send); err != nil {
					result <- fmt.Errorf("step %d: send: %w", i, err)
					return
				}
			}
			if len(s.expect) > 0 {
				got := make([]byte, len(s.expect))
				if _, err := io.ReadFull(server, got); err != nil {
					result <- fmt.Errorf("step %d: read %q: %w", i, s.expect, err)
					return
				}
				if !bytes.Equal(got, s.expect) {
					result <- fmt.Errorf("step %d: client sent %q, want %q", i, got, s.expect)
					return
				}
			}
		}
		result <- nil
	}()
	return client, server, result
}

func u16(v int) []byte    { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func wireString(s string) []byte { return cat(u32(uint32(len(s))), []byte(s)) }

func pfBytes(pf PixelFormat) []byte {
	b := make([]byte, 16)
	pf.marshal(b)
	return b
}

// serverInit builds a ServerInit message.
func serverInit(w, h int, pf PixelFormat, name string) []byte {
	return cat(u16(w), u16(h), pfBytes(pf), wireString(name))
}

func setEncodingsMsg(encs ...int32) []byte {
	b := []byte{msgSetEncodings, 0}
	b = append(b, u16(len(encs))...)
	for _, e := range encs {
		b = append(b, u32(uint32(e))...)
	}
	return b
}

var rgb565 = PixelFormat{BPP: 16, Depth: 16, TrueColor: true, RedMax: 31, GreenMax: 63, BlueMax: 31, RedShift: 11, GreenShift: 5}

func TestClientHandshake(t *testing.T) {
	init := serverInit(64, 48, NativeFormat, "desk")
	tests := []struct {
		name    string
		cfg     ClientConfig
		steps   []scriptStep
		wantErr string // substring; empty: success
	}{
		{
			name: "3.3 none",
			cfg:  ClientConfig{Shared: true},
			steps: []scriptStep{
				{send: []byte("RFB 003.003\n"), expect: []byte("RFB 003.003\n")},
				{send: u32(1), expect: []byte{1}},
				{send: init},
			},
		},
		{
			name: "3.5 answered as 3.3",
			steps: []scriptStep{
				{send: []byte("RFB 003.005\n"), expect: []byte("RFB 003.003\n")},
				{send: u32(1), expect: []byte{0}},
				{send: init},
			},
		},
		{
			name: "3.7 none, no security result",
			cfg:  ClientConfig{Shared: true, Encodings: []int32{EncZRLE, EncRaw}},
			steps: []scriptStep{
				{send: []byte("RFB 003.007\n"), expect: []byte("RFB 003.007\n")},
				{send: []byte{2, 2, 1}, expect: []byte{1}},
				{expect: []byte{1}},
				{send: init, expect: setEncodingsMsg(EncZRLE, EncRaw)},
			},
		},
		{
			name: "3.8 none with pixel format and encodings",
			cfg:  ClientConfig{PixelFormat: &rgb565, Encodings: []int32{EncTight, EncCopyRect, EncLastRect}},
			steps: []scriptStep{
				{send: []byte("RFB 003.008\n"), expect: []byte("RFB 003.008\n")},
				{send: []byte{1, 1}, expect: []byte{1}},
				{send: u32(0), expect: []byte{0}},
				{send: init, expect: cat([]byte{msgSetPixelFormat, 0, 0, 0}, pfBytes(rgb565))},
				{expect: setEncodingsMsg(EncTight, EncCopyRect, EncLastRect)},
			},
		},
		{
			name: "apple 3.889 answered as 3.8",
			steps: []scriptStep{
				{send: []byte("RFB 003.889\n"), expect: []byte("RFB 003.008\n")},
				{send: []byte{3, 30, 1, 2}, expect: []byte{1}},
				{send: u32(0), expect: []byte{0}},
				{send: init},
			},
		},
		{
			name: "4.1 answered as 3.8",
			steps: []scriptStep{
				{send: []byte("RFB 004.001\n"), expect: []byte("RFB 003.008\n")},
				{send: []byte{1, 1}, expect: []byte{1}},
				{send: u32(0), expect: []byte{0}},
				{send: init},
			},
		},
		{
			name:    "not RFB",
			steps:   []scriptStep{{send: []byte("HTTP/1.1 200")}},
			wantErr: `is not "RFB xxx.yyy\n"`,
		},
		{
			name:    "too old",
			steps:   []scriptStep{{send: []byte("RFB 002.000\n")}},
			wantErr: "we need 3.3 or later",
		},
		{
			name: "3.3 refused with reason",
			steps: []scriptStep{
				{send: []byte("RFB 003.003\n"), expect: []byte("RFB 003.003\n")},
				{send: cat(u32(0), wireString("too many viewers"))},
			},
			wantErr: `server refused the connection: "too many viewers"`,
		},
		{
			name: "3.3 auth required",
			steps: []scriptStep{
				{send: []byte("RFB 003.003\n"), expect: []byte("RFB 003.003\n")},
				{send: u32(2)},
			},
			wantErr: "server requires authentication (security type 2); assist's test client only speaks None",
		},
		{
			name: "3.8 no security types with reason",
			steps: []scriptStep{
				{send: []byte("RFB 003.008\n"), expect: []byte("RFB 003.008\n")},
				{send: cat([]byte{0}, wireString("go away"))},
			},
			wantErr: `server refused the connection: "go away"`,
		},
		{
			name: "3.8 auth required",
			steps: []scriptStep{
				{send: []byte("RFB 003.008\n"), expect: []byte("RFB 003.008\n")},
				{send: []byte{2, 2, 16}},
			},
			wantErr: "server requires authentication (security types [2 16]); assist's test client only speaks None",
		},
		{
			name: "3.8 security result failed with reason",
			steps: []scriptStep{
				{send: []byte("RFB 003.008\n"), expect: []byte("RFB 003.008\n")},
				{send: []byte{1, 1}, expect: []byte{1}},
				{send: cat(u32(1), wireString("denied by policy"))},
			},
			wantErr: `security handshake failed: "denied by policy"`,
		},
		{
			name: "huge desktop name",
			steps: []scriptStep{
				{send: []byte("RFB 003.003\n"), expect: []byte("RFB 003.003\n")},
				{send: u32(1), expect: []byte{0}},
				{send: cat(u16(64), u16(48), pfBytes(NativeFormat), u32(0xffffffff))},
			},
			wantErr: "desktop name of 4294967295 bytes is over the limit",
		},
		{
			name: "huge framebuffer",
			steps: []scriptStep{
				{send: []byte("RFB 003.003\n"), expect: []byte("RFB 003.003\n")},
				{send: u32(1), expect: []byte{0}},
				{send: serverInit(65535, 65535, NativeFormat, "")},
			},
			wantErr: "framebuffer of 65535x65535 is over the limit",
		},
		{
			name: "colour-mapped server without a pixel format",
			steps: []scriptStep{
				{send: []byte("RFB 003.003\n"), expect: []byte("RFB 003.003\n")},
				{send: u32(1), expect: []byte{0}},
				{send: serverInit(8, 8, PixelFormat{BPP: 8, Depth: 8}, "")},
			},
			wantErr: "set ClientConfig.PixelFormat",
		},
		{
			name: "truncated ServerInit",
			steps: []scriptStep{
				{send: []byte("RFB 003.003\n"), expect: []byte("RFB 003.003\n")},
				{send: u32(1), expect: []byte{0}},
				{send: u16(64)},
			},
			wantErr: "read ServerInit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, server, done := runScript(t, tt.steps)
			if tt.wantErr != "" {
				// A server that gives up hangs up after its last words.
				go func() { <-done; server.Close() }()
			}
			c, err := NewClient(conn, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewClient error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("script: %v", err)
			}
			if c.Name() != "desk" || c.Size() != image.Pt(64, 48) || c.Framebuffer().Rect != image.Rect(0, 0, 64, 48) {
				t.Errorf("name %q size %v framebuffer %v, want desk 64x48", c.Name(), c.Size(), c.Framebuffer().Rect)
			}
			want := NativeFormat
			if tt.cfg.PixelFormat != nil {
				want = *tt.cfg.PixelFormat
			}
			if c.pf != want {
				t.Errorf("pixel format %+v, want %+v", c.pf, want)
			}
		})
	}
}

// byteConn is a net.Conn that reads from a fixed byte stream and records
// what is written to it, so message tests need no goroutines.
type byteConn struct {
	r io.Reader
	w bytes.Buffer
}

func (c *byteConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c *byteConn) Write(p []byte) (int, error)        { return c.w.Write(p) }
func (c *byteConn) Close() error                       { return nil }
func (c *byteConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *byteConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *byteConn) SetDeadline(t time.Time) error      { return nil }
func (c *byteConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *byteConn) SetWriteDeadline(t time.Time) error { return nil }

// handshake38 is what a 3.8 server sends up to and including ServerInit.
func handshake38(w, h int, name string) []byte {
	return cat([]byte("RFB 003.008\n"), []byte{1, 1}, u32(0), serverInit(w, h, NativeFormat, name))
}

// newTestClient connects a client to a server that sends handshake38
// and then msgs.
func newTestClient(t testing.TB, w, h int, msgs ...[]byte) (*Client, *byteConn) {
	t.Helper()
	conn := &byteConn{r: bytes.NewReader(cat(handshake38(w, h, "test"), cat(msgs...)))}
	c, err := NewClient(conn, ClientConfig{})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	conn.w.Reset()
	return c, conn
}

// update builds a FramebufferUpdate with n as the announced count.
func update(n int, rects ...[]byte) []byte {
	return cat([]byte{msgFramebufferUpdate, 0}, u16(n), cat(rects...))
}

func rectHeader(x, y, w, h int, enc int32) []byte {
	return appendRectHeader(nil, image.Rect(x, y, x+w, y+h), enc)
}

// rawRect builds a Raw rectangle whose pixel (i, j) is patternPixel.
func rawRect(x, y, w, h int, seed byte) []byte {
	b := rectHeader(x, y, w, h, EncRaw)
	for j := 0; j < h; j++ {
		for i := 0; i < w; i++ {
			b = append(b, patternPixel(x+i, y+j, seed)...)
		}
	}
	return b
}

func patternPixel(x, y int, seed byte) []byte {
	return []byte{byte(x*16) + seed, byte(y * 16), seed, 0}
}

// fbPixel returns the B, G, R, X bytes of (x, y).
func fbPixel(fb *screen.Image, x, y int) []byte {
	i := fb.PixOffset(x, y)
	return fb.Pix[i : i+4]
}

func TestClientFramebufferUpdate(t *testing.T) {
	const w, h = 8, 6
	full := rawRect(0, 0, w, h, 1)

	t.Run("raw", func(t *testing.T) {
		c, _ := newTestClient(t, w, h, update(2, full, rawRect(2, 1, 3, 2, 7)))
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m.Type != ServerFramebufferUpdate || len(m.Rects) != 2 || m.Rects[1] != (RectInfo{image.Rect(2, 1, 5, 3), EncRaw}) {
			t.Fatalf("message %+v", m)
		}
		if want := 4 + 12 + 4*w*h + 12 + 4*3*2; m.Bytes != want {
			t.Errorf("Bytes = %d, want %d", m.Bytes, want)
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				seed := byte(1)
				if image.Pt(x, y).In(image.Rect(2, 1, 5, 3)) {
					seed = 7
				}
				if got := fbPixel(c.Framebuffer(), x, y); !bytes.Equal(got[:3], patternPixel(x, y, seed)[:3]) {
					t.Fatalf("pixel %d,%d = %v, want %v", x, y, got, patternPixel(x, y, seed))
				}
			}
		}
	})

	t.Run("copyrect overlapping", func(t *testing.T) {
		for _, d := range []image.Point{{1, 1}, {-1, -1}, {2, 0}, {-2, 0}, {0, 1}, {0, -1}, {2, -2}, {-2, 2}} {
			dst := image.Rect(2, 2, 6, 4)
			src := dst.Min.Sub(d)
			c, _ := newTestClient(t, w, h, update(1, full),
				update(1, cat(rectHeader(dst.Min.X, dst.Min.Y, dst.Dx(), dst.Dy(), EncCopyRect), u16(src.X), u16(src.Y))))
			for range 2 {
				if _, err := c.ReadMessage(); err != nil {
					t.Fatalf("%v: %v", d, err)
				}
			}
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					want := patternPixel(x, y, 1)
					if image.Pt(x, y).In(dst) {
						want = patternPixel(x-d.X, y-d.Y, 1)
					}
					if got := fbPixel(c.Framebuffer(), x, y); !bytes.Equal(got[:3], want[:3]) {
						t.Fatalf("shift %v: pixel %d,%d = %v, want %v", d, x, y, got, want)
					}
				}
			}
		}
	})

	t.Run("last rect", func(t *testing.T) {
		c, _ := newTestClient(t, w, h,
			update(0xffff, rawRect(0, 0, 1, 1, 3), rectHeader(0, 0, 0, 0, EncLastRect)),
			[]byte{msgBell})
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Rects) != 1 || m.Bytes != 4+12+4+12 {
			t.Fatalf("message %+v", m)
		}
		if m, err := c.ReadMessage(); err != nil || m.Type != ServerBell || m.Bytes != 1 {
			t.Fatalf("after LastRect: %+v, %v; want a bell", m, err)
		}
	})

	t.Run("desktop size keeps overlap", func(t *testing.T) {
		c, _ := newTestClient(t, w, h, update(1, full), update(1, rectHeader(0, 0, 10, 3, EncDesktopSize)))
		for range 2 {
			if _, err := c.ReadMessage(); err != nil {
				t.Fatal(err)
			}
		}
		fb := c.Framebuffer()
		if fb.Rect != image.Rect(0, 0, 10, 3) || c.Size() != image.Pt(10, 3) {
			t.Fatalf("framebuffer %v size %v, want 10x3", fb.Rect, c.Size())
		}
		for y := 0; y < 3; y++ {
			for x := 0; x < 10; x++ {
				want := []byte{0, 0, 0}
				if x < w {
					want = patternPixel(x, y, 1)[:3]
				}
				if got := fbPixel(fb, x, y); !bytes.Equal(got[:3], want) {
					t.Fatalf("pixel %d,%d = %v, want %v", x, y, got, want)
				}
			}
		}
	})

	t.Run("extended desktop size", func(t *testing.T) {
		screens := cat([]byte{2, 0, 0, 0},
			u32(7), u16(0), u16(0), u16(640), u16(480), u32(0),
			u32(9), u16(640), u16(0), u16(320), u16(200), u32(0))
		c, _ := newTestClient(t, w, h, update(1, rectHeader(0, 0, 960, 480, EncExtendedDesktopSize), screens))
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if c.Size() != image.Pt(960, 480) || m.Rects[0].Encoding != EncExtendedDesktopSize {
			t.Fatalf("size %v, message %+v", c.Size(), m)
		}
		want := []screenLayout{{7, image.Rect(0, 0, 640, 480), 0}, {9, image.Rect(640, 0, 960, 200), 0}}
		if fmt.Sprint(c.screens) != fmt.Sprint(want) {
			t.Errorf("screens %v, want %v", c.screens, want)
		}
	})

	t.Run("cursor", func(t *testing.T) {
		// 2x2 cursor, hotspot (1, 0): red and green on the top row,
		// blue then a masked-out pixel on the bottom.
		payload := cat(
			[]byte{0, 0, 255, 0}, []byte{0, 255, 0, 0},
			[]byte{255, 0, 0, 0}, []byte{9, 9, 9, 0},
			[]byte{0xc0, 0x80})
		c, _ := newTestClient(t, w, h, update(1, rectHeader(1, 0, 2, 2, EncCursor), payload))
		if _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		cur := c.Cursor()
		if cur == nil || cur.Size != image.Pt(2, 2) || cur.Hot != image.Pt(1, 0) {
			t.Fatalf("cursor %+v", cur)
		}
		if want := []uint32{0xffff0000, 0xff00ff00, 0xff0000ff, 0}; fmt.Sprintf("%x", cur.Pix) != fmt.Sprintf("%x", want) {
			t.Errorf("cursor pixels %x, want %x", cur.Pix, want)
		}
	})
}

func TestClientOtherMessages(t *testing.T) {
	tests := []struct {
		name  string
		msg   []byte
		check func(t *testing.T, m Message)
	}{
		{"bell", []byte{msgBell}, func(t *testing.T, m Message) {}},
		{"end of continuous updates", []byte{msgEndOfContinuousUpdates}, func(t *testing.T, m Message) {}},
		{"cut text latin-1", cat([]byte{msgServerCutText, 0, 0, 0}, wireString("caf\xe9")), func(t *testing.T, m Message) {
			if m.Text != "café" {
				t.Errorf("text %q, want café", m.Text)
			}
		}},
		{"fence", cat([]byte{msgServerFence, 0, 0, 0}, u32(0x80000002), []byte{3, 'a', 'b', 'c'}), func(t *testing.T, m Message) {
			if m.FenceFlags != 0x80000002 || string(m.FencePayload) != "abc" {
				t.Errorf("fence %x %q", m.FenceFlags, m.FencePayload)
			}
		}},
		{"colour map", cat([]byte{msgSetColourMapEntries, 0}, u16(0), u16(2), make([]byte, 12)), func(t *testing.T, m Message) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, 4, 4, tt.msg, []byte{msgBell})
			m, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != tt.msg[0] || m.Bytes != len(tt.msg) {
				t.Errorf("type %d bytes %d, want %d and %d", m.Type, m.Bytes, tt.msg[0], len(tt.msg))
			}
			tt.check(t, m)
			// The next message starts where this one ended.
			if m, err := c.ReadMessage(); err != nil || m.Type != ServerBell {
				t.Errorf("next message %+v, %v; want a bell", m, err)
			}
		})
	}
}

func TestClientHostileMessages(t *testing.T) {
	tests := []struct {
		name    string
		msg     []byte
		wantErr string
	}{
		{"raw outside", update(1, rawRect(6, 0, 3, 1, 0)), "outside the 8x6 framebuffer"},
		{"raw below", update(1, rectHeader(0, 6, 1, 1, EncRaw)), "outside the 8x6 framebuffer"},
		{"empty rect far away", update(1, rectHeader(9000, 9000, 0, 0, EncRaw)), "outside the 8x6 framebuffer"},
		{"zrle outside", update(1, rectHeader(0, 0, 9, 6, EncZRLE)), "outside the 8x6 framebuffer"},
		{"tight outside", update(1, rectHeader(0, 0, 8, 7, EncTight)), "outside the 8x6 framebuffer"},
		{"copyrect destination outside", update(1, rectHeader(7, 0, 2, 2, EncCopyRect), u16(0), u16(0)), "outside the 8x6 framebuffer"},
		{"copyrect source outside", update(1, rectHeader(0, 0, 2, 2, EncCopyRect), u16(7), u16(0)), "CopyRect source (7,0)-(9,2) is outside"},
		{"desktop too large", update(1, rectHeader(0, 0, 65535, 65535, EncDesktopSize)), "framebuffer of 65535x65535 is over the limit"},
		{"cursor too large", update(1, rectHeader(0, 0, 4000, 4000, EncCursor)), "cursor of 4000x4000 is over the limit"},
		{"unknown encoding", update(1, rectHeader(0, 0, 1, 1, EncHextile)), "encoding 5 is not supported"},
		{"unknown message", []byte{77}, "unknown server message type 77"},
		{"huge cut text", cat([]byte{msgServerCutText, 0, 0, 0}, u32(0xfffffff0)), "ServerCutText of 4294967280 bytes is over the limit"},
		{"extended clipboard", cat([]byte{msgServerCutText, 0, 0, 0}, u32(0x80000004)), "over the limit"},
		{"fence too long", cat([]byte{msgServerFence, 0, 0, 0}, u32(0), []byte{65}), "ServerFence payload of 65 bytes is over the limit"},
		{"truncated raw", update(1, rectHeader(0, 0, 8, 6, EncRaw), make([]byte, 10)), "EOF"},
		{"truncated header", update(2, rawRect(0, 0, 1, 1, 0), []byte{0, 0}), "read rectangle header"},
		{"truncated cut text", cat([]byte{msgServerCutText, 0, 0, 0}, u32(5), []byte("ab")), "read ServerCutText"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, 8, 6, tt.msg)
			_, err := c.ReadMessage()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
			// The stream is out of step now: the error sticks.
			if _, err2 := c.ReadMessage(); err2 != err {
				t.Errorf("second ReadMessage: %v, want the first error again", err2)
			}
		})
	}
}

func TestClientWrites(t *testing.T) {
	tests := []struct {
		name string
		send func(c *Client) error
		want []byte
	}{
		{"key down", func(c *Client) error { return c.KeyEvent(0xff0d, true) }, cat([]byte{4, 1, 0, 0}, u32(0xff0d))},
		{"key up", func(c *Client) error { return c.KeyEvent('a', false) }, cat([]byte{4, 0, 0, 0}, u32('a'))},
		{"pointer", func(c *Client) error { return c.PointerEvent(300, 2, 5) }, cat([]byte{5, 5}, u16(300), u16(2))},
		{"pointer clamped", func(c *Client) error { return c.PointerEvent(-4, 70000, 0) }, cat([]byte{5, 0}, u16(0), u16(65535))},
		{"full update", func(c *Client) error { return c.RequestUpdate(false, image.Rectangle{}) }, cat([]byte{3, 0}, u16(0), u16(0), u16(8), u16(6))},
		{"incremental area", func(c *Client) error { return c.RequestUpdate(true, image.Rect(1, 2, 4, 6)) }, cat([]byte{3, 1}, u16(1), u16(2), u16(3), u16(4))},
		{"continuous updates", func(c *Client) error { return c.EnableContinuousUpdates(true, image.Rectangle{}) }, cat([]byte{150, 1}, u16(0), u16(0), u16(8), u16(6))},
		{"continuous updates off", func(c *Client) error { return c.EnableContinuousUpdates(false, image.Rect(0, 0, 2, 2)) }, cat([]byte{150, 0}, u16(0), u16(0), u16(2), u16(2))},
		{"cut text latin-1", func(c *Client) error { return c.CutText("héllo ☃") }, cat([]byte{6, 0, 0, 0}, wireString("h\xe9llo ?"))},
		{"fence", func(c *Client) error { return c.Fence(0x80000001, []byte("xy")) }, cat([]byte{248, 0, 0, 0}, u32(0x80000001), []byte{2, 'x', 'y'})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, conn := newTestClient(t, 8, 6)
			if err := tt.send(c); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(conn.w.Bytes(), tt.want) {
				t.Errorf("sent %v, want %v", conn.w.Bytes(), tt.want)
			}
		})
	}

	c, _ := newTestClient(t, 8, 6)
	if err := c.Fence(0, make([]byte, 65)); err == nil {
		t.Error("Fence with 65 bytes of payload succeeded")
	}
	if err := c.RequestUpdate(false, image.Rect(-1, 0, 3, 3)); err == nil {
		t.Error("RequestUpdate with a negative coordinate succeeded")
	}
}

// TestClientConcurrentWrites sends pointer events from one goroutine
// while another reads messages; the server must see whole messages.
func TestClientConcurrentWrites(t *testing.T) {
	const n = 200
	conn, server, done := runScript(t, []scriptStep{
		{send: []byte("RFB 003.008\n"), expect: []byte("RFB 003.008\n")},
		{send: []byte{1, 1}, expect: []byte{1}},
		{send: u32(0), expect: []byte{0}},
		{send: serverInit(8, 8, NativeFormat, "")},
	})
	c, err := NewClient(conn, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	wg.Add(3)
	errs := make(chan error, 3)
	go func() { // the viewer's input
		defer wg.Done()
		for i := range n {
			if err := c.PointerEvent(i, i+1, uint8(i)); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() { // the server reading input
		defer wg.Done()
		b := make([]byte, 6)
		for i := range n {
			if _, err := io.ReadFull(server, b); err != nil {
				errs <- err
				return
			}
			if want := cat([]byte{5, uint8(i)}, u16(i), u16(i+1)); !bytes.Equal(b, want) {
				errs <- fmt.Errorf("pointer event %d: got %v, want %v", i, b, want)
				return
			}
		}
	}()
	go func() { // the server sending bells
		defer wg.Done()
		for range n {
			if _, err := server.Write([]byte{msgBell}); err != nil {
				errs <- err
				return
			}
		}
	}()
	for range n {
		if m, err := c.ReadMessage(); err != nil || m.Type != ServerBell {
			t.Fatalf("ReadMessage: %+v, %v", m, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestParseServerVersion(t *testing.T) {
	for _, tt := range []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"RFB 003.008\n", 3, 8, true},
		{"RFB 003.889\n", 3, 889, true},
		{"RFB 003.00a\n", 0, 0, false},
		{"RFB 003008\n\n", 0, 0, false},
		{"RFB 003.008\r", 0, 0, false},
	} {
		major, minor, ok := parseServerVersion([]byte(tt.in))
		if major != tt.major || minor != tt.minor || ok != tt.ok {
			t.Errorf("parseServerVersion(%q) = %d, %d, %v", tt.in, major, minor, ok)
		}
	}
}

// FuzzClientReadMessage feeds arbitrary server messages to a client that
// finished a valid handshake. The first byte picks the pixel format the
// client asks for, so the decoders run with several of them.
func FuzzClientReadMessage(f *testing.F) {
	const w, h = 16, 8
	f.Add([]byte{0, msgBell})
	f.Add(cat([]byte{0}, update(1, rawRect(0, 0, 4, 4, 2))))
	f.Add(cat([]byte{1}, update(1, rectHeader(0, 0, 4, 4, EncRaw), make([]byte, 32))))
	f.Add(cat([]byte{0}, update(0xffff, rawRect(1, 1, 1, 1, 0), rectHeader(0, 0, 0, 0, EncLastRect))))
	f.Add(cat([]byte{0}, update(1, rectHeader(2, 2, 4, 4, EncCopyRect), u16(0), u16(0))))
	f.Add(cat([]byte{0}, update(1, rectHeader(0, 0, 20, 10, EncDesktopSize))))
	f.Add(cat([]byte{0}, update(1, rectHeader(0, 0, 20, 10, EncExtendedDesktopSize), []byte{1, 0, 0, 0}, u32(1), u16(0), u16(0), u16(20), u16(10), u32(0))))
	f.Add(cat([]byte{0}, update(1, rectHeader(1, 1, 2, 2, EncCursor), make([]byte, 16), []byte{0xc0, 0x40})))
	f.Add(cat([]byte{0}, update(1, rectHeader(0, 0, 16, 8, EncZRLE), u32(4), []byte{0x78, 0x9c, 0, 0})))
	f.Add(cat([]byte{0}, update(1, rectHeader(0, 0, 16, 8, EncTight), []byte{0x80, 1, 2, 3})))
	f.Add(cat([]byte{2}, update(1, rectHeader(0, 0, 4, 2, EncTight), []byte{0x40, 1, 1, 0, 0, 0, 0, 0, 0, 2, 0xff})))
	f.Add(cat([]byte{0}, []byte{msgServerCutText, 0, 0, 0}, wireString("hi")))
	f.Add(cat([]byte{0}, []byte{msgServerFence, 0, 0, 0}, u32(1), []byte{1, 9}))
	provide, _ := appendClipProvide(nil, msgServerCutText, "Grüße ✓ 你好")
	f.Add(cat([]byte{0x80}, appendClipCaps(nil, msgServerCutText, 0), appendClipAction(nil, msgServerCutText, clipNotify, clipText), provide))
	f.Add(cat([]byte{0xc0}, appendClipAction(nil, msgServerCutText, clipRequest, clipText), appendClipAction(nil, msgServerCutText, clipPeek, 0)))
	f.Add(cat([]byte{0}, []byte{msgSetColourMapEntries, 0}, u16(0), u16(1), make([]byte, 6)))
	formats := []*PixelFormat{nil, &rgb565,
		{BPP: 32, Depth: 24, BigEndian: true, TrueColor: true, RedMax: 255, GreenMax: 255, BlueMax: 255, BlueShift: 16, GreenShift: 8},
		{BPP: 8, Depth: 8, TrueColor: true, RedMax: 7, GreenMax: 7, BlueMax: 3, RedShift: 0, GreenShift: 3, BlueShift: 6},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		cfg := ClientConfig{PixelFormat: formats[int(data[0])%len(formats)]}
		if data[0]&0x80 != 0 {
			// The Extended Clipboard's parser and answers run too.
			cfg.Encodings = []int32{EncRaw, EncExtendedClipboard}
			cfg.ClipboardNotifyOnly = data[0]&0x40 != 0
		}
		conn := &byteConn{r: bytes.NewReader(cat(handshake38(w, h, "fuzz"), data[1:]))}
		// A small framebuffer limit keeps DesktopSize from allocating
		// hundreds of megabytes per input.
		c, err := newClient(conn, cfg, 1<<16)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		// Every message consumes at least one byte, so this ends.
		for {
			before := c.Framebuffer()
			if _, err := c.ReadMessage(); err != nil {
				return
			}
			if fb := c.Framebuffer(); fb != before && len(fb.Pix) != 4*fb.Rect.Dx()*fb.Rect.Dy() {
				t.Fatalf("framebuffer %v has %d bytes", fb.Rect, len(fb.Pix))
			}
		}
	})
}

// The tests below run the client against real RFB servers on a virtual
// X display, comparing the decoded framebuffer with what the X server
// itself reports (xwd). They prove the decoders against independent
// encoders.

// startXvfb starts a virtual X server of the given size on a free
// display and returns its name (":N").
func startXvfb(t *testing.T, w, h int) string {
	t.Helper()
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", fmt.Sprintf("%dx%dx24", w, h), "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{wr}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		wr.Close()
		t.Fatalf("start Xvfb: %v", err)
	}
	wr.Close() // so that the read below ends if Xvfb dies
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(r).ReadString('\n')
	n, convErr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || convErr != nil {
		t.Fatalf("Xvfb did not report its display (%q, %v): %s", line, err, stderr.Bytes())
	}
	return fmt.Sprintf(":%d", n)
}

// testPattern draws content that exercises every sub-encoding: a smooth
// gradient, noise, few-colour areas and solid blocks.
func testPattern(w, h int) *screen.Image {
	img := screen.NewImage(image.Rect(0, 0, w, h))
	seed := uint32(2463534242)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var r, g, b byte
			switch {
			case x < w/2 && y < h/2: // gradient
				r, g, b = byte(x), byte(2*y), byte((x+y)/2)
			case y < h/2: // noise
				seed ^= seed << 13
				seed ^= seed >> 17
				seed ^= seed << 5
				r, g, b = byte(seed), byte(seed>>8), byte(seed>>16)
			case x < w/4: // two colours
				if (x/3+y/5)%2 == 0 {
					r, g, b = 250, 250, 240
				} else {
					r, g, b = 10, 20, 200
				}
			case x < w/2: // a handful of colours
				c := (x/7 + y/4) % 5
				r, g, b = byte(c*60), byte(255-c*50), byte(c*c*10)
			default: // solid blocks
				r, g, b = 200, 100, 50
				if x > w*3/4 && y > h*3/4 {
					r, g, b = 0, 128, 64
				}
			}
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2] = b, g, r
		}
	}
	return img
}

// drawRoot sets img as the root window's background of display.
func drawRoot(t *testing.T, display string, img *screen.Image) {
	t.Helper()
	w, h := img.Rect.Dx(), img.Rect.Dy()
	ppm := fmt.Appendf(nil, "P6\n%d %d\n255\n", w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := fbPixel(img, x, y)
			ppm = append(ppm, p[2], p[1], p[0])
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "pattern.ppm")
	if err := os.WriteFile(file, ppm, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// ImageMagick's display exits 1 after setting the root background
	// here; what counts is the screen, which the caller checks.
	out, _ := exec.CommandContext(ctx, "display", "-display", display, "-window", "root", file).CombinedOutput()
	if len(out) > 0 {
		t.Logf("display: %s", out)
	}

	// An invisible pointer: some servers (X0tigervnc) paint the cursor
	// into the framebuffer, where xwd has none.
	blank := filepath.Join(dir, "blank.xbm")
	xbm := "#define blank_width 8\n#define blank_height 8\n#define blank_x_hot 0\n#define blank_y_hot 0\n" +
		"static unsigned char blank_bits[] = {\n   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};\n"
	if err := os.WriteFile(blank, []byte(xbm), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "xsetroot", "-display", display, "-cursor", blank, blank).CombinedOutput(); err != nil {
		t.Fatalf("xsetroot: %v: %s", err, out)
	}
}

// grabXWD dumps the root window of display with xwd.
func grabXWD(t *testing.T, display string) *screen.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "xwd", "-root", "-silent", "-display", display).Output()
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	img, err := parseXWD(out)
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	return img
}

// parseXWD reads a 24/32-bit TrueColor ZPixmap XWD dump (what xwd -root
// writes for a depth-24 screen) into a native image.
func parseXWD(b []byte) (*screen.Image, error) {
	const fields = 25
	if len(b) < 4*fields {
		return nil, errors.New("XWD header is cut short")
	}
	hdr := make([]uint32, fields)
	for i := range hdr {
		hdr[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	headerSize, version, format := hdr[0], hdr[1], hdr[2]
	w, h := int(hdr[4]), int(hdr[5])
	byteOrder, bpp, stride := hdr[7], hdr[11], int(hdr[12])
	masks := [3]uint32{hdr[14], hdr[15], hdr[16]}
	ncolors := int(hdr[19])
	if version != 7 || format != 2 || bpp != 32 {
		return nil, fmt.Errorf("XWD version %d format %d with %d bits per pixel is not a 32-bit ZPixmap", version, format, bpp)
	}
	off := int(headerSize) + 12*ncolors
	if w <= 0 || h <= 0 || w > 1<<14 || h > 1<<14 || stride < 4*w || off+stride*h > len(b) {
		return nil, fmt.Errorf("XWD of %dx%d (stride %d) does not fit %d bytes", w, h, stride, len(b))
	}
	var shifts [3]uint
	for i, m := range masks {
		if m == 0 {
			return nil, fmt.Errorf("XWD colour mask %d is empty", i)
		}
		for m&1 == 0 {
			m >>= 1
			shifts[i]++
		}
	}
	img := screen.NewImage(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		row := b[off+y*stride:]
		for x := 0; x < w; x++ {
			var v uint32
			if byteOrder == 0 { // LSBFirst
				v = binary.LittleEndian.Uint32(row[4*x:])
			} else {
				v = binary.BigEndian.Uint32(row[4*x:])
			}
			i := img.PixOffset(x, y)
			img.Pix[i+2] = byte(v & masks[0] >> shifts[0])
			img.Pix[i+1] = byte(v & masks[1] >> shifts[1])
			img.Pix[i] = byte(v & masks[2] >> shifts[2])
		}
	}
	return img, nil
}

// compareImages reports the first pixels of got that differ from want
// by more than tol per channel.
func compareImages(t *testing.T, got, want *screen.Image, tol [3]int) {
	t.Helper()
	if got.Rect != want.Rect {
		t.Fatalf("framebuffer %v, want %v", got.Rect, want.Rect)
	}
	bad := 0
	for y := 0; y < want.Rect.Dy(); y++ {
		for x := 0; x < want.Rect.Dx(); x++ {
			g, w := fbPixel(got, x, y), fbPixel(want, x, y)
			for ch := range 3 { // B, G, R
				if d := int(g[ch]) - int(w[ch]); d > tol[2-ch] || -d > tol[2-ch] {
					if bad < 5 {
						t.Errorf("pixel %d,%d: BGR %v, want %v", x, y, g[:3], w[:3])
					}
					bad++
					break
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d pixels differ", bad, want.Rect.Dx()*want.Rect.Dy())
	}
}

// tolerance is how far a channel may be off after a round trip through
// pf: servers round or truncate when they reduce colour depth.
func tolerance(pf *PixelFormat) [3]int {
	if pf == nil {
		return [3]int{}
	}
	step := func(max uint16) int { return (255 + int(max) - 1) / int(max) }
	return [3]int{step(pf.RedMax), step(pf.GreenMax), step(pf.BlueMax)}
}

// readFullUpdate requests the whole screen and reads until rectangles
// have covered all of it. The screen does not change meanwhile, so the
// framebuffer is then a copy of it.
func readFullUpdate(t *testing.T, c *Client) []RectInfo {
	t.Helper()
	if err := c.RequestUpdate(false, image.Rectangle{}); err != nil {
		t.Fatal(err)
	}
	size := c.Size()
	covered := make([]bool, size.X*size.Y)
	left := len(covered)
	var rects []RectInfo
	for left > 0 {
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		if m.Type != ServerFramebufferUpdate {
			continue
		}
		// Like a real viewer, ask again after every update: a server
		// may answer the first request with only the cursor shape.
		if err := c.RequestUpdate(true, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Rects {
			rects = append(rects, r)
			switch r.Encoding {
			case EncRaw, EncCopyRect, EncZRLE, EncTight:
			default:
				continue
			}
			for y := r.Rect.Min.Y; y < r.Rect.Max.Y; y++ {
				for x := r.Rect.Min.X; x < r.Rect.Max.X; x++ {
					if !covered[y*size.X+x] {
						covered[y*size.X+x] = true
						left--
					}
				}
			}
		}
	}
	return rects
}

func TestClientAgainstRealServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts X and VNC servers")
	}
	for _, tool := range []string{"Xvfb", "xwd", "display", "xsetroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian: xvfb, x11-apps, imagemagick, x11-xserver-utils)", tool)
		}
	}
	// Sizes that are not multiples of ZRLE's 64-pixel tiles.
	const w, h = 400, 300
	display := startXvfb(t, w, h)
	pattern := testPattern(w, h)
	drawRoot(t, display, pattern)
	want := grabXWD(t, display)
	compareImages(t, want, pattern, [3]int{})
	if t.Failed() {
		t.Fatal("could not put the test pattern on the screen")
	}

	servers := []struct {
		name string
		args func(port int) []string
	}{
		{"x11vnc", func(port int) []string {
			return []string{"-display", display, "-rfbport", strconv.Itoa(port), "-nopw", "-localhost", "-shared", "-forever"}
		}},
		{"X0tigervnc", func(port int) []string {
			return []string{"-display", display, "-rfbport", strconv.Itoa(port), "-SecurityTypes", "None", "-localhost"}
		}},
	}
	formats := []struct {
		name string
		pf   *PixelFormat
	}{
		{"native", nil},
		{"rgb565", &rgb565},
		{"bgr-bigendian", &PixelFormat{BPP: 32, Depth: 24, BigEndian: true, TrueColor: true, RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 0, GreenShift: 8, BlueShift: 16}},
		{"bgr233", &PixelFormat{BPP: 8, Depth: 8, TrueColor: true, RedMax: 7, GreenMax: 7, BlueMax: 3, RedShift: 0, GreenShift: 3, BlueShift: 6}},
	}
	encodings := []struct {
		name string
		encs []int32
	}{
		{"raw", []int32{EncRaw}},
		{"zrle", []int32{EncZRLE}},
		// No JPEG quality pseudo-encoding: Tight stays lossless.
		{"tight", []int32{EncTight, EncCopyRect}},
		{"tight-level9", []int32{EncTight, EncCompressLevel9, EncCopyRect}},
		{"tight-level1", []int32{EncTight, EncCompressLevel0 + 1, EncCopyRect}},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			if _, err := exec.LookPath(srv.name); err != nil {
				t.Skipf("%s is not installed", srv.name)
			}
			addr := lab.StartVNCServer(t, srv.name, srv.args)
			for _, enc := range encodings {
				for _, f := range formats {
					t.Run(enc.name+"/"+f.name, func(t *testing.T) {
						conn, err := net.Dial("tcp", addr)
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { conn.Close() })
						// A hang guard, not a timing assertion.
						conn.SetDeadline(time.Now().Add(20 * time.Second))
						// The cursor shape goes separately, or servers
						// paint it into the framebuffer where xwd has none.
						encs := append(append([]int32{}, enc.encs...), EncCursor, EncLastRect)
						c, err := NewClient(conn, ClientConfig{Shared: true, PixelFormat: f.pf, Encodings: encs})
						if err != nil {
							t.Fatal(err)
						}
						rects := readFullUpdate(t, c)
						compareImages(t, c.Framebuffer(), want, tolerance(f.pf))
						if t.Failed() {
							t.Logf("rectangles: %v", rects)
						}
					})
				}
			}
		})
	}
}

// loopReader replays b forever.
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

// BenchmarkClientRawUpdate measures the client's own cost per full-screen
// Raw update (header parsing, bounds checks, the Raw decoder's copy).
func BenchmarkClientRawUpdate(b *testing.B) {
	const w, h = 1280, 720
	msg := update(1, rectHeader(0, 0, w, h, EncRaw), make([]byte, 4*w*h))
	conn := &byteConn{r: io.MultiReader(bytes.NewReader(handshake38(w, h, "bench")), &loopReader{b: msg})}
	c, err := NewClient(conn, ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}
