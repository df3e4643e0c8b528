package x11

import (
	"context"
	"image"
	"testing"

	"github.com/assist-project/assist/screen"
)

func benchGrab(b *testing.B, r image.Rectangle) {
	disp := startXvfb(b, "1280x800x24")
	for _, tc := range []struct {
		name string
		opts options
	}{
		{"SHM", options{}},
		{"GetImage", options{noSHM: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			d := openTest(b, disp, tc.opts)
			dst := screen.NewImage(image.Rect(0, 0, 1280, 800))
			b.SetBytes(int64(4 * r.Dx() * r.Dy()))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Grab(dst, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGrabFull(b *testing.B)  { benchGrab(b, image.Rect(0, 0, 1280, 800)) }
func BenchmarkGrabSmall(b *testing.B) { benchGrab(b, image.Rect(600, 400, 664, 464)) }

// BenchmarkDamageLatency measures a drawing request's way to Next: the
// fill's round trip on the drawing client plus event delivery.
func BenchmarkDamageLatency(b *testing.B) {
	disp := startXvfb(b, "1280x800x24")
	d := openTest(b, disp, options{})
	cl := newClient(b, disp)
	ctx := context.Background()
	r := image.Rect(100, 100, 164, 164)
	i := uint32(0)
	for b.Loop() {
		i++
		cl.fill(r, i&0xffffff)
		for {
			ch, err := d.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if covers(ch.Damage, r) {
				break
			}
		}
	}
}
