// Package recording records a session's display stream on the novice's
// machine, encrypted to an organisation's audit key, and plays it back as
// a VNC server.
//
// # What is recorded
//
// An internal viewer subscribes to the novice's shadow screen exactly as
// the expert's viewers do, through an rfb.Server on an in-memory pipe, with
// a fixed pixel format (rfb.NativeFormat) and lossless encodings (ZRLE,
// CopyRect, Raw; cursor and desktop size). Every byte that server sends is
// written with its time, so playback decodes the very updates with the
// very timing; no input is possible and the server's ClipboardOut is nil,
// so no clipboard text ever reaches a recording.
//
// # Format
//
// The file is an age file (filippo.io/age, X25519 recipients: the
// organisation's audit key). Inside: the line "assist-recording/1\n", a
// JSON header line, then frames of a 4-byte big-endian millisecond offset
// from the start, a 4-byte big-endian length (at most MaxFrame) and that
// many bytes of the server's stream. Without the identity nothing of it
// can be read, the server that stores it included.
package recording

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/shadow"
)

// Magic starts the plaintext of every recording.
const Magic = "assist-recording/1\n"

// MaxFrame bounds one frame's bytes.
const MaxFrame = 1 << 20

// Header is the recording's first line.
type Header struct {
	Started time.Time `json:"started"`
	// Session names the session in the novice's audit log.
	Session string `json:"session,omitempty"`
}

// config is how the recorder's viewer, and playback's decoder, set up
// their connection: both must agree.
var config = rfb.ClientConfig{
	Shared:      true,
	PixelFormat: &rfb.NativeFormat,
	Encodings:   []int32{rfb.EncZRLE, rfb.EncCopyRect, rfb.EncRaw, rfb.EncCursor, rfb.EncExtendedDesktopSize, rfb.EncDesktopSize},
}

// testUpdate, set by tests before Start, sees the recorder's viewer's
// picture after every update.
var testUpdate func(*screen.Image)

// Recorder records one session's display.
type Recorder struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	out    io.WriteCloser // the age stream
	bw     *bufio.Writer
	closed bool
}

// ParseRecipient reads an organisation's audit key: an age X25519
// recipient ("age1...").
func ParseRecipient(s string) (age.Recipient, error) {
	r, err := age.ParseX25519Recipient(s)
	if err != nil {
		return nil, fmt.Errorf("recording: the audit key %q is not an age public key (age1...): %w", s, err)
	}
	return r, nil
}

// Start records sh into w, encrypted to recipients, until Close. It
// does not close w.
func Start(sh *shadow.Screen, w io.Writer, hdr Header, log *slog.Logger, recipients ...age.Recipient) (*Recorder, error) {
	if log == nil {
		log = slog.Default()
	}
	if len(recipients) == 0 {
		return nil, errors.New("recording: no audit key to encrypt to")
	}
	enc, err := age.Encrypt(w, recipients...)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	r := &Recorder{out: enc, bw: bufio.NewWriterSize(enc, 64<<10)}
	if hdr.Started.IsZero() {
		hdr.Started = time.Now()
	}
	hb, _ := json.Marshal(hdr)
	r.bw.WriteString(Magic)
	r.bw.Write(append(hb, '\n'))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	srvConn, cliConn := net.Pipe()
	srv := &rfb.Server{Screen: sh, Name: "recording", Logger: log}
	r.wg.Go(func() {
		defer srvConn.Close()
		srv.ServeConn(ctx, srvConn)
	})
	start := time.Now()
	r.wg.Go(func() {
		defer cliConn.Close()
		tap := &tapConn{Conn: cliConn, rec: r, start: start}
		c, err := rfb.NewClient(tap, config)
		if err != nil {
			if ctx.Err() == nil {
				r.fail(fmt.Errorf("recording: %w", err))
			}
			return
		}
		full := true
		for {
			if err := c.RequestUpdate(!full, image.Rectangle{}); err != nil {
				return
			}
			full = false
			for {
				m, err := c.ReadMessage()
				if err != nil {
					if ctx.Err() == nil {
						r.fail(fmt.Errorf("recording: %w", err))
					}
					return
				}
				if m.Type == rfb.ServerFramebufferUpdate {
					if testUpdate != nil {
						testUpdate(c.Framebuffer())
					}
					break
				}
			}
		}
	})
	r.wg.Go(func() {
		<-ctx.Done()
		srvConn.Close()
		cliConn.Close()
	})
	return r, nil
}

func (r *Recorder) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
}

// write appends one frame.
func (r *Recorder) write(at time.Duration, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil || r.closed {
		return
	}
	var h [8]byte
	binary.BigEndian.PutUint32(h[:4], uint32(at/time.Millisecond))
	binary.BigEndian.PutUint32(h[4:], uint32(len(b)))
	r.bw.Write(h[:])
	if _, err := r.bw.Write(b); err != nil {
		r.err = fmt.Errorf("recording: writing: %w", err)
	}
}

// Close stops recording and finishes the encrypted file; it returns the
// first error the recording met.
func (r *Recorder) Close() error {
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.err
	}
	r.closed = true
	err := errors.Join(r.err, r.bw.Flush(), r.out.Close())
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("recording: %w", err)
	}
	return r.err
}

// tapConn records every byte the internal viewer reads.
type tapConn struct {
	net.Conn
	rec   *Recorder
	start time.Time
}

func (t *tapConn) Read(p []byte) (int, error) {
	if len(p) > MaxFrame {
		p = p[:MaxFrame]
	}
	n, err := t.Conn.Read(p)
	if n > 0 {
		t.rec.write(time.Since(t.start), p[:n])
	}
	return n, err
}
