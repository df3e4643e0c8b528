package rfb

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
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
//
// RelayViewer offers no private encoding (EncAssistScaled,
// EncAssistLossless, EncAssistLosslessFSE); a Relay does.
func RelayViewer(server io.Writer, viewer io.Reader) error {
	return (&Relay{}).FromViewer(server, viewer)
}

// relayPrivate are the private encodings a Relay from NewRelay offers and
// undoes.
var relayPrivate = []int32{EncAssistScaled, EncAssistLossless, EncAssistLosslessFSE}

// Relay is `assist join`'s relay between one local viewer and the
// novice's server, both ways: FromViewer is RelayViewer, which also offers
// the server the private encodings, and ToViewer copies the server's
// messages to the viewer, turning each scaled (scale.go) or lossless
// (lossless.go) rectangle into Raw.
// Run each in its own goroutine.
type Relay struct {
	private []int32 // the private encodings offered; none: a plain copy
	// passScaled: EncAssistScaled rectangles go to the viewer as they
	// are (PassingScaled).
	passScaled bool
	once       sync.Once
	ver        chan struct{} // closed once minor is set
	minor      int           // the viewer's protocol version; -1: none came
	// changed counts what ToViewer dropped or rewrote (for tests).
	changed int
	// rewritten counts the private rectangles ToViewer turned into Raw.
	rewritten atomic.Int64
	// passed counts the private rectangles ToViewer copied as they are.
	passed atomic.Int64
}

// Passed returns how many private rectangles ToViewer has copied to the
// viewer as they are (PassingScaled) so far. It may be called while the relay
// runs.
func (rl *Relay) Passed() int64 { return rl.passed.Load() }

// Rewritten returns how many private rectangles ToViewer has turned into
// Raw so far. It may be called while the relay runs.
func (rl *Relay) Rewritten() int64 { return rl.rewritten.Load() }

// NewRelay returns a Relay that offers and undoes EncAssistScaled and both
// lossless encodings (EncAssistLossless, EncAssistLosslessFSE: a server of
// an older version knows only the first).
func NewRelay() *Relay {
	return NewRelayOffering(relayPrivate...)
}

// NewRelayOffering returns a Relay that offers the server only the private
// encodings in encs (EncAssistScaled, EncAssistLossless,
// EncAssistLosslessFSE). Undoing a scaled
// rectangle decodes a JPEG and scales it up, which a relay on a busy
// thread (a page's, in WebAssembly) may not afford.
func NewRelayOffering(encs ...int32) *Relay {
	return &Relay{private: slices.Clone(encs), ver: make(chan struct{})}
}

// PassingScaled makes rl copy EncAssistScaled rectangles to the viewer
// as they are, after checking their lengths and the size their picture
// declares, instead of turning them into Raw: for a viewer that decodes
// them itself (the web pages' noVNC draws the picture scaled up on the
// GPU, web/session/scaled.js, where undoing it here would decode and
// scale on the relay's thread, in WebAssembly the page's own).
// EncAssistScaled must be among the encodings offered. PassingScaled
// returns rl, and is called before the relay runs.
func (rl *Relay) PassingScaled() *Relay {
	if !slices.Contains(rl.private, EncAssistScaled) {
		panic("rfb: Relay.PassingScaled on a relay that does not offer EncAssistScaled")
	}
	rl.passScaled = true
	return rl
}

// Run relays between viewer and server both ways, FromViewer and ToViewer
// each in a goroutine, until either ends; then it closes both and returns
// what ended each direction (nil for an ordinary end).
func (rl *Relay) Run(viewer, server io.ReadWriteCloser) (fromViewer, toViewer error) {
	closeBoth := func() {
		viewer.Close()
		server.Close()
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer closeBoth()
		fromViewer = rl.FromViewer(server, viewer)
	})
	wg.Go(func() {
		defer closeBoth()
		toViewer = rl.ToViewer(viewer, server)
	})
	wg.Wait()
	return fromViewer, toViewer
}

// setMinor records the viewer's protocol version, once.
func (rl *Relay) setMinor(minor int) {
	if rl.ver == nil {
		return
	}
	rl.once.Do(func() {
		rl.minor = minor
		close(rl.ver)
	})
}

// FromViewer relays the viewer's messages to the server (see
// RelayViewer). A Relay from NewRelay also adds the private encodings to
// each SetEncodings, and sends a SetEncodings of them alone before a first
// update request of a viewer that never set its encodings, so that the
// server announces the pixel format of every update (msgAssistPixelFormat).
func (rl *Relay) FromViewer(server io.Writer, viewer io.Reader) error {
	defer rl.setMinor(-1)
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
	rl.setMinor(minor)
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
			return relayEnd(err)
		}
	}
	encsSent := false
	for {
		m, err := readClientMessage(br)
		if err != nil {
			return relayEnd(err)
		}
		var repl []byte
		switch m.typ {
		case msgSetEncodings:
			encs := m.encodings
			// (A list of 65535 encodings has no room for one more.)
			if len(encs) < 0xffff && !slices.Contains(encs, EncContinuousUpdates) && !slices.Contains(encs, EncAssistPush) {
				encs = append(encs, EncAssistPush)
			}
			for _, e := range rl.private {
				if slices.Contains(encs, e) {
					continue
				}
				if len(encs) >= 0xffff {
					return fmt.Errorf("%w: SetEncodings: a list of %d encodings leaves no room for the relay's", errProtocol, len(encs))
				}
				encs = append(encs, e)
			}
			if len(encs) != len(m.encodings) {
				repl = appendSetEncodings(nil, encs)
			}
			encsSent = true
		case msgFramebufferUpdateRequest, msgEnableContinuousUpdates:
			if len(rl.private) > 0 && !encsSent {
				if _, err := server.Write(appendSetEncodings(nil, rl.private)); err != nil {
					return relayEnd(fmt.Errorf("rfb: relay to the server: %w", err))
				}
				encsSent = true
			}
		}
		if err := rec.forward(server, br, repl); err != nil {
			return relayEnd(err)
		}
	}
}

// appendSetEncodings appends a SetEncodings message of encs (at most
// 0xffff of them) to b.
func appendSetEncodings(b []byte, encs []int32) []byte {
	b = binary.BigEndian.AppendUint16(append(b, msgSetEncodings, 0), uint16(len(encs)))
	for _, e := range encs {
		b = binary.BigEndian.AppendUint32(b, uint32(e))
	}
	return b
}

// relayEnd maps either side's hanging up to nil: the session or the
// viewer has ended, which the other direction's relay sees as well.
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
