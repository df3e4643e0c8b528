package session

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

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

func muxPair(t *testing.T, a, b net.Conn, opts MuxOptions) (*Mux, *Mux) {
	ma, mb := NewMux(a, opts), NewMux(b, opts)
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
		{"unknown channel", [][]byte{frame(4, []byte("x"))}, true},
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
	if m2.Channel(0) != nil || m2.Channel(4) != nil {
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
	f.Fuzz(func(t *testing.T, data []byte) {
		// The parser alone.
		var hdr [frameHeader]byte
		r := bytes.NewReader(data)
		for {
			id, p, err := readFrame(r, &hdr, nil, MaxMessage)
			if err != nil {
				break
			}
			if id > lastChannel || len(p) == 0 || len(p) > MaxMessage {
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
