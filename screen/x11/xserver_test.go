package x11

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"log"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"go.uber.org/goleak"

	"github.com/assist-project/assist/screen"
)

func TestMain(m *testing.M) {
	// xgb logs missing ~/.Xauthority and every closed connection.
	xgb.Logger = log.New(io.Discard, "", 0)
	goleak.VerifyTestMain(m)
}

// safety bounds a wait so a broken test fails instead of hanging; it is
// not a performance assertion.
const safety = 30 * time.Second

// startXvfb starts a private Xvfb with the given screen ("1024x768x24") on a
// free display and returns the display name. Extra arguments go to Xvfb.
func startXvfb(t testing.TB, size string, extra ...string) string {
	t.Helper()
	path, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Skip("Xvfb not installed (apt-get install xvfb): ", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	args := append([]string{"-displayfd", "3", "-screen", "0", size,
		"+extension", "MIT-SHM", "-nolisten", "tcp", "-noreset"}, extra...)
	cmd := exec.Command(path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	r.SetReadDeadline(time.Now().Add(safety))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("Xvfb did not report its display: %v\n%s", err, stderr.String())
	}
	return ":" + strings.TrimSpace(line)
}

// openTest opens the Display under test and closes it at cleanup.
func openTest(t testing.TB, disp string, opts options) *Display {
	t.Helper()
	d, err := open(disp, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// client is a second X connection playing an application, core protocol
// only (initialising extensions here would race with the Display's
// connection over xgb's global decoder tables).
type client struct {
	t      testing.TB
	c      *xgb.Conn
	root   xproto.Window
	events chan xgb.Event
}

func newClient(t testing.TB, disp string) *client {
	t.Helper()
	c, err := xgb.NewConnDisplay(disp)
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{t: t, c: c, root: xproto.Setup(c).DefaultScreen(c).Root, events: make(chan xgb.Event, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(cl.events)
		for {
			ev, xerr := c.WaitForEvent()
			if ev == nil && xerr == nil {
				return
			}
			if ev != nil {
				cl.events <- ev
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		for range cl.events {
		}
		<-done
	})
	return cl
}

// sync waits until the server processed every request sent so far.
func (cl *client) sync() {
	cl.t.Helper()
	if _, err := xproto.GetInputFocus(cl.c).Reply(); err != nil {
		cl.t.Fatal(err)
	}
}

// nextEvent returns the next event that keep accepts.
func (cl *client) nextEvent(keep func(xgb.Event) bool) xgb.Event {
	cl.t.Helper()
	timeout := time.After(safety)
	for {
		select {
		case ev, ok := <-cl.events:
			if !ok {
				cl.t.Fatal("client connection closed")
			}
			if keep(ev) {
				return ev
			}
		case <-timeout:
			cl.t.Fatal("no matching event")
		}
	}
}

// fill paints r on the root window (through any children) in colour
// 0xRRGGBB and waits until it is drawn.
func (cl *client) fill(r image.Rectangle, rgb uint32) {
	cl.t.Helper()
	gc, err := xproto.NewGcontextId(cl.c)
	if err != nil {
		cl.t.Fatal(err)
	}
	xproto.CreateGC(cl.c, gc, xproto.Drawable(cl.root), xproto.GcForeground|xproto.GcSubwindowMode,
		[]uint32{rgb, xproto.SubwindowModeIncludeInferiors})
	xproto.PolyFillRectangle(cl.c, xproto.Drawable(cl.root), gc, []xproto.Rectangle{{
		X: int16(r.Min.X), Y: int16(r.Min.Y), Width: uint16(r.Dx()), Height: uint16(r.Dy())}})
	xproto.FreeGC(cl.c, gc)
	cl.sync()
}

// window creates and maps a window with the given event mask and extra
// attributes (mask bits above CwEventMask only, values in bit order),
// and waits until it is mapped.
func (cl *client) window(r image.Rectangle, events uint32, mask uint32, values ...uint32) xproto.Window {
	cl.t.Helper()
	win, err := xproto.NewWindowId(cl.c)
	if err != nil {
		cl.t.Fatal(err)
	}
	vals := append([]uint32{0x336699, events | xproto.EventMaskStructureNotify}, values...)
	err = xproto.CreateWindowChecked(cl.c, 0, win, cl.root, int16(r.Min.X), int16(r.Min.Y),
		uint16(r.Dx()), uint16(r.Dy()), 0, xproto.WindowClassInputOutput, 0,
		xproto.CwBackPixel|xproto.CwEventMask|mask, vals).Check()
	if err != nil {
		cl.t.Fatal(err)
	}
	xproto.MapWindow(cl.c, win)
	cl.nextEvent(func(ev xgb.Event) bool {
		m, ok := ev.(xproto.MapNotifyEvent)
		return ok && m.Window == win
	})
	return win
}

// waitChange calls Next until accept is satisfied by one Change.
func waitChange(t testing.TB, d *Display, accept func(ch screen.Change) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	for {
		ch, err := d.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if accept(ch) {
			return
		}
	}
}

// xwdImage reads an XWD dump (as written by `xwd -root`) of a 32 bpp
// ZPixmap screen into BGRX rows.
func xwdImage(data []byte) (pix []byte, stride int, size image.Point, err error) {
	if len(data) < 100 {
		return nil, 0, image.Point{}, errors.New("xwd: short header")
	}
	var h [25]uint32
	for i := range h {
		h[i] = binary.BigEndian.Uint32(data[4*i:])
	}
	headerSize, version, format := h[0], h[1], h[2]
	w, ht, byteOrder, bpp, bpl, ncolors := h[4], h[5], h[7], h[11], h[12], h[19]
	if version != 7 || format != 2 || bpp != 32 || byteOrder != 0 {
		return nil, 0, image.Point{}, fmt.Errorf("xwd: unsupported version %d format %d bpp %d order %d", version, format, bpp, byteOrder)
	}
	off := uint64(headerSize) + 12*uint64(ncolors)
	end := off + uint64(bpl)*uint64(ht)
	if bpl < 4*w || end > uint64(len(data)) {
		return nil, 0, image.Point{}, errors.New("xwd: truncated image")
	}
	return data[off:end], int(bpl), image.Pt(int(w), int(ht)), nil
}
