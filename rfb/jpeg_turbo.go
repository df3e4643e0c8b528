//go:build turbojpeg && cgo

package rfb

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"runtime"
	"unsafe"

	"github.com/assist-project/assist/screen"
)

// turboJPEG compresses with libjpeg-turbo, straight from the BGRX
// capture (no conversion, no copy of the input), into an output buffer
// that it keeps from picture to picture.
type turboJPEG struct {
	s       *turboState
	cleanup runtime.Cleanup
}

// turboState is what lives outside the Go heap. It is separate from
// turboJPEG so that a cleanup can free it once turboJPEG is unreachable.
type turboState struct {
	h    C.tjhandle
	buf  *C.uchar // JPEG output buffer from tjAlloc
	size C.ulong  // its capacity
}

// jpegTurbo reports whether JPEG compression uses libjpeg-turbo.
const jpegTurbo = true

// newJPEGCompressor returns the libjpeg-turbo compressor.
func newJPEGCompressor() jpegCompressor {
	c := &turboJPEG{s: &turboState{}}
	// A backstop only: the owner should call close.
	c.cleanup = runtime.AddCleanup(c, func(s *turboState) { s.free() }, c.s)
	return c
}

func (s *turboState) free() {
	if s.buf != nil {
		C.tjFree(s.buf)
		s.buf, s.size = nil, 0
	}
	if s.h != nil {
		C.tjDestroy(s.h)
		s.h = nil
	}
}

func (c *turboJPEG) close() { c.s.free() }

var turboSamp = [...]C.int{jpegSub444: C.TJSAMP_444, jpegSub422: C.TJSAMP_422, jpegSub420: C.TJSAMP_420}

func (c *turboJPEG) appendJPEG(dst []byte, img *screen.Image, r image.Rectangle, quality int, sub jpegSubsampling) ([]byte, error) {
	if err := jpegCheckArea(img, r); err != nil {
		return dst, err
	}
	if sub < 0 || int(sub) >= len(turboSamp) {
		sub = jpegSub420
	}
	s := c.s
	if s.h == nil {
		if s.h = C.tjInitCompress(); s.h == nil {
			return dst, errors.New("rfb: jpeg: tjInitCompress failed")
		}
	}
	w, h := C.int(r.Dx()), C.int(r.Dy())
	samp := turboSamp[sub]
	// A buffer of tjBufSize never needs to grow, so libjpeg-turbo can be
	// told not to reallocate it.
	if need := C.tjBufSize(w, h, samp); s.size < need {
		if s.buf != nil {
			C.tjFree(s.buf)
		}
		if s.buf = C.tjAlloc(C.int(need)); s.buf == nil {
			s.size = 0
			return dst, errors.New("rfb: jpeg: tjAlloc failed")
		}
		s.size = need
	}
	flags := C.int(C.TJFLAG_NOREALLOC)
	if quality < 97 {
		// The fast DCT costs visible accuracy only at the top qualities.
		flags |= C.TJFLAG_FASTDCT
	}
	out, size := s.buf, s.size
	src := (*C.uchar)(unsafe.Pointer(&img.Pix[img.PixOffset(r.Min.X, r.Min.Y)]))
	if C.tjCompress2(s.h, src, w, C.int(img.Stride), h, C.TJPF_BGRX,
		&out, &size, samp, C.int(quality), flags) != 0 {
		return dst, fmt.Errorf("rfb: jpeg: %s", C.GoString(C.tjGetErrorStr2(s.h)))
	}
	runtime.KeepAlive(img)
	return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(out)), int(size))...), nil
}

// jpegDecode decodes the JFIF stream data, which must be a picture of
// rect's size, into rect of fb, as BGRX with X = 0. libjpeg-turbo writes
// straight into fb, several times faster than image/jpeg: this is what
// a real viewer (TigerVNC's, a browser) decodes with, so the benchmark's
// client measures the servers rather than its own decoder. Any warning
// (a truncated picture) is an error.
func jpegDecode(fb *screen.Image, rect image.Rectangle, data []byte) error {
	if len(data) == 0 {
		return errors.New("rfb: tight: empty jpeg picture")
	}
	if err := jpegCheckArea(fb, rect); err != nil {
		return err
	}
	h := C.tjInitDecompress()
	if h == nil {
		return errors.New("rfb: tight: tjInitDecompress failed")
	}
	defer C.tjDestroy(h)
	src, n := (*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data))
	var w, ht, samp, cs C.int
	if C.tjDecompressHeader3(h, src, n, &w, &ht, &samp, &cs) != 0 {
		return fmt.Errorf("rfb: tight: jpeg header: %s", C.GoString(C.tjGetErrorStr2(h)))
	}
	if int(w) != rect.Dx() || int(ht) != rect.Dy() {
		return fmt.Errorf("rfb: tight: jpeg picture is %dx%d, rectangle is %dx%d", w, ht, rect.Dx(), rect.Dy())
	}
	dst := (*C.uchar)(unsafe.Pointer(&fb.Pix[fb.PixOffset(rect.Min.X, rect.Min.Y)]))
	if C.tjDecompress2(h, src, n, dst, w, C.int(fb.Stride), ht, C.TJPF_BGRX, C.TJFLAG_STOPONWARNING) != 0 {
		return fmt.Errorf("rfb: tight: jpeg: %s", C.GoString(C.tjGetErrorStr2(h)))
	}
	runtime.KeepAlive(data)
	runtime.KeepAlive(fb)
	// libjpeg-turbo fills X with 0xff; the other decoders leave 0.
	for y := rect.Min.Y; y < rect.Max.Y; y++ {
		row := fb.Pix[fb.PixOffset(rect.Min.X, y):][:4*rect.Dx()]
		for x := 3; x < len(row); x += 4 {
			row[x] = 0
		}
	}
	return nil
}
