package session

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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
	presses map[uint32]*pressLog // keys InjectedPresses watches
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
		if p := g.presses[keysym]; p != nil {
			p.add(g.consent.cfg.Now())
		}
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

// InjectedPresses starts recording the presses of keysym that the gate
// delivers to the desktop, and returns the question a hot-key watcher
// (x11.Display.WatchHotKey) asks about each press of that key the
// desktop reports: is it one the gate delivered, i.e. the expert's? Each
// "yes" accounts for one recorded press.
//
// Asking whether the expert holds the key down would not do: a viewer
// that sends a press and its release back to back (an on-screen Esc
// button, a network burst) has the release through the gate before the
// desktop has even reported the press, and the expert's Esc would take
// control from them. Presses are recorded before they are delivered,
// under the lock the question takes, so a press is always recorded by
// the time the desktop can report it. One the desktop never reports
// (typed into another program's keyboard grab, e.g. to close a menu)
// stays unclaimed for injectedPressTTL, during which one press by the
// novice would be taken for the expert's: the novice presses again.
func (g *Gate) InjectedPresses(keysym uint32) (isInjected func() bool) {
	g.mu.Lock()
	if g.presses == nil {
		g.presses = make(map[uint32]*pressLog)
	}
	p := g.presses[keysym]
	if p == nil {
		p = &pressLog{}
		g.presses[keysym] = p
	}
	g.mu.Unlock()
	return func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return p.claim(g.consent.cfg.Now())
	}
}

// injectedPressTTL is how long a press the gate delivered waits for the
// desktop to report it; a local X server takes well under a millisecond.
const injectedPressTTL = time.Second

// maxPressLog bounds a pressLog against an expert who floods one key.
const maxPressLog = 64

// pressLog is the delivery times of unclaimed presses of one key, oldest
// first; guarded by Gate.mu.
type pressLog struct{ times []time.Time }

func (p *pressLog) add(now time.Time) {
	if len(p.times) == maxPressLog {
		p.times = p.times[1:]
	}
	p.times = append(p.times, now)
}

// claim drops expired presses and accounts for the oldest one left.
func (p *pressLog) claim(now time.Time) bool {
	i := 0
	for i < len(p.times) && now.Sub(p.times[i]) > injectedPressTTL {
		i++
	}
	p.times = p.times[i:]
	if len(p.times) == 0 {
		p.times = nil
		return false
	}
	p.times = p.times[1:]
	return true
}
