package rfb

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
)

// The Extended Clipboard pseudo-encoding (rfbproto "Extended Clipboard
// Pseudo-Encoding", 0xc0a1e5ce) turns a cut-text message with a negative
// length into a clipboard message: 4 bytes of flags (formats in bits
// 0-15, one action in bits 24-31) and a payload. Text is UTF-8 with CRLF
// line ends and a terminating NUL, sent zlib-compressed by "provide".
// Only the text format is spoken here; the others are never offered.
const (
	clipText    uint32 = 1 << 0
	clipFormats uint32 = 0xffff

	clipCaps    uint32 = 1 << 24
	clipRequest uint32 = 1 << 25
	clipPeek    uint32 = 1 << 26
	clipNotify  uint32 = 1 << 27
	clipProvide uint32 = 1 << 28
	clipActions uint32 = 0xff << 24

	// clipAllActions is every action this package handles, as announced
	// in its caps.
	clipAllActions = clipCaps | clipRequest | clipPeek | clipNotify | clipProvide
)

// Bounds on Extended Clipboard messages. Text is bounded like plain cut
// text; the compressed form of that much text can be a little larger
// than the text (zlib's stored blocks), hence the slack.
const (
	maxClipText = maxCutText
	maxExtClip  = maxClipText + 64<<10
)

// clipCapsOf is what a peer said it accepts (its caps message): the
// actions, and the largest text it takes unsolicited (in a provide not
// answering its request). hasText is false if it takes no text at all.
type clipCapsOf struct {
	actions uint32
	hasText bool
	textMax uint32
}

// defaultClipCaps is what rfbproto says to assume of a peer that sent no
// caps: text, rtf and html; request, notify and provide; 20 MiB of text.
var defaultClipCaps = clipCapsOf{actions: clipRequest | clipNotify | clipProvide, hasText: true, textMax: 20 << 20}

// extClip is one parsed Extended Clipboard message.
type extClip struct {
	flags uint32
	// sizes are a caps message's maximum sizes, one per format bit set,
	// lowest bit first.
	sizes []uint32
	// data is a provide message's zlib stream.
	data []byte
}

// action is the message's action bit (clipCaps for a caps message).
func (m extClip) action() uint32 {
	if m.flags&clipCaps != 0 {
		return clipCaps
	}
	return m.flags & clipActions
}

// caps returns what a caps message announces.
func (m extClip) caps() clipCapsOf {
	c := clipCapsOf{actions: m.flags & clipActions}
	if m.flags&clipText != 0 && len(m.sizes) > 0 {
		c.hasText, c.textMax = true, m.sizes[0]
	}
	return c
}

// parseExtClip parses the bytes after a negative cut-text length. A caps
// message must carry exactly one size per format; any other message must
// carry exactly one action, and only provide has a payload.
func parseExtClip(b []byte) (extClip, error) {
	if len(b) < 4 {
		return extClip{}, fmt.Errorf("extended clipboard message of %d bytes has no flags", len(b))
	}
	m := extClip{flags: binary.BigEndian.Uint32(b)}
	body := b[4:]
	switch a := m.flags & clipActions; {
	case m.flags&clipCaps != 0:
		n := bits.OnesCount32(m.flags & clipFormats)
		if len(body) != 4*n {
			return extClip{}, fmt.Errorf("extended clipboard caps: %d bytes of sizes for %d formats", len(body), n)
		}
		for i := range n {
			m.sizes = append(m.sizes, binary.BigEndian.Uint32(body[4*i:]))
		}
	case a == clipProvide:
		m.data = body
	case a == clipRequest || a == clipPeek || a == clipNotify:
		if len(body) != 0 {
			return extClip{}, fmt.Errorf("extended clipboard action %#x with %d bytes of payload", a, len(body))
		}
	default:
		return extClip{}, fmt.Errorf("extended clipboard flags %#x: not exactly one known action", m.flags)
	}
	return m, nil
}

// providedText decodes the text of a provide message: the first pair of
// its zlib stream when the text format is present. ok is false when the
// message carries no text. The text is at most max bytes; CRLF becomes
// LF, the terminating NUL is dropped, invalid UTF-8 is replaced.
func (m extClip) providedText(max int) (text string, ok bool, err error) {
	if m.flags&clipText == 0 {
		return "", false, nil
	}
	zr, err := zlib.NewReader(bytes.NewReader(m.data))
	if err != nil {
		return "", false, fmt.Errorf("extended clipboard provide: %w", err)
	}
	defer zr.Close()
	var hdr [4]byte
	if _, err := io.ReadFull(zr, hdr[:]); err != nil {
		return "", false, fmt.Errorf("extended clipboard provide: text size: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(max)+1 { // +1: the NUL
		return "", false, fmt.Errorf("extended clipboard provide: text of %d bytes is over the limit of %d", n, max)
	}
	// Read what is there rather than allocate n bytes up front: a few
	// compressed bytes must not make us allocate the limit.
	b, err := io.ReadAll(io.LimitReader(zr, int64(n)))
	if err != nil {
		return "", false, fmt.Errorf("extended clipboard provide: text: %w", err)
	}
	if len(b) != int(n) {
		return "", false, fmt.Errorf("extended clipboard provide: text of %d bytes announced, %d sent", n, len(b))
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	return strings.ReplaceAll(s, "\r\n", "\n"), true, nil
}

// appendExtClipHeader appends a cut-text message header of type typ
// (ServerCutText or ClientCutText) for an extended message of n bytes.
func appendExtClipHeader(buf []byte, typ byte, n int) []byte {
	buf = append(buf, typ, 0, 0, 0)
	return binary.BigEndian.AppendUint32(buf, uint32(-int32(n)))
}

// appendClipCaps appends a caps message: the text format (unsolicited
// text up to textMax bytes) and every action this package handles.
func appendClipCaps(buf []byte, typ byte, textMax uint32) []byte {
	buf = appendExtClipHeader(buf, typ, 8)
	buf = binary.BigEndian.AppendUint32(buf, clipAllActions|clipText)
	return binary.BigEndian.AppendUint32(buf, textMax)
}

// appendClipAction appends a request, peek or notify for the given
// formats (clipText or 0).
func appendClipAction(buf []byte, typ byte, action, formats uint32) []byte {
	buf = appendExtClipHeader(buf, typ, 4)
	return binary.BigEndian.AppendUint32(buf, action|formats)
}

// errClipTooLong is returned for text that does not fit a message.
var errClipTooLong = errors.New("clipboard text is over the limit")

// appendClipProvide appends a provide message carrying text, with LF
// line ends turned into CRLF and a terminating NUL, as rfbproto asks.
func appendClipProvide(buf []byte, typ byte, text string) ([]byte, error) {
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")
	if len(text) > maxClipText {
		return buf, fmt.Errorf("%w: %d bytes, at most %d", errClipTooLong, len(text), maxClipText)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(text)+1))
	zw.Write(hdr[:])
	io.WriteString(zw, text)
	zw.Write([]byte{0})
	if err := zw.Close(); err != nil { // writes to a bytes.Buffer never fail
		return buf, fmt.Errorf("extended clipboard provide: %w", err)
	}
	buf = appendExtClipHeader(buf, typ, 4+z.Len())
	buf = binary.BigEndian.AppendUint32(buf, clipProvide|clipText)
	return append(buf, z.Bytes()...), nil
}
