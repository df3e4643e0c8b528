package rfb

import (
	"bytes"
	"encoding/binary"
	"image"
	"testing"

	"github.com/assist-project/assist/screen"
)

// testCursor is a w x h arrow-like cursor with opaque, half-transparent
// (shadow) and transparent pixels, premultiplied like XFIXES gives them.
func testCursor(w, h int, hot image.Point) *screen.Cursor {
	c := &screen.Cursor{Size: image.Pt(w, h), Hot: hot, Pix: make([]uint32, w*h)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var p uint32
			switch {
			case x <= y/2: // body: opaque, varied colour
				p = 0xff000000 | uint32(x*40)&255<<16 | uint32(y*20)&255<<8 | uint32(x+y)&255
			case x == y/2+1: // outline: 75% alpha white, premultiplied
				p = 0xbf<<24 | 0xbf<<16 | 0xbf<<8 | 0xbf
			case x == y/2+2: // shadow: 25% alpha black
				p = 0x40 << 24
			}
			c.Pix[y*w+x] = p
		}
	}
	return c
}

// wantCursor is what c looks like after a trip through pf.
func wantCursor(c *screen.Cursor, pf *PixelFormat) []uint32 {
	out := make([]uint32, len(c.Pix))
	for i, p := range c.Pix {
		a := p >> 24
		if a < 128 {
			continue
		}
		r, g, b := pf.rgb(pf.pixel(unpremultiply(p, a), unpremultiply(p>>8, a), unpremultiply(p>>16, a)))
		out[i] = 0xff000000 | uint32(r)<<16 | uint32(g)<<8 | uint32(b)
	}
	return out
}

func TestCursorRoundTrip(t *testing.T) {
	cursors := []*screen.Cursor{
		testCursor(1, 1, image.Pt(0, 0)),
		testCursor(16, 16, image.Pt(1, 2)),
		testCursor(13, 21, image.Pt(12, 20)),
		testCursor(64, 64, image.Pt(31, 9)),
	}
	for _, f := range testFormats() {
		for _, c := range cursors {
			wire := appendCursorRect([]byte{0xaa}, c, &f.pf)
			if wire[0] != 0xaa {
				t.Fatal("appendCursorRect overwrote buf")
			}
			h := wire[1:13]
			x, y := int(binary.BigEndian.Uint16(h[0:])), int(binary.BigEndian.Uint16(h[2:]))
			w, hh := int(binary.BigEndian.Uint16(h[4:])), int(binary.BigEndian.Uint16(h[6:]))
			if enc := int32(binary.BigEndian.Uint32(h[8:])); enc != EncCursor {
				t.Fatalf("encoding %d", enc)
			}
			rd := bytes.NewReader(wire[13:])
			got, err := decodeCursor(rd, image.Rect(x, y, x+w, y+hh), &f.pf)
			if err != nil {
				t.Fatalf("%s %v: %v", f.name, c.Size, err)
			}
			if rd.Len() != 0 {
				t.Fatalf("%s %v: %d bytes left", f.name, c.Size, rd.Len())
			}
			if got.Size != c.Size || got.Hot != c.Hot {
				t.Fatalf("%s: size %v hot %v, want %v %v", f.name, got.Size, got.Hot, c.Size, c.Hot)
			}
			want := wantCursor(c, &f.pf)
			for i := range want {
				if got.Pix[i] != want[i] {
					t.Fatalf("%s %v: pixel %d is %#08x, want %#08x", f.name, c.Size, i, got.Pix[i], want[i])
				}
			}
		}
	}
}

// TestCursorEdgeCases covers cursors the capture side may hand over.
func TestCursorEdgeCases(t *testing.T) {
	cases := []struct {
		name     string
		c        *screen.Cursor
		size     image.Point
		hot      image.Point
		wantPix0 uint32
	}{
		{"nil", nil, image.Point{}, image.Point{}, 0},
		{"empty", &screen.Cursor{Hot: image.Pt(3, 3)}, image.Point{}, image.Point{}, 0},
		{"hotspot outside", &screen.Cursor{Size: image.Pt(4, 4), Hot: image.Pt(9, -2), Pix: make([]uint32, 16)}, image.Pt(4, 4), image.Pt(3, 0), 0},
		{"short pixels", &screen.Cursor{Size: image.Pt(4, 4), Pix: []uint32{0xff102030}}, image.Pt(4, 4), image.Point{}, 0xff102030},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wire := appendCursorRect(nil, c.c, &NativeFormat)
			x, y := int(binary.BigEndian.Uint16(wire[0:])), int(binary.BigEndian.Uint16(wire[2:]))
			w, h := int(binary.BigEndian.Uint16(wire[4:])), int(binary.BigEndian.Uint16(wire[6:]))
			rd := bytes.NewReader(wire[12:])
			got, err := decodeCursor(rd, image.Rect(x, y, x+w, y+h), &NativeFormat)
			if err != nil {
				t.Fatal(err)
			}
			if got.Size != c.size || got.Hot != c.hot || rd.Len() != 0 {
				t.Fatalf("size %v hot %v (%d bytes left), want %v %v", got.Size, got.Hot, rd.Len(), c.size, c.hot)
			}
			if len(got.Pix) > 0 && got.Pix[0] != c.wantPix0 {
				t.Fatalf("pixel 0 is %#x, want %#x", got.Pix[0], c.wantPix0)
			}
		})
	}
}

func TestCursorDecodeRejects(t *testing.T) {
	if _, err := decodeCursor(bytes.NewReader(nil), image.Rect(0, 0, 4000, 4000), &NativeFormat); err == nil {
		t.Error("a 4000x4000 cursor was accepted")
	}
	if _, err := decodeCursor(bytes.NewReader(make([]byte, 10)), image.Rect(0, 0, 4, 4), &NativeFormat); err == nil {
		t.Error("a truncated cursor was accepted")
	}
}

func FuzzCursorDecode(f *testing.F) {
	formats := testFormats()
	for i, fm := range formats {
		wire := appendCursorRect(nil, testCursor(5, 7, image.Pt(2, 3)), &fm.pf)
		f.Add(byte(i), byte(5), byte(7), wire[12:])
	}
	f.Fuzz(func(t *testing.T, format, w, h byte, data []byte) {
		pf := &formats[int(format)%len(formats)].pf
		c, err := decodeCursor(bytes.NewReader(data), image.Rect(1, 2, 1+int(w), 2+int(h)), pf)
		if err == nil && len(c.Pix) != c.Size.X*c.Size.Y {
			t.Fatalf("%d pixels for size %v", len(c.Pix), c.Size)
		}
	})
}
