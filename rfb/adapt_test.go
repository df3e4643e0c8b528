package rfb

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assist-project/assist/link"
	"github.com/assist-project/assist/screen"
)

func TestAdaptQuality(t *testing.T) {
	for _, tc := range []struct {
		asked int
		mbits float64
		want  int
	}{
		{8, 0, 8},    // no estimate: as asked
		{-1, 1, -1},  // lossless stays lossless
		{8, 100, 8},  // a fast path: as asked
		{9, 30, 8},   //
		{8, 20, 7},   //
		{8, 5, 5},    //
		{8, 2, 3},    //
		{8, 1, 1},    //
		{8, 0.5, 0},  //
		{2, 20, 2},   // never above what was asked
		{0, 100, 0},  //
		{9, 1000, 9}, //
	} {
		est := link.Estimate{Rate: tc.mbits * 1e6 / 8, Measured: true}
		if got := adaptQuality(tc.asked, est); got != tc.want {
			t.Errorf("asked %d at %g Mbit/s: level %d, want %d", tc.asked, tc.mbits, got, tc.want)
		}
		// The same rate from application-limited samples only (the
		// handshake's bytes) is a floor, not a measure: as asked.
		est.Measured = false
		if got := adaptQuality(tc.asked, est); got != tc.asked {
			t.Errorf("asked %d at an unmeasured %g Mbit/s: level %d, want %d", tc.asked, tc.mbits, got, tc.asked)
		}
	}
}

func TestFencePacer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var f fencePacer
	if _, ok := f.nextPing(); ok {
		t.Fatal("an inactive pacer pings")
	}
	if !f.room(t0) {
		t.Fatal("an inactive pacer holds updates back")
	}
	f.setActive(true)
	// Updates of 40 KiB, unanswered: the first window (64 KiB) fills.
	var pings []fence
	for i := 0; f.room(t0); i++ {
		p, ok := f.nextPing()
		if !ok {
			t.Fatal("no ping while there is room")
		}
		pings = append(pings, p)
		f.wrote(40<<10, t0, true)
		if i > 10 {
			t.Fatal("never ran out of room")
		}
	}
	if len(pings) != 2 {
		t.Fatalf("%d updates before the window filled, want 2", len(pings))
	}
	// Foreign replies change nothing: the viewer's own payloads, a made-up
	// sequence number, a short payload.
	for _, data := range [][]byte{[]byte("ping"), append([]byte(pingMagic), 0, 0, 0, 99), []byte(pingMagic)} {
		if f.reply(data, t0.Add(time.Millisecond)) {
			t.Errorf("reply %q taken as ours", data)
		}
	}
	if f.room(t0) {
		t.Fatal("room after foreign replies")
	}
	// The second reply acknowledges both updates.
	if !f.reply(pings[1].data, t0.Add(50*time.Millisecond)) {
		t.Fatal("our reply not recognised")
	}
	if !f.room(t0.Add(50*time.Millisecond)) || len(f.pending) != 0 {
		t.Fatalf("no room after every ping was answered (pending %d)", len(f.pending))
	}
	est := f.est.Estimate(t0.Add(50 * time.Millisecond))
	if est.RTT != 50*time.Millisecond || est.InFlight != 0 {
		t.Errorf("estimate after the reply: %+v", est)
	}
	// A viewer that stops answering stops being paced, rather than
	// stopping its own updates.
	for i := 0; f.room(t0.Add(time.Second)); i++ {
		f.nextPing()
		f.wrote(40<<10, t0.Add(time.Second), true)
		if i > 10 {
			t.Fatal("never ran out of room")
		}
	}
	if !f.room(t0.Add(time.Second + pingTimeout + time.Millisecond)) {
		t.Fatal("still held back after an unanswered ping timed out")
	}
	f.setActive(true)
	if f.active {
		t.Error("pacing came back after the viewer stopped answering")
	}
}

// A viewer with continuous updates that does not answer the server's
// fences gets at most a window's worth of updates (and one more update)
// however much changes; once it answers, updates flow again and it ends up
// with the desktop as it is. Without pacing the server would go on writing
// as long as the desktop changes.
func TestServerFencePacing(t *testing.T) {
	ts := startServer(t, 128, 128, false)
	var maxExcess, writes atomic.Int64
	ts.srv.onUpdate = func(inFlight, window, n int) {
		writes.Add(1)
		for {
			old := maxExcess.Load()
			if e := int64(inFlight - window - n); e <= old || maxExcess.CompareAndSwap(old, e) {
				break
			}
		}
	}
	c := ts.dial(t, ClientConfig{Encodings: []int32{EncRaw, EncContinuousUpdates, EncFence}})
	var sawEndCU, sawFence bool
	for !sawEndCU || !sawFence {
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		sawEndCU = sawEndCU || m.Type == ServerEndOfContinuousUpdates
		sawFence = sawFence || m.Type == ServerFence
	}
	if err := c.EnableContinuousUpdates(true, image.Rectangle{}); err != nil {
		t.Fatal(err)
	}
	// The flood: the whole screen changes every few milliseconds.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var changes atomic.Int64
	wg.Go(func() {
		for i := 1; ctx.Err() == nil; i++ {
			ts.desk.Change(func(img *screen.Image) image.Rectangle {
				fillPattern(img, img.Rect, i)
				return img.Rect
			})
			changes.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(3 * time.Millisecond):
			}
		}
	})
	// The viewer reads without answering: a frame of 64 KiB raw is the
	// window's size, so the server stops after at most two.
	answer := make(chan bool, 1)
	readerDone := make(chan error, 1)
	var updates atomic.Int64
	go func() {
		var held [][]byte
		replying := false
		for {
			m, err := c.ReadMessage()
			if err != nil {
				readerDone <- err
				return
			}
			select {
			case replying = <-answer:
			default:
			}
			if m.Type == ServerFramebufferUpdate {
				updates.Add(1)
			}
			if m.Type == ServerFence && m.FenceFlags&fenceRequest != 0 && bytes.HasPrefix(m.FencePayload, []byte(pingMagic)) {
				held = append(held, m.FencePayload)
			}
			if replying {
				for _, p := range held {
					if err := c.Fence(fenceBlockBefore, p); err != nil {
						readerDone <- err
						return
					}
				}
				held = nil
			}
		}
	}()
	// Wait for the server to run out of room, then let the flood go on.
	conn := ts.onlyConn(t)
	waitUntil(t, func() bool {
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return conn.pings.active && !conn.pings.room(time.Now())
	})
	w0, c0 := writes.Load(), changes.Load()
	waitUntil(t, func() bool { return changes.Load() >= c0+30 })
	if e := maxExcess.Load(); e > 0 {
		t.Errorf("the server had %d bytes more in flight than its window allowed before a write", e)
	}
	if w := writes.Load() - w0; w > 1 {
		t.Errorf("%d writes while the viewer answered no fence and the window was full", w)
	}
	// The viewer answers: updates come again, and the last one shows the
	// desktop as it is once the flood stops.
	u0 := updates.Load()
	answer <- true
	// A fence request of the viewer's own makes the server write, so the
	// reader wakes up and answers what it holds.
	if err := c.Fence(fenceRequest|fenceBlockBefore, []byte("wake")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return updates.Load() > u0+3 })
	cancel()
	wg.Wait()
	want := ts.desk.Snapshot()
	c.Close()
	<-readerDone
	if !equalImages(c.Framebuffer(), want) {
		// The reader stopped at Close: ask once more, from scratch.
		c2 := ts.dial(t, ClientConfig{Encodings: []int32{EncRaw}})
		waitFor(t, c2, want)
	}
}

// waitUntil polls cond until it holds, failing after 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// onlyConn returns the server's one connection.
func (ts *testServer) onlyConn(t *testing.T) *conn {
	t.Helper()
	var c *conn
	waitUntil(t, func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		for k := range ts.srv.conns {
			c = k
		}
		return len(ts.srv.conns) == 1
	})
	return c
}

// pacedPipe is a connection that paces itself as a session stream does,
// with the room and estimate the test sets.
type pacedPipe struct {
	net.Conn
	mu   sync.Mutex
	full bool
	est  link.Estimate
	room chan struct{}
}

func (p *pacedPipe) LinkEstimate() link.Estimate {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.est
}

func (p *pacedPipe) HasRoom() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.full
}

func (p *pacedPipe) RoomFor(int) bool { return p.HasRoom() }

func (p *pacedPipe) Room() <-chan struct{} { return p.room }

func (p *pacedPipe) set(full bool, mbits float64) {
	p.mu.Lock()
	p.full, p.est.Rate, p.est.Measured = full, mbits*1e6/8, true
	p.mu.Unlock()
	select {
	case p.room <- struct{}{}:
	default:
	}
}

// pacedClient connects a client naming encs to ts's server across a
// pacedPipe with room, on a path of mbits Mbit/s; both end on cleanup.
func pacedClient(t *testing.T, ts *testServer, mbits float64, encs ...int32) (*Client, *pacedPipe) {
	t.Helper()
	a, b := net.Pipe()
	pp := &pacedPipe{Conn: a, room: make(chan struct{}, 1)}
	pp.set(false, mbits)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.srv.ServeConn(context.Background(), pp)
	}()
	t.Cleanup(func() { b.Close(); <-done })
	// A server that does not push leaves the client waiting: fail then.
	b.SetReadDeadline(time.Now().Add(20 * time.Second))
	c, err := NewClient(b, ClientConfig{Encodings: encs})
	if err != nil {
		t.Fatal(err)
	}
	return c, pp
}

// fenceRoundTrip sends the server a fence with payload and reads until
// its reply, returning the messages that came before it.
func fenceRoundTrip(t *testing.T, c *Client, payload string) []Message {
	t.Helper()
	if err := c.Fence(fenceRequest, []byte(payload)); err != nil {
		t.Fatal(err)
	}
	var before []Message
	for {
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == ServerFence && string(m.FencePayload) == payload {
			return before
		}
		before = append(before, m)
	}
}

// Across a paced connection a viewer that asked for push gets updates
// without requests, only while the path has room, and in fewer bytes when
// the path is slow.
func TestServerPushPaced(t *testing.T) {
	ts := startServer(t, 256, 192, false)
	ts.desk.Change(func(img *screen.Image) image.Rectangle {
		photo(img, img.Rect)
		return img.Rect
	})
	// A server that does not push leaves the client waiting: fail then.
	c, pp := pacedClient(t, ts, 100, EncTight, EncAssistPush)
	// No request: the first update comes anyway.
	want := ts.desk.Snapshot()
	readUpdate := func() int {
		t.Helper()
		for {
			m, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if m.Type == ServerFramebufferUpdate {
				return m.Bytes
			}
		}
	}
	for !equalImages(c.Framebuffer(), want) || len(c.Framebuffer().Pix) == 0 {
		readUpdate()
	}
	// No room: the changes wait in the Subscriber, however many happen;
	// with room they come.
	var updates atomic.Int64
	ts.srv.onUpdate = func(int, int, int) { updates.Add(1) }
	pp.set(true, 100)
	watch := ts.srv.Screen.Subscribe()
	defer watch.Close()
	watch.Take(nil)
	last := image.Rect(40, 10, 48, 18)
	for i := range 5 {
		ts.desk.Change(func(img *screen.Image) image.Rectangle {
			r := image.Rect(10*i, 10, 10*i+8, 18)
			fillPattern(img, r, 40+i)
			return r
		})
	}
	// Once another subscriber has the last change, the viewer's has it
	// too (the capture marks them all in one step).
	for seen := false; !seen; {
		<-watch.Ready()
		for _, r := range watch.Take(nil).Dirty {
			seen = seen || r.Overlaps(last)
		}
	}
	// A fence of the viewer's makes the writer flush, with the changes
	// in its Subscriber: its answer comes in the write that would carry
	// an update if one were produced.
	fenceRoundTrip(t, c, "sync")
	if n := updates.Load(); n != 0 {
		t.Fatalf("%d updates written while the path had no room", n)
	}
	pp.set(false, 100)
	for want := ts.desk.Snapshot(); !equalImages(c.Framebuffer(), want); {
		readUpdate()
	}
	// The same full update costs fewer bytes on a slow path.
	if err := c.setEncodings([]int32{EncTight, EncJPEGQuality0 + 8, EncAssistPush}); err != nil {
		t.Fatal(err)
	}
	full := func(mbits float64) int {
		// What the server was doing when asked (answering SetEncodings,
		// refining) ends before the request: an update it was building
		// then would come first.
		fenceRoundTrip(t, c, "idle")
		pp.set(false, mbits)
		if err := c.RequestUpdate(false, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
		return readUpdate()
	}
	fast, slow := full(100), full(1)
	t.Logf("full update: %d bytes at 100 Mbit/s, %d at 1 Mbit/s", fast, slow)
	if slow >= fast*3/4 {
		t.Errorf("a full update took %d bytes on a 1 Mbit/s path and %d on a 100 Mbit/s one: quality not lowered", slow, fast)
	}
}

// A non-incremental request that arrives just as a pushed update starts
// (after the writer decided to push, before it took the changes) is
// answered by that update, whole: not sent in slices and then all again.
func TestServerFullAskedWhileBuilding(t *testing.T) {
	ts := startServer(t, 256, 192, false)
	ts.desk.Change(func(img *screen.Image) image.Rectangle {
		photo(img, img.Rect)
		return img.Rect
	})
	var armed atomic.Bool
	ts.srv.beforeTake = func(c *conn) {
		if armed.CompareAndSwap(true, false) {
			// As the reader would handle the request arriving now.
			c.handle(clientMessage{typ: msgFramebufferUpdateRequest, area: image.Rectangle{Max: c.size}})
		}
	}
	c, pp := pacedClient(t, ts, 1, EncTight, EncAssistPush) // slow: a pushed full screen goes in slices
	for want := ts.desk.Snapshot(); !equalImages(c.Framebuffer(), want); {
		if _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}

	// The change is captured while the path has no room, so the update
	// that carries it starts once room comes, with the change pending.
	pp.set(true, 1)
	watch := ts.srv.Screen.Subscribe()
	defer watch.Close()
	watch.Take(nil)
	ts.desk.Change(func(img *screen.Image) image.Rectangle {
		smooth(img, img.Rect, 3)
		return img.Rect
	})
	for seen := false; !seen; {
		<-watch.Ready()
		seen = len(watch.Take(nil).Dirty) > 0
	}
	armed.Store(true)
	pp.set(false, 1)
	// Everything the server sends for it comes before the replies to
	// two fences: the second flush (the first reply's) sends what the
	// first update left owed.
	var updates []int // pixels per update
	for _, name := range []string{"first", "second"} {
		for _, m := range fenceRoundTrip(t, c, name) {
			if m.Type == ServerFramebufferUpdate {
				n := 0
				for _, r := range m.Rects {
					n += r.Rect.Dx() * r.Rect.Dy()
				}
				updates = append(updates, n)
			}
		}
	}
	if armed.Load() {
		t.Fatal("no update was built after the change")
	}
	whole := 256 * 192
	if len(updates) != 1 || updates[0] != whole {
		t.Errorf("updates of %v pixels, want one of the whole screen (%d)", updates, whole)
	}
	if !equalImages(c.Framebuffer(), ts.desk.Snapshot()) {
		t.Error("the viewer's picture is not the screen")
	}
}

// photo draws smooth gradients with noise, which Tight sends as JPEG.
func photo(img *screen.Image, r image.Rectangle) {
	seed := uint32(1)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			seed = seed*1664525 + 1013904223
			n := byte(seed >> 28)
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2] = byte(x)+n, byte(y)+n, byte(x+y)/2+n
		}
	}
}

func TestRelayViewer(t *testing.T) {
	version := []byte("RFB 003.008\n")
	setEnc := func(encs ...int32) []byte {
		b := binary.BigEndian.AppendUint16([]byte{msgSetEncodings, 0}, uint16(len(encs)))
		for _, e := range encs {
			b = binary.BigEndian.AppendUint32(b, uint32(e))
		}
		return b
	}
	request := []byte{msgFramebufferUpdateRequest, 1, 0, 0, 0, 0, 0, 10, 0, 10}
	key := []byte{msgKeyEvent, 1, 0, 0, 0, 0, 0, 0x61}
	for _, tc := range []struct {
		name    string
		in, out []byte
		relay   *Relay // nil: RelayViewer
	}{
		{"push added", cat(version, []byte{1, 1}, setEnc(EncTight, EncCopyRect), request, key),
			cat(version, []byte{1, 1}, setEnc(EncTight, EncCopyRect, EncAssistPush), request, key), nil},
		{"continuous viewer left alone", cat(version, []byte{1, 1}, setEnc(EncTight, EncContinuousUpdates, EncFence), request),
			cat(version, []byte{1, 1}, setEnc(EncTight, EncContinuousUpdates, EncFence), request), nil},
		{"version 3.3", cat([]byte("RFB 003.003\n"), []byte{1}, setEnc(EncRaw), key),
			cat([]byte("RFB 003.003\n"), []byte{1}, setEnc(EncRaw, EncAssistPush), key), nil},
		{"every SetEncodings", cat(version, []byte{1, 0}, setEnc(), setEnc(EncZRLE)),
			cat(version, []byte{1, 0}, setEnc(EncAssistPush), setEnc(EncZRLE, EncAssistPush)), nil},
		{"private encodings added", cat(version, []byte{1, 1}, setEnc(EncTight), request),
			cat(version, []byte{1, 1}, setEnc(EncTight, EncAssistPush, EncAssistScaled, EncAssistLossless, EncAssistLosslessFSE), request), NewRelay()},
		{"lossless only", cat(version, []byte{1, 1}, setEnc(EncTight, EncAssistLossless), request),
			cat(version, []byte{1, 1}, setEnc(EncTight, EncAssistLossless, EncAssistPush), request), NewRelayOffering(EncAssistLossless)},
		{"a request before any SetEncodings", cat(version, []byte{1, 1}, request),
			cat(version, []byte{1, 1}, setEnc(EncAssistLossless), request), NewRelayOffering(EncAssistLossless)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := tc.relay
			if rl == nil {
				rl = &Relay{}
			}
			var out bytes.Buffer
			if err := rl.FromViewer(&out, bytes.NewReader(tc.in)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), tc.out) {
				t.Errorf("relayed\n%x\nwant\n%x", out.Bytes(), tc.out)
			}
		})
	}
	var out bytes.Buffer
	if err := RelayViewer(&out, bytes.NewReader(cat(version, []byte{1, 1}, []byte{77}))); err == nil {
		t.Error("an unknown message type relayed without error")
	}
}

// FuzzRelayViewer: whatever a viewer sends, the relay does not panic, and
// relaying what it relayed changes nothing more (each SetEncodings gains
// EncAssistPush once).
func FuzzRelayViewer(f *testing.F) {
	f.Add(cat([]byte("RFB 003.008\n"), []byte{1, 1}, []byte{msgSetEncodings, 0, 0, 1, 0, 0, 0, 7}, []byte{msgFramebufferUpdateRequest, 1, 0, 0, 0, 0, 0, 10, 0, 10}))
	f.Add(cat([]byte("RFB 003.003\n"), []byte{1}, []byte{msgClientCutText, 0, 0, 0, 0, 0, 0, 2, 'h', 'i'}))
	f.Add(cat([]byte("RFB 003.007\n"), []byte{1, 0}, []byte{msgClientFence, 0, 0, 0, 0, 0, 0, 0, 1, 'x'}))
	f.Fuzz(func(t *testing.T, in []byte) {
		var once, twice bytes.Buffer
		err := RelayViewer(&once, bytes.NewReader(in))
		if err2 := RelayViewer(&twice, bytes.NewReader(once.Bytes())); err2 != nil && err == nil {
			t.Fatalf("relaying the relayed stream failed: %v", err2)
		}
		if err == nil && !bytes.Equal(once.Bytes(), twice.Bytes()) {
			t.Fatalf("relaying twice changed the stream:\n%x\n%x", once.Bytes(), twice.Bytes())
		}
	})
}

var _ io.Reader = (*recorder)(nil)

func TestQualityCap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	est := link.Estimate{Rate: 5e6 / 8, Measured: true} // 625 KB/s: the budget is 75 KB
	q := newQualityCap()
	steps := []struct {
		at    time.Duration
		bytes int
		want  int
	}{
		{0, 300 << 10, 8},                      // too big: down one
		{100 * time.Millisecond, 200 << 10, 7}, // still too big
		{200 * time.Millisecond, 100 << 10, 6}, //
		{300 * time.Millisecond, 60 << 10, 6},  // within the budget: stays
		{400 * time.Millisecond, 1 << 10, 6},   // small, but too soon to raise
		{1300 * time.Millisecond, 1 << 10, 7},  // a second on: up one
		{1400 * time.Millisecond, 1 << 10, 7},  // not again at once
		{2400 * time.Millisecond, 1 << 10, 8},
		{2500 * time.Millisecond, 0, 8},         // nothing sent: no news
		{2600 * time.Millisecond, 500 << 10, 7}, // too big again
	}
	for _, s := range steps {
		q.observe(s.bytes, est, t0.Add(s.at))
		if q.level != s.want {
			t.Fatalf("after %d bytes at %v: level %d, want %d", s.bytes, s.at, q.level, s.want)
		}
	}
	q.observe(10<<20, link.Estimate{}, t0.Add(3*time.Second)) // no estimate: no news
	if q.level != 7 {
		t.Errorf("level %d after an update without an estimate", q.level)
	}
	// A rate from application-limited samples only is no measure.
	q.observe(10<<20, link.Estimate{Rate: 1e3}, t0.Add(3*time.Second))
	if q.level != 7 {
		t.Errorf("level %d after an update on an unmeasured path", q.level)
	}
	for range 20 {
		q.observe(10<<20, est, t0.Add(4*time.Second))
	}
	if q.level != 0 {
		t.Errorf("level %d, want the floor 0", q.level)
	}
}
