package lab

import (
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/assist-project/assist/screen"
)

// Window is a top-level window on an X server.
type Window struct {
	X  *X
	ID string
	// Rect is where the window's contents are on the screen.
	Rect image.Rectangle
}

// TestPattern returns a w×h image that exercises encoders and viewers:
// flat colour bars (easy to compare through lossy viewers), a smooth
// two-dimensional gradient (thousands of colours), and fine checkerboards
// and stripes (high-frequency detail that lossy paths get wrong).
func TestPattern(w, h int) *screen.Image {
	img := screen.NewImage(image.Rect(0, 0, w, h))
	bars := [][3]byte{{255, 255, 255}, {255, 255, 0}, {0, 255, 255}, {0, 255, 0},
		{255, 0, 255}, {255, 0, 0}, {0, 0, 255}, {0, 0, 0}}
	set := func(x, y int, r, g, b byte) {
		i := img.PixOffset(x, y)
		img.Pix[i], img.Pix[i+1], img.Pix[i+2] = b, g, r
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			switch {
			case y < h/4:
				c := bars[x*len(bars)/w]
				set(x, y, c[0], c[1], c[2])
			case y < h*3/4:
				set(x, y, byte(x*255/w), byte((y-h/4)*255/(h/2)), byte((x+y)*3))
			case x < w/3:
				if (x^y)&1 == 0 {
					set(x, y, 255, 255, 255)
				} else {
					set(x, y, 20, 40, 60)
				}
			case x < 2*w/3:
				v := byte(x * 16)
				set(x, y, v, 255-v, byte(y*8))
			default:
				if (x/4+y/4)&1 == 0 {
					set(x, y, 200, 30, 30)
				} else {
					set(x, y, 30, 30, 200)
				}
			}
		}
	}
	return img
}

// PatternBars returns points inside the flat colour bars of a TestPattern
// of the given size, away from their edges: the places to compare through
// a lossy (JPEG) path.
func PatternBars(size image.Point) []image.Point {
	var pts []image.Point
	for i := 0; i < 8; i++ {
		pts = append(pts, image.Pt((2*i+1)*size.X/16, size.Y/8))
	}
	return pts
}

// ShowImage puts img on the screen at (0, 0) in a window of its own (with
// xwud) and waits until the screen shows it.
func (x *X) ShowImage(t testing.TB, img *screen.Image) *Window {
	t.Helper()
	Need(t, "xwud", "xdotool")
	path := filepath.Join(t.TempDir(), "pattern.xwd")
	if err := os.WriteFile(path, EncodeXWD(img), 0o644); err != nil {
		t.Fatalf("lab: write pattern: %v", err)
	}
	x.Start(t, "xwud", "-in", path, "-noclick", "-geometry", "+0+0")
	// xwud names its window after the XWD's window name.
	w := x.FindWindow(t, "assist-lab")
	if !waitFor(10*time.Second, func() bool {
		shot, err := x.screenshot()
		if err != nil {
			return false
		}
		at := w.Rect.Min
		size := img.Rect.Size()
		size = image.Pt(min(size.X, shot.Rect.Dx()-at.X), min(size.Y, shot.Rect.Dy()-at.Y))
		n, _ := Diff(img, img.Rect.Min, shot, at, size, 0)
		return n == 0
	}) {
		t.Fatalf("lab: xwud does not show the pattern on %s", x.Display)
	}
	return w
}

// StartXterm starts an xterm at geometry ("80x24+X+Y") that runs the shell
// command cmd, titled title, and waits for its window.
func (x *X) StartXterm(t testing.TB, title, geometry, cmd string) *Window {
	t.Helper()
	Need(t, "xterm", "xdotool")
	// Fixed colours and no scroll bar keep the picture deterministic;
	// xterm does not blink its cursor by default.
	x.Start(t, "xterm", "-T", title, "-geometry", geometry, "+sb",
		"-bg", "#fffff0", "-fg", "#102030", "-e", "sh", "-c", cmd)
	return x.FindWindow(t, title)
}

// FindWindow waits for a visible window whose title matches the regular
// expression name (xdotool search --name) and returns it.
func (x *X) FindWindow(t testing.TB, name string) *Window {
	t.Helper()
	w, err := x.findWindow(name, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (x *X) findWindow(name string, timeout time.Duration) (*Window, error) {
	var id string
	var lastErr error
	if !waitFor(timeout, func() bool {
		out, err := x.output("xdotool", "search", "--onlyvisible", "--name", name)
		if err != nil {
			lastErr = err
			return false
		}
		ids := strings.Fields(string(out))
		if len(ids) == 0 {
			return false
		}
		id = ids[len(ids)-1]
		return true
	}) {
		return nil, fmt.Errorf("lab: no window %q on %s after %v (%v)", name, x.Display, timeout, lastErr)
	}
	w := &Window{X: x, ID: id}
	if err := w.update(); err != nil {
		return nil, err
	}
	return w, nil
}

// update reads the window's current geometry.
func (w *Window) update() error {
	out, err := w.X.output("xdotool", "getwindowgeometry", "--shell", w.ID)
	if err != nil {
		return err
	}
	v := map[string]int{}
	for _, line := range strings.Fields(string(out)) {
		k, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(val)
		if err == nil {
			v[k] = n
		}
	}
	w.Rect = image.Rect(v["X"], v["Y"], v["X"]+v["WIDTH"], v["Y"]+v["HEIGHT"])
	if w.Rect.Empty() {
		return fmt.Errorf("lab: window %s on %s has no size: %s", w.ID, w.X.Display, out)
	}
	return nil
}

// Xdotool runs xdotool with args on this server.
func (x *X) Xdotool(t testing.TB, args ...string) string {
	t.Helper()
	Need(t, "xdotool")
	return x.Run(t, "xdotool", args...)
}

// Type types text with the keyboard wherever the focus is.
func (x *X) Type(t testing.TB, text string) {
	t.Helper()
	x.Xdotool(t, "type", "--delay", "20", text)
}

// Click moves the pointer to (px, py) and clicks button 1.
func (x *X) Click(t testing.TB, px, py int) {
	t.Helper()
	x.Xdotool(t, "mousemove", "--sync", strconv.Itoa(px), strconv.Itoa(py), "click", "1")
}

// Pointer returns where the pointer is.
func (x *X) Pointer(t testing.TB) image.Point {
	t.Helper()
	out := x.Xdotool(t, "getmouselocation", "--shell")
	v := map[string]int{}
	for _, line := range strings.Fields(out) {
		if k, val, ok := strings.Cut(line, "="); ok {
			n, _ := strconv.Atoi(val)
			v[k] = n
		}
	}
	return image.Pt(v["X"], v["Y"])
}

// Focus gives the window the keyboard focus. There is no window manager,
// so the focus also follows the pointer: the pointer moves to the centre.
func (w *Window) Focus(t testing.TB) {
	t.Helper()
	c := w.Rect.Min.Add(w.Rect.Size().Div(2))
	w.X.Xdotool(t, "mousemove", "--sync", strconv.Itoa(c.X), strconv.Itoa(c.Y))
	w.X.Xdotool(t, "windowfocus", "--sync", w.ID)
}

// Crop returns the part of the screen the window covers.
func (w *Window) Crop(t testing.TB) *screen.Image {
	t.Helper()
	return w.X.Screenshot(t).SubImage(w.Rect)
}

// HideCursor makes the pointer invisible over the root window and the
// windows that do not set their own cursor (xwud's), so viewers that draw
// the desktop's pointer into their picture match an xwd screenshot, which
// never shows it. Windows with their own cursor (xterm) still show it.
//
// The blank cursor belongs to a connection of this process that stays
// open until cleanup. A cursor left behind by a client that exited
// (xsetroot's) keeps the id of a client slot the server hands to the next
// client, and then XFixesGetCursorImage fails with BadAccess now and then,
// which stopped assist invite's capture in tests.
func (x *X) HideCursor(t testing.TB) {
	t.Helper()
	c, err := xgb.NewConnDisplay(x.Display)
	if err != nil {
		t.Fatalf("lab: hide cursor: connect to %s: %v", x.Display, err)
	}
	t.Cleanup(c.Close)
	fail := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("lab: hide cursor: %s: %v", what, err)
		}
	}
	root := xproto.Setup(c).DefaultScreen(c).Root
	pix, err := xproto.NewPixmapId(c)
	fail("pixmap id", err)
	fail("create pixmap", xproto.CreatePixmapChecked(c, 1, pix, xproto.Drawable(root), 1, 1).Check())
	// A new pixmap's contents are undefined: clear its one pixel, which as
	// the mask makes the cursor fully transparent.
	gc, err := xproto.NewGcontextId(c)
	fail("gc id", err)
	fail("create gc", xproto.CreateGCChecked(c, gc, xproto.Drawable(pix), xproto.GcForeground, []uint32{0}).Check())
	fail("clear pixmap", xproto.PolyFillRectangleChecked(c, xproto.Drawable(pix), gc, []xproto.Rectangle{{Width: 1, Height: 1}}).Check())
	cur, err := xproto.NewCursorId(c)
	fail("cursor id", err)
	fail("create cursor", xproto.CreateCursorChecked(c, cur, pix, pix, 0, 0, 0, 0, 0, 0, 0, 0).Check())
	fail("set the root's cursor", xproto.ChangeWindowAttributesChecked(c, root, xproto.CwCursor, []uint32{uint32(cur)}).Check())
}
