package session

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/screen/screentest"
	"github.com/assist-project/assist/shadow"
	"golang.org/x/net/nettest"
)

// pipePair returns two muxes over net.Pipe.
func pipePair(t *testing.T, opts MuxOptions) (*Mux, *Mux) {
	a, b := net.Pipe()
	return muxPair(t, a, b, opts)
}

// tcpPair returns two muxes over a real loopback TCP connection.
func tcpPair(t *testing.T, opts MuxOptions) (*Mux, *Mux) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type res struct {
		c   net.Conn
		err error
	}
	acc := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		acc <- res{c, err}
	}()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-acc
	if r.err != nil {
		a.Close()
		t.Fatal(r.err)
	}
	return muxPair(t, a, r.c, opts)
}

// muxPair returns two muxes over a and b; with opts.Opener the first
// opens streams and the second accepts them.
func muxPair(t *testing.T, a, b net.Conn, opts MuxOptions) (*Mux, *Mux) {
	acceptor := opts
	acceptor.Opener = false
	ma, mb := NewMux(a, opts), NewMux(b, acceptor)
	t.Cleanup(func() {
		ma.Close()
		mb.Close()
	})
	return ma, mb
}

var transports = []struct {
	name string
	pair func(*testing.T, MuxOptions) (*Mux, *Mux)
}{{"pipe", pipePair}, {"tcp", tcpPair}}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

func TestMuxRoundTrip(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			a, b := tr.pair(t, MuxOptions{})
			data := pattern(3<<20 + 123) // a few full-screen RFB updates
			errc := make(chan error, 2)
			go func() {
				_, err := a.Channel(ChannelDisplay).Write(data)
				errc <- err
			}()
			go func() {
				// the other direction at the same time: RFB input
				for i := range 1000 {
					if _, err := b.Channel(ChannelDisplay).Write([]byte{4, 1, 0, 0, 0, 0, 0, byte(i)}); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			got := make([]byte, len(data))
			if _, err := io.ReadFull(b.Channel(ChannelDisplay), got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("display data corrupted")
			}
			back := make([]byte, 8000)
			if _, err := io.ReadFull(a.Channel(ChannelDisplay), back); err != nil {
				t.Fatal(err)
			}
			for i := range 1000 {
				if back[8*i+7] != byte(i) {
					t.Fatalf("input event %d corrupted", i)
				}
			}
			for range 2 {
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
			}
			if a.Channel(ChannelDisplay).LocalAddr().String() == "" {
				t.Fatal("no local address")
			}
		})
	}
}

func TestMuxMessagesKeepBoundaries(t *testing.T) {
	a, b := pipePair(t, MuxOptions{})
	msgs := [][]byte{[]byte("first"), []byte("second message"), bytes.Repeat([]byte{'x'}, MaxMessage)}
	errc := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := a.Channel(ChannelChat).WriteMessage(m); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	defer func() {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}()
	ch := b.Channel(ChannelChat)
	small := make([]byte, 3)
	n, err := ch.Read(small)
	if err != nil || string(small[:n]) != "fir" {
		t.Fatalf("read %q, %v", small[:n], err)
	}
	n, err = ch.Read(make([]byte, 100))
	if err != nil || n != 2 {
		t.Fatalf("read crossed a message boundary: %d, %v", n, err)
	}
	for _, want := range msgs[1:] {
		got, err := ch.ReadMessage()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("message %q, %v", got, err)
		}
	}
	if err := a.Channel(ChannelChat).WriteMessage(make([]byte, MaxMessage+1)); err == nil {
		t.Fatal("oversized message accepted")
	}
	if _, err := a.Channel(ChannelDisplay).ReadMessage(); err == nil {
		t.Fatal("ReadMessage on the display stream accepted")
	}
}

// TestMuxControlPassesStalledDisplay: the expert's viewer stops reading
// the display; control messages must still arrive (with a blocking
// demultiplexer they would queue behind the display forever).
func TestMuxControlPassesStalledDisplay(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			a, b := tr.pair(t, MuxOptions{})
			data := pattern(8 << 20)
			done := make(chan error, 1)
			go func() {
				_, err := a.Channel(ChannelDisplay).Write(data)
				done <- err
			}()
			for i := range 50 {
				if err := SendMessage(a.Channel(ChannelControl), Chat{Text: "still here"}); err != nil {
					t.Fatal(err)
				}
				if _, err := ReceiveMessage(b.Channel(ChannelControl)); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			select {
			case err := <-done:
				t.Fatalf("8 MiB display write finished (%v) while nobody read it", err)
			default:
			}
			got := make([]byte, len(data))
			if _, err := io.ReadFull(b.Channel(ChannelDisplay), got); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("display after stall: %v", err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// rawPeer reads frames a Mux sends, in wire order, granting display
// credit as it goes, and reports each frame.
type rawFrame struct {
	id      byte
	payload []byte
}

func rawPeer(t *testing.T, c net.Conn, frames chan<- rawFrame) {
	var hdr [frameHeader]byte
	var buf []byte
	granted := 0
	for {
		id, p, err := readFrame(c, &hdr, buf, MaxFrameLimit)
		if err != nil {
			close(frames)
			return
		}
		buf = p
		if id == ChannelDisplay {
			granted += len(p)
			if granted >= 32<<10 {
				var f []byte
				f = appendMuxFrame(f, muxWindow, ChannelDisplay, uint32(granted))
				if _, err := c.Write(f); err != nil {
					close(frames)
					return
				}
				granted = 0
			}
		}
		frames <- rawFrame{id, append([]byte(nil), p...)}
	}
}

// TestMuxControlPriority proves priority by order, not time: a control
// message queued while the display streams is on the wire after at most
// one more display chunk.
func TestMuxControlPriority(t *testing.T) {
	type mark struct{ before uint64 }
	marks := make(chan mark, 100)
	testHookEnqueue = func(ch *Channel) {
		if ch.id == ChannelControl {
			marks <- mark{ch.m.chans[ChannelDisplay].sent} // exact: the mux is locked
		}
	}
	defer func() { testHookEnqueue = nil }()

	a, b := net.Pipe()
	m := NewMux(a, MuxOptions{})
	defer m.Close()
	frames := make(chan rawFrame, 1024)
	go rawPeer(t, b, frames)
	defer b.Close()

	const total = 32 << 20
	go m.Channel(ChannelDisplay).Write(make([]byte, total))
	go func() {
		for i := 0; i < 20; i++ {
			// wait for the display to be well under way; no clock involved
			for m.displaySent() < uint64(i+1)<<20 {
				runtime.Gosched()
			}
			if err := m.Channel(ChannelControl).WriteMessage([]byte(`{"type":"end","reason":"x"}`)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var display uint64
	seen := 0
	for f := range frames {
		switch f.id {
		case ChannelDisplay:
			display += uint64(len(f.payload))
			if display == total && seen == 20 {
				return
			}
		case ChannelControl:
			mk := <-marks
			if display > mk.before {
				t.Fatalf("control message %d queued after %d display bytes arrived after %d", seen, mk.before, display)
			}
			if display >= total {
				t.Fatalf("control message %d waited for the whole display", seen)
			}
			seen++
			if display == total && seen == 20 {
				return
			}
		}
	}
	t.Fatalf("connection ended after %d display bytes, %d messages", display, seen)
}

// displaySent is how many display bytes the writer has framed.
func (m *Mux) displaySent() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.chans[ChannelDisplay].sent
}

func TestMuxCloseSemantics(t *testing.T) {
	t.Run("mux close fails blocked calls", func(t *testing.T) {
		a, _ := pipePair(t, MuxOptions{})
		errs := make(chan error, 2)
		go func() {
			_, err := a.Channel(ChannelControl).Read(make([]byte, 10))
			errs <- err
		}()
		go func() {
			_, err := a.Channel(ChannelDisplay).Write(make([]byte, 1<<20)) // more than the credit
			errs <- err
		}()
		for a.displaySent() < initialWindow {
			runtime.Gosched()
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errs; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("blocked call returned %v, want net.ErrClosed", err)
			}
		}
		<-a.Done()
		if !errors.Is(a.Err(), net.ErrClosed) {
			t.Fatalf("Err = %v", a.Err())
		}
	})
	t.Run("peer close gives EOF after the data", func(t *testing.T) {
		for _, tr := range transports {
			a, b := tr.pair(t, MuxOptions{})
			// A round trip first, so that a has read everything b sent: TCP
			// turns a close with unread data into a reset.
			go b.Channel(ChannelChat).Write([]byte("hi"))
			if _, err := a.Channel(ChannelChat).ReadMessage(); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Channel(ChannelDisplay).Write([]byte("last words")); err != nil {
				t.Fatal(err)
			}
			// Write returned: the bytes are on the connection, so closing
			// now loses nothing.
			a.Close()
			<-b.Done()
			got, err := io.ReadAll(b.Channel(ChannelDisplay))
			if err != nil || string(got) != "last words" {
				t.Fatalf("%s: read %q, %v", tr.name, got, err)
			}
			if _, err := b.Channel(ChannelControl).Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("%s: read after peer close: %v", tr.name, err)
			}
			if _, err := b.Channel(ChannelControl).Write([]byte("x")); err == nil {
				t.Fatalf("%s: write after peer close succeeded", tr.name)
			}
		}
	})
	t.Run("channel close", func(t *testing.T) {
		a, b := pipePair(t, MuxOptions{})
		if _, err := a.Channel(ChannelChat).Write([]byte("bye")); err != nil {
			t.Fatal(err)
		}
		if err := a.Channel(ChannelChat).Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.Channel(ChannelChat).Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second close: %v", err)
		}
		got, err := io.ReadAll(b.Channel(ChannelChat))
		if err != nil || string(got) != "bye" {
			t.Fatalf("read %q, %v", got, err)
		}
		for {
			_, err := b.Channel(ChannelChat).Write([]byte("hello?"))
			if errors.Is(err, ErrPeerClosed) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Channel(ChannelChat).Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on closed channel: %v", err)
		}
		// The other channels carry on.
		if err := SendMessage(b.Channel(ChannelControl), End{Reason: "done"}); err != nil {
			t.Fatal(err)
		}
		if m, err := ReceiveMessage(a.Channel(ChannelControl)); err != nil || m != (End{Reason: "done"}) {
			t.Fatalf("control after chat closed: %v, %v", m, err)
		}
	})
}

func TestMuxDeadlines(t *testing.T) {
	a, b := pipePair(t, MuxOptions{})
	ch := a.Channel(ChannelControl)
	ch.SetReadDeadline(time.Now().Add(-time.Second))
	_, err := ch.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past deadline: %v", err)
	}
	ch.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := ch.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked read: %v", err)
	}
	ch.SetReadDeadline(time.Time{})
	go b.Channel(ChannelControl).Write([]byte("ok"))
	if got, err := ch.ReadMessage(); err != nil || string(got) != "ok" {
		t.Fatalf("read after clearing deadline: %q %v", got, err)
	}

	d := a.Channel(ChannelDisplay)
	d.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	n, err := d.Write(make([]byte, 1<<20)) // nobody reads: credit runs out
	if !errors.Is(err, os.ErrDeadlineExceeded) || n < initialWindow || n >= 1<<20 {
		t.Fatalf("write past deadline: n=%d err=%v", n, err)
	}
}

// TestMuxNetConn runs the x/net conformance tests for net.Conn on the
// display channel.
func TestMuxNetConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b := net.Pipe()
		ma, mb := NewMux(a, MuxOptions{}), NewMux(b, MuxOptions{})
		return ma.Channel(ChannelDisplay), mb.Channel(ChannelDisplay), func() {
			ma.Close()
			mb.Close()
		}, nil
	})
}

// hostile sends raw bytes to a Mux and returns the error it stops with.
// With keepOpen, the line stays open until the Mux gives up, so the error
// is the Mux's verdict on the bytes, not a failed write.
func hostile(t *testing.T, opts MuxOptions, keepOpen bool, frames ...[]byte) error {
	t.Helper()
	a, b := net.Pipe()
	m := NewMux(a, opts)
	defer m.Close()
	go io.Copy(io.Discard, b)
	go func() {
		for _, f := range frames {
			if _, err := b.Write(f); err != nil {
				return
			}
		}
		if !keepOpen {
			b.Close()
		}
	}()
	defer b.Close()
	<-m.Done()
	_, rerr := m.Channel(ChannelControl).Read(make([]byte, 1))
	if rerr == nil {
		t.Fatal("read succeeded after failure")
	}
	return m.Err()
}

func frame(id byte, payload []byte) []byte {
	return append(appendFrameHeader(nil, id, len(payload)), payload...)
}

func muxFrame(kind, id byte, v uint32) []byte { return appendMuxFrame(nil, kind, id, v) }

func TestMuxHostileFrames(t *testing.T) {
	big := make([]byte, DefaultMaxFrame+1)
	tests := []struct {
		name     string
		frames   [][]byte
		protocol bool
	}{
		{"unknown channel", [][]byte{frame(5, []byte("x"))}, true},
		{"channel 255", [][]byte{{255, 0, 0, 1, 0}}, true},
		{"empty frame", [][]byte{{ChannelDisplay, 0, 0, 0}}, true},
		{"oversized frame", [][]byte{frame(ChannelDisplay, big)[:frameHeader]}, true},
		{"header of 16 MiB", [][]byte{{ChannelDisplay, 0xff, 0xff, 0xff}}, true},
		{"short mux frame", [][]byte{frame(channelMux, []byte{1, 1, 0, 0, 1})}, true},
		{"mux frame for channel 0", [][]byte{muxFrame(muxWindow, 0, 1)}, true},
		{"mux frame for channel 9", [][]byte{muxFrame(muxWindow, 9, 1)}, true},
		{"unknown mux kind", [][]byte{muxFrame(7, ChannelDisplay, 1)}, true},
		{"zero window update", [][]byte{muxFrame(muxWindow, ChannelDisplay, 0)}, true},
		{"window overflow", [][]byte{muxFrame(muxWindow, ChannelDisplay, 0xffffffff)}, true},
		{"close with value", [][]byte{muxFrame(muxClose, ChannelChat, 1)}, true},
		{"double close", [][]byte{muxFrame(muxClose, ChannelChat, 0), muxFrame(muxClose, ChannelChat, 0)}, true},
		{"data after close", [][]byte{muxFrame(muxClose, ChannelChat, 0), frame(ChannelChat, []byte("x"))}, true},
		{"credit exceeded", func() [][]byte {
			var fs [][]byte
			for range DefaultWindow/(16<<10) + 1 {
				fs = append(fs, frame(ChannelDisplay, make([]byte, 16<<10)))
			}
			return fs
		}(), true},
		{"oversized message", [][]byte{frame(ChannelControl, make([]byte, MaxMessage+1))}, true},
		{"truncated header", [][]byte{{ChannelDisplay, 0}}, false},
		{"truncated payload", [][]byte{frame(ChannelDisplay, []byte("abcdef"))[:7]}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := hostile(t, MuxOptions{}, tt.protocol, tt.frames...)
			if errors.Is(err, ErrProtocol) != tt.protocol {
				t.Fatalf("err = %v, protocol error expected: %v", err, tt.protocol)
			}
			if !tt.protocol && err == io.EOF {
				t.Fatalf("truncated frame ended cleanly")
			}
		})
	}
	t.Run("smaller max frame", func(t *testing.T) {
		err := hostile(t, MuxOptions{MaxFrame: MaxMessage}, true, frame(ChannelDisplay, make([]byte, MaxMessage+1)))
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestMuxOptionsClamp(t *testing.T) {
	a, b := net.Pipe()
	m := NewMux(a, MuxOptions{MaxFrame: 10, Window: 1})
	defer m.Close()
	defer b.Close()
	if m.maxFrame != MaxMessage || m.window != initialWindow {
		t.Fatalf("maxFrame %d window %d", m.maxFrame, m.window)
	}
	m2 := NewMux(nopConn{}, MuxOptions{MaxFrame: 1 << 30, Window: 1 << 30})
	defer m2.Close()
	if m2.maxFrame != MaxFrameLimit || m2.window != MaxWindow {
		t.Fatalf("maxFrame %d window %d", m2.maxFrame, m2.window)
	}
	if m2.Channel(ChannelDisplay).RemoteAddr().Network() != "assist-mux" {
		t.Fatal("placeholder address missing")
	}
	if m2.Channel(0) != nil || m2.Channel(5) != nil {
		t.Fatal("unknown channel returned")
	}
}

// nopConn is an io.ReadWriteCloser that is not a net.Conn: reads block
// until Close.
type nopConn struct{}

var nopClosed = struct {
	sync.Once
	c chan struct{}
}{c: make(chan struct{})}

func (nopConn) Read([]byte) (int, error)    { <-nopClosed.c; return 0, io.EOF }
func (nopConn) Write(p []byte) (int, error) { return len(p), nil }
func (nopConn) Close() error                { nopClosed.Do(func() { close(nopClosed.c) }); return nil }

// bytesConn feeds a fixed input to a Mux and discards its output.
type bytesConn struct{ *bytes.Reader }

func (bytesConn) Write(p []byte) (int, error) { return len(p), nil }
func (bytesConn) Close() error                { return nil }

func FuzzReadFrame(f *testing.F) {
	f.Add(frame(ChannelDisplay, []byte("RFB 003.008\n")))
	f.Add(append(frame(ChannelControl, []byte(`{"type":"end","reason":"x"}`)), muxFrame(muxWindow, ChannelChat, 100)...))
	f.Add(muxFrame(muxClose, ChannelChat, 0))
	f.Add([]byte{ChannelDisplay, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 6, 1, 1, 0, 0, 0, 0})
	f.Add(append(muxFrame(muxOpen, FirstStream, 0), frame(FirstStream, []byte("RFB 003.008\n"))...))
	f.Add(append(append(muxFrame(muxOpen, 200, 0), muxFrame(muxClose, 200, 0)...), muxFrame(muxOpen, 200, 0)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The parser alone.
		var hdr [frameHeader]byte
		r := bytes.NewReader(data)
		for {
			id, p, err := readFrame(r, &hdr, nil, MaxMessage)
			if err != nil {
				break
			}
			if id > lastChannel && id < FirstStream || len(p) == 0 || len(p) > MaxMessage {
				t.Fatalf("accepted frame on %d of %d bytes", id, len(p))
			}
		}
		// A whole Mux fed the same bytes must neither panic nor hang.
		m := NewMux(bytesConn{bytes.NewReader(data)}, MuxOptions{MaxFrame: MaxMessage})
		var wg sync.WaitGroup
		for id := ChannelDisplay; id <= lastChannel; id++ {
			ch := m.Channel(id)
			wg.Go(func() { io.Copy(io.Discard, ch) })
		}
		wg.Go(func() {
			for {
				s, err := m.Accept(context.Background())
				if err != nil {
					return
				}
				wg.Go(func() { io.Copy(io.Discard, s) })
			}
		})
		wg.Wait()
		m.Close()
	})
}

func BenchmarkMuxDisplay(b *testing.B) {
	a, c := net.Pipe()
	ma, mc := NewMux(a, MuxOptions{}), NewMux(c, MuxOptions{})
	defer ma.Close()
	defer mc.Close()
	go io.Copy(io.Discard, mc.Channel(ChannelDisplay))
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := ma.Channel(ChannelDisplay).Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// seeded is pattern(n) shifted by seed, so that bytes of one stream
// showing up on another are caught.
func seeded(n, seed int) []byte {
	b := pattern(n)
	for i := range b {
		b[i] += byte(seed * 29)
	}
	return b
}

// streamData is what each end of stream id sends in the tests.
func streamData(id byte, opener bool) []byte {
	if opener {
		return seeded(512<<10+int(id)*1001, int(id))
	}
	return seeded(256<<10+int(id)*777, int(id)+100)
}

// exchange writes out on ch while reading len(want) bytes, checks them,
// and closes ch.
func exchange(ch *Channel, out, want []byte) error {
	werr := make(chan error, 1)
	go func() {
		_, err := ch.Write(out)
		werr <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(ch, got); err != nil {
		ch.Close()
		<-werr
		return fmt.Errorf("stream %d: read: %w", ch.ID(), err)
	}
	if err := <-werr; err != nil {
		ch.Close()
		return fmt.Errorf("stream %d: write: %w", ch.ID(), err)
	}
	if !bytes.Equal(got, want) {
		ch.Close()
		return fmt.Errorf("stream %d: data corrupted", ch.ID())
	}
	return ch.Close()
}

// streamCounts reports the mux's open dynamic streams and channels in
// use, for leak checks.
func streamCounts(m *Mux) (streams, live int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := FirstStream; id < len(m.chans); id++ {
		if m.chans[id] != nil {
			streams++
		}
	}
	if streams != m.streams {
		panic(fmt.Sprintf("%d streams registered, %d counted", streams, m.streams))
	}
	return m.streams, len(m.live)
}

// settle makes a round trip on the control channel from a to b and back.
// Frames go out in order, and a stream's close is framed before any
// later message, so afterwards each side has seen every close the other
// had queued: stream counts are final.
func settle(t *testing.T, a, b *Mux) {
	t.Helper()
	for _, p := range [][2]*Mux{{a, b}, {b, a}} {
		errc := make(chan error, 1)
		go func() { errc <- SendMessage(p[0].Channel(ChannelControl), Chat{Text: "settle"}) }()
		if _, err := ReceiveMessage(p[1].Channel(ChannelControl)); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func assertNoStreams(t *testing.T, ms ...*Mux) {
	t.Helper()
	for _, m := range ms {
		if s, l := streamCounts(m); s != 0 || l != int(lastChannel) {
			t.Fatalf("%d streams and %d channels left", s, l)
		}
	}
}

// TestMuxStreams: several streams opened at once carry bulk data both
// ways, each intact and in order, while control messages keep flowing.
func TestMuxStreams(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			a, b := tr.pair(t, MuxOptions{Opener: true})
			const n = 6
			ctx := context.Background()
			errs := make(chan error, 2*n+1)
			var wg sync.WaitGroup
			wg.Go(func() {
				for range n {
					s, err := b.Accept(ctx)
					if err != nil {
						errs <- err
						return
					}
					wg.Go(func() { errs <- exchange(s, streamData(s.ID(), false), streamData(s.ID(), true)) })
				}
			})
			ids := make(chan byte, n)
			for range n {
				wg.Go(func() {
					s, err := a.Open(ctx)
					if err != nil {
						errs <- err
						return
					}
					ids <- s.ID()
					errs <- exchange(s, streamData(s.ID(), true), streamData(s.ID(), false))
				})
			}
			for i := range 100 {
				from, to := a, b
				if i%2 == 1 {
					from, to = b, a
				}
				go SendMessage(from.Channel(ChannelControl), Chat{Text: fmt.Sprint(i)})
				m, err := ReceiveMessage(to.Channel(ChannelControl))
				if err != nil || m != (Chat{Text: fmt.Sprint(i)}) {
					t.Fatalf("control message %d: %v, %v", i, m, err)
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			close(ids)
			seen := map[byte]bool{}
			for id := range ids {
				if id < FirstStream || seen[id] {
					t.Errorf("stream id %d given out wrongly", id)
				}
				seen[id] = true
			}
			settle(t, a, b)
			assertNoStreams(t, a, b)
		})
	}
}

// TestMuxStreamReuse opens and closes streams many times, closing first
// on either side and concurrently, so that ids are reused, and checks
// that nothing is left behind.
func TestMuxStreamReuse(t *testing.T) {
	ctx := context.Background()
	t.Run("sequential", func(t *testing.T) {
		a, b := pipePair(t, MuxOptions{Opener: true})
		uses := map[byte]int{}
		for i := range 500 {
			s, err := a.Open(ctx)
			if err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
			uses[s.ID()]++
			if _, err := s.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if i%2 == 1 {
				s.Close() // the opener closes first
			}
			r, err := b.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.ID() != s.ID() {
				t.Fatalf("opened %d, accepted %d", s.ID(), r.ID())
			}
			got := make([]byte, 4)
			if _, err := io.ReadFull(r, got); err != nil || string(got) != "ping" {
				t.Fatalf("cycle %d: read %q, %v", i, got, err)
			}
			if i%2 == 1 {
				if _, err := r.Read(got); err != io.EOF {
					t.Fatalf("cycle %d: read after the opener closed: %v", i, err)
				}
				r.Close()
				continue
			}
			if _, err := r.Write([]byte("pong")); err != nil {
				t.Fatal(err)
			}
			r.Close()
			if _, err := io.ReadFull(s, got); err != nil || string(got) != "pong" {
				t.Fatalf("cycle %d: read %q, %v", i, got, err)
			}
			if _, err := s.Read(got); err != io.EOF {
				t.Fatalf("cycle %d: read after the acceptor closed: %v", i, err)
			}
			s.Close()
		}
		reused := false
		for id, n := range uses {
			if id < FirstStream {
				t.Fatalf("stream id %d", id)
			}
			reused = reused || n > 1
		}
		if !reused {
			t.Fatal("no id was reused")
		}
		settle(t, a, b)
		assertNoStreams(t, a, b)
	})
	t.Run("concurrent", func(t *testing.T) {
		a, b := tcpPair(t, MuxOptions{Opener: true})
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		acceptDone := make(chan struct{})
		wg.Go(func() {
			defer close(acceptDone)
			for range 500 {
				r, err := b.Accept(ctx)
				if err != nil {
					errs <- err
					return
				}
				wg.Go(func() {
					defer r.Close()
					buf := make([]byte, 64)
					n, err := io.ReadFull(r, buf[:8])
					if err == nil {
						_, err = r.Write(buf[:n])
					}
					if err != nil {
						errs <- fmt.Errorf("acceptor, stream %d: %w", r.ID(), err)
					}
				})
			}
		})
		for w := range 4 {
			wg.Go(func() {
				for i := range 125 {
					s, err := a.Open(ctx)
					if err != nil {
						errs <- err
						return
					}
					msg := fmt.Appendf(nil, "%03d:%04d", w, i)
					got := make([]byte, len(msg))
					_, err = s.Write(msg)
					if err == nil {
						_, err = io.ReadFull(s, got)
					}
					if err == nil && !bytes.Equal(got, msg) {
						err = fmt.Errorf("echo %q of %q", got, msg)
					}
					if err == nil {
						if _, rerr := s.Read(got); rerr != io.EOF {
							err = fmt.Errorf("read after the acceptor closed: %v", rerr)
						}
					}
					s.Close()
					if err != nil {
						errs <- fmt.Errorf("opener, stream %d: %w", s.ID(), err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		settle(t, a, b)
		assertNoStreams(t, a, b)
	})
}

// TestMuxStalledStream: a stream nobody reads, in either direction, and
// a stream nobody has accepted yet, hold up neither the other streams
// nor the control channel nor the display.
func TestMuxStalledStream(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			a, b := tr.pair(t, MuxOptions{Opener: true})
			ctx := context.Background()
			big := seeded(8<<20, 1)
			s1, err := a.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			r1, err := b.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w1, w2 := make(chan error, 1), make(chan error, 1)
			go func() { _, err := s1.Write(big); w1 <- err }()
			go func() { _, err := r1.Write(big); w2 <- err }()

			// A stream the acceptor has not accepted yet.
			pend, err := a.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pendData := seeded(1<<20, 3)
			w3 := make(chan error, 1)
			go func() { _, err := pend.Write(pendData); w3 <- err }()

			// Control and the fixed display channel get through.
			for i := range 50 {
				go SendMessage(a.Channel(ChannelControl), Chat{Text: "still here"})
				if _, err := ReceiveMessage(b.Channel(ChannelControl)); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			disp := seeded(1<<20, 4)
			go a.Channel(ChannelDisplay).Write(disp)
			got := make([]byte, len(disp))
			if _, err := io.ReadFull(b.Channel(ChannelDisplay), got); err != nil || !bytes.Equal(got, disp) {
				t.Fatalf("display past a stalled stream: %v", err)
			}

			r2 := make(chan *Channel, 1)
			go func() {
				// Accept returns the pending stream first.
				p, err := b.Accept(ctx)
				if err != nil {
					t.Error(err)
				}
				r2 <- p
			}()
			rpend := <-r2
			if rpend.ID() != pend.ID() {
				t.Fatalf("accepted %d, want %d", rpend.ID(), pend.ID())
			}

			// Another stream moves megabytes both ways past the stalled ones.
			s3, err := a.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				r3, err := b.Accept(ctx)
				if err != nil {
					errc <- err
					return
				}
				errc <- exchange(r3, seeded(2<<20, 6), seeded(2<<20, 5))
			}()
			if err := exchange(s3, seeded(2<<20, 5), seeded(2<<20, 6)); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			for i, w := range []chan error{w1, w2, w3} {
				select {
				case err := <-w:
					t.Fatalf("write %d finished (%v) while nobody read it", i+1, err)
				default:
				}
			}

			// Now read the stalled streams: everything arrives intact.
			for _, c := range []struct {
				ch   *Channel
				want []byte
				w    chan error
			}{{r1, big, w1}, {s1, big, w2}, {rpend, pendData, w3}} {
				got := make([]byte, len(c.want))
				if _, err := io.ReadFull(c.ch, got); err != nil || !bytes.Equal(got, c.want) {
					t.Fatalf("stream %d after the stall: %v", c.ch.ID(), err)
				}
				if err := <-c.w; err != nil {
					t.Fatal(err)
				}
			}
			for _, ch := range []*Channel{s1, r1, pend, rpend} {
				ch.Close()
			}
			settle(t, a, b)
			assertNoStreams(t, a, b)
		})
	}
}

func TestMuxStreamHostileFrames(t *testing.T) {
	open := func(id byte) []byte { return muxFrame(muxOpen, id, 0) }
	opens := func(n int) [][]byte {
		var fs [][]byte
		for i := range n {
			fs = append(fs, open(byte(FirstStream+i)))
		}
		return fs
	}
	tests := []struct {
		name   string
		opener bool
		frames [][]byte
	}{
		{"data on a never-opened stream", false, [][]byte{frame(FirstStream, []byte("x"))}},
		{"data on stream 255", false, [][]byte{frame(255, []byte("x"))}},
		{"window on a never-opened stream", false, [][]byte{muxFrame(muxWindow, FirstStream, 1)}},
		{"close of a never-opened stream", false, [][]byte{muxFrame(muxClose, 100, 0)}},
		{"open from the acceptor", true, [][]byte{open(FirstStream)}},
		{"duplicate open", false, [][]byte{open(20), open(20)}},
		{"open of a fixed channel", false, [][]byte{open(ChannelControl)}},
		{"open of a reserved id", false, [][]byte{open(FirstStream - 1)}},
		{"open of channel 0", false, [][]byte{open(0)}},
		{"open with a value", false, [][]byte{muxFrame(muxOpen, FirstStream, 1)}},
		{"data after the peer's close", false, [][]byte{open(30), muxFrame(muxClose, 30, 0), frame(30, []byte("x"))}},
		{"reopen after the peer's close alone", false, [][]byte{open(30), muxFrame(muxClose, 30, 0), open(30)}},
		{"credit exceeded before accept", false, append([][]byte{open(FirstStream)}, func() [][]byte {
			var fs [][]byte
			for range initialWindow/(16<<10) + 1 {
				fs = append(fs, frame(FirstStream, make([]byte, 16<<10)))
			}
			return fs
		}()...)},
		{"more than MaxStreams", false, opens(MaxStreams + 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := hostile(t, MuxOptions{Opener: tt.opener}, true, tt.frames...)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("err = %v, want a protocol error", err)
			}
			t.Log(err)
		})
	}
	t.Run("MaxStreams is allowed", func(t *testing.T) {
		a, b := net.Pipe()
		m := NewMux(a, MuxOptions{})
		defer m.Close()
		defer b.Close()
		go io.Copy(io.Discard, b)
		for _, f := range opens(MaxStreams) {
			if _, err := b.Write(f); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Write(frame(FirstStream, []byte("ok"))); err != nil {
			t.Fatal(err)
		}
		s, err := m.Accept(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(io.LimitReader(s, 2)); err != nil || string(got) != "ok" {
			t.Fatalf("read %q, %v", got, err)
		}
		if m.Err() != nil {
			t.Fatal(m.Err())
		}
	})
}

// nextFrame returns the next frame the mux sent for stream id.
func nextFrame(t *testing.T, frames <-chan rawFrame, id byte) rawFrame {
	t.Helper()
	for f := range frames {
		if f.id == id || f.id == channelMux && f.payload[1] == id {
			return f
		}
	}
	t.Fatalf("connection ended before a frame for stream %d", id)
	return rawFrame{}
}

// TestMuxStreamLifecycle drives an acceptor with raw frames through the
// backlog reset, the release of a closed id, its reuse, and the credit
// grant on Accept.
func TestMuxStreamLifecycle(t *testing.T) {
	a, b := net.Pipe()
	m := NewMux(a, MuxOptions{})
	defer m.Close()
	frames := make(chan rawFrame, 1024)
	go rawPeer(t, b, frames)
	defer b.Close()
	send := func(fs ...[]byte) {
		t.Helper()
		for _, f := range fs {
			if _, err := b.Write(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	for i := range AcceptBacklog + 1 {
		send(muxFrame(muxOpen, byte(FirstStream+i), 0))
	}
	// The backlog is full: the last stream is reset, the session lives.
	last := byte(FirstStream + AcceptBacklog)
	if f := nextFrame(t, frames, last); f.id != channelMux || f.payload[0] != muxClose {
		t.Fatalf("frame %v for the stream beyond the backlog, want a close", f)
	}
	// Our close frees the id; it can be opened again.
	send(muxFrame(muxClose, last, 0))
	for i := range AcceptBacklog {
		s, err := m.Accept(ctx)
		if err != nil || s.ID() != byte(FirstStream+i) {
			t.Fatalf("accept %d: %v, %v", i, s, err)
		}
		// Accepting grants the rest of the window, not before.
		f := nextFrame(t, frames, s.ID())
		if f.id != channelMux || f.payload[0] != muxWindow || binary.BigEndian.Uint32(f.payload[2:]) != DefaultWindow-initialWindow {
			t.Fatalf("frame %v after accepting stream %d, want a window update", f, s.ID())
		}
	}
	send(muxFrame(muxOpen, last, 0), frame(last, []byte("again")))
	s, err := m.Accept(ctx)
	if err != nil || s.ID() != last {
		t.Fatalf("accept of the reopened stream: %v, %v", s, err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "again" {
		t.Fatalf("read %q, %v", got, err)
	}
	s.Close()
	// Window updates may come first: accepting grants the window, and
	// reading returns credit, which the mux may send before or after
	// the close is asked for.
	for {
		f := nextFrame(t, frames, last)
		if f.id == channelMux && f.payload[0] == muxWindow {
			continue
		}
		if f.id != channelMux || f.payload[0] != muxClose {
			t.Fatalf("frame %v after Close, want a close", f)
		}
		break
	}
	// Both sides closed: the id is free, and a frame for it is an error.
	send(muxFrame(muxClose, last, 0))
	send(frame(last, []byte("late")))
	<-m.Done()
	if !errors.Is(m.Err(), ErrProtocol) {
		t.Fatalf("data for a freed stream: %v", m.Err())
	}
}

func TestMuxOpenAccept(t *testing.T) {
	t.Run("roles", func(t *testing.T) {
		a, b := pipePair(t, MuxOptions{Opener: true})
		if _, err := a.Accept(context.Background()); err == nil {
			t.Fatal("the opener accepted")
		}
		if _, err := b.Open(context.Background()); err == nil {
			t.Fatal("the acceptor opened")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := a.Open(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("open with a done context: %v", err)
		}
		if m := a.Channel(FirstStream); m != nil {
			t.Fatal("Channel returned a stream")
		}
	})
	t.Run("accept unblocks on ctx", func(t *testing.T) {
		_, b := pipePair(t, MuxOptions{Opener: true})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := b.Accept(ctx)
			errc <- err
		}()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("accept: %v", err)
		}
	})
	t.Run("accept unblocks on Close", func(t *testing.T) {
		_, b := pipePair(t, MuxOptions{Opener: true})
		errc := make(chan error, 1)
		go func() {
			_, err := b.Accept(context.Background())
			errc <- err
		}()
		b.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("accept: %v", err)
		}
	})
	t.Run("accept unblocks when the peer leaves", func(t *testing.T) {
		a, b := pipePair(t, MuxOptions{Opener: true})
		errc := make(chan error, 1)
		go func() {
			_, err := b.Accept(context.Background())
			errc <- err
		}()
		a.Close()
		if err := <-errc; err == nil || !errors.Is(err, b.Err()) {
			t.Fatalf("accept: %v (mux: %v)", err, b.Err())
		}
		if _, err := a.Open(context.Background()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("open after Close: %v", err)
		}
	})
	t.Run("too many streams", func(t *testing.T) {
		a, b := pipePair(t, MuxOptions{Opener: true})
		ctx := context.Background()
		var streams []*Channel
		for range MaxStreams {
			s, err := a.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			streams = append(streams, s)
		}
		if _, err := a.Open(ctx); !errors.Is(err, ErrTooManyStreams) {
			t.Fatalf("open beyond MaxStreams: %v", err)
		}
		// A stream closed here alone still holds its id...
		streams[0].Close()
		settle(t, a, b)
		if _, err := a.Open(ctx); !errors.Is(err, ErrTooManyStreams) {
			t.Fatalf("open with a half-closed stream: %v", err)
		}
		// ...until the acceptor closes it too. Streams beyond the backlog
		// were reset by the acceptor: they read EOF.
		r, err := b.Accept(ctx)
		if err != nil || r.ID() != streams[0].ID() {
			t.Fatalf("accept: %v, %v", r, err)
		}
		if _, err := r.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read of a stream the opener closed: %v", err)
		}
		r.Close()
		reset := streams[AcceptBacklog]
		if _, err := reset.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read of a reset stream: %v", err)
		}
		if _, err := reset.Write([]byte("x")); !errors.Is(err, ErrPeerClosed) {
			t.Fatalf("write on a reset stream: %v", err)
		}
		settle(t, a, b)
		s, err := a.Open(ctx)
		if err != nil {
			t.Fatalf("open after a stream was freed: %v", err)
		}
		s.Close()
	})
}

// newStaticDesktop returns a desktop showing a fixed picture: enough for
// viewers that load the whole screen once.
func newStaticDesktop(w, h int) *screentest.Desktop {
	img := screen.NewImage(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			i := img.PixOffset(x, y)
			v := x*7 + y*13
			img.Pix[i], img.Pix[i+1], img.Pix[i+2] = byte(v), byte(v>>3^y), byte(x*y>>4)
		}
	}
	return screentest.NewFrom(img)
}

func sameImage(a, b *screen.Image) bool {
	if a.Rect != b.Rect {
		return false
	}
	for y := a.Rect.Min.Y; y < a.Rect.Max.Y; y++ {
		for x := a.Rect.Min.X; x < a.Rect.Max.X; x++ {
			i, j := a.PixOffset(x, y), b.PixOffset(x, y)
			if !bytes.Equal(a.Pix[i:i+3], b.Pix[j:j+3]) {
				return false
			}
		}
	}
	return true
}

// TestMuxStreamsRFB runs the real RFB server over accepted streams and
// the RFB client over opened ones: two viewers at once, as when the
// expert watches in a VNC viewer and a browser.
func TestMuxStreamsRFB(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			a, b := tr.pair(t, MuxOptions{Opener: true})
			desk := newStaticDesktop(640, 400) // 1 MiB raw: more than a window
			sh := shadow.New(desk, shadow.Options{})
			srv := &rfb.Server{Screen: sh, Name: "stream desktop", Logger: slog.New(slog.DiscardHandler)}
			ctx, cancel := context.WithCancel(context.Background())
			var wg, served sync.WaitGroup
			defer func() {
				cancel()
				wg.Wait()
				served.Wait()
			}()
			wg.Go(func() { sh.Run(ctx) })
			wg.Go(func() {
				for {
					s, err := b.Accept(ctx)
					if err != nil {
						return
					}
					served.Go(func() { srv.ServeConn(ctx, s) })
				}
			})
			var cwg sync.WaitGroup
			for _, encs := range [][]int32{{rfb.EncRaw}, {rfb.EncZRLE}, {rfb.EncTight}} {
				s, err := a.Open(ctx)
				if err != nil {
					t.Fatal(err)
				}
				cwg.Go(func() {
					defer s.Close()
					c, err := rfb.NewClient(s, rfb.ClientConfig{Shared: true, Encodings: encs})
					if err != nil {
						t.Errorf("stream %d: handshake: %v", s.ID(), err)
						return
					}
					if c.Name() != "stream desktop" {
						t.Errorf("desktop name %q", c.Name())
					}
					// A full update first; incremental ones after wait for
					// the shadow's first capture if it had not run yet.
					incremental := false
					for range 20 {
						if err := c.RequestUpdate(incremental, image.Rect(0, 0, 640, 400)); err != nil {
							t.Errorf("stream %d: request: %v", s.ID(), err)
							return
						}
						for {
							msg, err := c.ReadMessage()
							if err != nil {
								t.Errorf("stream %d: %v", s.ID(), err)
								return
							}
							if msg.Type == rfb.ServerFramebufferUpdate {
								break
							}
						}
						if sameImage(c.Framebuffer(), desk.Snapshot()) {
							return
						}
						incremental = true
					}
					t.Errorf("stream %d: the framebuffer never matched the desktop", s.ID())
				})
			}
			// Control keeps flowing while the viewers load.
			for i := range 20 {
				go SendMessage(b.Channel(ChannelControl), Chat{Text: "watching"})
				if _, err := ReceiveMessage(a.Channel(ChannelControl)); err != nil {
					t.Fatalf("control message %d: %v", i, err)
				}
			}
			cwg.Wait()
			if t.Failed() {
				return
			}
			// The viewers closed their streams: the server ends each
			// session and closes its end, which frees the ids. Every
			// ServeConn started before its viewer's handshake completed,
			// so served counts them all.
			served.Wait()
			settle(t, a, b)
			assertNoStreams(t, a, b)
		})
	}
}

func BenchmarkMuxStreams(b *testing.B) {
	a, c := net.Pipe()
	ma, mc := NewMux(a, MuxOptions{Opener: true}), NewMux(c, MuxOptions{})
	defer ma.Close()
	defer mc.Close()
	const n = 2
	ctx := context.Background()
	var ss []*Channel
	for range n {
		s, err := ma.Open(ctx)
		if err != nil {
			b.Fatal(err)
		}
		r, err := mc.Accept(ctx)
		if err != nil {
			b.Fatal(err)
		}
		go io.Copy(io.Discard, r)
		ss = append(ss, s)
	}
	buf := make([]byte, 256<<10)
	b.SetBytes(n * int64(len(buf)))
	for b.Loop() {
		var wg sync.WaitGroup
		for _, s := range ss {
			wg.Go(func() {
				if _, err := s.Write(buf); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
}

// TestMuxFilesChannelLazy: the files channel announces nothing until it
// is used (a peer that predates it sees no frame for it), then carries
// far more than its initial credit.
func TestMuxFilesChannelLazy(t *testing.T) {
	a, b := net.Pipe()
	var first []byte
	got := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		n, _ := b.Read(buf)
		first = buf[:n]
		close(got)
		io.Copy(io.Discard, b)
	}()
	m := NewMux(a, MuxOptions{})
	<-got
	for i := 0; i+frameHeader+muxFrameLen <= len(first); i += frameHeader + muxFrameLen {
		if first[i] == channelMux && first[i+frameHeader+1] == ChannelFiles {
			t.Fatalf("a frame for the files channel before it was used: %x", first)
		}
	}
	m.Close()
	b.Close()

	x, y := net.Pipe()
	mx, my := NewMux(x, MuxOptions{}), NewMux(y, MuxOptions{})
	defer mx.Close()
	defer my.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	errc := make(chan error, 1)
	go func() { _, err := mx.Channel(ChannelFiles).Write(data); errc <- err }()
	back := make([]byte, len(data))
	if _, err := io.ReadFull(my.Channel(ChannelFiles), back); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil || !bytes.Equal(back, data) {
		t.Fatalf("write %v, equal %v", err, bytes.Equal(back, data))
	}
}
