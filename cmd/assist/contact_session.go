package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/transport"
)

// sessionFlags are the options of the session that an accepted request
// starts: the novice's side takes those of assist invite, the expert's
// those of assist join.
type sessionFlags struct {
	display        *string
	noPage         *bool
	rfb            *string
	noBrowser      *bool
	requestControl *bool
}

func addSessionFlags(fs *flag.FlagSet) sessionFlags {
	return sessionFlags{
		display:        fs.String("display", "", "novice: the X display to share (default $DISPLAY)"),
		noPage:         fs.Bool("no-page", false, "novice: no local page, answer in this terminal"),
		rfb:            fs.String("rfb", "127.0.0.1:0", "expert: loopback address for local VNC viewers (port 0 picks a free one)"),
		noBrowser:      fs.Bool("no-browser", false, "expert: do not open the browser viewer (its address is still printed)"),
		requestControl: fs.Bool("request-control", false, "expert: ask for control as soon as viewing starts"),
	}
}

// contactSession is what an accepted request gives to start the session.
type contactSession struct {
	server, fingerprint string
	sid                 string // the request's session id: the signalling id
	password            string // pairing.SessionSecret of the two device keys
	peer                string // the other side's display name
	role                string // messenger.RoleNovice or messenger.RoleExpert
	flags               sessionFlags
}

// startContactSession runs this side of the session of an accepted request:
// the novice's side as assist invite --server does (runKeyedNovice), the
// expert's as assist join does (runKeyedExpert).
func startContactSession(ctx context.Context, stdout io.Writer, s contactSession) error {
	ks := keyedSession{Server: s.server, Fingerprint: s.fingerprint, SID: s.sid, Password: s.password, Peer: s.peer}
	if s.role == messenger.RoleNovice {
		d := *s.flags.display
		if d == "" {
			d = os.Getenv("DISPLAY")
		}
		return runKeyedNovice(ctx, os.Stdin, stdout, ks, noviceOptions{Name: defaultName(), Allow: "ask", Display: d,
			AnswerTimeout: session.DefaultAnswerTimeout, DenyCooldown: transport.DefaultDenyCooldown, NoPage: *s.flags.noPage})
	}
	return runKeyedExpert(ctx, stdout, ks, expertOptions{RFB: *s.flags.rfb, NoBrowser: *s.flags.noBrowser,
		RequestControl: *s.flags.requestControl, Name: defaultName()})
}
