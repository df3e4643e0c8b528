package lab

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/assist-project/assist/screen"
)

// ReadCanvas reads the page's canvas at selector losslessly (PNG): noVNC's
// holds the desktop at 1:1, whatever the CSS scaling.
func ReadCanvas(ctx context.Context, selector string) (*screen.Image, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	data, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`(() => { const c = document.querySelector(%q); return c ? c.toDataURL('image/png') : ''; })()`, selector)))
	if err != nil {
		return nil, fmt.Errorf("read canvas: %w", err)
	}
	b64, ok := strings.CutPrefix(data, "data:image/png;base64,")
	if !ok {
		return nil, errors.New("no canvas")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, err
	}
	m, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return FromImage(m), nil
}

// WaitCanvas waits until the canvas at selector is the size of x's
// desktop and shows its colours at pts. noVNC asks for JPEG, so colours
// are compared with a tolerance: pick points in flat areas, where JPEG is
// close. On a mismatch it saves both pictures (SaveArtifacts).
func WaitCanvas(t testing.TB, ctx context.Context, selector string, x *X, pts []image.Point, timeout time.Duration) {
	t.Helper()
	const tol = 12
	want := x.Screenshot(t)
	var last string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		got, err := ReadCanvas(ctx, selector)
		switch {
		case err != nil:
			last = err.Error()
		case got.Rect != want.Rect:
			last = fmt.Sprintf("canvas is %v, desktop %v", got.Rect, want.Rect)
		default:
			last = ""
			for _, p := range pts {
				w, g := At(want, p.X, p.Y), At(got, p.X, p.Y)
				if absDiff(w.R, g.R) > tol || absDiff(w.G, g.G) > tol || absDiff(w.B, g.B) > tol {
					last = fmt.Sprintf("at %v: desktop %v, canvas %v", p, w, g)
					SaveArtifacts(t, map[string]*screen.Image{"want": want, "got": got})
					break
				}
			}
			if last == "" {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the page does not show the desktop: %s", last)
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
