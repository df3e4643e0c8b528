package lab

import (
	"fmt"
	"image"
	"sync"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// KeyEvent is one key press or release as an X client receives it.
type KeyEvent struct {
	Press  bool
	Keysym uint32 // the keycode's first keysym in the server's keymap
}

func (e KeyEvent) String() string {
	if e.Press {
		return fmt.Sprintf("+%#x", e.Keysym)
	}
	return fmt.Sprintf("-%#x", e.Keysym)
}

// KeyLog is a window on an X display that holds the input focus and
// records every key event it receives: what a remote session's injected
// keys look like to an application, read without xev or xdotool.
type KeyLog struct {
	mu     sync.Mutex
	events []KeyEvent
	added  chan struct{} // signalled (not closed) on every event
}

// StartKeyLog opens a window of the given rectangle on x, maps it, gives
// it the input focus and records its key events until cleanup.
func (x *X) StartKeyLog(t testing.TB, r image.Rectangle) *KeyLog {
	t.Helper()
	c, err := xgb.NewConnDisplay(x.Display)
	if err != nil {
		t.Fatalf("lab: key log: connect to %s: %v", x.Display, err)
	}
	setup := xproto.Setup(c)
	scr := setup.DefaultScreen(c)
	km, err := xproto.GetKeyboardMapping(c, setup.MinKeycode, byte(setup.MaxKeycode-setup.MinKeycode+1)).Reply()
	if err != nil {
		c.Close()
		t.Fatalf("lab: key log: keyboard mapping: %v", err)
	}
	// The injector may map a keysym the keymap lacks to a spare keycode
	// at any time, so the mapping is read again after MappingNotify.
	keysym := func(code xproto.Keycode) uint32 {
		i := int(code-setup.MinKeycode) * int(km.KeysymsPerKeycode)
		if i < 0 || i >= len(km.Keysyms) {
			return 0
		}
		return uint32(km.Keysyms[i])
	}
	wid, err := xproto.NewWindowId(c)
	if err != nil {
		c.Close()
		t.Fatalf("lab: key log: %v", err)
	}
	xproto.CreateWindow(c, scr.RootDepth, wid, scr.Root, int16(r.Min.X), int16(r.Min.Y), uint16(r.Dx()), uint16(r.Dy()), 0,
		xproto.WindowClassInputOutput, scr.RootVisual, xproto.CwBackPixel|xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{0x203040, 1, xproto.EventMaskKeyPress | xproto.EventMaskKeyRelease | xproto.EventMaskStructureNotify})
	xproto.MapWindow(c, wid)
	k := &KeyLog{added: make(chan struct{}, 1)}
	mapped := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var once sync.Once
		for {
			ev, err := c.WaitForEvent()
			if ev == nil && err == nil {
				return // connection closed
			}
			switch e := ev.(type) {
			case xproto.MappingNotifyEvent:
				if m, err := xproto.GetKeyboardMapping(c, setup.MinKeycode, byte(setup.MaxKeycode-setup.MinKeycode+1)).Reply(); err == nil {
					km = m
				}
			case xproto.MapNotifyEvent:
				once.Do(func() { close(mapped) })
			case xproto.KeyPressEvent:
				k.add(KeyEvent{Press: true, Keysym: keysym(e.Detail)})
			case xproto.KeyReleaseEvent:
				k.add(KeyEvent{Keysym: keysym(e.Detail)})
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	select {
	case <-mapped:
	case <-time.After(10 * time.Second):
		t.Fatal("lab: key log: the window was never mapped")
	}
	if err := xproto.SetInputFocusChecked(c, xproto.InputFocusPointerRoot, wid, xproto.TimeCurrentTime).Check(); err != nil {
		t.Fatalf("lab: key log: focus: %v", err)
	}
	return k
}

func (k *KeyLog) add(e KeyEvent) {
	k.mu.Lock()
	k.events = append(k.events, e)
	k.mu.Unlock()
	select {
	case k.added <- struct{}{}:
	default:
	}
}

// Events returns what the window received so far.
func (k *KeyLog) Events() []KeyEvent {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]KeyEvent(nil), k.events...)
}

// Reset forgets the events received so far.
func (k *KeyLog) Reset() {
	k.mu.Lock()
	k.events = nil
	k.mu.Unlock()
}

// Wait waits until the window has received at least n events and
// returns them, or fails t after timeout.
func (k *KeyLog) Wait(t testing.TB, n int, timeout time.Duration) []KeyEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if evs := k.Events(); len(evs) >= n {
			return evs
		}
		select {
		case <-k.added:
		case <-deadline:
			t.Fatalf("lab: key log: %d key events after %v, want %d: %v", len(k.Events()), timeout, n, k.Events())
		}
	}
}
