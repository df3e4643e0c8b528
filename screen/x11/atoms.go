package x11

import (
	"fmt"

	"github.com/jezek/xgb/xproto"
)

// atoms are the interned names the clipboard code uses.
type atoms struct {
	clipboard  xproto.Atom // CLIPBOARD
	targets    xproto.Atom // TARGETS
	utf8String xproto.Atom // UTF8_STRING
	text       xproto.Atom // TEXT
	incr       xproto.Atom // INCR
	property   xproto.Atom // _ASSIST_SELECTION: where converted text lands on our window
}

// internAtoms interns all atoms with one round trip's worth of latency by
// sending every request before reading any reply.
func (d *Display) internAtoms() error {
	names := []struct {
		name string
		dst  *xproto.Atom
	}{
		{"CLIPBOARD", &d.atoms.clipboard},
		{"TARGETS", &d.atoms.targets},
		{"UTF8_STRING", &d.atoms.utf8String},
		{"TEXT", &d.atoms.text},
		{"INCR", &d.atoms.incr},
		{"_ASSIST_SELECTION", &d.atoms.property},
	}
	cookies := make([]xproto.InternAtomCookie, len(names))
	for i, n := range names {
		cookies[i] = xproto.InternAtom(d.conn, false, uint16(len(n.name)), n.name)
	}
	for i, n := range names {
		r, err := cookies[i].Reply()
		if err != nil {
			return fmt.Errorf("intern atom %s: %w", n.name, err)
		}
		*n.dst = r.Atom
	}
	return nil
}
