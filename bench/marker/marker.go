// Package marker stamps a sequence number into a desktop's pixels and
// reads it back from what a VNC viewer decoded, so a benchmark can tell
// which change a viewer shows without trusting the server's timing.
//
// A marker is a row of BlockSize×BlockSize blocks, each one of the eight
// saturated colours (every channel 0 or 255), so each block carries three
// bits. Large flat blocks of far-apart colours survive lossy JPEG at the
// qualities VNC servers use, even when the server's rectangle (and so the
// JPEG block grid) does not line up with the marker: the decoder reads
// only each block's centre and picks the nearest colour. The last blocks
// hold a hash of the value so that a torn marker (half old, half new) or
// unrelated pixels are rejected rather than misread.
package marker

import (
	"image"

	"github.com/assist-project/assist/screen"
)

const (
	// BlockSize is the side of one block in pixels.
	BlockSize = 16
	// DataBlocks carry the value, three bits each.
	DataBlocks = 4
	// CheckBlocks carry a hash of the value.
	CheckBlocks = 2
	// Blocks is the number of blocks in a marker.
	Blocks = DataBlocks + CheckBlocks
	// Modulus is the number of distinct values a marker holds; sequence
	// numbers wrap around it (see Unwrap).
	Modulus = 1 << (3 * DataBlocks)

	// sample is the side of the square read at each block's centre.
	sample = 8
	// tolerance is how far (0..255) a channel's average may be from 0 or
	// 255 and still count: past it the block is too blurred to trust.
	tolerance = 96
)

// Size is the marker's size in pixels.
var Size = image.Pt(Blocks*BlockSize, BlockSize)

// Bounds returns the area a marker at top-left at occupies.
func Bounds(at image.Point) image.Rectangle {
	return image.Rectangle{Min: at, Max: at.Add(Size)}
}

// digits returns the colour index (0..7, bits R G B) of every block for v.
func digits(v uint32) [Blocks]uint8 {
	v %= Modulus
	var d [Blocks]uint8
	for i := 0; i < DataBlocks; i++ {
		d[i] = uint8(v >> (3 * i) & 7)
	}
	c := check(v)
	for i := 0; i < CheckBlocks; i++ {
		d[DataBlocks+i] = uint8(c >> (3 * i) & 7)
	}
	return d
}

// check is a multiplicative hash of v, offset so that all-black (v=0) and
// all-white (v=Modulus-1) areas do not pass for markers.
func check(v uint32) uint32 {
	return ((v + 1) * 2654435761) >> (32 - 3*CheckBlocks)
}

// Draw stamps the marker for v into img with its top-left corner at at.
// Parts outside img are clipped.
func Draw(img *screen.Image, at image.Point, v uint32) {
	d := digits(v)
	for i, c := range d {
		r := image.Rect(at.X+i*BlockSize, at.Y, at.X+(i+1)*BlockSize, at.Y+BlockSize).Intersect(img.Rect)
		b, g, red := colour(c)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := img.Pix[img.PixOffset(r.Min.X, y):]
			for x := 0; x < r.Dx(); x++ {
				row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = b, g, red, 0
			}
		}
	}
}

// Image returns a new image holding only the marker for v, at origin at.
func Image(at image.Point, v uint32) *screen.Image {
	img := screen.NewImage(Bounds(at))
	Draw(img, at, v)
	return img
}

// colour returns the B, G, R bytes of colour index c (bit 2 red, 1 green,
// 0 blue).
func colour(c uint8) (b, g, r byte) {
	return 255 * (c & 1), 255 * (c >> 1 & 1), 255 * (c >> 2 & 1)
}

// Decode reads the marker whose top-left corner is at from img. ok is
// false when the area does not hold a valid marker (not drawn yet, torn,
// blurred, or outside img).
func Decode(img *screen.Image, at image.Point) (v uint32, ok bool) {
	if !Bounds(at).In(img.Rect) {
		return 0, false
	}
	var d [Blocks]uint8
	off := (BlockSize - sample) / 2
	for i := range d {
		x0, y0 := at.X+i*BlockSize+off, at.Y+off
		var sum [3]int
		for y := y0; y < y0+sample; y++ {
			p := img.Pix[img.PixOffset(x0, y):]
			for x := 0; x < sample; x++ {
				sum[0] += int(p[4*x])
				sum[1] += int(p[4*x+1])
				sum[2] += int(p[4*x+2])
			}
		}
		var c uint8
		for ch, s := range sum { // ch 0 = blue, 1 = green, 2 = red
			avg := s / (sample * sample)
			switch {
			case avg <= tolerance:
			case avg >= 255-tolerance:
				c |= 1 << ch
			default:
				return 0, false
			}
		}
		d[i] = c
	}
	for i := 0; i < DataBlocks; i++ {
		v |= uint32(d[i]) << (3 * i)
	}
	if digits(v) != d {
		return 0, false
	}
	return v, true
}

// Unwrap turns a decoded value back into a sequence number, given the
// latest sequence number drawn so far: the largest n <= latest with
// n ≡ v (mod Modulus). ok is false when no such n exists.
func Unwrap(v uint32, latest uint64) (n uint64, ok bool) {
	v %= Modulus
	if uint64(v) > latest {
		return 0, false
	}
	return latest - (latest-uint64(v))%Modulus, true
}
