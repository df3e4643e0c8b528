//go:build !openh264 || !cgo

package h264

import (
	"image"

	"github.com/assist-project/assist/screen"
)

// Available reports whether this build has the H.264 codec.
const Available = false

// Encoder is the H.264 encoder; this build has none.
type Encoder struct{}

// NewEncoder returns ErrNotAvailable: this build has no codec.
func NewEncoder(w, h, qp int, fps float64) (*Encoder, error) { return nil, ErrNotAvailable }

// Size is the picture size the encoder was made for.
func (e *Encoder) Size() image.Point { return image.Point{} }

// Encode returns ErrNotAvailable.
func (e *Encoder) Encode(dst []byte, img *screen.Image, r image.Rectangle, idr bool) ([]byte, error) {
	return dst, ErrNotAvailable
}

// Close does nothing.
func (e *Encoder) Close() {}

// Decoder is the H.264 decoder; this build has none.
type Decoder struct{}

// NewDecoder returns ErrNotAvailable: this build has no codec.
func NewDecoder() (*Decoder, error) { return nil, ErrNotAvailable }

// Decode returns ErrNotAvailable.
func (d *Decoder) Decode(data []byte, fb *screen.Image, r image.Rectangle) (bool, error) {
	return false, ErrNotAvailable
}

// Close does nothing.
func (d *Decoder) Close() {}
