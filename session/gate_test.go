package session

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// desk records what reaches the desktop and tracks which keys and
// buttons are down there.
type desk struct {
	mu      sync.Mutex
	log     []string
	down    map[uint32]bool
	buttons uint8
	clip    string
	// sealed: any event now is a failure of the gate.
	sealed atomic.Bool
	t      *testing.T
}

func newDesk(t *testing.T) *desk { return &desk{down: map[uint32]bool{}, t: t} }

func (d *desk) Pointer(x, y int, b uint8) error {
	if d.sealed.Load() {
		d.t.Errorf("pointer (%d,%d,%#x) delivered after take-back returned", x, y, b)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log = append(d.log, fmt.Sprintf("pointer %d,%d %#x", x, y, b))
	d.buttons = b
	return nil
}

func (d *desk) Key(k uint32, down bool) error {
	if d.sealed.Load() {
		d.t.Errorf("key %#x %v delivered after take-back returned", k, down)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log = append(d.log, fmt.Sprintf("key %#x %v", k, down))
	if down {
		d.down[k] = true
	} else {
		delete(d.down, k)
	}
	return nil
}

func (d *desk) SetClipboard(s string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log = append(d.log, "clipboard "+s)
	d.clip = s
	return nil
}

func (d *desk) events() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.log...)
}

func (d *desk) stuck() (int, uint8) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.down), d.buttons
}

func sendAll(g *Gate) {
	g.Pointer(10, 20, 1)
	g.Key(0x61, true)
	g.SetClipboard("hello")
}

func TestGateFollowsConsent(t *testing.T) {
	d := newDesk(t)
	c := NewConsent(Config{})
	g := NewGate(c, d, d, nil)

	for _, s := range []State{Waiting, Asking, Viewing, ControlAsked} {
		c2 := NewConsent(Config{})
		g2 := NewGate(c2, d, d, nil)
		reach(t, c2, s)
		sendAll(g2)
		if got := g2.Dropped(); got != (Drops{Pointer: 1, Key: 1, Clipboard: 1}) {
			t.Errorf("%s: dropped %+v", s, got)
		}
	}
	if len(d.events()) != 0 {
		t.Fatalf("delivered before control: %v", d.events())
	}

	reach(t, c, Controlling)
	sendAll(g)
	g.Key(0x61, false)
	g.Pointer(10, 20, 0)
	want := []string{"pointer 10,20 0x1", "key 0x61 true", "key 0x61 false", "pointer 10,20 0x0"}
	if got := d.events(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if got := g.Dropped(); got != (Drops{Clipboard: 1}) {
		t.Fatalf("dropped %+v (clipboard right not granted)", got)
	}

	if err := c.TakeBackControl(); err != nil {
		t.Fatal(err)
	}
	n := len(d.events())
	sendAll(g)
	if len(d.events()) != n {
		t.Fatalf("delivered after take-back: %v", d.events()[n:])
	}
	if got := g.Dropped(); got != (Drops{Pointer: 1, Key: 1, Clipboard: 2}) {
		t.Fatalf("dropped %+v", got)
	}
}

func TestGateClipboardRight(t *testing.T) {
	d := newDesk(t)
	c := NewConsent(Config{})
	g := NewGate(c, d, d, nil)
	if err := c.SetClipboard(true); err != nil {
		t.Fatal(err)
	}
	g.SetClipboard("too early") // granted, but nobody views yet
	reach(t, c, Viewing)
	g.SetClipboard("copied")
	g.Key(0x61, true)
	if err := c.SetClipboard(false); err != nil {
		t.Fatal(err)
	}
	g.SetClipboard("revoked")
	if got := d.events(); fmt.Sprint(got) != "[clipboard copied]" {
		t.Fatalf("delivered %v", got)
	}
	if got := g.Dropped(); got != (Drops{Key: 1, Clipboard: 2}) {
		t.Fatalf("dropped %+v", got)
	}
}

func TestGateNilInjector(t *testing.T) {
	c := NewConsent(Config{Clipboard: true})
	g := NewGate(c, nil, nil, nil)
	reach(t, c, Controlling)
	sendAll(g)
	if err := c.TakeBackControl(); err != nil {
		t.Fatal(err)
	}
	if got := g.Dropped(); got != (Drops{Pointer: 1, Key: 1, Clipboard: 1}) {
		t.Fatalf("dropped %+v", got)
	}
}

func TestGateReleasesHeldInput(t *testing.T) {
	for _, end := range []struct {
		name string
		do   func(*Consent) error
	}{
		{"take-back", (*Consent).TakeBackControl},
		{"end", func(c *Consent) error { return c.End("novice stopped") }},
	} {
		t.Run(end.name, func(t *testing.T) {
			d := newDesk(t)
			c := NewConsent(Config{})
			g := NewGate(c, d, d, nil)
			reach(t, c, Controlling)
			g.Key(0xffe1, true) // Shift_L
			g.Key(0x61, true)
			g.Key(0x62, true)
			g.Key(0x62, false)
			g.Pointer(5, 6, 0x1|0x4)
			g.Pointer(7, 8, 0x1|0x4)
			if err := end.do(c); err != nil {
				t.Fatal(err)
			}
			if n, b := d.stuck(); n != 0 || b != 0 {
				t.Fatalf("after %s: %d keys down, buttons %#x; log %v", end.name, n, b, d.events())
			}
			evs := d.events()
			if last := evs[len(evs)-1]; last != "pointer 7,8 0x0" {
				t.Fatalf("last event %q, want the pointer released where it was", last)
			}
		})
	}
}

func TestGateHeldKeyLimit(t *testing.T) {
	d := newDesk(t)
	c := NewConsent(Config{})
	g := NewGate(c, d, d, nil)
	reach(t, c, Controlling)
	for k := range uint32(MaxHeldKeys + 10) {
		g.Key(k, true)
	}
	g.Key(0, true) // already held: still delivered
	if got := g.Dropped(); got.KeyOverflow != 10 {
		t.Fatalf("dropped %+v", got)
	}
	if err := c.TakeBackControl(); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.stuck(); n != 0 {
		t.Fatalf("%d keys stuck", n)
	}
}

type failingDesk struct{ *desk }

func (failingDesk) Key(uint32, bool) error { return errors.New("xtest gone") }

func TestGateInjectorErrors(t *testing.T) {
	d := failingDesk{newDesk(t)}
	c := NewConsent(Config{})
	g := NewGate(c, d, d, slog.New(slog.DiscardHandler))
	reach(t, c, Controlling)
	if err := g.Key(0x61, true); err == nil {
		t.Fatal("injector error swallowed")
	}
	// The failed press still counts as held; the release fails too,
	// which is logged, and the take-back still happens.
	if err := c.TakeBackControl(); err != nil {
		t.Fatal(err)
	}
	if c.State() != Viewing {
		t.Fatalf("state %s", c.State())
	}
}

// TestGateRaceTakeBack hammers the gate from several goroutines while the
// novice takes control back: once TakeBackControl has returned, the desk
// must see nothing more, and nothing may be left pressed.
func TestGateRaceTakeBack(t *testing.T) {
	for round := range 20 {
		d := newDesk(t)
		c := NewConsent(Config{})
		g := NewGate(c, d, d, nil)
		reach(t, c, Controlling)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					k := uint32(w*1000 + i%7)
					g.Key(k, i%2 == 0)
					g.Pointer(i, w, uint8(i%3))
				}
			})
		}
		for len(d.events()) < 100 {
			runtime.Gosched() // let the writers get going
		}
		if err := c.TakeBackControl(); err != nil {
			t.Fatal(err)
		}
		d.sealed.Store(true)
		if n, b := d.stuck(); n != 0 || b != 0 {
			t.Fatalf("round %d: %d keys down, buttons %#x after take-back", round, n, b)
		}
		before := g.Dropped()
		for g.Dropped().Key < before.Key+100 {
			runtime.Gosched() // and keep trying after it
		}
		close(stop)
		wg.Wait()
	}
}
