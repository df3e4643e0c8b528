package session

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/assist-project/assist/screen"
)

// MaxHeldKeys bounds how many distinct keys the expert may hold down at
// once; a real keyboard has fewer keycodes. Further key presses are
// dropped, so the set the gate must release stays small.
const MaxHeldKeys = 128

// Drops counts the input events a Gate refused, by kind.
type Drops struct {
	Pointer   uint64
	Key       uint64
	Clipboard uint64
	// KeyOverflow counts key presses dropped because MaxHeldKeys keys
	// were already held.
	KeyOverflow uint64
}

// Gate is the only path from the network to the desktop's input: a
// screen.Injector and screen.Clipboard that consults the Consent on every
// event. Pointer and key events pass only while the expert has control,
// clipboard text only with the clipboard right; everything else is
// dropped, counted, and reported to the caller as success (a dropped
// event is policy, not a fault of the connection).
//
// Each event is checked and delivered under one lock, and the Consent
// takes that lock (through a guard) when control is lost, so once
// TakeBackControl or End returns, no event that was in flight can still
// be delivered, and the keys and buttons the expert held have been
// released.
type Gate struct {
	consent *Consent
	in      screen.Injector
	clip    screen.Clipboard
	log     *slog.Logger

	mu      sync.Mutex
	held    map[uint32]struct{}
	x, y    int
	buttons uint8

	pointer, key, clipboard, overflow atomic.Uint64
}

var (
	_ screen.Injector  = (*Gate)(nil)
	_ screen.Clipboard = (*Gate)(nil)
)

// NewGate wraps the real injector and clipboard (either may be nil: its
// events are then always dropped) behind c. log receives errors from
// releasing held keys; nil means slog.Default().
func NewGate(c *Consent, in screen.Injector, clip screen.Clipboard, log *slog.Logger) *Gate {
	if log == nil {
		log = slog.Default()
	}
	g := &Gate{consent: c, in: in, clip: clip, log: log, held: make(map[uint32]struct{})}
	c.guard(g.onTransition)
	return g
}

// Pointer forwards a pointer event while the expert has control.
func (g *Gate) Pointer(x, y int, buttons uint8) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.in == nil || !g.consent.Rights().Has(RightControl) {
		g.pointer.Add(1)
		return nil
	}
	g.x, g.y, g.buttons = x, y, buttons
	if err := g.in.Pointer(x, y, buttons); err != nil {
		return fmt.Errorf("session: gate: pointer: %w", err)
	}
	return nil
}

// Key forwards a key event while the expert has control, remembering
// which keys are down so they can be released when control ends.
func (g *Gate) Key(keysym uint32, down bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.in == nil || !g.consent.Rights().Has(RightControl) {
		g.key.Add(1)
		return nil
	}
	if down {
		if _, ok := g.held[keysym]; !ok && len(g.held) >= MaxHeldKeys {
			g.overflow.Add(1)
			return nil
		}
		// Recorded even if injection fails: the key may be down anyway,
		// and a needless release is harmless.
		g.held[keysym] = struct{}{}
	} else {
		delete(g.held, keysym)
	}
	if err := g.in.Key(keysym, down); err != nil {
		return fmt.Errorf("session: gate: key %#x: %w", keysym, err)
	}
	return nil
}

// SetClipboard forwards the expert's clipboard text while the expert has
// the clipboard right.
func (g *Gate) SetClipboard(text string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.clip == nil || !g.consent.Rights().Has(RightClipboard) {
		g.clipboard.Add(1)
		return nil
	}
	if err := g.clip.SetClipboard(text); err != nil {
		return fmt.Errorf("session: gate: clipboard: %w", err)
	}
	return nil
}

// Dropped returns how many events the gate refused so far.
func (g *Gate) Dropped() Drops {
	return Drops{
		Pointer:     g.pointer.Load(),
		Key:         g.key.Load(),
		Clipboard:   g.clipboard.Load(),
		KeyOverflow: g.overflow.Load(),
	}
}

// onTransition runs with the Consent locked, after its rights changed.
// Taking g.mu waits for an event being delivered under the old rights;
// later events see the new rights and are dropped.
func (g *Gate) onTransition(ev Event) {
	if ev.Rights.Has(RightControl) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.releaseLocked(); err != nil {
		g.log.Warn("session: gate: releasing the expert's keys", "err", err)
	}
}

// releaseLocked lifts every key and button the expert holds, so nothing
// stays stuck on the novice's desktop when control ends.
func (g *Gate) releaseLocked() error {
	if g.in == nil {
		return nil
	}
	var errs []error
	for k := range g.held {
		if err := g.in.Key(k, false); err != nil {
			errs = append(errs, fmt.Errorf("key %#x: %w", k, err))
		}
	}
	clear(g.held)
	if g.buttons != 0 {
		if err := g.in.Pointer(g.x, g.y, 0); err != nil {
			errs = append(errs, fmt.Errorf("pointer: %w", err))
		}
		g.buttons = 0
	}
	return errors.Join(errs...)
}
