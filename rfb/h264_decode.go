package rfb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"sync"

	"github.com/assist-project/assist/h264"
	"github.com/assist-project/assist/screen"
)

// h264MaxContexts is how many rectangles keep a decoder at once, as in
// noVNC: the least recently used one goes first.
const h264MaxContexts = 64

// h264Decoder is the client side of the Open H.264 encoding: one
// openh264 decoder per rectangle. Its methods are safe for concurrent
// use, so that Client.Close can free the decoders while a read is on.
type h264Decoder struct {
	mu     sync.Mutex
	closed bool
	ctxs   map[image.Rectangle]*h264Context
	tick   uint64
	buf    []byte
}

type h264Context struct {
	dec  *h264.Decoder
	used uint64
}

func newH264Decoder() *h264Decoder {
	return &h264Decoder{ctxs: make(map[image.Rectangle]*h264Context)}
}

// h264MaxPayload bounds a rectangle's payload: no H.264 picture needs
// more than its raw I420 size (1.5 bytes a pixel, as PCM macroblocks)
// plus headers, so a hostile length cannot make the client allocate more.
func h264MaxPayload(r image.Rectangle) int {
	return 2*r.Dx()*r.Dy() + 64<<10
}

func (d *h264Decoder) decode(r io.Reader, fb *screen.Image, rect image.Rectangle, _ *PixelFormat) error {
	var hdr [8]byte
	if err := readFull(r, hdr[:], "H.264 header"); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[0:])
	flags := binary.BigEndian.Uint32(hdr[4:])
	if uint64(n) > uint64(h264MaxPayload(rect)) {
		return fmt.Errorf("H.264 payload of %d bytes is over the limit for a %dx%d rectangle", n, rect.Dx(), rect.Dy())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("rfb: client: closed")
	}
	d.buf = tightGrow(d.buf, int(n))
	if err := readFull(r, d.buf, "H.264 data"); err != nil {
		return err
	}
	switch {
	case flags&h264ResetAllContexts != 0:
		d.resetAll()
	case flags&h264ResetContext != 0:
		if ctx := d.ctxs[rect]; ctx != nil {
			ctx.dec.Close()
			delete(d.ctxs, rect)
		}
	}
	if n == 0 {
		return nil
	}
	ctx := d.ctxs[rect]
	if ctx == nil {
		if len(d.ctxs) >= h264MaxContexts {
			d.evict()
		}
		dec, err := h264.NewDecoder()
		if err != nil {
			return err
		}
		ctx = &h264Context{dec: dec}
		d.ctxs[rect] = ctx
	}
	d.tick++
	ctx.used = d.tick
	if _, err := ctx.dec.Decode(d.buf, fb, rect); err != nil {
		return err
	}
	return nil
}

// evict closes the least recently used context.
func (d *h264Decoder) evict() {
	var oldest image.Rectangle
	var ctx *h264Context
	for r, c := range d.ctxs {
		if ctx == nil || c.used < ctx.used {
			oldest, ctx = r, c
		}
	}
	if ctx != nil {
		ctx.dec.Close()
		delete(d.ctxs, oldest)
	}
}

func (d *h264Decoder) resetAll() {
	for r, ctx := range d.ctxs {
		ctx.dec.Close()
		delete(d.ctxs, r)
	}
}

// close frees every decoder; later rectangles fail.
func (d *h264Decoder) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.resetAll()
}
