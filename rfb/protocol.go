// Package rfb speaks the Remote Framebuffer protocol (RFC 6143, versions
// 3.3, 3.7 and 3.8): a server that shares a screen.Capturer with many
// viewers at once, the encoders it needs (Raw, CopyRect, ZRLE, Tight with
// JPEG), and a small client with matching decoders for tests and
// benchmarks. The package never dials or listens: it takes connections.
package rfb

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// Client-to-server message types.
const (
	msgSetPixelFormat           = 0
	msgSetEncodings             = 2
	msgFramebufferUpdateRequest = 3
	msgKeyEvent                 = 4
	msgPointerEvent             = 5
	msgClientCutText            = 6
	msgEnableContinuousUpdates  = 150
	msgClientFence              = 248
	msgSetDesktopSize           = 251
)

// Server-to-client message types.
const (
	msgFramebufferUpdate      = 0
	msgSetColourMapEntries    = 1
	msgBell                   = 2
	msgServerCutText          = 3
	msgEndOfContinuousUpdates = 150
	msgServerFence            = 248
)

// Encodings and pseudo-encodings.
const (
	EncRaw                 int32 = 0
	EncCopyRect            int32 = 1
	EncRRE                 int32 = 2
	EncHextile             int32 = 5
	EncTight               int32 = 7
	EncZRLE                int32 = 16
	EncJPEGQuality0        int32 = -32 // -32..-23: Tight JPEG quality 0..9
	EncJPEGQuality9        int32 = -23
	EncDesktopSize         int32 = -223
	EncLastRect            int32 = -224
	EncCursor              int32 = -239
	EncCompressLevel0      int32 = -256 // -256..-247: compression level 0..9
	EncCompressLevel9      int32 = -247
	EncExtendedDesktopSize int32 = -308
	EncFence               int32 = -312
	EncContinuousUpdates   int32 = -313
	EncExtendedClipboard   int32 = -0x3f5e1a32 // 0xc0a1e5ce
)

// Security types.
const (
	secInvalid = 0
	secNone    = 1
)

// PixelFormat is how a viewer wants its pixels (RFC 6143 §7.4).
type PixelFormat struct {
	BPP, Depth                      uint8
	BigEndian, TrueColor            bool
	RedMax, GreenMax, BlueMax       uint16
	RedShift, GreenShift, BlueShift uint8
}

// NativeFormat is the layout of screen.Image: 32bpp little-endian,
// red in bits 16-23, green 8-15, blue 0-7.
var NativeFormat = PixelFormat{
	BPP: 32, Depth: 24, BigEndian: false, TrueColor: true,
	RedMax: 255, GreenMax: 255, BlueMax: 255,
	RedShift: 16, GreenShift: 8, BlueShift: 0,
}

// Validate reports whether the server can produce pixels in pf.
func (pf PixelFormat) Validate() error {
	switch pf.BPP {
	case 8, 16, 32:
	default:
		return fmt.Errorf("rfb: pixel format: %d bits per pixel is not 8, 16 or 32", pf.BPP)
	}
	if !pf.TrueColor {
		return fmt.Errorf("rfb: pixel format: colour maps are not supported; ask for true colour")
	}
	if pf.Depth == 0 || pf.Depth > pf.BPP {
		return fmt.Errorf("rfb: pixel format: depth %d does not fit %d bits per pixel", pf.Depth, pf.BPP)
	}
	for _, c := range []struct {
		max   uint16
		shift uint8
	}{{pf.RedMax, pf.RedShift}, {pf.GreenMax, pf.GreenShift}, {pf.BlueMax, pf.BlueShift}} {
		if c.max == 0 || c.max&(c.max+1) != 0 {
			return fmt.Errorf("rfb: pixel format: colour maximum %d is not 2^n-1", c.max)
		}
		if int(c.shift) >= int(pf.BPP) || uint32(c.max)<<c.shift>>c.shift != uint32(c.max) || (uint64(c.max)<<c.shift)>>pf.BPP != 0 {
			return fmt.Errorf("rfb: pixel format: colour at shift %d with maximum %d does not fit %d bits", c.shift, c.max, pf.BPP)
		}
	}
	return nil
}

// marshal writes the 16-byte wire form.
func (pf PixelFormat) marshal(b []byte) {
	_ = b[15]
	b[0], b[1] = pf.BPP, pf.Depth
	b[2], b[3] = boolByte(pf.BigEndian), boolByte(pf.TrueColor)
	binary.BigEndian.PutUint16(b[4:], pf.RedMax)
	binary.BigEndian.PutUint16(b[6:], pf.GreenMax)
	binary.BigEndian.PutUint16(b[8:], pf.BlueMax)
	b[10], b[11], b[12] = pf.RedShift, pf.GreenShift, pf.BlueShift
	b[13], b[14], b[15] = 0, 0, 0
}

// unmarshalPixelFormat parses the 16-byte wire form.
func unmarshalPixelFormat(b []byte) PixelFormat {
	_ = b[15]
	return PixelFormat{
		BPP: b[0], Depth: b[1], BigEndian: b[2] != 0, TrueColor: b[3] != 0,
		RedMax:   binary.BigEndian.Uint16(b[4:]),
		GreenMax: binary.BigEndian.Uint16(b[6:]),
		BlueMax:  binary.BigEndian.Uint16(b[8:]),
		RedShift: b[10], GreenShift: b[11], BlueShift: b[12],
	}
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// readFull reads exactly len(b) bytes, wrapping the error with what.
func readFull(r io.Reader, b []byte, what string) error {
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("rfb: read %s: %w", what, err)
	}
	return nil
}

// readChunkSize is the step in which appendRead grows its buffer.
const readChunkSize = 64 << 10

// appendRead reads n bytes from r and appends them to buf, growing it in
// steps of readChunkSize as bytes come: a length a peer claimed, however
// large, costs memory only as the peer sends the bytes. On an error buf
// is returned as it was.
func appendRead(r io.Reader, buf []byte, n int, what string) ([]byte, error) {
	orig := len(buf)
	for n > 0 {
		k := min(n, readChunkSize)
		start := len(buf)
		buf = slices.Grow(buf, k)[:start+k]
		if err := readFull(r, buf[start:], what); err != nil {
			return buf[:orig], err
		}
		n -= k
	}
	return buf, nil
}
