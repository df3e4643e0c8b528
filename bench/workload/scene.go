package workload

import (
	"image"
	"math"

	"github.com/assist-project/assist/screen"
)

// Scene renders frame t of a synthetic "natural" picture of size w×h:
// slowly moving colour gradients, a few moving shapes with soft edges and
// mild sensor-like noise. It compresses like camera video (smooth areas,
// edges, some grain) rather than like noise, which no codec can shrink,
// or like flat colour, which every codec shrinks to nothing. seed picks
// the palette and paths; t is in seconds.
func Scene(w, h int, t float64, seed uint64) *screen.Image {
	img := screen.NewImage(image.Rect(0, 0, w, h))
	rng := seed*0x9E3779B97F4A7C15 + 1
	next := func() float64 { // splitmix-like, deterministic in seed
		rng += 0x9E3779B97F4A7C15
		z := rng
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		return float64((z^z>>31)>>11) / (1 << 53)
	}
	fx, fy := 0.004+0.006*next(), 0.004+0.006*next()
	px, py := 6*next(), 6*next()

	// Separable gradient: per-column and per-row terms, summed per pixel.
	col := make([][3]float64, w)
	for x := range col {
		a := float64(x)*fx + t*0.9 + px
		col[x] = [3]float64{60 * math.Sin(a), 60 * math.Sin(a*0.7+1), 60 * math.Cos(a*1.3)}
	}
	row := make([][3]float64, h)
	for y := range row {
		a := float64(y)*fy - t*0.6 + py
		row[y] = [3]float64{50 * math.Cos(a), 50 * math.Sin(a*1.1+2), 50 * math.Sin(a*0.8)}
	}
	noise := uint32(seed) | 1
	for y := 0; y < h; y++ {
		p := img.Pix[y*img.Stride:]
		for x := 0; x < w; x++ {
			noise ^= noise << 13
			noise ^= noise >> 17
			noise ^= noise << 5
			n := float64(int(noise&15) - 8)
			p[4*x+2] = clamp(128 + col[x][0] + row[y][0] + n)
			p[4*x+1] = clamp(120 + col[x][1] + row[y][1] + n)
			p[4*x+0] = clamp(110 + col[x][2] + row[y][2] + n)
		}
	}

	// Moving discs and boxes along Lissajous paths.
	for i := 0; i < 6; i++ {
		cr, cg, cb := 255*next(), 255*next(), 255*next()
		ax, ay := next()*2+0.3, next()*2+0.3
		cx := float64(w) * (0.5 + 0.4*math.Sin(t*ax+next()*6))
		cy := float64(h) * (0.5 + 0.4*math.Cos(t*ay+next()*6))
		rad := float64(min(w, h)) * (0.05 + 0.1*next())
		box := i%2 == 1
		x0, x1 := max(0, int(cx-rad)), min(w, int(cx+rad)+1)
		y0, y1 := max(0, int(cy-rad)), min(h, int(cy+rad)+1)
		for y := y0; y < y1; y++ {
			p := img.Pix[y*img.Stride:]
			for x := x0; x < x1; x++ {
				a := 1.0
				if !box {
					dx, dy := float64(x)-cx, float64(y)-cy
					// Soft edge over 2 pixels, as an optical image would have.
					a = math.Min(1, math.Max(0, (rad-math.Sqrt(dx*dx+dy*dy))/2))
					if a == 0 {
						continue
					}
				}
				shade := 0.75 + 0.25*float64(y-y0)/float64(max(1, y1-y0))
				p[4*x+2] = mix(p[4*x+2], cr*shade, a)
				p[4*x+1] = mix(p[4*x+1], cg*shade, a)
				p[4*x+0] = mix(p[4*x+0], cb*shade, a)
			}
		}
	}
	return img
}

func clamp(v float64) byte {
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return byte(v)
}

func mix(old byte, v, a float64) byte { return clamp(float64(old)*(1-a) + v*a) }
