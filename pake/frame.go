package pake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFramePayload is the largest payload a frame can carry: the length field
// is 16 bits, which is plenty for handshake messages and keeps a hostile peer
// from making us allocate much.
const MaxFramePayload = 1<<16 - 1

// frameHeaderSize is the kind byte plus the big-endian 16-bit length.
const frameHeaderSize = 3

// ErrFrameTooLarge: a frame's length exceeds the bound the reader set (or
// MaxFramePayload for a writer).
var ErrFrameTooLarge = errors.New("pake: frame too large")

// WriteMessage writes one frame: kind, the payload length as a big-endian
// uint16, then the payload, in a single Write call so the frame leaves in one
// segment when it can.
func WriteMessage(w io.Writer, kind byte, payload []byte) error {
	if len(payload) > MaxFramePayload {
		return fmt.Errorf("pake: write frame kind %d: %w: %d bytes, max %d", kind, ErrFrameTooLarge, len(payload), MaxFramePayload)
	}
	buf := make([]byte, frameHeaderSize+len(payload))
	buf[0] = kind
	binary.BigEndian.PutUint16(buf[1:], uint16(len(payload)))
	copy(buf[frameHeaderSize:], payload)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("pake: write frame kind %d: %w", kind, err)
	}
	return nil
}

// ReadMessage reads one frame written by WriteMessage. A frame whose payload
// is longer than maxLen is refused before anything is allocated for it, with
// an error wrapping ErrFrameTooLarge; the stream is then out of step and
// should be closed. maxLen is clamped to [0, MaxFramePayload]. A stream that
// ends cleanly before a frame gives io.EOF, one that ends inside a frame
// io.ErrUnexpectedEOF (both wrapped).
func ReadMessage(r io.Reader, maxLen int) (kind byte, payload []byte, err error) {
	maxLen = min(max(maxLen, 0), MaxFramePayload)
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("pake: read frame header: %w", err)
	}
	kind = hdr[0]
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	if n > maxLen {
		return 0, nil, fmt.Errorf("pake: read frame kind %d: %w: %d bytes, max %d", kind, ErrFrameTooLarge, n, maxLen)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("pake: read frame kind %d payload: %w", kind, err)
	}
	return kind, payload, nil
}
