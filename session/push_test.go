package session

import (
	"context"
	"image"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/screen/screentest"
	"github.com/assist-project/assist/shadow"
)

// paint sets every pixel of r on d to f's red, green and blue, and
// reports r as damaged: the test repaints the top half of the desktop
// with noise as fast as it likes, and shows markers in the bottom half.
func paint(d *screentest.Desktop, r image.Rectangle, f func(x, y int) (byte, byte, byte)) {
	d.Change(func(img *screen.Image) image.Rectangle {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				i := img.PixOffset(x, y)
				img.Pix[i+2], img.Pix[i+1], img.Pix[i] = f(x, y)
			}
		}
		return r
	})
}

// The path of an invited session on a 2 Mbit/s, 60 ms link, with a viewer
// that keeps one request outstanding (as the benchmark's client), relayed
// as assist join relays it: while the top of the screen changes
// all the time, a small change at the bottom reaches the viewer after at
// most the window's worth of bytes that were already in flight, the rest
// of the update being sent, and the one update that carries it. Without pacing, up to the 256 KiB of credit
// would be queued ahead of it (1 s on this link), so this counts bytes,
// not milliseconds.
func TestDisplayPushAcrossSlowLink(t *testing.T) {
	l, a, b := lab.NewSlowLink(t, 2, 60*time.Millisecond)
	expert, novice := muxPair(t, a, b, MuxOptions{Opener: true})
	desk := screentest.New(320, 240)
	sh := shadow.New(desk, shadow.Options{})
	srv := &rfb.Server{Screen: sh, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { sh.Run(ctx) })

	st, err := expert.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := novice.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { srv.ServeConn(ctx, ns) })
	// assist join's bridge: a local viewer on a pipe.
	local, viewer := net.Pipe()
	wg.Go(func() {
		rfb.RelayViewer(st, local)
		st.Close()
	})
	wg.Go(func() {
		io.Copy(local, st)
		local.Close()
	})
	defer viewer.Close()
	// Raw: the link, not the encoder or the decoder under the race
	// detector, must be the bottleneck (adapting the quality is
	// rfb's TestServerPushPaced).
	c, err := rfb.NewClient(viewer, rfb.ClientConfig{Encodings: []int32{rfb.EncRaw, rfb.EncCopyRect}})
	if err != nil {
		t.Fatal(err)
	}
	// The viewer: one request outstanding, as the benchmark's client.
	type shown struct {
		bytes int
		fb    *screen.Image
	}
	updates := make(chan shown, 1024)
	wg.Go(func() {
		defer close(updates)
		for ctx.Err() == nil {
			if err := c.RequestUpdate(true, image.Rectangle{}); err != nil {
				return
			}
			for {
				m, err := c.ReadMessage()
				if err != nil {
					return
				}
				if m.Type == rfb.ServerFramebufferUpdate {
					fb := screen.NewImage(image.Rect(0, 220, 320, 240))
					fb.CopyFrom(c.Framebuffer(), fb.Rect)
					updates <- shown{m.Bytes, fb}
					break
				}
			}
		}
	})
	// The flood.
	wg.Go(func() {
		seed := uint32(7)
		for i := 0; ctx.Err() == nil; i++ {
			paint(desk, image.Rect(0, 0, 320, 40), func(x, y int) (byte, byte, byte) {
				seed = seed*1664525 + 1013904223
				return byte(x + i), byte(y) ^ byte(seed>>24), byte(seed >> 16)
			})
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	// Let the flood settle for a second's worth of updates.
	for got := 0; got < 250<<10; {
		u, ok := <-updates
		if !ok {
			t.Fatal("the viewer stopped")
		}
		got += u.bytes
	}
	maxUpdate := 0
	for m := range 5 {
		colour := byte(40 + 40*m)
		spot := image.Rect(8+40*m, 224, 24+40*m, 236)
		paint(desk, spot, func(int, int) (byte, byte, byte) { return colour, 255 - colour, colour })
		ahead := 0
		for {
			u, ok := <-updates
			if !ok {
				t.Fatal("the viewer stopped")
			}
			ahead += u.bytes
			maxUpdate = max(maxUpdate, u.bytes)
			i := u.fb.PixOffset(spot.Min.X+8, spot.Min.Y+6)
			if px := u.fb.Pix[i : i+3]; px[2] == colour && px[1] == 255-colour {
				break
			}
		}
		ls := ns.LinkStats()
		// What the marker waited behind: what was in flight (at most the
		// window, which stays under maxInFlight here), the rest of the
		// update being sent when it was drawn, and the update carrying
		// it.
		const maxInFlight = 96 << 10
		bound := maxInFlight + 2*maxUpdate + 2*displayChunk
		t.Logf("marker %d: %d bytes reached the viewer before and with it (bound %d; link %+v, bottleneck queue at most %d)", m, ahead, bound, ls.Estimate, l.MaxQueue(1))
		if ahead > bound {
			t.Errorf("marker %d came after %d bytes, more than the window and two updates (%d)", m, ahead, bound)
		}
		if ls.MaxInFlight > maxInFlight {
			t.Errorf("up to %d bytes in flight on a link whose BDP is about 15 KiB", ls.MaxInFlight)
		}
	}
	if q := l.MaxQueue(1); q > 64<<10 {
		t.Errorf("up to %d bytes queued at the bottleneck: a standing queue of %v", q, time.Duration(float64(q)/(2e6/8)*float64(time.Second)))
	}
	cancel()
	viewer.Close()
	for range updates {
	}
}
