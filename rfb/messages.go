package rfb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
)

// Limits on what a viewer may send. They bound what one message can make
// the server allocate.
const (
	maxCutText   = 16 << 20 // bytes of ClientCutText
	maxFenceData = 64       // RFC: fence payloads are at most 64 bytes
	maxScreens   = 16       // SetDesktopSize screens
)

// errProtocol marks a viewer that broke the protocol; the server logs the
// reason and hangs up.
var errProtocol = errors.New("protocol violation")

// clientMessage is one parsed client-to-server message. Only the fields
// of its type are set.
type clientMessage struct {
	typ         uint8
	pf          PixelFormat     // SetPixelFormat
	encodings   []int32         // SetEncodings
	incremental bool            // FramebufferUpdateRequest
	area        image.Rectangle // FramebufferUpdateRequest, EnableContinuousUpdates
	keysym      uint32          // KeyEvent
	down        bool            // KeyEvent
	buttons     uint8           // PointerEvent
	x, y        int             // PointerEvent
	text        string          // ClientCutText (Latin-1 decoded to UTF-8)
	ext         *extClip        // ClientCutText with a negative length: Extended Clipboard
	enable      bool            // EnableContinuousUpdates
	fenceFlags  uint32          // ClientFence
	fenceData   []byte          // ClientFence
	size        image.Point     // SetDesktopSize
}

// readClientMessage reads one client-to-server message. Errors wrap
// errProtocol when the bytes are not a valid message, and carry the I/O
// error otherwise.
func readClientMessage(r *bufio.Reader) (clientMessage, error) {
	var m clientMessage
	t, err := r.ReadByte()
	if err != nil {
		return m, fmt.Errorf("rfb: read message type: %w", err)
	}
	m.typ = t
	var b [20]byte
	switch t {
	case msgSetPixelFormat:
		if err := readFull(r, b[:19], "SetPixelFormat"); err != nil {
			return m, err
		}
		m.pf = unmarshalPixelFormat(b[3:19])
		if err := m.pf.Validate(); err != nil {
			return m, fmt.Errorf("%w: SetPixelFormat: %w", errProtocol, err)
		}
	case msgSetEncodings:
		if err := readFull(r, b[:3], "SetEncodings"); err != nil {
			return m, err
		}
		n := int(binary.BigEndian.Uint16(b[1:3]))
		m.encodings = make([]int32, n)
		for i := range m.encodings {
			if err := readFull(r, b[:4], "SetEncodings list"); err != nil {
				return m, err
			}
			m.encodings[i] = int32(binary.BigEndian.Uint32(b[:4]))
		}
	case msgFramebufferUpdateRequest:
		if err := readFull(r, b[:9], "FramebufferUpdateRequest"); err != nil {
			return m, err
		}
		m.incremental = b[0] != 0
		m.area = readRect(b[1:9])
	case msgKeyEvent:
		if err := readFull(r, b[:7], "KeyEvent"); err != nil {
			return m, err
		}
		m.down = b[0] != 0
		m.keysym = binary.BigEndian.Uint32(b[3:7])
	case msgPointerEvent:
		if err := readFull(r, b[:5], "PointerEvent"); err != nil {
			return m, err
		}
		m.buttons = b[0]
		m.x = int(binary.BigEndian.Uint16(b[1:3]))
		m.y = int(binary.BigEndian.Uint16(b[3:5]))
	case msgClientCutText:
		if err := readFull(r, b[:7], "ClientCutText"); err != nil {
			return m, err
		}
		n := int32(binary.BigEndian.Uint32(b[3:7]))
		if n < 0 {
			// Extended Clipboard. Whether the viewer may send it is the
			// connection's business; the size is bounded here.
			if n < -maxExtClip {
				return m, fmt.Errorf("%w: ClientCutText: extended clipboard message of %d bytes is over the limit of %d", errProtocol, -int64(n), maxExtClip)
			}
			body := make([]byte, -n)
			if err := readFull(r, body, "ClientCutText extended clipboard"); err != nil {
				return m, err
			}
			ext, err := parseExtClip(body)
			if err != nil {
				return m, fmt.Errorf("%w: ClientCutText: %w", errProtocol, err)
			}
			m.ext = &ext
			return m, nil
		}
		if n > maxCutText {
			return m, fmt.Errorf("%w: ClientCutText: %d bytes is more than the %d this server accepts", errProtocol, n, maxCutText)
		}
		text := make([]byte, n)
		if err := readFull(r, text, "ClientCutText text"); err != nil {
			return m, err
		}
		m.text = latin1ToString(text)
	case msgEnableContinuousUpdates:
		if err := readFull(r, b[:9], "EnableContinuousUpdates"); err != nil {
			return m, err
		}
		m.enable = b[0] != 0
		m.area = readRect(b[1:9])
	case msgClientFence:
		if err := readFull(r, b[:8], "ClientFence"); err != nil {
			return m, err
		}
		m.fenceFlags = binary.BigEndian.Uint32(b[3:7])
		n := int(b[7])
		if n > maxFenceData {
			return m, fmt.Errorf("%w: ClientFence: payload of %d bytes is over the limit of %d", errProtocol, n, maxFenceData)
		}
		m.fenceData = make([]byte, n)
		if err := readFull(r, m.fenceData, "ClientFence payload"); err != nil {
			return m, err
		}
	case msgSetDesktopSize:
		if err := readFull(r, b[:7], "SetDesktopSize"); err != nil {
			return m, err
		}
		m.size = image.Pt(int(binary.BigEndian.Uint16(b[1:3])), int(binary.BigEndian.Uint16(b[3:5])))
		n := int(b[5])
		if n > maxScreens {
			return m, fmt.Errorf("%w: SetDesktopSize: %d screens is over the limit of %d", errProtocol, n, maxScreens)
		}
		for range n {
			if err := readFull(r, b[:16], "SetDesktopSize screen"); err != nil {
				return m, err
			}
		}
	default:
		return m, fmt.Errorf("%w: unknown message type %d", errProtocol, t)
	}
	return m, nil
}

// parseVersion returns the minor version of a ProtocolVersion message,
// mapped to the version the server speaks with that viewer (RFC 6143
// §7.1.1: unknown versions are treated as 3.3).
func parseVersion(v []byte) (int, error) {
	if len(v) != 12 || string(v[:4]) != "RFB " || v[7] != '.' || v[11] != '\n' {
		return 0, fmt.Errorf("%w: not an RFB viewer (version %q)", errProtocol, v)
	}
	// Digits only, as RFC 6143 writes it: strconv.Atoi also took "+08"
	// and "-01" (regression seeds in testdata/fuzz/FuzzServerHandshake).
	major, minor, ok := parseServerVersion(v)
	if !ok || major != 3 {
		return 0, fmt.Errorf("%w: unsupported protocol version %q", errProtocol, v[:11])
	}
	switch {
	case minor >= 8: // 3.8 and later, including Apple's 3.889
		return 8, nil
	case minor == 7:
		return 7, nil
	default:
		return 3, nil
	}
}

func readRect(b []byte) image.Rectangle {
	x := int(binary.BigEndian.Uint16(b[0:2]))
	y := int(binary.BigEndian.Uint16(b[2:4]))
	w := int(binary.BigEndian.Uint16(b[4:6]))
	h := int(binary.BigEndian.Uint16(b[6:8]))
	return image.Rect(x, y, x+w, y+h)
}

// latin1ToString decodes ISO 8859-1, the charset of RFB cut text.
func latin1ToString(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// stringToLatin1 encodes s as ISO 8859-1, replacing what it cannot hold
// with '?'.
func stringToLatin1(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return b
}
