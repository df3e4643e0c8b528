//go:build js && wasm

package main

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall/js"

	"github.com/assist-project/assist/rfb"
)

// maxStreamQueue bounds what the page may queue on a display stream
// faster than the session sends it; noVNC sends input events and update
// requests, a few bytes each.
const maxStreamQueue = 4 << 20

// stream is one display stream (a session.Expert.OpenDisplay connection)
// given to the page: bytes from the novice's RFB server go to the page's
// onData, the page's bytes go out through a writer goroutine, so the
// page's send never blocks.
type stream struct {
	conn net.Conn

	mu     sync.Mutex
	queue  [][]byte
	queued int
	wake   chan struct{}
	done   chan struct{}
	once   sync.Once
	funcs  []js.Func
	closed bool
	// listening: the read loop runs, and releases funcs when it ends.
	listening bool
}

// lastRelay is the relay of the newest display stream.
var lastRelay atomic.Pointer[rfb.Relay]

// relayed puts an rfb.Relay between the page's noVNC and display stream
// st, as `assist join` does for its viewers, and returns the page's end.
// It offers the novice every private encoding, and passes scaled
// rectangles to the page as they are: undoing one here (a JPEG decoded
// and scaled up in Go) would run on the page's only thread, the one that
// draws, where the page's noVNC has the browser decode and scale it
// (web/session/scaled.js). The relay ends, closing both ends, when
// either does.
func relayed(st net.Conn) net.Conn {
	page, viewer := net.Pipe()
	rl := rfb.NewRelayOffering(rfb.EncAssistScaled, rfb.EncAssistLossless, rfb.EncAssistLosslessFSE).PassingScaled()
	lastRelay.Store(rl)
	go func() {
		fromViewer, toViewer := rl.Run(viewer, st)
		for _, err := range []error{fromViewer, toViewer} {
			if err != nil {
				js.Global().Get("console").Call("warn", "assist: display relay: "+err.Error())
			}
		}
	}()
	return page
}

func newStream(conn net.Conn) *stream {
	return &stream{conn: conn, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// object returns the stream as the page sees it.
func (s *stream) object() js.Value {
	o := js.Global().Get("Object").New()
	s.method(o, "listen", func(args []js.Value) any {
		// A panic would end the whole program: bad calls are ignored.
		if len(args) < 2 || args[0].Type() != js.TypeFunction || args[1].Type() != js.TypeFunction {
			return nil
		}
		s.mu.Lock()
		again := s.listening || s.closed
		s.listening = true
		s.mu.Unlock()
		if again {
			return nil
		}
		go s.writeLoop()
		go s.readLoop(args[0], args[1])
		return nil
	})
	s.method(o, "send", func(args []js.Value) any {
		if len(args) < 1 {
			return nil
		}
		s.send(args[0])
		return nil
	})
	s.method(o, "close", func([]js.Value) any {
		s.close()
		return nil
	})
	return o
}

func (s *stream) method(o js.Value, name string, f func(args []js.Value) any) {
	fn := js.FuncOf(func(_ js.Value, args []js.Value) any { return f(args) })
	s.funcs = append(s.funcs, fn)
	o.Set(name, fn)
}

// send queues a copy of data (a Uint8Array or an ArrayBuffer).
func (s *stream) send(data js.Value) {
	if data.InstanceOf(js.Global().Get("ArrayBuffer")) {
		data = js.Global().Get("Uint8Array").New(data)
	}
	if !data.InstanceOf(js.Global().Get("Uint8Array")) {
		return
	}
	b := make([]byte, data.Length())
	js.CopyBytesToGo(b, data)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.queued+len(b) > maxStreamQueue {
		s.mu.Unlock()
		s.close()
		return
	}
	s.queue = append(s.queue, b)
	s.queued += len(b)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes what the page sent until the stream closes.
func (s *stream) writeLoop() {
	for {
		s.mu.Lock()
		q := s.queue
		s.queue, s.queued = nil, 0
		s.mu.Unlock()
		for _, b := range q {
			if _, err := s.conn.Write(b); err != nil {
				s.close()
				return
			}
		}
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
	}
}

// readLoop hands the novice's bytes to onData until the stream ends, then
// calls onClose with the reason.
func (s *stream) readLoop(onData, onClose js.Value) {
	buf := make([]byte, 64<<10)
	uint8Array := js.Global().Get("Uint8Array")
	for {
		n, err := s.conn.Read(buf)
		if n > 0 {
			u8 := uint8Array.New(n)
			js.CopyBytesToJS(u8, buf[:n])
			// The page processes the bytes before this returns: the
			// next Read waits for it, which is all the back-pressure a
			// display needs.
			onData.Invoke(u8.Get("buffer"))
		}
		if err != nil {
			reason := "the display stream ended"
			if !errors.Is(err, net.ErrClosed) {
				reason += ": " + err.Error()
			}
			s.close()
			onClose.Invoke(reason)
			s.release()
			return
		}
	}
}

// close ends the stream; the read loop then reports it and releases the
// page's functions.
func (s *stream) close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.queue, s.queued = nil, 0
		listening := s.listening
		s.mu.Unlock()
		close(s.done)
		s.conn.Close()
		if !listening {
			s.release()
		}
	})
}

func (s *stream) release() {
	for _, f := range s.funcs {
		f.Release()
	}
}
