package lab

import (
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"net"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

const encCursor = -239

// RawClient is a deliberately small RFB 3.8 client written from RFC 6143
// for tests that must misbehave on purpose (stall, send garbage). It asks
// only for Raw encoding in the server's pixel format, which must be 32
// bits per pixel little-endian true colour.
type RawClient struct {
	Conn net.Conn
	Size image.Point
	Name string
	// PixelFormat is the server's 16-byte pixel format from ServerInit.
	PixelFormat [16]byte
	fb          *screen.Image
}

// DialRFB connects to addr, completes the handshake (version 3.8, security
// None, shared) and reads ServerInit. The connection closes on cleanup.
func DialRFB(t testing.TB, addr string) *RawClient {
	t.Helper()
	c, err := dialRFB(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Conn.Close() })
	return c
}

func dialRFB(addr string) (*RawClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("lab: rfb: dial %s: %w", addr, err)
	}
	c := &RawClient{Conn: conn}
	if err := c.handshake(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lab: rfb: handshake with %s: %w", addr, err)
	}
	return c, nil
}

func (c *RawClient) handshake() error {
	_ = c.Conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.Conn.SetDeadline(time.Time{})
	var ver [12]byte
	if _, err := io.ReadFull(c.Conn, ver[:]); err != nil {
		return fmt.Errorf("version: %w", err)
	}
	if _, err := c.Conn.Write([]byte("RFB 003.008\n")); err != nil {
		return err
	}
	var n [1]byte
	if _, err := io.ReadFull(c.Conn, n[:]); err != nil {
		return fmt.Errorf("security types: %w", err)
	}
	types := make([]byte, n[0])
	if _, err := io.ReadFull(c.Conn, types); err != nil {
		return fmt.Errorf("security types: %w", err)
	}
	hasNone := false
	for _, ty := range types {
		hasNone = hasNone || ty == 1
	}
	if !hasNone {
		return fmt.Errorf("server offers security types %v, not None", types)
	}
	if _, err := c.Conn.Write([]byte{1}); err != nil {
		return err
	}
	var res [4]byte
	if _, err := io.ReadFull(c.Conn, res[:]); err != nil {
		return fmt.Errorf("security result: %w", err)
	}
	if binary.BigEndian.Uint32(res[:]) != 0 {
		return fmt.Errorf("security failed")
	}
	if _, err := c.Conn.Write([]byte{1}); err != nil { // shared
		return err
	}
	var si [24]byte
	if _, err := io.ReadFull(c.Conn, si[:]); err != nil {
		return fmt.Errorf("ServerInit: %w", err)
	}
	c.Size = image.Pt(int(binary.BigEndian.Uint16(si[0:])), int(binary.BigEndian.Uint16(si[2:])))
	copy(c.PixelFormat[:], si[4:20])
	name := make([]byte, binary.BigEndian.Uint32(si[20:]))
	if len(name) > 1<<16 {
		return fmt.Errorf("desktop name of %d bytes", len(name))
	}
	if _, err := io.ReadFull(c.Conn, name); err != nil {
		return fmt.Errorf("desktop name: %w", err)
	}
	c.Name = string(name)
	// Raw in the native 32-bit format keeps the reader tiny. The Cursor
	// pseudo-encoding keeps servers from painting the pointer into the
	// pixels (xwd screenshots do not show it either). Naming
	// ContinuousUpdates (-313), which it never enables, keeps this client
	// strictly request-and-answer: assist join asks the novice to push
	// updates to viewers that do not name it, and a pushed update could
	// arrive before the answer to a request. Servers that know it answer
	// with one EndOfContinuousUpdates, which the readers skip.
	pf := []byte{0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0}
	enc := []byte{2, 0, 0, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x11, 0xff, 0xff, 0xfe, 0xc7} // Raw, Cursor (-239), ContinuousUpdates (-313)
	_, err := c.Conn.Write(append(pf, enc...))
	return err
}

// RequestUpdate sends a FramebufferUpdateRequest for the whole screen.
func (c *RawClient) RequestUpdate(incremental bool) error {
	m := []byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if incremental {
		m[1] = 1
	}
	binary.BigEndian.PutUint16(m[6:], uint16(c.Size.X))
	binary.BigEndian.PutUint16(m[8:], uint16(c.Size.Y))
	_, err := c.Conn.Write(m)
	return err
}

// Framebuffer returns the client's copy of the screen.
func (c *RawClient) Framebuffer() *screen.Image {
	if c.fb == nil {
		c.fb = screen.NewImage(image.Rectangle{Max: c.Size})
	}
	return c.fb
}

// ReadUpdate reads server messages until one FramebufferUpdate has been
// applied to Framebuffer, skipping bells, cut text, colour maps and
// EndOfContinuousUpdates.
func (c *RawClient) ReadUpdate(timeout time.Duration) error {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.Conn.SetReadDeadline(time.Time{})
	fb := c.Framebuffer()
	for {
		var ty [1]byte
		if _, err := io.ReadFull(c.Conn, ty[:]); err != nil {
			return fmt.Errorf("lab: rfb: message type: %w", err)
		}
		switch ty[0] {
		case 0:
			var h [3]byte
			if _, err := io.ReadFull(c.Conn, h[:]); err != nil {
				return fmt.Errorf("lab: rfb: update header: %w", err)
			}
			for i := 0; i < int(binary.BigEndian.Uint16(h[1:])); i++ {
				var rh [12]byte
				if _, err := io.ReadFull(c.Conn, rh[:]); err != nil {
					return fmt.Errorf("lab: rfb: rectangle header: %w", err)
				}
				x, y := int(binary.BigEndian.Uint16(rh[0:])), int(binary.BigEndian.Uint16(rh[2:]))
				w, hh := int(binary.BigEndian.Uint16(rh[4:])), int(binary.BigEndian.Uint16(rh[6:]))
				enc := int32(binary.BigEndian.Uint32(rh[8:]))
				r := image.Rect(x, y, x+w, y+hh)
				if enc == encCursor {
					// 32-bit pixels, then a 1-bit mask with rows padded to bytes.
					if _, err := io.CopyN(io.Discard, c.Conn, int64(4*w*hh+(w+7)/8*hh)); err != nil {
						return fmt.Errorf("lab: rfb: cursor: %w", err)
					}
					continue
				}
				if enc != 0 || !r.In(fb.Rect) {
					return fmt.Errorf("lab: rfb: rectangle %v with encoding %d; asked for Raw within %v", r, enc, fb.Rect)
				}
				for row := r.Min.Y; row < r.Max.Y; row++ {
					o := fb.PixOffset(r.Min.X, row)
					if _, err := io.ReadFull(c.Conn, fb.Pix[o:o+4*w]); err != nil {
						return fmt.Errorf("lab: rfb: pixels: %w", err)
					}
				}
			}
			return nil
		case 1:
			var h [5]byte
			if _, err := io.ReadFull(c.Conn, h[:]); err != nil {
				return err
			}
			if _, err := io.CopyN(io.Discard, c.Conn, 6*int64(binary.BigEndian.Uint16(h[3:]))); err != nil {
				return err
			}
		case 2, 150: // Bell, EndOfContinuousUpdates
		case 3:
			var h [7]byte
			if _, err := io.ReadFull(c.Conn, h[:]); err != nil {
				return err
			}
			if _, err := io.CopyN(io.Discard, c.Conn, int64(binary.BigEndian.Uint32(h[3:]))); err != nil {
				return err
			}
		default:
			return fmt.Errorf("lab: rfb: unexpected message type %d", ty[0])
		}
	}
}

// Screen fits WaitMatch: it requests a full update and returns the
// framebuffer after it.
func (c *RawClient) Screen() (*screen.Image, image.Point, error) {
	if err := c.RequestUpdate(false); err != nil {
		return nil, image.Point{}, err
	}
	if err := c.ReadUpdate(30 * time.Second); err != nil {
		return nil, image.Point{}, err
	}
	return c.Framebuffer(), image.Point{}, nil
}
