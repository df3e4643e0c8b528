package webview

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestRFBBridge(t *testing.T) {
	b := newFakeBackend()
	ts := startServer(t, b, Options{})
	c, resp, err := ts.dial(t, "rfb", ts.origin)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp
	display := <-b.displays
	defer display.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc := websocket.NetConn(ctx, c, websocket.MessageBinary)

	// Desktop to page: the server's version string, then a big update
	// that spans many WebSocket messages.
	big := bytes.Repeat([]byte("0123456789abcdef"), 40000)
	go func() {
		display.Write([]byte("RFB 003.008\n"))
		display.Write(big)
	}()
	got := make([]byte, 12+len(big))
	if _, err := io.ReadFull(nc, got); err != nil {
		t.Fatalf("read from the bridge: %v", err)
	}
	if string(got[:12]) != "RFB 003.008\n" || !bytes.Equal(got[12:], big) {
		t.Fatal("the bridge changed the desktop's bytes")
	}

	// Page to desktop.
	go nc.Write([]byte("RFB 003.008\n"))
	hello := make([]byte, 12)
	if _, err := io.ReadFull(display, hello); err != nil || string(hello) != "RFB 003.008\n" {
		t.Fatalf("the desktop read %q, %v", hello, err)
	}

	// The page leaving closes the display.
	nc.Close()
	if _, err := display.Read(make([]byte, 1)); err == nil {
		t.Fatal("the display is still open after the page left")
	}
}

func TestRFBDisplayEnds(t *testing.T) {
	b := newFakeBackend()
	ts := startServer(t, b, Options{})
	c, _, err := ts.dial(t, "rfb", ts.origin)
	if err != nil {
		t.Fatal(err)
	}
	(<-b.displays).Close()
	waitClosed(t, c)
}

func TestRFBOpenDisplayFails(t *testing.T) {
	b := newFakeBackend()
	b.err = errBackend
	ts := startServer(t, b, Options{})
	c, _, err := ts.dial(t, "rfb", ts.origin)
	if err != nil {
		t.Fatal(err)
	}
	if st := waitClosed(t, c); st != websocket.StatusTryAgainLater {
		t.Fatalf("closed with %v, want StatusTryAgainLater", st)
	}
}

// TestServeStops checks that cancelling Serve's context closes every
// page's connections and the displays, and leaves no goroutine behind.
func TestServeStops(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b := newFakeBackend()
	ts := startServer(t, b, Options{})
	events := ts.events(t)
	readEvent(t, events)
	rfb, _, err := ts.dial(t, "rfb", ts.origin)
	if err != nil {
		t.Fatal(err)
	}
	display := <-b.displays
	// The pages answer the close handshakes while Serve stops.
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ts.stop()
	}()
	if st := waitClosed(t, events); st != websocket.StatusGoingAway {
		t.Errorf("events closed with %v, want StatusGoingAway", st)
	}
	waitClosed(t, rfb)
	<-stopped
	if _, err := display.Read(make([]byte, 1)); err == nil {
		t.Error("the display is still open after Serve returned")
	}
	if _, _, err := ts.dial(t, "events", ts.origin); err == nil {
		t.Error("dial after Serve returned succeeded")
	}
}

// TestEndedReachesPageOnStop checks the last event published before
// assist join stops reaches the page before its connection closes.
func TestEndedReachesPageOnStop(t *testing.T) {
	ts := startServer(t, newFakeBackend(), Options{})
	events := ts.events(t)
	readEvent(t, events)
	ts.Publish(Event{Type: EventEnded, Text: "Alice stopped sharing"})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ts.stop()
	}()
	if ev := readEvent(t, events); ev.Type != EventEnded || ev.Text != "Alice stopped sharing" {
		t.Fatalf("got %+v, want the ended event", ev)
	}
	if st := waitClosed(t, events); st != websocket.StatusGoingAway {
		t.Errorf("closed with %v, want StatusGoingAway", st)
	}
	<-stopped
}
