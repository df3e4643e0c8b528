// Package h264 encodes areas of a BGRX screen.Image as H.264 (Constrained
// Baseline, Annex B byte stream) and decodes such streams back into one,
// for RFB's Open H.264 encoding.
//
// The codec is Cisco's openh264 (BSD licensed, Debian libopenh264-dev),
// bound through cgo behind the build tag openh264. Without the tag,
// Available is false and NewEncoder and NewDecoder return
// ErrNotAvailable, so callers keep to their other encodings.
//
// Colour is converted with the BT.601 matrix in limited range, and the
// stream's VUI says so (with sRGB primaries and transfer), so that a
// browser's decoder shows the same colours as this package's.
package h264

import (
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/assist-project/assist/screen"
)

// ErrNotAvailable is returned by NewEncoder and NewDecoder in a build
// without the openh264 codec.
var ErrNotAvailable = errors.New("h264: this build has no H.264 codec: build with -tags openh264 (needs Debian's libopenh264-dev)")

// MaxSide is the largest width or height the encoder and decoder accept:
// the largest H.264 level (6.2) allows 139264 macroblocks a frame, more
// than an 8192x4320 picture needs.
const MaxSide = 8192

// Quality bounds of the quantiser: lower is better and bigger.
const (
	MinQP = 10
	MaxQP = 51
)

// PictureSizes returns the picture size that every sequence parameter
// set (SPS) in the Annex B stream data announces, in order. A decoder
// checks them against the size it expects before the codec sees the
// data, so a hostile stream cannot make it allocate pictures of a size
// nobody asked for. Only the profiles this package's encoder could make
// or that need no more parsing (Baseline, Main, Extended) are accepted.
func PictureSizes(data []byte) ([]image.Point, error) {
	var sizes []image.Point
	for _, nal := range NALUnits(data) {
		if len(nal) == 0 {
			return nil, errors.New("h264: empty NAL unit")
		}
		if nal[0]&0x80 != 0 {
			return nil, errors.New("h264: NAL unit with the forbidden bit set")
		}
		if nal[0]&0x1f != 7 {
			continue
		}
		size, err := parseSPS(nal[1:])
		if err != nil {
			return nil, err
		}
		sizes = append(sizes, size)
	}
	return sizes, nil
}

// NALUnits splits an Annex B byte stream at its start codes (00 00 01,
// with any zero bytes before it). Bytes before the first start code are
// returned as a first unit of their own, so a caller can refuse them.
func NALUnits(data []byte) [][]byte {
	var units [][]byte
	start := -1 // start of the current unit's payload
	i := 0
	for i+2 < len(data) {
		if data[i] == 0 && data[i+1] == 0 && data[i+2] == 1 {
			end := i
			for end > 0 && end > start && data[end-1] == 0 {
				end--
			}
			if start >= 0 {
				units = append(units, data[start:end])
			} else if end > 0 {
				units = append(units, data[:end])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 {
		units = append(units, data[start:])
	} else if len(data) > 0 {
		units = append(units, data)
	}
	return units
}

// bitReader reads an RBSP (emulation prevention bytes removed) bit by bit.
type bitReader struct {
	b   []byte
	pos int // in bits
}

var errShortSPS = errors.New("h264: sequence parameter set is truncated")

func (r *bitReader) bit() (uint32, error) {
	if r.pos >= 8*len(r.b) {
		return 0, errShortSPS
	}
	v := uint32(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v, nil
}

func (r *bitReader) bits(n int) (uint32, error) {
	var v uint32
	for range n {
		b, err := r.bit()
		if err != nil {
			return 0, err
		}
		v = v<<1 | b
	}
	return v, nil
}

// ue reads an unsigned Exp-Golomb code of at most 31 leading zeros.
func (r *bitReader) ue() (uint32, error) {
	zeros := 0
	for {
		b, err := r.bit()
		if err != nil {
			return 0, err
		}
		if b == 1 {
			break
		}
		if zeros++; zeros > 31 {
			return 0, errors.New("h264: Exp-Golomb code too long")
		}
	}
	v, err := r.bits(zeros)
	if err != nil {
		return 0, err
	}
	return (1<<zeros - 1) + v, nil
}

// rbsp removes emulation prevention bytes (00 00 03 -> 00 00).
func rbsp(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// parseSPS returns the cropped picture size of a sequence parameter set
// (the NAL unit without its header byte): ITU-T H.264 7.3.2.1.1.
func parseSPS(nal []byte) (image.Point, error) {
	r := &bitReader{b: rbsp(nal)}
	profile, err := r.bits(8)
	if err != nil {
		return image.Point{}, err
	}
	switch profile {
	case 66, 77, 88: // Baseline, Main, Extended: no chroma format fields
	default:
		return image.Point{}, fmt.Errorf("h264: profile %d is not Baseline, Main or Extended", profile)
	}
	if _, err := r.bits(16); err != nil { // constraint flags, level
		return image.Point{}, err
	}
	var v [4]uint32
	read := func(dst ...*uint32) error {
		for _, d := range dst {
			x, err := r.ue()
			if err != nil {
				return err
			}
			*d = x
		}
		return nil
	}
	var id, log2Frame, pocType uint32
	if err := read(&id, &log2Frame, &pocType); err != nil {
		return image.Point{}, err
	}
	if id > 31 || log2Frame > 12 {
		return image.Point{}, errors.New("h264: sequence parameter set out of range")
	}
	switch pocType {
	case 0:
		if err := read(&v[0]); err != nil {
			return image.Point{}, err
		}
	case 1:
		if _, err := r.bit(); err != nil {
			return image.Point{}, err
		}
		var n uint32
		if err := read(&v[0], &v[1], &n); err != nil { // se() read as ue(): only the length matters
			return image.Point{}, err
		}
		if n > 255 {
			return image.Point{}, errors.New("h264: too many reference frames in the POC cycle")
		}
		for range n {
			if err := read(&v[0]); err != nil {
				return image.Point{}, err
			}
		}
	case 2:
	default:
		return image.Point{}, fmt.Errorf("h264: picture order count type %d", pocType)
	}
	var refs, wMbs, hMaps uint32
	if err := read(&refs); err != nil {
		return image.Point{}, err
	}
	if _, err := r.bit(); err != nil { // gaps_in_frame_num_value_allowed_flag
		return image.Point{}, err
	}
	if err := read(&wMbs, &hMaps); err != nil {
		return image.Point{}, err
	}
	frameMbsOnly, err := r.bit()
	if err != nil {
		return image.Point{}, err
	}
	if frameMbsOnly == 0 {
		if _, err := r.bit(); err != nil { // mb_adaptive_frame_field_flag
			return image.Point{}, err
		}
	}
	if _, err := r.bit(); err != nil { // direct_8x8_inference_flag
		return image.Point{}, err
	}
	if wMbs >= MaxSide/16 || hMaps >= MaxSide/16 {
		return image.Point{}, fmt.Errorf("h264: picture of %dx%d macroblocks is over the limit", wMbs+1, hMaps+1)
	}
	w := int(wMbs+1) * 16
	h := int(2-frameMbsOnly) * int(hMaps+1) * 16
	cropping, err := r.bit()
	if err != nil {
		return image.Point{}, err
	}
	if cropping == 1 {
		if err := read(&v[0], &v[1], &v[2], &v[3]); err != nil {
			return image.Point{}, err
		}
		// 4:2:0: crop units are 2 luma samples (times 2 for fields).
		cx, cy := 2, 2*int(2-frameMbsOnly)
		if v[0] > MaxSide || v[1] > MaxSide || v[2] > MaxSide || v[3] > MaxSide {
			return image.Point{}, errors.New("h264: cropping out of range")
		}
		w -= cx * int(v[0]+v[1])
		h -= cy * int(v[2]+v[3])
	}
	if w <= 0 || h <= 0 {
		return image.Point{}, errors.New("h264: cropping leaves no picture")
	}
	return image.Pt(w, h), nil
}

// PSNR returns the peak signal-to-noise ratio, in dB, of area r of b
// against the same area of a, over the three colour channels; +Inf when
// they are equal.
func PSNR(a, b *screen.Image, r image.Rectangle) float64 {
	var sum float64
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		pa := a.Pix[a.PixOffset(r.Min.X, y):][:4*r.Dx()]
		pb := b.Pix[b.PixOffset(r.Min.X, y):][:4*r.Dx()]
		for x := 0; x < len(pa); x += 4 {
			for c := range 3 {
				d := float64(pa[x+c]) - float64(pb[x+c])
				sum += d * d
			}
			n += 3
		}
	}
	return psnrOf(sum, n)
}

// psnrOf turns a sum of squared errors over n samples into dB.
func psnrOf(sum float64, n int) float64 {
	if n == 0 || sum == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(n)/sum)
}
