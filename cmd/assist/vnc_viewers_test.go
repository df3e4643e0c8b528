package main

import (
	"fmt"
	"image"
	"net"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
)

// matchTimeout bounds how long a viewer may take to show a change. It is a
// deadline for a correct picture, not a speed assertion: viewers draw
// asynchronously and CI machines are slow.
const matchTimeout = 30 * time.Second

// TestVNCViewers serves one rich desktop with `assist vnc` to several real
// viewers at once (testViewers).
func TestVNCViewers(t *testing.T) {
	e2e(t)
	t.Parallel()
	d := newDesktop(t)
	testViewers(t, d, lab.StartAssistVNC(t, d.Display))
}

// TestJoinViewers runs the same viewers on `assist join`'s RFB port, over
// a session with `assist invite`: join's relay parses every message the
// novice's server sends, turns the private scaled encoding back into Raw,
// and must hand each viewer exactly what it asked for, whatever its
// encoding and pixel format.
func TestJoinViewers(t *testing.T) {
	e2e(t)
	t.Parallel()
	d := newDesktop(t)
	nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view")
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	testViewers(t, d, exp.RFB)
}

// testViewers serves one rich desktop at addr to several real viewers at
// once and checks that each shows it, then that changes arrive, including
// while another viewer has stopped reading.
func testViewers(t *testing.T, d *desktop, addr string) {

	// TigerVNC with each lossless encoding. TigerVNC always offers
	// CopyRect (the scrolling xterm below gives the server a reason to
	// use it) and all its other encodings after the preferred one, and
	// asks for JPEG unless told not to. All stay connected, so later
	// checks run with four viewers on the server at the same time.
	lossless := []string{"-AutoSelect=0", "-NoJPEG=1"}
	tiger := []struct {
		name string
		opts []string
		tol  int
	}{
		{"Raw", append(lossless, "-FullColor=1", "-PreferredEncoding=Raw"), 0},
		{"ZRLE", append(lossless, "-FullColor=1", "-PreferredEncoding=ZRLE"), 0},
		{"Tight", append(lossless, "-FullColor=1", "-PreferredEncoding=Tight"), 0},
		// 256 colours (BGR233): checks the pixel format conversion; a
		// 2-bit channel is off by up to half a step.
		{"Tight BGR233", append(lossless, "-FullColor=0", "-LowColorLevel=2", "-PreferredEncoding=Tight"), 43},
		// JPEG, then exact once still: lossless refinement (through
		// assist join, the private lossless encoding the relay turns
		// into Raw).
		{"Tight JPEG refined", []string{"-AutoSelect=0", "-FullColor=1", "-PreferredEncoding=Tight", "-QualityLevel=4"}, 0},
	}
	viewers := make([]*lab.Viewer, len(tiger))
	for i, tc := range tiger {
		vx := lab.StartXvfb(t, viewerSize.X, viewerSize.Y)
		viewers[i] = lab.StartTigerVNC(t, vx, addr, desktopSize, tc.opts...)
	}
	for i, tc := range tiger {
		t.Run("TigerVNC "+tc.name, func(t *testing.T) {
			lab.WaitMatch(t, d.X, viewers[i].Screen, tc.tol, matchTimeout)
		})
	}

	t.Run("changes arrive", func(t *testing.T) {
		d.Append(t, 5) // scrolls the xterm
		for i, tc := range tiger {
			t.Run("TigerVNC "+tc.name, func(t *testing.T) {
				lab.WaitMatch(t, d.X, viewers[i].Screen, tc.tol, matchTimeout)
			})
		}
	})

	t.Run("gvncviewer", func(t *testing.T) {
		vx := lab.StartXvfb(t, viewerSize.X, viewerSize.Y)
		v := lab.StartGvncviewer(t, vx, addr, desktopSize)
		// gtk-vnc may ask for JPEG: compare like a lossy picture.
		waitLossy(t, d, v.Screen)
	})

	t.Run("vncsnapshot", func(t *testing.T) {
		// vncsnapshot writes only JPEG files, so every result is lossy.
		for _, tc := range []struct {
			name string
			args []string
		}{
			{"raw", []string{"-encodings", "raw"}},
			{"tight", []string{"-encodings", "tight"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				want := d.Screenshot(t)
				got := lab.VNCSnapshot(t, addr, tc.args...)
				if m := lossyMismatch(want, got, image.Point{}); m != "" {
					lab.SaveArtifacts(t, map[string]*screen.Image{"want": want, "got": got})
					t.Fatal(m)
				}
			})
		}
	})

	t.Run("noVNC", func(t *testing.T) {
		// noVNC always asks for JPEG, so compare with a tolerance.
		waitLossy(t, d, lab.StartNoVNC(t, addr).Screen)
	})

	t.Run("stalled viewer", func(t *testing.T) {
		// A viewer that completes the handshake and keeps asking for
		// full updates in Raw but never reads. With a tiny receive
		// window, a few full screens fill the socket buffers and the
		// server's writes to it block.
		stalled := lab.DialRFB(t, addr)
		if c, ok := stalled.Conn.(*net.TCPConn); ok {
			_ = c.SetReadBuffer(4096)
		}
		pat := lab.TestPattern(desktopSize.X, desktopSize.Y)
		for round := 0; round < 8; round++ {
			if err := stalled.RequestUpdate(false); err != nil {
				t.Fatalf("stalled viewer: %v", err)
			}
			for i := range pat.Pix {
				pat.Pix[i] = ^pat.Pix[i]
			}
			d.ShowImage(t, pat) // changes the whole screen
			lab.WaitMatch(t, d.X, viewers[0].Screen, 0, matchTimeout)
		}
		// A viewer that arrives now is served too.
		fresh := lab.DialRFB(t, addr)
		lab.WaitMatch(t, d.X, fresh.Screen, 0, matchTimeout)
	})
}

// lossyTol is how far a channel may stray in a flat area through JPEG.
const lossyTol = 12

// lossyMismatch compares a lossy picture of the desktop at the flat
// colour bars of the test pattern and at two points of its gradient, and
// checks that the whole picture is close on average.
func lossyMismatch(want, got *screen.Image, at image.Point) string {
	if got.Rect.Dx() < want.Rect.Dx()+at.X || got.Rect.Dy() < want.Rect.Dy()+at.Y {
		return fmt.Sprintf("picture is %v, want at least %v", got.Rect.Size(), want.Rect.Size())
	}
	pts := append(lab.PatternBars(desktopSize), image.Pt(600, 170), image.Pt(290, 340))
	for _, p := range pts {
		w, g := lab.At(want, p.X, p.Y), lab.At(got, p.X+at.X, p.Y+at.Y)
		if absDiff(w.R, g.R) > lossyTol || absDiff(w.G, g.G) > lossyTol || absDiff(w.B, g.B) > lossyTol {
			return fmt.Sprintf("pixel %v: want %v, got %v", p, w, g)
		}
	}
	var sum int
	for y := 0; y < want.Rect.Dy(); y++ {
		for x := 0; x < want.Rect.Dx(); x++ {
			wi, gi := want.PixOffset(x, y), got.PixOffset(x+at.X, y+at.Y)
			for c := 0; c < 3; c++ {
				sum += absDiff(want.Pix[wi+c], got.Pix[gi+c])
			}
		}
	}
	mean := float64(sum) / float64(3*want.Rect.Dx()*want.Rect.Dy())
	if mean > 8 {
		return fmt.Sprintf("mean channel difference %.1f over the whole picture", mean)
	}
	return ""
}

// waitLossy waits until a lossy viewer shows the desktop (lossyMismatch).
func waitLossy(t *testing.T, d *desktop, viewer func() (*screen.Image, image.Point, error)) {
	t.Helper()
	var last string
	var want, got *screen.Image
	deadline := time.Now().Add(matchTimeout)
	for {
		var at image.Point
		var err error
		want = d.Screenshot(t)
		if got, at, err = viewer(); err == nil {
			last = lossyMismatch(want, got, at)
		} else {
			last = err.Error()
		}
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			lab.SaveArtifacts(t, map[string]*screen.Image{"want": want, "got": got})
			t.Fatalf("viewer does not show the desktop after %v: %s", matchTimeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func absDiff(a, b byte) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
