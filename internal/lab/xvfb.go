package lab

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// X is a running Xvfb server.
type X struct {
	// Display is the display name, ":N".
	Display string
	Size    image.Point
	proc    *Proc
}

// StartXvfb starts an Xvfb server of w×h pixels at depth 24 with MIT-SHM,
// on a display number Xvfb picks itself (-displayfd), and waits until it
// accepts clients. The server is stopped on cleanup.
func StartXvfb(t testing.TB, w, h int) *X {
	t.Helper()
	Need(t, "Xvfb", "xwd")
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatalf("lab: xvfb: pipe: %v", err)
	}
	defer r.Close()
	p := newProc(nil, "Xvfb", "-displayfd", "3",
		"-screen", "0", fmt.Sprintf("%dx%dx24", w, h),
		"+extension", "MIT-SHM", "-nolisten", "tcp", "-noreset")
	p.Cmd.ExtraFiles = []*os.File{wr}
	p.Cmd.Stdout = &p.out
	p.Cmd.Stderr = &p.out
	if err := p.start(); err != nil {
		wr.Close()
		t.Fatalf("lab: start Xvfb: %v", err)
	}
	wr.Close()
	t.Cleanup(p.Stop)

	// Xvfb writes the display number once it accepts connections; the
	// read ends with EOF if it dies first.
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		ch <- result{line, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("lab: Xvfb did not start in 30 s: %s", p.Output())
	}
	n := strings.TrimSpace(res.line)
	if n == "" {
		t.Fatalf("lab: Xvfb did not report a display (%v): %s", res.err, p.Output())
	}
	return &X{Display: ":" + n, Size: image.Pt(w, h), proc: p}
}

// Env is the environment that points X clients at this server.
func (x *X) Env() []string {
	return []string{"DISPLAY=" + x.Display, "NO_AT_BRIDGE=1"}
}

// Screenshot returns the whole screen, read with xwd.
func (x *X) Screenshot(t testing.TB) *screen.Image {
	t.Helper()
	img, err := x.screenshot()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func (x *X) screenshot() (*screen.Image, error) {
	out, err := x.output("xwd", "-root", "-silent", "-display", x.Display)
	if err != nil {
		return nil, err
	}
	img, err := ParseXWD(out)
	if err != nil {
		return nil, fmt.Errorf("lab: screenshot of %s: %w", x.Display, err)
	}
	return img, nil
}

// Pixel returns the colour of one pixel of the screen.
func (x *X) Pixel(t testing.TB, px, py int) color.RGBA {
	t.Helper()
	return At(x.Screenshot(t), px, py)
}

// At returns the colour of pixel (x, y) of img.
func At(img *screen.Image, x, y int) color.RGBA {
	i := img.PixOffset(x, y)
	return color.RGBA{R: img.Pix[i+2], G: img.Pix[i+1], B: img.Pix[i], A: 255}
}

// Run runs an X client against this server and returns its stdout.
func (x *X) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return string(Run(t, x.Env(), name, args...))
}

// Start starts a long-running X client against this server.
func (x *X) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return Start(t, x.Env(), name, args...)
}

func (x *X) output(name string, args ...string) ([]byte, error) {
	p := newProc(x.Env(), name, args...)
	var errb lockedBuffer
	p.Cmd.Stderr = &errb
	out, err := p.Cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("lab: %s on %s: %v: %s", name, x.Display, err, strings.TrimSpace(errb.String()))
	}
	return out, nil
}
