package main

import (
	"context"
	"image"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/screen/screentest"
	"github.com/assist-project/assist/shadow"
	"github.com/assist-project/assist/webview"
)

// displayOnly is a webview.Backend that only opens display streams.
type displayOnly struct {
	webview.Backend
	open func(ctx context.Context) (net.Conn, error)
}

func (d displayOnly) OpenDisplay(ctx context.Context) (net.Conn, error) { return d.open(ctx) }

// TestBrowserViewerRelayed: the browser viewer's display streams go
// through the relay like a local viewer's. A photo reaches its noVNC as
// JPEG and is then refined in the private lossless encoding, which the
// page's viewer receives as Raw; without the relay the refinement would
// come as Tight.
func TestBrowserViewerRelayed(t *testing.T) {
	img := photo(320, 240, 3)
	sh := shadow.New(screentest.NewFrom(img), shadow.Options{})
	srv := &rfb.Server{Screen: sh, Name: "relayed", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { sh.Run(ctx) })
	open := func(ctx context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		wg.Go(func() { srv.ServeConn(ctx, b) })
		return a, nil
	}
	backend := &relayedBackend{Backend: displayOnly{open: open}, ctx: ctx, wg: &wg}
	page, err := backend.OpenDisplay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	page.SetDeadline(time.Now().Add(20 * time.Second))
	c, err := rfb.NewClient(page, rfb.ClientConfig{Encodings: []int32{rfb.EncTight, rfb.EncJPEGQuality0 + 5}})
	if err != nil {
		t.Fatal(err)
	}
	sawTight, rawAfter := false, false
	for incremental := false; !sameImage(c.Framebuffer(), img); incremental = true {
		if err := c.RequestUpdate(incremental, image.Rectangle{}); err != nil {
			t.Fatal(err)
		}
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("%v, with the picture not exact", err)
		}
		for _, r := range m.Rects {
			switch r.Encoding {
			case rfb.EncTight:
				sawTight = true
			case rfb.EncRaw:
				rawAfter = rawAfter || sawTight
			case rfb.EncAssistLossless, rfb.EncAssistLosslessFSE:
				// (Scaled rectangles would be passed to the page, whose
				// noVNC draws them: TestBrowserViewerScaled in webview.
				// This path is not slow enough for any.)
				t.Fatalf("the page's viewer got private encoding %#x", r.Encoding)
			}
		}
	}
	if !sawTight || !rawAfter {
		t.Errorf("JPEG first: %v, then Raw (the relay's lossless refinement): %v; want both", sawTight, rawAfter)
	}
}

// sameImage reports whether a and b hold the same pixels (the fourth
// byte aside).
func sameImage(a, b *screen.Image) bool {
	if a.Rect.Size() != b.Rect.Size() {
		return false
	}
	for y := 0; y < a.Rect.Dy(); y++ {
		p := a.Pix[a.PixOffset(a.Rect.Min.X, a.Rect.Min.Y+y):][:4*a.Rect.Dx()]
		q := b.Pix[b.PixOffset(b.Rect.Min.X, b.Rect.Min.Y+y):][:4*a.Rect.Dx()]
		for i := 0; i < len(p); i += 4 {
			if p[i] != q[i] || p[i+1] != q[i+1] || p[i+2] != q[i+2] {
				return false
			}
		}
	}
	return true
}
