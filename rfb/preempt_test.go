package rfb

import (
	"context"
	"image"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// bytePipe is a pacedPipe whose room is a number of bytes the test sets;
// every write uses some up.
type bytePipe struct {
	*pacedPipe
	mu    sync.Mutex
	avail int
}

func (p *bytePipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.avail -= len(b)

	p.mu.Unlock()
	return p.pacedPipe.Write(b)
}

func (p *bytePipe) HasRoom() bool { return p.RoomFor(1) }

func (p *bytePipe) RoomFor(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.avail >= max(n, 1)
}

func (p *bytePipe) setAvail(n int) {
	p.mu.Lock()
	p.avail = n
	p.mu.Unlock()
	select {
	case p.room <- struct{}{}:
	default:
	}
}

// A viewer that takes updates of unknown length (LastRect) gets a pushed
// update piece by piece, each as the path has room; a small change made
// while a piece waits for room ends the update at once, with the pieces
// not sent left for later, instead of waiting for all of them.
func TestServerPreemptsSlices(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lastRect bool
		room     bool // the path has room all along
	}{
		{"LastRect, waiting for room", true, false},
		{"LastRect, with room", true, true},
		{"no LastRect", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, 640, 480, false)
			a, b := net.Pipe()
			bp := &bytePipe{pacedPipe: &pacedPipe{Conn: a, room: make(chan struct{}, 1)}, avail: 1 << 30}
			bp.set(false, 1000) // 1 Gbit/s: the budget takes a whole screen
			awaiting := make(chan struct{}, 1)
			ts.srv.onAwaitRoom = func() {
				select {
				case awaiting <- struct{}{}:
				default:
				}
			}
			// The photo's update: before its second band, the test
			// types a key (the path has room) or leaves room for the
			// first band and half of the second.
			key := image.Rect(600, 440, 608, 456)
			typeKey := func() {
				ts.desk.Change(func(img *screen.Image) image.Rectangle {
					fillPattern(img, key, 7)
					return key
				})
			}
			var armed atomic.Bool
			hooked := false // read and written by the server's writer alone
			ts.srv.onPiece = func(c *conn, i int) {
				if i != 1 || hooked || !armed.Load() {
					return
				}
				hooked = true
				if !tc.room {
					bp.setAvail(len(c.buf) - c.flushed + c.pieceEst/2)
					return
				}
				typeKey()
				for deadline := time.Now().Add(10 * time.Second); !c.sub.HasSmall(smallArea) && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				ts.srv.ServeConn(context.Background(), bp)
			}()
			defer func() { b.Close(); <-done }()
			b.SetReadDeadline(time.Now().Add(20 * time.Second))
			encs := []int32{EncTight, EncJPEGQuality0 + 8, EncAssistPush}
			if tc.lastRect {
				encs = append(encs, EncLastRect)
			}
			c, err := NewClient(b, ClientConfig{Encodings: encs})
			if err != nil {
				t.Fatal(err)
			}
			// The viewer reads all the time, so that a write never waits
			// for the test.
			type update struct {
				rects []image.Rectangle
				fb    *screen.Image // the viewer's framebuffer after it
			}
			updates := make(chan update, 1000)
			readErr := make(chan error, 1)
			go func() {
				for {
					m, err := c.ReadMessage()
					if err != nil {
						readErr <- err
						close(updates)
						return
					}
					if m.Type == ServerFramebufferUpdate {
						var u update
						for _, r := range m.Rects {
							u.rects = append(u.rects, r.Rect)
						}
						fb := c.Framebuffer()
						u.fb = screen.NewImage(fb.Rect)
						u.fb.CopyFrom(fb, fb.Rect)
						updates <- u
					}
				}
			}()
			defer func() {
				b.Close()
				for range updates {
				}
			}()
			next := func() update {
				t.Helper()
				select {
				case u, ok := <-updates:
					if !ok {
						t.Fatalf("the viewer stopped: %v", <-readErr)
					}
					return u
				case <-time.After(10 * time.Second):
					t.Fatal("no update for 10 s")
				}
				panic("unreachable")
			}
			// The whole first picture, exact (refinement) and then no
			// more updates: the viewer waits for changes.
			for want := ts.desk.Snapshot(); !equalImages(next().fb, want); {
			}

			select {
			case <-awaiting:
			default:
			}
			photoArea := image.Rect(0, 0, 640, 384)
			armed.Store(true)
			ts.desk.Change(func(img *screen.Image) image.Rectangle {
				photo(img, photoArea)
				return photoArea
			})
			var first []image.Rectangle
			if tc.lastRect && !tc.room {
				select {
				case <-awaiting:
				case <-time.After(10 * time.Second):
					t.Fatal("the update never waited for room between its bands")
				}
				typeKey()
			}
			for first == nil || !slices.ContainsFunc(first, func(r image.Rectangle) bool { return r.Overlaps(photoArea) }) {
				first = next().rects
			}
			bands := 0
			for _, r := range first {
				if r.Overlaps(photoArea) {
					bands++
				}
			}
			hasKey := slices.ContainsFunc(first, func(r image.Rectangle) bool { return r.Overlaps(key) })
			t.Logf("first update: %v", first)
			if tc.lastRect {
				if !hasKey || bands == 0 || bands >= photoArea.Dy()/bandRows {
					t.Errorf("the update is %v: want the band written before the key was typed, then the small change %v, and nothing more", first, key)
				}
			} else if bands != photoArea.Dy()/bandRows {
				// A viewer that needs each update's length up front
				// gets it whole.
				t.Errorf("without LastRect the first update is %v: want all %d bands", first, photoArea.Dy()/bandRows)
			}

			// Once the path has room, the rest follows, and refinement
			// makes the viewer exact.
			bp.setAvail(1 << 30)
			for want := ts.desk.Snapshot(); !equalImages(next().fb, want); {
			}
		})
	}
}
