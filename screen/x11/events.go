package x11

import (
	"context"
	"errors"
	"fmt"
	"image"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/damage"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"

	"github.com/assist-project/assist/screen"
)

// errClosed is what Next returns after Close.
var errClosed = errors.New("x11: display closed")

// eventLoop reads events until the connection closes. It folds each
// batch of already queued events into d.state under one lock and then
// wakes Next, so the first event of a burst is seen at once and the rest
// of the burst rides along.
func (d *Display) eventLoop() {
	defer close(d.loopDone)
	for {
		ev, xerr := d.conn.WaitForEvent()
		if ev == nil && xerr == nil {
			d.mu.Lock()
			if d.err == nil {
				d.err = fmt.Errorf("x11: connection to display %q closed", d.name)
			}
			d.mu.Unlock()
			d.signal()
			return
		}
		d.mu.Lock()
		for {
			if ev != nil {
				d.handle(ev)
			}
			// X errors here answer requests nobody waits on (e.g. a
			// SendEvent to a requestor that has gone); nothing to do.
			ev, xerr = d.conn.PollForEvent()
			if ev == nil && xerr == nil {
				break
			}
		}
		d.mu.Unlock()
		d.signal()
	}
}

// signal wakes a Next that is waiting.
func (d *Display) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// handle applies one event to d.state. Called with d.mu held, from the
// event loop; it must not wait for replies (see the package comment).
func (d *Display) handle(ev xgb.Event) {
	switch e := ev.(type) {
	case damage.NotifyEvent:
		a := e.Area
		r := image.Rect(int(a.X), int(a.Y), int(a.X)+int(a.Width), int(a.Y)+int(a.Height))
		d.state.damage.add(r.Intersect(image.Rectangle{Max: d.size}))
	case xfixes.CursorNotifyEvent:
		d.state.cursorChanged = true
	case randr.ScreenChangeNotifyEvent:
		if e.Root != d.root {
			return
		}
		w, h := int(e.Width), int(e.Height)
		// Like Xlib's XRRUpdateConfiguration: the event reports the
		// unrotated size.
		if e.Rotation&(randr.RotationRotate90|randr.RotationRotate270) != 0 {
			w, h = h, w
		}
		if sz := image.Pt(w, h); sz != d.size {
			d.size = sz
			d.state.resized = true
			d.state.damage.clip(image.Rectangle{Max: sz})
			d.state.damage.add(image.Rectangle{Max: sz})
		}
	case xproto.MappingNotifyEvent:
		if e.Request == xproto.MappingKeyboard {
			d.state.keymapStale = true
			d.keymapChanged()
		}
	case xproto.KeyPressEvent:
		d.keyPressed(e)
	case xfixes.SelectionNotifyEvent:
		d.selectionOwnerChanged(e)
	case xproto.SelectionNotifyEvent:
		d.selectionConverted(e)
	case xproto.SelectionRequestEvent:
		d.answerSelectionRequest(e)
	case xproto.SelectionClearEvent:
		d.selectionCleared(e)
	}
}

// Next blocks until the screen changed, then returns everything that
// changed since the last call: merged damage, resize, cursor, clipboard.
func (d *Display) Next(ctx context.Context) (screen.Change, error) {
	for {
		d.mu.Lock()
		if d.err != nil {
			err := d.err
			d.mu.Unlock()
			return screen.Change{}, err
		}
		if d.clip.fetch != nil {
			req := d.clip.fetch
			d.clip.fetch = nil
			d.mu.Unlock()
			text, ok := d.fetchSelection(req)
			d.mu.Lock()
			if ok {
				d.state.clipboard = true
				d.state.text = text
			}
		}
		ch, ok := d.takeLocked()
		d.mu.Unlock()
		if ok {
			return ch, nil
		}
		select {
		case <-ctx.Done():
			return screen.Change{}, ctx.Err()
		case <-d.wake:
		}
	}
}

// takeLocked moves the pending changes into a Change.
func (d *Display) takeLocked() (screen.Change, bool) {
	s := &d.state
	if len(s.damage.rects) == 0 && !s.resized && !s.cursorChanged && !s.clipboard {
		return screen.Change{}, false
	}
	ch := screen.Change{
		Damage:        s.damage.take(),
		Resized:       s.resized,
		Size:          d.size,
		CursorChanged: s.cursorChanged,
		Clipboard:     s.clipboard,
		Text:          s.text,
	}
	s.resized, s.cursorChanged, s.clipboard, s.text = false, false, false, ""
	return ch, true
}
