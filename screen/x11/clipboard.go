package x11

import (
	"fmt"
	"strings"

	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"
)

// maxClipboardRead bounds how much converted text is read in one go.
const maxClipboardRead = 16 << 20

// clipState is the clipboard's side of Display.mu's state.
type clipState struct {
	// text is what we answer selection requests with while we own
	// CLIPBOARD or PRIMARY (SetClipboard).
	text                     string
	ownClipboard, ownPrimary bool
	// fetch is set when converted text waits in our window's property
	// for Next to read it.
	fetch *fetchRequest
}

// fetchRequest describes text the owner has put on our window.
type fetchRequest struct {
	target xproto.Atom // UTF8_STRING or STRING
}

// selectionOwnerChanged asks a new CLIPBOARD owner for its text. Our own
// ownership changes are not reported back.
func (d *Display) selectionOwnerChanged(e xfixes.SelectionNotifyEvent) {
	if e.Selection != d.atoms.clipboard || e.Owner == d.win || e.Owner == xproto.WindowNone {
		return
	}
	xproto.ConvertSelection(d.conn, d.win, d.atoms.clipboard, d.atoms.utf8String, d.atoms.property, e.SelectionTimestamp)
}

// selectionConverted handles the owner's answer to ConvertSelection.
func (d *Display) selectionConverted(e xproto.SelectionNotifyEvent) {
	if e.Requestor != d.win || e.Selection != d.atoms.clipboard {
		return
	}
	if e.Property == xproto.AtomNone {
		// Old clients only know Latin-1 STRING.
		if e.Target == d.atoms.utf8String {
			xproto.ConvertSelection(d.conn, d.win, d.atoms.clipboard, xproto.AtomString, d.atoms.property, e.Time)
		}
		return
	}
	d.clip.fetch = &fetchRequest{target: e.Target}
}

// fetchSelection reads (and deletes) converted text from our window. It
// makes a round trip, so it runs in Next, not in the event loop.
func (d *Display) fetchSelection(req *fetchRequest) (string, bool) {
	rep, err := xproto.GetProperty(d.conn, true, d.win, d.atoms.property,
		xproto.GetPropertyTypeAny, 0, maxClipboardRead/4).Reply()
	if err != nil || rep.Format != 8 {
		return "", false
	}
	switch rep.Type {
	case d.atoms.utf8String, d.atoms.text:
		return strings.ToValidUTF8(string(rep.Value), "\uFFFD"), true
	case xproto.AtomString:
		return latin1ToUTF8(rep.Value), true
	}
	// INCR (text over the owner's request size limit, typically
	// >256 KiB) is not supported: deleting the property above ends the
	// transfer on the owner's side.
	return "", false
}

// SetClipboard puts text on the desktop's CLIPBOARD and PRIMARY
// selections. Applications then read it from our hidden window.
func (d *Display) SetClipboard(text string) error {
	d.mu.Lock()
	d.clip.text = text
	d.clip.ownClipboard, d.clip.ownPrimary = true, true
	d.mu.Unlock()
	xproto.SetSelectionOwner(d.conn, d.win, d.atoms.clipboard, xproto.TimeCurrentTime)
	xproto.SetSelectionOwner(d.conn, d.win, xproto.AtomPrimary, xproto.TimeCurrentTime)
	rep, err := xproto.GetSelectionOwner(d.conn, d.atoms.clipboard).Reply()
	if err != nil {
		return fmt.Errorf("x11: set clipboard: %w", err)
	}
	if rep.Owner != d.win {
		return fmt.Errorf("x11: set clipboard: window %#x took CLIPBOARD at the same time", rep.Owner)
	}
	return nil
}

// selectionCleared notes that another client took one of our selections.
func (d *Display) selectionCleared(e xproto.SelectionClearEvent) {
	switch e.Selection {
	case d.atoms.clipboard:
		d.clip.ownClipboard = false
	case xproto.AtomPrimary:
		d.clip.ownPrimary = false
	}
	if !d.clip.ownClipboard && !d.clip.ownPrimary {
		d.clip.text = "" // don't keep the expert's text around
	}
}

// answerSelectionRequest serves our text to a client that pastes it. It
// only sends requests (no round trip), as the event loop must.
func (d *Display) answerSelectionRequest(e xproto.SelectionRequestEvent) {
	prop := e.Property
	if prop == xproto.AtomNone {
		prop = e.Target // ICCCM: obsolete clients leave the property None
	}
	owned := e.Owner == d.win &&
		(e.Selection == d.atoms.clipboard && d.clip.ownClipboard ||
			e.Selection == xproto.AtomPrimary && d.clip.ownPrimary)
	if !owned || !d.putSelection(e.Requestor, prop, e.Target) {
		prop = xproto.AtomNone
	}
	ev := xproto.SelectionNotifyEvent{
		Time:      e.Time,
		Requestor: e.Requestor,
		Selection: e.Selection,
		Target:    e.Target,
		Property:  prop,
	}
	xproto.SendEvent(d.conn, false, e.Requestor, xproto.EventMaskNoEvent, string(ev.Bytes()))
}

// putSelection stores our text converted to target in the requestor's
// property and reports whether the target is supported.
func (d *Display) putSelection(win xproto.Window, prop, target xproto.Atom) bool {
	var typ xproto.Atom
	var data []byte
	switch target {
	case d.atoms.targets:
		list := []xproto.Atom{d.atoms.targets, d.atoms.utf8String, xproto.AtomString, d.atoms.text}
		data = make([]byte, 4*len(list))
		for i, a := range list {
			putUint32LE(data[4*i:], uint32(a))
		}
		xproto.ChangeProperty(d.conn, xproto.PropModeReplace, win, prop, xproto.AtomAtom, 32, uint32(len(list)), data)
		return true
	case d.atoms.utf8String, d.atoms.text:
		typ, data = d.atoms.utf8String, []byte(d.clip.text)
	case xproto.AtomString:
		typ, data = xproto.AtomString, utf8ToLatin1(d.clip.text)
	default:
		return false
	}
	// Text that does not fit one request would need the INCR protocol,
	// which is not implemented: refuse rather than truncate.
	if len(data) > d.maxReqBytes-24 {
		return false
	}
	xproto.ChangeProperty(d.conn, xproto.PropModeReplace, win, prop, typ, 8, uint32(len(data)), data)
	return true
}

// putUint32LE writes v in the byte order xgb speaks (it always announces
// a little-endian client).
func putUint32LE(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// latin1ToUTF8 decodes ISO 8859-1 (the STRING type).
func latin1ToUTF8(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// utf8ToLatin1 encodes s as ISO 8859-1, replacing what it cannot hold
// with '?'.
func utf8ToLatin1(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			r = '?'
		}
		out = append(out, byte(r))
	}
	return out
}
