package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"io"
	"math"
	"strings"
	"time"

	"github.com/assist-project/assist/bench/workload"
	"github.com/assist-project/assist/screen"
)

// losslessTimeout is how long the benchmark waits for a still photo to be
// exact at the viewer; servers that never refine JPEG show "never".
const losslessTimeout = 10 * time.Second

// LosslessResult is how one server brought a still photo to the viewer:
// when the first update showing it arrived, and when the viewer's picture
// became exact.
type LosslessResult struct {
	Server string `json:"server"`
	Round  int    `json:"round,omitempty"`
	// FirstMS is from the photo being drawn to the first update after it.
	FirstMS float64 `json:"first_ms"`
	// ExactMS is from the photo being drawn to the viewer's picture being
	// pixel-exact; 0 when it was not within losslessTimeout.
	ExactMS float64 `json:"exact_ms"`
	Exact   bool    `json:"exact"`
	// Bytes counts every update from the drawing until exact (or the
	// timeout); FirstBytes the first of them.
	Bytes      int64 `json:"bytes"`
	FirstBytes int64 `json:"first_bytes"`
	// Differ and PSNR compare the picture with the photo at the end
	// (exact, or the timeout); PSNR is 0 when exact.
	Differ int     `json:"pixels_differing"`
	PSNR   float64 `json:"psnr_db"`
}

// timeToLossless draws a photo over the whole screen once, then nothing,
// and measures how long the viewer takes to show it exactly, and the
// bytes that costs.
func (r *run) timeToLossless(ctx context.Context) (LosslessResult, error) {
	res := LosslessResult{}
	size := r.desk.Size()
	r.view.watch(image.Pt(-1, -1))
	want := workload.Scene(size.X, size.Y, 0.37, 11)
	// The viewer compares from the first update on, as updates may all
	// arrive while the photo is being drawn.
	r.view.setTarget(want)
	defer r.view.setTarget(nil)
	t0 := time.Now()
	r.desk.PutImage(want)
	if err := r.desk.Sync(); err != nil {
		return res, err
	}
	got, err := r.desk.Grab(want.Rect)
	if err != nil {
		return res, err
	}
	for i := 0; i+3 <= len(want.Pix); i += 4 {
		if !bytes.Equal(got.Pix[i:i+3], want.Pix[i:i+3]) {
			return res, fmt.Errorf("the screen does not show the photo as drawn")
		}
	}
	deadline := time.NewTimer(losslessTimeout)
	defer deadline.Stop()
	for {
		r.view.mu.Lock()
		exactAt, changed, err := r.view.exactAt, r.view.changed, r.view.err
		r.view.mu.Unlock()
		if err != nil {
			return res, err
		}
		if !exactAt.IsZero() {
			res.Exact, res.ExactMS = true, ms(exactAt.Sub(t0))
			break
		}
		select {
		case <-changed:
			continue
		case <-deadline.C:
		case <-ctx.Done():
			return res, ctx.Err()
		}
		break
	}
	r.view.mu.Lock()
	res.Differ, res.PSNR = r.view.differ, r.view.psnr
	r.view.mu.Unlock()
	ups, _ := r.view.snapshot()
	for i, u := range ups {
		if res.Exact && u.At.After(t0.Add(time.Duration(res.ExactMS*float64(time.Millisecond)))) {
			break
		}
		if i == 0 {
			res.FirstMS, res.FirstBytes = ms(u.At.Sub(t0)), int64(u.Bytes)
		}
		res.Bytes += int64(u.Bytes)
	}
	return res, nil
}

// setTarget makes the viewer compare its picture with want after every
// update and note when it first matches; nil stops that.
func (v *viewer) setTarget(want *screen.Image) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.target, v.exactAt, v.differ, v.psnr = want, time.Time{}, -1, 0
}

// checkTarget is called by record, with v.mu held, after an update.
func (v *viewer) checkTarget(now time.Time) {
	if v.target == nil || !v.exactAt.IsZero() {
		return
	}
	fb := v.c.Framebuffer()
	w := v.target
	if !w.Rect.In(fb.Rect) {
		return
	}
	differ, sq := 0, 0.0
	for y := w.Rect.Min.Y; y < w.Rect.Max.Y; y++ {
		a := w.Pix[w.PixOffset(w.Rect.Min.X, y):][:4*w.Rect.Dx()]
		b := fb.Pix[fb.PixOffset(w.Rect.Min.X, y):][:4*w.Rect.Dx()]
		for x := 0; x < len(a); x += 4 {
			if !bytes.Equal(a[x:x+3], b[x:x+3]) {
				differ++
				for c := 0; c < 3; c++ {
					d := float64(a[x+c]) - float64(b[x+c])
					sq += d * d
				}
			}
		}
	}
	v.differ, v.psnr = differ, 0
	if differ > 0 {
		mse := sq / float64(3*w.Rect.Dx()*w.Rect.Dy())
		v.psnr = 10 * math.Log10(255*255/mse)
		return
	}
	v.exactAt = now
}

// writeLosslessTable writes the still-photo results as a Markdown table.
func writeLosslessTable(w io.Writer, results []LosslessResult) error {
	var b strings.Builder
	b.WriteString("\nA still full-screen photo: time from drawing it to the first update and to a pixel-exact picture, and bytes until exact.\n\n")
	b.WriteString("| server | first update ms | exact ms | KB until exact (or 10 s) | KB of the first update | pixels differing at the end | PSNR dB at the end |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		exact := "never"
		if r.Exact {
			exact = fmt.Sprintf("%.0f", r.ExactMS)
		}
		psnr := "exact"
		if r.Differ != 0 {
			psnr = fmt.Sprintf("%.1f", r.PSNR)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %.0f | %.0f | %d | %s |\n", r.Server, r.FirstMS, exact,
			float64(r.Bytes)/1024, float64(r.FirstBytes)/1024, max(r.Differ, 0), psnr)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
