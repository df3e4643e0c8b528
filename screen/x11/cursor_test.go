package x11

import (
	"image"
	"slices"
	"testing"

	"github.com/jezek/xgb/xproto"

	"github.com/assist-project/assist/screen"
)

func TestCursor(t *testing.T) {
	disp := startXvfb(t, "640x480x24")
	d := openTest(t, disp, options{})
	cl := newClient(t, disp)

	before, err := d.Cursor()
	if err != nil {
		t.Fatal(err)
	}
	if before.Size.X <= 0 || before.Size.Y <= 0 || len(before.Pix) != before.Size.X*before.Size.Y {
		t.Fatalf("root cursor: size %v, %d pixels", before.Size, len(before.Pix))
	}
	if !before.Hot.In(image.Rectangle{Max: before.Size}) {
		t.Errorf("hotspot %v outside %v", before.Hot, before.Size)
	}

	// A window with its own cursor (XC_hand2 from the cursor font);
	// moving the pointer into it changes the displayed cursor.
	font, err := xproto.NewFontId(cl.c)
	if err != nil {
		t.Fatal(err)
	}
	if err := xproto.OpenFontChecked(cl.c, font, 6, "cursor").Check(); err != nil {
		t.Skip("no cursor font: ", err)
	}
	cur, err := xproto.NewCursorId(cl.c)
	if err != nil {
		t.Fatal(err)
	}
	const xcHand2 = 60
	xproto.CreateGlyphCursor(cl.c, cur, font, font, xcHand2, xcHand2+1, 0, 0, 0, 0xffff, 0xffff, 0xffff)
	cl.window(image.Rect(100, 100, 300, 300), 0, xproto.CwCursor, uint32(cur))

	if err := d.Pointer(200, 200, 0); err != nil {
		t.Fatal(err)
	}
	waitChange(t, d, func(ch screen.Change) bool { return ch.CursorChanged })
	after, err := d.Cursor()
	if err != nil {
		t.Fatal(err)
	}
	if after.Size == before.Size && after.Hot == before.Hot && slices.Equal(after.Pix, before.Pix) {
		t.Error("cursor shape did not change")
	}
	opaque := 0
	for _, p := range after.Pix {
		if p>>24 == 0xff {
			opaque++
		}
	}
	if opaque == 0 {
		t.Error("hand cursor has no opaque pixel")
	}
}
