package rfb

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// RelayViewer copies what a local viewer sends, from viewer to server (the
// novice's Server, across the wide link), message by message and as it is,
// with one change: a SetEncodings that names neither ContinuousUpdates nor
// EncAssistPush gets EncAssistPush appended. The novice's server then sends
// updates as soon as the capture has them and the path has room, instead of
// one per request, each request having crossed the link first. The viewer
// keeps its own rhythm on loopback: its requests still go through (a
// non-incremental one still asks for a full refresh) and it reads updates
// as they come, which every viewer tolerates since servers like x11vnc send
// them unasked. A viewer that enables ContinuousUpdates itself is left
// alone: the server paces it by the session stream and by fences.
//
// One caveat of pushing: a viewer that changes its pixel format in the
// middle of a session expects no update in flight when it does; with push
// one may be. The viewers tested here (TigerVNC, which uses continuous
// updates and fences, noVNC, gtk-vnc, vncsnapshot) set it once, first.
//
// The bytes before the first message (the viewer's ProtocolVersion,
// security choice and ClientInit, for the None security type the server
// offers) are copied as they are. It returns nil when the viewer closes,
// and the error otherwise; a message it cannot parse ends the relay, as
// the server would end the connection.
func RelayViewer(server io.Writer, viewer io.Reader) error {
	rec := &recorder{r: viewer}
	br := bufio.NewReaderSize(rec, 16<<10)
	var v [12]byte
	if _, err := io.ReadFull(br, v[:]); err != nil {
		return relayEnd(err)
	}
	minor, err := parseVersion(v[:])
	if err != nil {
		return err
	}
	// Then the security choice (3.7 and later) and ClientInit's shared
	// flag, each forwarded at once: the server answers each.
	pre := 1
	if minor >= 7 {
		pre = 2
	}
	for i := 0; i <= pre; i++ {
		if i > 0 {
			if _, err := br.ReadByte(); err != nil {
				return relayEnd(err)
			}
		}
		if err := rec.forward(server, br, nil); err != nil {
			return err
		}
	}
	for {
		m, err := readClientMessage(br)
		if err != nil {
			return relayEnd(err)
		}
		var repl []byte
		// (A list of 65535 encodings has no room for one more.)
		if m.typ == msgSetEncodings && len(m.encodings) < 0xffff &&
			!slices.Contains(m.encodings, EncContinuousUpdates) && !slices.Contains(m.encodings, EncAssistPush) {
			encs := append(m.encodings, EncAssistPush)
			repl = binary.BigEndian.AppendUint16([]byte{msgSetEncodings, 0}, uint16(len(encs)))
			for _, e := range encs {
				repl = binary.BigEndian.AppendUint32(repl, uint32(e))
			}
		}
		if err := rec.forward(server, br, repl); err != nil {
			return err
		}
	}
}

// relayEnd maps the viewer's hanging up to nil.
func relayEnd(err error) error {
	if isClosedConn(err) {
		return nil
	}
	return err
}

// recorder keeps what a bufio.Reader read from r, so that the bytes of
// each message it parsed can be forwarded exactly.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (rec *recorder) Read(p []byte) (int, error) {
	n, err := rec.r.Read(p)
	rec.buf = append(rec.buf, p[:n]...)
	return n, err
}

// forward writes to w the bytes br has consumed since the last forward, or
// repl in their place when it is not nil, and forgets them.
func (rec *recorder) forward(w io.Writer, br *bufio.Reader, repl []byte) error {
	n := len(rec.buf) - br.Buffered()
	out := rec.buf[:n]
	if repl != nil {
		out = repl
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("rfb: relay to the server: %w", err)
	}
	rec.buf = rec.buf[:copy(rec.buf, rec.buf[n:])]
	return nil
}
