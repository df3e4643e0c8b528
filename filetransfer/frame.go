package filetransfer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// The frame kinds. Every body starts with the transfer's 16-byte id.
const (
	kindOffer  byte = 1 // sender: id | size u64 | name
	kindAccept byte = 2 // receiver: id | offset u64 | SHA-256 of the first offset bytes
	kindRefuse byte = 3 // receiver: id | reason
	kindData   byte = 4 // sender: id | offset u64 | bytes
	kindDone   byte = 5 // sender: id | SHA-256 of the whole file
	kindResult byte = 6 // receiver: id | ok (0 or 1) | reason
	kindCancel byte = 7 // either side: id | reason
	lastKind        = kindCancel
)

// Limits of the wire format.
const (
	// Chunk is the most file data one frame carries.
	Chunk = 32 << 10
	// MaxName bounds the name in an offer, before sanitising.
	MaxName = 1024
	// MaxReason bounds the reason in a refusal, result or cancel.
	MaxReason = 256
	// maxBody is the largest frame body: a data frame.
	maxBody    = idLen + 8 + Chunk
	idLen      = 16
	hashLen    = 32
	headerLen  = 4
	minDataLen = idLen + 8 + 1
)

// ErrProtocol is wrapped by every error for a frame that breaks the
// protocol; the peer is then not speaking it and the channel is closed.
var ErrProtocol = errors.New("file transfer protocol error")

// ErrSessionOver is what Config.Allowed returns, wrapped or not, when the
// session has ended rather than the right been refused: data still queued
// from a lost connection then interrupts its transfer, which keeps its
// partial file for a resume, instead of cancelling it.
var ErrSessionOver = errors.New("the session is over")

// ID names one transfer. The sender derives it from the file (see
// fileID), so a transfer offered again after a drop has the same ID and
// the receiver finds its partial file.
type ID [idLen]byte

// frame is one decoded frame; which members are set depends on Kind.
type frame struct {
	Kind   byte
	ID     ID
	Size   uint64 // offer
	Offset uint64 // accept, data
	Hash   [hashLen]byte
	Name   string // offer
	Reason string // refuse, result, cancel
	OK     bool   // result
	Data   []byte // data; aliases the read buffer
}

func protocolError(format string, args ...any) error {
	return fmt.Errorf("filetransfer: %s: %w", fmt.Sprintf(format, args...), ErrProtocol)
}

// appendFrame encodes f. It checks only what the caller controls: the
// lengths of name, reason and data.
func appendFrame(b []byte, f *frame) ([]byte, error) {
	body := []byte{}
	body = append(body, f.ID[:]...)
	switch f.Kind {
	case kindOffer:
		if f.Name == "" || len(f.Name) > MaxName {
			return nil, fmt.Errorf("filetransfer: offer: name of %d bytes", len(f.Name))
		}
		body = binary.BigEndian.AppendUint64(body, f.Size)
		body = append(body, f.Name...)
	case kindAccept:
		body = binary.BigEndian.AppendUint64(body, f.Offset)
		body = append(body, f.Hash[:]...)
	case kindData:
		if len(f.Data) == 0 || len(f.Data) > Chunk {
			return nil, fmt.Errorf("filetransfer: data frame of %d bytes", len(f.Data))
		}
		body = binary.BigEndian.AppendUint64(body, f.Offset)
		body = append(body, f.Data...)
	case kindDone:
		body = append(body, f.Hash[:]...)
	case kindResult:
		ok := byte(0)
		if f.OK {
			ok = 1
		}
		body = append(body, ok)
		body = append(body, clip(f.Reason, MaxReason)...)
	case kindRefuse, kindCancel:
		body = append(body, clip(f.Reason, MaxReason)...)
	default:
		return nil, fmt.Errorf("filetransfer: unknown frame kind %d", f.Kind)
	}
	b = append(b, f.Kind, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
	return append(b, body...), nil
}

// readFrame reads and decodes one frame into f, reusing buf. The length
// is checked against the kind's bounds before the body is read.
func readFrame(r io.Reader, buf []byte, f *frame) ([]byte, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return buf, err
	}
	kind := hdr[0]
	n := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
	if kind == 0 || kind > lastKind {
		return buf, protocolError("unknown frame kind %d", kind)
	}
	if lo, hi := bodyBounds(kind); n < lo || n > hi {
		return buf, protocolError("frame of kind %d with %d bytes, want %d to %d", kind, n, lo, hi)
	}
	if cap(buf) < n {
		buf = make([]byte, n, maxBody)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf, fmt.Errorf("filetransfer: frame body: %w", err)
	}
	return buf, decodeBody(kind, buf, f)
}

func bodyBounds(kind byte) (lo, hi int) {
	switch kind {
	case kindOffer:
		return idLen + 8 + 1, idLen + 8 + MaxName
	case kindAccept:
		return idLen + 8 + hashLen, idLen + 8 + hashLen
	case kindData:
		return minDataLen, maxBody
	case kindDone:
		return idLen + hashLen, idLen + hashLen
	case kindResult:
		return idLen + 1, idLen + 1 + MaxReason
	default: // refuse, cancel
		return idLen, idLen + MaxReason
	}
}

// decodeBody parses a body whose length bodyBounds accepted.
func decodeBody(kind byte, b []byte, f *frame) error {
	*f = frame{Kind: kind}
	copy(f.ID[:], b)
	b = b[idLen:]
	switch kind {
	case kindOffer:
		f.Size = binary.BigEndian.Uint64(b)
		f.Name = string(b[8:])
		if !utf8.ValidString(f.Name) {
			return protocolError("offer: name is not UTF-8")
		}
		if f.Size > MaxSize {
			return protocolError("offer of %d bytes", f.Size)
		}
	case kindAccept:
		f.Offset = binary.BigEndian.Uint64(b)
		copy(f.Hash[:], b[8:])
	case kindData:
		f.Offset = binary.BigEndian.Uint64(b)
		f.Data = b[8:]
	case kindDone:
		copy(f.Hash[:], b)
	case kindResult:
		if b[0] > 1 {
			return protocolError("result %d", b[0])
		}
		f.OK = b[0] == 1
		b = b[1:]
		fallthrough
	default:
		if err := checkReason(string(b)); err != nil {
			return protocolError("reason: %v", err)
		}
		f.Reason = string(b)
	}
	return nil
}

// MaxSize is the largest file offered or accepted: 1 TiB, far above
// what a session sends, and far below where offsets could overflow.
const MaxSize = 1 << 40

// checkReason accepts one line of printable UTF-8 text.
func checkReason(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not UTF-8")
	}
	for _, r := range s {
		if unsafeRune(r) {
			return fmt.Errorf("forbidden character %U", r)
		}
	}
	return nil
}

// clip cuts s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
