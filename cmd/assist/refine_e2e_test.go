package main

import (
	"image"
	"math"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/screen"
)

// photo is smooth colour with mild noise, like a photograph: too many
// colours for a palette, so viewers that accept JPEG get it as JPEG.
func photo(w, h int, seed uint64) *screen.Image {
	img := screen.NewImage(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(seed, 1))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			n := func(v float64) byte { return byte(max(0, min(255, v+float64(rng.IntN(13)-6)))) }
			i := img.PixOffset(x, y)
			img.Pix[i+2] = n(128 + 100*math.Sin(6*fx+2*fy+float64(seed)))
			img.Pix[i+1] = n(128 + 100*math.Cos(5*fy-3*fx))
			img.Pix[i] = n(128 + 90*math.Sin(9*fx*fy+1))
		}
	}
	return img
}

// TestRefineE2E shows a photo on a real desktop and looks at it through
// `assist vnc` with viewers that ask for JPEG: each first gets it lossy,
// and once the screen is still, pixel-exact.
func TestRefineE2E(t *testing.T) {
	e2e(t)
	t.Parallel()
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	x.ShowImage(t, photo(desktopSize.X, desktopSize.Y, 1))
	x.HideCursor(t)
	addr := lab.StartAssistVNC(t, x.Display)

	t.Run("rfb client", func(t *testing.T) {
		// The project's client sees the first picture lossy, then exact.
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := rfb.NewClient(nc, rfb.ClientConfig{Shared: true,
			Encodings: []int32{rfb.EncTight, rfb.EncCopyRect, rfb.EncJPEGQuality0 + 6}})
		if err != nil {
			nc.Close()
			t.Fatal(err)
		}
		defer c.Close()
		want := x.Screenshot(t)
		if err := c.RequestUpdate(false, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(matchTimeout))
		if _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		if m := lab.Mismatch(want, c.Framebuffer(), image.Point{}, 0); m == "" {
			t.Fatal("the first update is already exact: the photo was not sent as JPEG")
		}
		for lab.Mismatch(want, c.Framebuffer(), image.Point{}, 0) != "" {
			if err := c.RequestUpdate(true, image.Rectangle{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ReadMessage(); err != nil {
				t.Fatalf("%v; the picture: %s", err, lab.Mismatch(want, c.Framebuffer(), image.Point{}, 0))
			}
		}
	})

	t.Run("TigerVNC", func(t *testing.T) {
		vx := lab.StartXvfb(t, viewerSize.X, viewerSize.Y)
		v := lab.StartTigerVNC(t, vx, addr, desktopSize,
			"-AutoSelect=0", "-PreferredEncoding=Tight", "-QualityLevel=6", "-FullColor=1", "-NoJPEG=0")
		lab.WaitMatch(t, x, v.Screen, 0, matchTimeout)
		// A new picture: lossy again, then exact again.
		x.ShowImage(t, photo(desktopSize.X, desktopSize.Y, 2))
		lab.WaitMatch(t, x, v.Screen, 0, matchTimeout)
	})

	t.Run("noVNC", func(t *testing.T) {
		// noVNC always asks for JPEG; canvas read back as PNG.
		lab.WaitMatch(t, x, lab.StartNoVNC(t, addr).Screen, 0, matchTimeout)
	})

	t.Run("gvncviewer", func(t *testing.T) {
		// gtk-vnc may ask for JPEG; either way its picture ends exact.
		vx := lab.StartXvfb(t, viewerSize.X, viewerSize.Y)
		lab.WaitMatch(t, x, lab.StartGvncviewer(t, vx, addr, desktopSize).Screen, 0, matchTimeout)
	})

	t.Run("session", func(t *testing.T) {
		// assist invite's RFB server, through the session to assist
		// join's loopback port: the wide link's path.
		nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view")
		exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
		vx := lab.StartXvfb(t, viewerSize.X, viewerSize.Y)
		v := lab.StartTigerVNC(t, vx, exp.RFB, desktopSize,
			"-AutoSelect=0", "-PreferredEncoding=Tight", "-QualityLevel=6", "-FullColor=1", "-NoJPEG=0")
		lab.WaitMatch(t, x, v.Screen, 0, matchTimeout)
		lab.WaitMatch(t, x, lab.StartNoVNC(t, exp.RFB).Screen, 0, matchTimeout)
		nov.Send(t, "end")
		exp.WaitLine(t, `^state: ended`, lineTimeout)
	})

	t.Run("browser expert", func(t *testing.T) {
		// The expert's web app through assist serve: its noVNC asks
		// for JPEG, and its display stream runs through the page's own
		// relay, which gets the refinement in the private lossless
		// encoding and hands noVNC Raw.
		needExpertApp(t)
		nov, ctx := openExpertApp(t, x.Display)
		nov.WaitLine(t, `^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
		nov.Send(t, "y")
		bxWait(t, ctx, `window.assistExpertPage.state === "viewing" && window.assistExpertPage.rfb === "connected"`)
		canvas := func() (*screen.Image, image.Point, error) {
			img, err := lab.ReadCanvas(ctx, `[data-testid="screen"] canvas`)
			return img, image.Point{}, err
		}
		lab.WaitMatch(t, x, canvas, 0, matchTimeout)
		if n := bxEval[int](t, ctx, `window.assistExpert.displayRelayed()`); n == 0 {
			t.Error("exact, but the page's relay received no lossless rectangle: refined around it")
		}
	})
}
