package lab

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// Diff compares the w×h area of a starting at aAt with the one of b
// starting at bAt. A pixel differs when a channel differs by more than
// tol. It returns how many pixels differ and the first one (in a's
// coordinates).
func Diff(a *screen.Image, aAt image.Point, b *screen.Image, bAt image.Point, size image.Point, tol int) (n int, first image.Point) {
	for y := 0; y < size.Y; y++ {
		ia := a.PixOffset(aAt.X, aAt.Y+y)
		ib := b.PixOffset(bAt.X, bAt.Y+y)
		ra, rb := a.Pix[ia:ia+4*size.X], b.Pix[ib:ib+4*size.X]
		for x := 0; x < size.X; x++ {
			for c := 0; c < 3; c++ {
				d := int(ra[4*x+c]) - int(rb[4*x+c])
				if d > tol || -d > tol {
					if n == 0 {
						first = image.Pt(aAt.X+x, aAt.Y+y)
					}
					n++
					break
				}
			}
		}
	}
	return n, first
}

// Mismatch describes how got (an area of a viewer's screen at gotAt)
// differs from want, or returns "" when they match within tol.
func Mismatch(want *screen.Image, got *screen.Image, gotAt image.Point, tol int) string {
	size := want.Rect.Size()
	if gotAt.X+size.X > got.Rect.Max.X || gotAt.Y+size.Y > got.Rect.Max.Y {
		return fmt.Sprintf("viewer area %v+%v is outside its screen %v", size, gotAt, got.Rect)
	}
	n, p := Diff(want, want.Rect.Min, got, gotAt, size, tol)
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d pixels differ; first at %v: want %v, got %v",
		n, size.X*size.Y, p, At(want, p.X, p.Y), At(got, p.X-want.Rect.Min.X+gotAt.X, p.Y-want.Rect.Min.Y+gotAt.Y))
}

// WaitMatch takes screenshots of the desktop and of the viewer's screen
// until the viewer's area at gotAt equals the desktop within tol, and fails
// the test with the last difference if that does not happen within
// timeout. Viewers draw asynchronously, so a first mismatch is normal.
func WaitMatch(t testing.TB, desktop *X, viewer func() (*screen.Image, image.Point, error), tol int, timeout time.Duration) {
	t.Helper()
	waitMatch(t, desktop.screenshot, viewer, tol, timeout)
}

// WaitShows is WaitMatch against a picture taken before (what another
// viewer saw) instead of the desktop now.
func WaitShows(t testing.TB, want *screen.Image, viewer func() (*screen.Image, image.Point, error), tol int, timeout time.Duration) {
	t.Helper()
	waitMatch(t, func() (*screen.Image, error) { return want, nil }, viewer, tol, timeout)
}

func waitMatch(t testing.TB, wantNow func() (*screen.Image, error), viewer func() (*screen.Image, image.Point, error), tol int, timeout time.Duration) {
	t.Helper()
	var last string
	var want, got *screen.Image
	ok := waitFor(timeout, func() bool {
		var err error
		want, err = wantNow()
		if err != nil {
			last = err.Error()
			return false
		}
		var at image.Point
		got, at, err = viewer()
		if err != nil {
			last = err.Error()
			return false
		}
		last = Mismatch(want, got, at, tol)
		return last == ""
	})
	if !ok {
		SaveArtifacts(t, map[string]*screen.Image{"want": want, "got": got})
		t.Fatalf("lab: viewer does not show the wanted picture after %v: %s", timeout, last)
	}
}

// SaveArtifacts writes images as PNG files into $ASSIST_E2E_ARTIFACTS (if
// set) so a failure can be looked at.
func SaveArtifacts(t testing.TB, imgs map[string]*screen.Image) {
	dir := os.Getenv("ASSIST_E2E_ARTIFACTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("lab: artifacts: %v", err)
		return
	}
	base := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	for name, img := range imgs {
		if img == nil {
			continue
		}
		path := filepath.Join(dir, base+"-"+name+".png")
		f, err := os.Create(path)
		if err != nil {
			t.Logf("lab: artifacts: %v", err)
			continue
		}
		err = png.Encode(f, ToRGBA(img))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Logf("lab: artifacts: %s: %v", path, err)
			continue
		}
		t.Logf("lab: saved %s", path)
	}
}

// ToRGBA converts a screen.Image to a standard library image.
func ToRGBA(img *screen.Image) *image.RGBA {
	out := image.NewRGBA(img.Rect)
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
			i := img.PixOffset(x, y)
			o := out.PixOffset(x, y)
			out.Pix[o], out.Pix[o+1], out.Pix[o+2], out.Pix[o+3] = img.Pix[i+2], img.Pix[i+1], img.Pix[i], 255
		}
	}
	return out
}

// FromImage converts any image to a screen.Image.
func FromImage(m image.Image) *screen.Image {
	b := m.Bounds()
	img := screen.NewImage(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := m.At(x, y).RGBA()
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2] = byte(bl>>8), byte(g>>8), byte(r>>8)
		}
	}
	return img
}
