package lab

import (
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// Viewer is a VNC viewer window on an X server of its own.
type Viewer struct {
	Window *Window
	Proc   *Proc
	// desktopSize is the size of the remote desktop; the viewer shows it
	// at the bottom-left of its window (above it gvncviewer has a menu).
	desktopSize image.Point
}

// Origin is where the remote desktop's (0, 0) is on the viewer's screen.
func (v *Viewer) Origin() image.Point {
	r := v.Window.Rect
	return image.Pt(r.Min.X, r.Max.Y-v.desktopSize.Y)
}

// Screen takes a screenshot of the viewer's X server and says where the
// remote desktop is in it; it fits WaitMatch.
func (v *Viewer) Screen() (*screen.Image, image.Point, error) {
	if exited, err := v.Proc.Exited(); exited {
		return nil, image.Point{}, fmt.Errorf("lab: viewer exited (%v): %s", err, v.Proc.Output())
	}
	img, err := v.Window.X.screenshot()
	return img, v.Origin(), err
}

// ToDesktop converts a point of the remote desktop to the viewer's screen.
func (v *Viewer) ToDesktop(p image.Point) image.Point { return p.Add(v.Origin()) }

// StartTigerVNC runs TigerVNC's viewer on x, connected to addr with no
// authentication, and waits until its window shows a desktop of size
// desktop. opts are viewer parameters such as "-PreferredEncoding=ZRLE".
// x must be larger than the desktop so the viewer needs no scroll bars.
func StartTigerVNC(t testing.TB, x *X, addr string, desktop image.Point, opts ...string) *Viewer {
	t.Helper()
	Need(t, "xtigervncviewer")
	host, port := HostPort(t, addr)
	args := append([]string{"-SecurityTypes=None", "-geometry=+0+0", "-Shared=1",
		"-AlertOnFatalError=0", "-ReconnectOnError=0"}, opts...)
	args = append(args, host+"::"+strconv.Itoa(port))
	p := x.Start(t, "xtigervncviewer", args...)
	return waitViewer(t, x, p, "TigerVNC$", desktop)
}

// StartGvncviewer runs gtk-vnc's gvncviewer on x, connected to addr (its
// address syntax only takes ports from 5900 up).
func StartGvncviewer(t testing.TB, x *X, addr string, desktop image.Point) *Viewer {
	t.Helper()
	Need(t, "gvncviewer")
	host, port := HostPort(t, addr)
	if port < 5900 {
		t.Skipf("lab: gvncviewer cannot reach port %d (below 5900)", port)
	}
	p := x.Start(t, "gvncviewer", host+":"+strconv.Itoa(port-5900))
	return waitViewer(t, x, p, "GVncViewer$", desktop)
}

func waitViewer(t testing.TB, x *X, p *Proc, title string, desktop image.Point) *Viewer {
	t.Helper()
	w, err := x.findWindow(title, 30*time.Second)
	if err != nil {
		t.Fatalf("%v; viewer output: %s", err, p.Output())
	}
	v := &Viewer{Window: w, Proc: p, desktopSize: desktop}
	// The window may be mapped before it takes the desktop's size.
	if !waitFor(10*time.Second, func() bool {
		return w.update() == nil && w.Rect.Dx() >= desktop.X && w.Rect.Dy() >= desktop.Y
	}) {
		t.Fatalf("lab: viewer window is %v, smaller than the desktop %v: %s", w.Rect, desktop, p.Output())
	}
	return v
}

// VNCSnapshot takes one picture of the desktop at addr with vncsnapshot.
// It only writes JPEG files, so the result is lossy even at -quality 100;
// args add options such as "-encodings", "raw".
func VNCSnapshot(t testing.TB, addr string, args ...string) *screen.Image {
	t.Helper()
	return vncSnapshot(t, "vncsnapshot", func(a ...string) *Proc { return Start(t, nil, "vncsnapshot", a...) }, addr, args)
}

// vncSnapshot runs vncsnapshot with start (on the host or in a
// namespace; what names it in messages) and reads its picture.
func vncSnapshot(t testing.TB, what string, start func(args ...string) *Proc, addr string, args []string) *screen.Image {
	t.Helper()
	Need(t, "vncsnapshot")
	host, port := HostPort(t, addr)
	file := filepath.Join(t.TempDir(), "snap.jpg")
	a := append([]string{"-quiet", "-quality", "100"}, args...)
	a = append(a, host+"::"+strconv.Itoa(port), file)
	p := start(a...)
	err, ok := p.Wait(30 * time.Second)
	if !ok || err != nil {
		t.Fatalf("lab: %s: %v (finished: %v): %s", what, err, ok, p.Output())
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("lab: vncsnapshot wrote no file: %v: %s", err, p.Output())
	}
	defer f.Close()
	m, err := jpeg.Decode(f)
	if err != nil {
		t.Fatalf("lab: vncsnapshot: decode %s: %v", file, err)
	}
	return FromImage(m)
}
