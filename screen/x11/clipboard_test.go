package x11

import (
	"context"
	"image"
	"testing"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/assist-project/assist/screen"
)

func (cl *client) atom(name string) xproto.Atom {
	cl.t.Helper()
	rep, err := xproto.InternAtom(cl.c, false, uint16(len(name)), name).Reply()
	if err != nil {
		cl.t.Fatal(err)
	}
	return rep.Atom
}

// paste converts selection to target on win and returns the reply's
// type and bytes, or ok false if the owner refused.
func (cl *client) paste(win xproto.Window, selection, target xproto.Atom) (typ xproto.Atom, data []byte, ok bool) {
	cl.t.Helper()
	prop := cl.atom("TEST_PASTE")
	xproto.ConvertSelection(cl.c, win, selection, target, prop, xproto.TimeCurrentTime)
	ev := cl.nextEvent(func(ev xgb.Event) bool {
		e, ok := ev.(xproto.SelectionNotifyEvent)
		return ok && e.Requestor == win && e.Target == target
	}).(xproto.SelectionNotifyEvent)
	if ev.Property == xproto.AtomNone {
		return 0, nil, false
	}
	rep, err := xproto.GetProperty(cl.c, true, win, ev.Property, xproto.GetPropertyTypeAny, 0, 1<<20).Reply()
	if err != nil {
		cl.t.Fatal(err)
	}
	return rep.Type, rep.Value, true
}

func TestSetClipboard(t *testing.T) {
	disp := startXvfb(t, "320x240x24")
	d := openTest(t, disp, options{})
	cl := newClient(t, disp)
	win := cl.window(image.Rect(0, 0, 10, 10), xproto.EventMaskPropertyChange, 0)
	clipboard, utf8 := cl.atom("CLIPBOARD"), cl.atom("UTF8_STRING")

	const text = "héllo ✓ wörld"
	if err := d.SetClipboard(text); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []xproto.Atom{clipboard, xproto.AtomPrimary} {
		typ, data, ok := cl.paste(win, sel, utf8)
		if !ok || typ != utf8 || string(data) != text {
			t.Errorf("selection %d UTF8_STRING: ok %v type %d %q", sel, ok, typ, data)
		}
	}
	typ, data, ok := cl.paste(win, clipboard, xproto.AtomString)
	if want := "h\xe9llo ? w\xf6rld"; !ok || typ != xproto.AtomString || string(data) != want {
		t.Errorf("STRING: ok %v type %d %q, want %q", ok, typ, data, want)
	}
	typ, data, ok = cl.paste(win, clipboard, cl.atom("TEXT"))
	if !ok || typ != utf8 || string(data) != text {
		t.Errorf("TEXT: ok %v type %d %q", ok, typ, data)
	}
	typ, data, ok = cl.paste(win, clipboard, cl.atom("TARGETS"))
	if !ok || typ != xproto.AtomAtom || len(data) != 16 {
		t.Fatalf("TARGETS: ok %v type %d %d bytes", ok, typ, len(data))
	}
	found := false
	for i := 0; i < len(data); i += 4 {
		found = found || xproto.Atom(xgb.Get32(data[i:])) == utf8
	}
	if !found {
		t.Errorf("TARGETS %v lacks UTF8_STRING", data)
	}
	if _, _, ok := cl.paste(win, clipboard, cl.atom("image/png")); ok {
		t.Error("image/png: not refused")
	}

	// Our own change is not reported back: the damage drawn afterwards
	// arrives with no clipboard change before it.
	r := image.Rect(5, 5, 20, 20)
	cl.fill(r, 0x010203)
	waitChange(t, d, func(ch screen.Change) bool {
		if ch.Clipboard {
			t.Fatalf("own clipboard reported back: %q", ch.Text)
		}
		return covers(ch.Damage, r)
	})
}

func TestClipboardFromDesktop(t *testing.T) {
	disp := startXvfb(t, "320x240x24")
	d := openTest(t, disp, options{})
	if err := d.SetClipboard("from the expert"); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, disp)
	win := cl.window(image.Rect(0, 0, 10, 10), 0, 0)
	clipboard, utf8 := cl.atom("CLIPBOARD"), cl.atom("UTF8_STRING")

	for _, tc := range []struct {
		name   string
		target xproto.Atom // the only target the owner supports
		data   string
		want   string
	}{
		{"UTF8_STRING", utf8, "Grüße, 世界", "Grüße, 世界"},
		{"STRING only", xproto.AtomString, "caf\xe9", "café"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xproto.SetSelectionOwner(cl.c, win, clipboard, xproto.TimeCurrentTime)
			cl.sync()
			got := make(chan string, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for {
					ch, err := d.Next(ctx)
					if err != nil {
						close(got)
						return
					}
					if ch.Clipboard {
						got <- ch.Text
						return
					}
				}
			}()
			for {
				var req xproto.SelectionRequestEvent
				select {
				case text, ok := <-got:
					if !ok {
						t.Fatal("Next failed")
					}
					if text != tc.want {
						t.Fatalf("clipboard %q, want %q", text, tc.want)
					}
					return
				case ev := <-cl.events:
					r, ok := ev.(xproto.SelectionRequestEvent)
					if !ok {
						continue
					}
					req = r
				}
				prop := req.Property
				if req.Target == tc.target {
					xproto.ChangeProperty(cl.c, xproto.PropModeReplace, req.Requestor, prop, tc.target, 8,
						uint32(len(tc.data)), []byte(tc.data))
				} else {
					prop = xproto.AtomNone
				}
				ev := xproto.SelectionNotifyEvent{Time: req.Time, Requestor: req.Requestor,
					Selection: req.Selection, Target: req.Target, Property: prop}
				xproto.SendEvent(cl.c, false, req.Requestor, 0, string(ev.Bytes()))
				cl.sync()
			}
		})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.clip.ownClipboard || d.clip.text != "" && !d.clip.ownPrimary {
		t.Errorf("after losing CLIPBOARD: own %v text %q", d.clip.ownClipboard, d.clip.text)
	}
}
