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
