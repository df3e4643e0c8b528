package rfb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/assist-project/assist/shadow"
)

// The fuzzers in this file drive both ends of the RFB handshake with
// arbitrary bytes as the peer's stream, and compare what the real code did
// with a small model of RFC 6143 §7.1-7.3 written out here independently:
// the same input must be accepted or refused, the same bytes written back,
// and an accepted handshake must yield exactly what the peer sent. The
// model is deliberately naive (plain slices, no bufio) so that a shared
// mistake is unlikely.

// handshakeModel walks an input stream the way the model reads it.
type handshakeModel struct {
	in  []byte
	out []byte // what the real code is expected to have written
}

// take returns the next n bytes, or false when the stream ends first.
func (m *handshakeModel) take(n int) ([]byte, bool) {
	if n < 0 || len(m.in) < n {
		m.in = nil
		return nil, false
	}
	b := m.in[:n]
	m.in = m.in[n:]
	return b, true
}

// versionDigits parses "RFB xxx.yyy\n" with three decimal digits each, as
// RFC 6143 §7.1.1 writes it.
func versionDigits(b []byte) (major, minor int, ok bool) {
	if len(b) != 12 || string(b[:4]) != "RFB " || b[7] != '.' || b[11] != '\n' {
		return 0, 0, false
	}
	for _, i := range []int{4, 5, 6, 8, 9, 10} {
		if b[i] < '0' || b[i] > '9' {
			return 0, 0, false
		}
	}
	d := func(s []byte) int { return int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0') }
	return d(b[4:7]), d(b[8:11]), true
}

// serverOutcome is how the model expects the server's handshake to end.
type serverOutcome int

const (
	serverAccepts   serverOutcome = iota
	serverTruncated               // the viewer's stream ended early
	serverRefuses                 // the viewer broke the protocol
)

// modelServer returns what our server must write for a viewer that sends
// in, and how the handshake ends. It writes the failure reason of a
// refused security type as a placeholder: its length and text are checked
// structurally, not against the model.
func modelServer(in []byte, size image.Point, name string) (out []byte, outcome serverOutcome, refusedType bool) {
	m := &handshakeModel{in: in}
	m.out = append(m.out, "RFB 003.008\n"...)
	v, ok := m.take(12)
	if !ok {
		return m.out, serverTruncated, false
	}
	major, minor, ok := versionDigits(v)
	if !ok || major != 3 {
		return m.out, serverRefuses, false
	}
	if minor < 7 {
		m.out = append(m.out, 0, 0, 0, secNone)
	} else {
		m.out = append(m.out, 1, secNone)
		t, ok := m.take(1)
		if !ok {
			return m.out, serverTruncated, false
		}
		if t[0] != secNone {
			return m.out, serverRefuses, minor >= 8
		}
		if minor >= 8 {
			m.out = append(m.out, 0, 0, 0, 0)
		}
	}
	if _, ok := m.take(1); !ok { // ClientInit
		return m.out, serverTruncated, false
	}
	m.out = binary.BigEndian.AppendUint16(m.out, uint16(size.X))
	m.out = binary.BigEndian.AppendUint16(m.out, uint16(size.Y))
	m.out = append(m.out, pfBytes(NativeFormat)...)
	m.out = binary.BigEndian.AppendUint32(m.out, uint32(len(name)))
	m.out = append(m.out, name...)
	return m.out, serverAccepts, false
}

// FuzzServerHandshake feeds arbitrary viewer bytes (ProtocolVersion, the
// security type chosen, ClientInit, and whatever follows) to the server's
// side of the handshake over an in-memory conn whose stream simply ends,
// so no input can make it wait. The handshake must never panic, must
// write exactly what the model writes, must accept exactly what the model
// accepts, and must tell a viewer that broke the protocol (errProtocol)
// from one that went away (EOF).
func FuzzServerHandshake(f *testing.F) {
	for _, s := range [][]byte{
		[]byte("RFB 003.008\n\x01\x01"),
		[]byte("RFB 003.008\n\x01\x00"),
		[]byte("RFB 003.007\n\x01\x01"),
		[]byte("RFB 003.003\n\x01"),
		[]byte("RFB 003.005\n\x00"),
		[]byte("RFB 003.889\n\x01\x01"),
		[]byte("RFB 003.008\n\x02\x01"),
		[]byte("RFB 003.007\n\x00"),
		[]byte("RFB 004.001\n\x01\x01"),
		[]byte("RFB 003.008"),
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		// A whole first message after ClientInit: the handshake must
		// leave it unread.
		append([]byte("RFB 003.008\n\x01\x01"), msgSetEncodings, 0, 0, 1, 0, 0, 0, 0),
	} {
		f.Add(s)
	}
	size := image.Pt(16, 8)
	const name = "fuzz desktop"
	sh := shadow.New(newMemDesktop(size.X, size.Y), shadow.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		srv := &Server{Screen: sh, Name: name, Logger: log}
		nc := &byteConn{r: bytes.NewReader(in)}
		c := newConn(srv, nc, log)
		err := c.handshake()
		wantOut, outcome, refusedType := modelServer(in, size, name)
		got := nc.w.Bytes()
		switch outcome {
		case serverAccepts:
			if err != nil {
				t.Fatalf("handshake refused %q: %v", in, err)
			}
			if c.size != size {
				t.Errorf("conn's framebuffer size %v, want %v", c.size, size)
			}
		case serverTruncated:
			if err == nil || errors.Is(err, errProtocol) || !isClosedConn(err) {
				t.Fatalf("handshake of truncated %q: %v, want an end-of-stream error", in, err)
			}
		case serverRefuses:
			if !errors.Is(err, errProtocol) {
				t.Fatalf("handshake of %q: %v, want a protocol violation", in, err)
			}
		}
		if refusedType {
			// RFC 6143 §7.1.3: a 3.8 server says why, as a failed
			// SecurityResult and a reason string, and nothing else.
			rest, ok := bytes.CutPrefix(got, wantOut)
			if !ok || len(rest) < 8 || binary.BigEndian.Uint32(rest) != 1 ||
				int(binary.BigEndian.Uint32(rest[4:])) != len(rest)-8 || len(rest) == 8 {
				t.Fatalf("server wrote %q after refusing a security type, want %q, a failed result and a reason", got, wantOut)
			}
			return
		}
		if !bytes.Equal(got, wantOut) {
			t.Fatalf("viewer sent %q; server wrote\n%q, want\n%q", in, got, wantOut)
		}
	})
}

// clientOutcome is what the model expects of the client's handshake.
type clientOutcome struct {
	ok    bool
	out   []byte // what the client writes
	name  string
	size  image.Point
	limit bool // refused for a length or size over the client's bounds
}

// modelClient returns what our client must do for a server that sends in.
func modelClient(in []byte, cfg ClientConfig, maxPixels int) clientOutcome {
	m := &handshakeModel{in: in}
	var r clientOutcome
	// str reads a u32 length and that many bytes, over the bound or not.
	str := func() (string, bool) {
		n, ok := m.take(4)
		if !ok {
			return "", false
		}
		l := binary.BigEndian.Uint32(n)
		if l > clientMaxName {
			r.limit = true
			return "", false
		}
		s, ok := m.take(int(l))
		return string(s), ok
	}
	v, ok := m.take(12)
	if !ok {
		return r
	}
	major, minor, ok := versionDigits(v)
	if !ok || major < 3 {
		return r
	}
	ours := 3
	switch {
	case major > 3 || minor >= 8:
		ours = 8
	case minor == 7:
		ours = 7
	}
	r.out = fmt.Appendf(r.out, "RFB 003.%03d\n", ours)
	if ours == 3 {
		t, ok := m.take(4)
		if !ok {
			return r
		}
		switch binary.BigEndian.Uint32(t) {
		case secNone:
		case secInvalid:
			str() // the reason: an error either way
			return r
		default:
			return r
		}
	} else {
		n, ok := m.take(1)
		if !ok {
			return r
		}
		if n[0] == 0 {
			str()
			return r
		}
		types, ok := m.take(int(n[0]))
		if !ok || !bytes.Contains(types, []byte{secNone}) {
			return r
		}
		r.out = append(r.out, secNone)
		if ours == 8 {
			res, ok := m.take(4)
			if !ok {
				return r
			}
			if binary.BigEndian.Uint32(res) != 0 {
				str()
				return r
			}
		}
	}
	r.out = append(r.out, boolByte(cfg.Shared))
	init, ok := m.take(20)
	if !ok {
		return r
	}
	name, ok := str()
	if !ok {
		return r
	}
	w, h := int(binary.BigEndian.Uint16(init)), int(binary.BigEndian.Uint16(init[2:]))
	if w*h > maxPixels {
		r.limit = true
		return r
	}
	if cfg.PixelFormat == nil {
		if unmarshalPixelFormat(init[4:]).Validate() != nil {
			return r
		}
	} else {
		r.out = append(r.out, msgSetPixelFormat, 0, 0, 0)
		r.out = append(r.out, pfBytes(*cfg.PixelFormat)...)
	}
	r.ok, r.name, r.size = true, name, image.Pt(w, h)
	return r
}

// FuzzClientHandshake feeds arbitrary server bytes (ProtocolVersion, the
// security types or the 3.3 security word, SecurityResult and failure
// reasons, ServerInit with its pixel format and name) to the client's
// side of the handshake. The first byte picks the client's configuration.
// The client must never panic, must accept exactly what the model
// accepts, refuse lengths over its bounds before reading them, write
// exactly what the model writes, and report the name and size sent.
func FuzzClientHandshake(f *testing.F) {
	const maxPixels = 1 << 16
	pf := pfBytes(NativeFormat)
	for _, s := range [][]byte{
		cat([]byte{0}, handshake38(16, 8, "desk")),
		cat([]byte{1}, handshake38(0, 0, "")),
		cat([]byte{2}, []byte("RFB 003.007\n"), []byte{2, 2, 1}, serverInit(4, 4, NativeFormat, "seven")),
		cat([]byte{0}, []byte("RFB 003.003\n"), u32(1), serverInit(4, 4, rgb565, "three")),
		cat([]byte{0}, []byte("RFB 003.003\n"), u32(0), wireString("go away")),
		cat([]byte{0}, []byte("RFB 003.003\n"), u32(2), make([]byte, 16)),
		cat([]byte{0}, []byte("RFB 003.889\n"), []byte{3, 30, 2, 1}, u32(0), serverInit(2, 2, NativeFormat, "apple")),
		cat([]byte{0}, []byte("RFB 003.008\n"), []byte{0}, wireString("too many connections")),
		cat([]byte{0}, []byte("RFB 003.008\n"), []byte{1, 2}),
		cat([]byte{0}, []byte("RFB 003.008\n"), []byte{1, 1}, u32(1), wireString("no")),
		cat([]byte{0}, []byte("RFB 003.008\n"), []byte{1, 1}, u32(0), u16(4), u16(4), pf, u32(clientMaxName+1)),
		cat([]byte{0}, []byte("RFB 003.008\n"), []byte{1, 1}, u32(0), u16(4), u16(4), pf, u32(0xffffffff)),
		cat([]byte{0}, []byte("RFB 003.008\n"), []byte{1, 1}, u32(1), u32(0xffffffff)),
		cat([]byte{0}, handshake38(0xffff, 0xffff, "huge")),
		cat([]byte{0}, []byte("RFB 003.008\n"), []byte{1, 1}, u32(0), serverInit(4, 4, PixelFormat{BPP: 8, Depth: 8}, "colour map")),
		cat([]byte{0}, []byte("RFB 002.002\n")),
		cat([]byte{0}, []byte("RFB 003.0x8\n")),
		cat([]byte{0}, handshake38(4, 4, "trailing"), []byte{msgBell}),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		cfg := ClientConfig{Shared: data[0]&1 != 0}
		if data[0]&2 != 0 {
			cfg.PixelFormat = &rgb565
		}
		in := data[1:]
		nc := &byteConn{r: bytes.NewReader(in)}
		c, err := newClient(nc, cfg, maxPixels)
		want := modelClient(in, cfg, maxPixels)
		if !bytes.Equal(nc.w.Bytes(), want.out) {
			t.Fatalf("server sent %q; client wrote\n%q, want\n%q (err %v)", in, nc.w.Bytes(), want.out, err)
		}
		if !want.ok {
			if err == nil {
				t.Fatalf("client accepted %q", in)
			}
			if want.limit && !bytes.Contains([]byte(err.Error()), []byte("over the limit")) {
				t.Fatalf("client refused %q with %v, want a refusal for a length over the limit", in, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("client refused %q: %v", in, err)
		}
		if c.Name() != want.name || c.Size() != want.size {
			t.Fatalf("client has name %q and size %v, want %q and %v", c.Name(), c.Size(), want.name, want.size)
		}
		if fb := c.Framebuffer(); fb.Rect.Size() != want.size || len(fb.Pix) != 4*want.size.X*want.size.Y {
			t.Fatalf("framebuffer %v with %d bytes, want %v", fb.Rect, len(fb.Pix), want.size)
		}
	})
}

// TestClientHandshakeHugeLengths: a length field over the client's bound
// (the desktop name, a failure reason) is refused before anything of that
// size is allocated, so a hostile server cannot make a viewer allocate
// gigabytes with four bytes.
func TestClientHandshakeHugeLengths(t *testing.T) {
	pf := pfBytes(NativeFormat)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"name 4 GiB", cat([]byte("RFB 003.008\n"), []byte{1, 1}, u32(0), u16(4), u16(4), pf, u32(0xffffffff))},
		{"name one over", cat([]byte("RFB 003.008\n"), []byte{1, 1}, u32(0), u16(4), u16(4), pf, u32(clientMaxName+1))},
		{"failure reason 4 GiB", cat([]byte("RFB 003.008\n"), []byte{1, 1}, u32(1), u32(0xffffffff))},
		{"3.3 refusal 4 GiB", cat([]byte("RFB 003.003\n"), u32(0), u32(0xffffffff))},
		{"no security types, 4 GiB reason", cat([]byte("RFB 003.008\n"), []byte{0}, u32(0xffffffff))},
		{"framebuffer 65535x65535", handshake38(0xffff, 0xffff, "huge")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := NewClient(&byteConn{r: bytes.NewReader(tc.in)}, ClientConfig{})
			runtime.ReadMemStats(&after)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte("over the limit")) {
				t.Errorf("NewClient: %v, want a refusal for a length over the limit", err)
			}
			// The client's read buffer (64 KiB) and the error are all it
			// needs; a megabyte of slack keeps the test robust.
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("NewClient allocated %d bytes to refuse it", n)
			}
		})
	}
}

// TestServerHandshakeTimeout: over a synchronous pipe, a viewer that
// stops in the middle of the handshake, reading or writing, is dropped
// after HandshakeTimeout; ServeConn returns and closes the connection.
func TestServerHandshakeTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		peer func(net.Conn) // what the viewer does before it stalls
	}{
		{"never reads", func(net.Conn) {}},
		{"never writes", func(c net.Conn) { io.ReadFull(c, make([]byte, 12)) }},
		{"half a version", func(c net.Conn) {
			io.ReadFull(c, make([]byte, 12))
			c.Write([]byte("RFB 003"))
		}},
		{"no security choice", func(c net.Conn) {
			io.ReadFull(c, make([]byte, 12))
			c.Write([]byte("RFB 003.008\n"))
			io.ReadFull(c, make([]byte, 2))
		}},
		{"no ClientInit", func(c net.Conn) {
			io.ReadFull(c, make([]byte, 12))
			c.Write([]byte("RFB 003.008\n"))
			io.ReadFull(c, make([]byte, 2))
			c.Write([]byte{secNone})
			io.ReadFull(c, make([]byte, 4))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			viewer, server := net.Pipe()
			defer viewer.Close()
			// Bound the viewer's side in case the server never gives up.
			viewer.SetDeadline(time.Now().Add(20 * time.Second))
			srv := &Server{
				Screen:           shadow.New(newMemDesktop(16, 8), shadow.Options{}),
				Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
				HandshakeTimeout: 100 * time.Millisecond,
			}
			done := make(chan error, 1)
			go func() { done <- srv.ServeConn(t.Context(), server) }()
			tc.peer(viewer)
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				server.Close()
				<-done
				t.Fatal("ServeConn still runs 20 s after a 100 ms handshake deadline")
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("ServeConn: %v, want the handshake deadline", err)
			}
			// The server closed its end: the viewer's next read ends.
			if _, err := io.ReadAll(viewer); err != nil {
				t.Errorf("viewer's read after the server gave up: %v, want EOF", err)
			}
			if n := srv.Viewers(); n != 0 {
				t.Errorf("%d viewers after the handshake failed", n)
			}
		})
	}
}
