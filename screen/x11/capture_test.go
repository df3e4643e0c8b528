package x11

import (
	"image"
	"os/exec"
	"strings"
	"testing"

	"github.com/assist-project/assist/screen"
)

func TestOpenErrors(t *testing.T) {
	t.Run("no such display", func(t *testing.T) {
		_, err := Open(":4242")
		if err == nil || !strings.HasPrefix(err.Error(), `x11: open display ":4242": `) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no DISPLAY", func(t *testing.T) {
		t.Setenv("DISPLAY", "")
		_, err := Open("")
		if err == nil || !strings.Contains(err.Error(), "$DISPLAY is not set") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bad name", func(t *testing.T) {
		_, err := Open("nonsense")
		if err == nil || !strings.HasPrefix(err.Error(), `x11: open display "nonsense": `) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no XTEST", func(t *testing.T) {
		disp := startXvfb(t, "320x240x24", "-extension", "XTEST")
		_, err := Open(disp)
		want := `x11: display "` + disp + `" lacks the XTEST extension; `
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("got %v, want prefix %q", err, want)
		}
	})
	t.Run("depth 16", func(t *testing.T) {
		path, err := exec.LookPath("Xvfb")
		if err != nil {
			t.Skip("Xvfb not installed")
		}
		_ = path
		disp := startXvfb(t, "320x240x16")
		_, err = Open(disp)
		if err == nil || !strings.Contains(err.Error(), "unsupported root depth 16") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestIsLocal(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{":0", true},
		{":12.0", true},
		{"unix:3", true},
		{"unix/unix:3", true},
		{"/tmp/launch-x/org.xquartz:0", true},
		{"localhost:10.0", false},
		{"host.example:0", false},
		{"tcp/host:1", false},
		{"nonsense", false},
	} {
		if got := isLocal(tc.name); got != tc.want {
			t.Errorf("isLocal(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// pixelRGB returns the 0xRRGGBB value of (x, y) in a BGRX image.
func pixelRGB(m *screen.Image, x, y int) uint32 {
	i := m.PixOffset(x, y)
	return uint32(m.Pix[i+2])<<16 | uint32(m.Pix[i+1])<<8 | uint32(m.Pix[i])
}

func TestGrab(t *testing.T) {
	disp := startXvfb(t, "1024x768x24")
	for _, tc := range []struct {
		name string
		opts options
	}{
		{"SHM", options{}},
		{"GetImage", options{noSHM: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := openTest(t, disp, tc.opts)
			if d.useSHM == tc.opts.noSHM {
				t.Fatalf("useSHM = %v with %+v", d.useSHM, tc.opts)
			}
			if got := d.Size(); got != image.Pt(1024, 768) {
				t.Fatalf("Size = %v", got)
			}
			cl := newClient(t, disp)
			rects := []struct {
				r   image.Rectangle
				rgb uint32
			}{
				{image.Rect(10, 20, 110, 70), 0xff0000},
				{image.Rect(500, 300, 520, 700), 0x00ff00},
				{image.Rect(1000, 740, 1024, 768), 0x123456},
			}
			for _, f := range rects {
				cl.fill(f.r, f.rgb)
			}
			full := screen.NewImage(image.Rect(0, 0, 1024, 768))
			if err := d.Grab(full, full.Rect); err != nil {
				t.Fatal(err)
			}
			for _, f := range rects {
				for _, p := range []image.Point{f.r.Min, f.r.Max.Sub(image.Pt(1, 1))} {
					if got := pixelRGB(full, p.X, p.Y); got != f.rgb {
						t.Errorf("full grab %v = %06x, want %06x", p, got, f.rgb)
					}
				}
			}
			// A small grab into a larger destination (stride != 4*w),
			// straddling a drawn edge.
			small := screen.NewImage(image.Rect(0, 0, 1024, 768))
			r := image.Rect(100, 60, 140, 90)
			if err := d.Grab(small, r); err != nil {
				t.Fatal(err)
			}
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					if got, want := pixelRGB(small, x, y), pixelRGB(full, x, y); got != want {
						t.Fatalf("small grab (%d,%d) = %06x, full grab %06x", x, y, got, want)
					}
				}
			}
			if got := pixelRGB(small, 99, 59); got != 0 {
				t.Errorf("grab wrote outside r: %06x", got)
			}
			compareXWD(t, disp, full)

			// GrabView lends the same pixels, in place with MIT-SHM.
			view, release, err := d.GrabView(r)
			if err != nil {
				t.Fatal(err)
			}
			if view.Rect != r {
				t.Errorf("GrabView image covers %v, want %v", view.Rect, r)
			}
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					if got, want := pixelRGB(view, x, y), pixelRGB(full, x, y); got != want {
						t.Fatalf("GrabView (%d,%d) = %06x, full grab %06x", x, y, got, want)
					}
				}
			}
			// With MIT-SHM, other grabs wait for the release.
			if d.useSHM && d.grabMu.TryLock() {
				d.grabMu.Unlock()
				t.Error("grabs are not held back while a view is lent")
			}
			release()
			if err := d.Grab(small, r); err != nil {
				t.Fatal(err)
			}
			if _, _, err := d.GrabView(image.Rect(1000, 700, 1100, 768)); err == nil {
				t.Error("GrabView outside the screen: no error")
			}

			if err := d.Grab(full, image.Rect(1000, 700, 1100, 768)); err == nil {
				t.Error("grab outside the screen: no error")
			}
		})
	}
}

// compareXWD checks m against `xwd -root` of the same screen.
func compareXWD(t *testing.T, disp string, m *screen.Image) {
	t.Helper()
	path, err := exec.LookPath("xwd")
	if err != nil {
		t.Log("xwd not installed (x11-apps): skipping the comparison")
		return
	}
	out, err := exec.Command(path, "-root", "-silent", "-display", disp).Output()
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	pix, stride, size, err := xwdImage(out)
	if err != nil {
		t.Fatal(err)
	}
	if size != m.Rect.Size() {
		t.Fatalf("xwd size %v, grab %v", size, m.Rect.Size())
	}
	for y := 0; y < size.Y; y++ {
		for x := 0; x < size.X; x++ {
			i := y*stride + 4*x
			want := uint32(pix[i+2])<<16 | uint32(pix[i+1])<<8 | uint32(pix[i])
			if got := pixelRGB(m, x, y); got != want {
				t.Fatalf("(%d,%d): grab %06x, xwd %06x", x, y, got, want)
			}
		}
	}
}

func TestDamage(t *testing.T) {
	disp := startXvfb(t, "1024x768x24")
	d := openTest(t, disp, options{})
	cl := newClient(t, disp)
	// A mapped window paints its background: damage on the root
	// covers its inferiors.
	win := image.Rect(200, 100, 500, 300)
	cl.window(win, 0, 0)
	waitChange(t, d, func(ch screen.Change) bool { return covers(ch.Damage, win) })
	// Drawing on the root, through the window.
	r := image.Rect(300, 250, 340, 420)
	cl.fill(r, 0xabcdef)
	waitChange(t, d, func(ch screen.Change) bool { return covers(ch.Damage, r) })
	m := screen.NewImage(r)
	if err := d.Grab(m, r); err != nil {
		t.Fatal(err)
	}
	if got := pixelRGB(m, 339, 419); got != 0xabcdef {
		t.Errorf("pixel after damage %06x", got)
	}
}

// covers reports whether the union of rs contains every pixel of r.
func covers(rs []image.Rectangle, r image.Rectangle) bool {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			in := false
			for _, d := range rs {
				if image.Pt(x, y).In(d) {
					in = true
					break
				}
			}
			if !in {
				return false
			}
		}
	}
	return true
}

func TestResize(t *testing.T) {
	xrandr, err := exec.LookPath("xrandr")
	if err != nil {
		t.Skip("xrandr not installed (x11-xserver-utils)")
	}
	disp := startXvfb(t, "1024x768x24")
	d := openTest(t, disp, options{})
	m := screen.NewImage(image.Rect(0, 0, 1024, 768))
	if err := d.Grab(m, m.Rect); err != nil {
		t.Fatal(err)
	}
	// xrandr exits 1 on Xvfb after resizing (it cannot reconfigure the
	// fixed output), so only the effect is checked.
	out, _ := exec.Command(xrandr, "--fb", "800x600", "-display", disp).CombinedOutput()
	var got screen.Change
	waitChange(t, d, func(ch screen.Change) bool { got = ch; return ch.Resized })
	if got.Size != image.Pt(800, 600) || d.Size() != image.Pt(800, 600) {
		t.Fatalf("resized to %v, Size %v; xrandr said %s", got.Size, d.Size(), out)
	}
	if !covers(got.Damage, image.Rect(0, 0, 800, 600)) {
		t.Errorf("resize damage %v does not cover the screen", got.Damage)
	}
	m = screen.NewImage(image.Rect(0, 0, 800, 600))
	if err := d.Grab(m, m.Rect); err != nil {
		t.Fatal(err)
	}
	if d.useSHM && d.segFor != image.Pt(800, 600) {
		t.Errorf("segment still sized for %v", d.segFor)
	}
	if err := d.Grab(m, image.Rect(0, 0, 801, 10)); err == nil {
		t.Error("grab beyond the new size: no error")
	}
}

func TestCloseEndsNext(t *testing.T) {
	disp := startXvfb(t, "320x240x24")
	d, err := Open(disp)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := d.Next(t.Context())
		done <- err
	}()
	d.Close()
	if err := <-done; err == nil {
		t.Fatal("Next after Close: no error")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestUseAfterClose(t *testing.T) {
	disp := startXvfb(t, "320x240x24")
	d, err := Open(disp)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	m := screen.NewImage(image.Rect(0, 0, 320, 240))
	if err := d.Grab(m, m.Rect); err == nil {
		t.Error("Grab after Close: no error")
	}
	if err := d.Pointer(1, 1, 0); err == nil {
		t.Error("Pointer after Close: no error")
	}
	if err := d.Key('a', true); err == nil {
		t.Error("Key after Close: no error")
	}
	if _, err := d.Cursor(); err == nil {
		t.Error("Cursor after Close: no error")
	}
}
