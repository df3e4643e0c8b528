package windows

import (
	"encoding/binary"
	"fmt"
	"image"
)

// What DXGI Desktop Duplication reports with each frame, as the bytes
// GetFrameMoveRects and GetFrameDirtyRects write: move rectangles
// (DXGI_OUTDUPL_MOVE_RECT: the source's top-left POINT, then the
// destination RECT, 24 bytes) and dirty rectangles (RECT, 16 bytes),
// little-endian int32s, in the output's coordinates. They are parsed
// here, apart from the COM calls, so that recorded frames test them on
// any platform.

// moveRect is a block of the screen the compositor moved: the pixels of
// Dst came from the same-sized block at Src in the previous frame.
type moveRect struct {
	Src image.Point
	Dst image.Rectangle
}

const (
	moveRectSize  = 24
	dirtyRectSize = 16
)

func getRect(b []byte) image.Rectangle {
	v := func(i int) int { return int(int32(binary.LittleEndian.Uint32(b[4*i:]))) }
	return image.Rect(v(0), v(1), v(2), v(3))
}

// parseMoveRects parses GetFrameMoveRects' buffer.
func parseMoveRects(b []byte) ([]moveRect, error) {
	if len(b)%moveRectSize != 0 {
		return nil, fmt.Errorf("windows: %d bytes of move rectangles, not a multiple of %d", len(b), moveRectSize)
	}
	out := make([]moveRect, 0, len(b)/moveRectSize)
	for ; len(b) > 0; b = b[moveRectSize:] {
		src := image.Pt(int(int32(binary.LittleEndian.Uint32(b))), int(int32(binary.LittleEndian.Uint32(b[4:]))))
		dst := getRect(b[8:])
		if dst.Empty() {
			return nil, fmt.Errorf("windows: move to an empty rectangle %v", dst)
		}
		out = append(out, moveRect{Src: src, Dst: dst})
	}
	return out, nil
}

// parseDirtyRects parses GetFrameDirtyRects' buffer.
func parseDirtyRects(b []byte) ([]image.Rectangle, error) {
	if len(b)%dirtyRectSize != 0 {
		return nil, fmt.Errorf("windows: %d bytes of dirty rectangles, not a multiple of %d", len(b), dirtyRectSize)
	}
	out := make([]image.Rectangle, 0, len(b)/dirtyRectSize)
	for ; len(b) > 0; b = b[dirtyRectSize:] {
		r := getRect(b)
		if r.Empty() {
			continue // DXGI does not send these; nothing changed there
		}
		out = append(out, r)
	}
	return out, nil
}

// frameDamage turns one frame's metadata into screen.Change damage
// within bounds: each move's destination (its pixels changed; its
// source did not, unless a dirty rectangle says so) and each dirty
// rectangle. Package shadow then compares the damaged tiles with its
// copy and finds vertical moves again as scrolls, which it sends as
// CopyRect; other moves are sent as pixels. An unparsable buffer damages
// the whole screen, which is never wrong, only slower.
func frameDamage(moves, dirty []byte, bounds image.Rectangle) []image.Rectangle {
	mv, err1 := parseMoveRects(moves)
	dr, err2 := parseDirtyRects(dirty)
	if err1 != nil || err2 != nil {
		return []image.Rectangle{bounds}
	}
	out := make([]image.Rectangle, 0, len(mv)+len(dr))
	for _, m := range mv {
		if r := m.Dst.Intersect(bounds); !r.Empty() {
			out = append(out, r)
		}
	}
	for _, r := range dr {
		if r = r.Intersect(bounds); !r.Empty() {
			out = append(out, r)
		}
	}
	return out
}
