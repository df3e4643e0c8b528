package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/novicepage"
	"github.com/assist-project/assist/rendezvous"
	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/transport"
)

// Keyed sessions: the session after a request the messenger's peer
// accepted (assist ask, assist offer, assist requests). Both devices got the
// session id (SID) from the server, and each derives the same password from
// its own device key and the peer's pinned key (pairing.SessionSecret), which
// the server cannot. The novice's device registers SID like assist invite
// registers its code, the expert's device joins it like assist join joins a
// code: the same paths (WebRTC through the server, direct where ICE finds
// it, TURN, ICE restarts), the same CPace bound to the DTLS fingerprints,
// the same consent questions. There is no code to print and no file.

// keyedSession is what both sides of a keyed session know.
type keyedSession struct {
	// Server and Fingerprint are the rendezvous server (the messenger's)
	// and its certificate pin ("sha256:HEX"; "" for the system's CAs).
	Server, Fingerprint string
	// SID is the session id of the "accepted" message: "r-" and 26
	// base32 characters. It is the pairing's capability: never logged.
	SID string
	// Password is pairing.SessionSecret(myKey, peerKey, SID).
	Password string
	// Peer is the peer's display name as this device knows the contact.
	Peer string
	// Expires is when the expert's device must have connected by; an
	// expert who has not is not let in. Zero: keyedSessionTTL from now.
	// The registration at the server lasts longer (keyedResumeFor), so
	// that a running session can still resume through the server after
	// losing it (resume.go).
	Expires time.Time
}

// keyedResumeFor is how long the novice's device keeps its registration
// (while its session runs: it leaves when the session ends), so that the
// expert's device can join again and resume the session after the server
// restarted or a network dropped the signalling.
const keyedResumeFor = 12 * time.Hour

// keyedSessionTTL is a keyed session's registration when the caller
// gives no expiry: assist invite's default.
const keyedSessionTTL = time.Hour

// withDefaults fills in the expiry.
func (ks keyedSession) withDefaults() keyedSession {
	if ks.Expires.IsZero() {
		ks.Expires = time.Now().Add(keyedSessionTTL)
	}
	return ks
}

// keyedJoinWait is how long the expert's device keeps joining while the
// novice's has not registered SID yet: both learn it at the same moment.
const keyedJoinWait = 30 * time.Second

func (ks keyedSession) check() error {
	if ks.Server == "" {
		return errors.New("no server for this session: log in again (assist login URL)")
	}
	if !validSID(ks.SID) {
		return errors.New("the server sent a session id that is not one: update assist, or tell the server's operator")
	}
	if ks.Password == "" {
		return errors.New("no session secret: the contact's key is missing")
	}
	if !ks.Expires.After(time.Now()) {
		return errors.New("the request has expired: ask again")
	}
	return nil
}

// validSID checks a session id's shape: "r-" and 26 characters of
// lowercase base32 (RFC 4648: a-z, 2-7).
func validSID(sid string) bool {
	rest, ok := strings.CutPrefix(sid, "r-")
	if !ok || len(rest) != 26 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return server.ValidateID(sid) == nil
}

// runKeyedNovice runs the novice's side of a keyed session, as assist
// invite --server does once its code is registered: it registers ks.SID at
// ks.Server and serves the expert who authenticates with ks.Password
// through it, with the same terminal and page and the same consent
// questions (the expert named ks.Peer), answered on stdin (os.Stdin: keys
// on a terminal, "y"/"n"/"q" lines from a script). It has no direct port (the expert
// has no address to dial; ICE still finds a direct path), prints no code,
// and returns when the first session ends, the novice withdraws (q), or
// ks.Expires passes with nobody connected.
func runKeyedNovice(ctx context.Context, stdin *os.File, stdout io.Writer, ks keyedSession, opts noviceOptions) error {
	ks = ks.withDefaults()
	if err := ks.check(); err != nil {
		return err
	}
	policy, err := session.ParsePolicy(opts.Allow)
	if err != nil {
		return fmt.Errorf("--allow: %w", err)
	}
	d, err := openDisplay(opts.Display)
	if err != nil {
		return err
	}
	defer d.Close()
	// The Listener counts the attempts through the server, keeps one
	// expert at a time and rests after a no, as for an invitation.
	l := transport.NewListener(newNoPort(), transport.ListenerConfig{
		InvitationID: ks.SID,
		Password:     ks.Password,
		Expires:      ks.Expires,
		Logger:       slog.Default(),
		DenyCooldown: opts.DenyCooldown,
	})
	defer l.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	// Before the Wait: the registration runs until ctx ends.
	defer cancel()
	rv, err := rendezvous.NewNovice(rendezvous.NoviceConfig{
		URL: ks.Server, Fingerprint: ks.Fingerprint, Expires: later(ks.Expires, time.Now().Add(keyedResumeFor)),
		Password: ks.Password, Attempts: l,
	})
	if err != nil {
		return err
	}
	reg, err := rv.Register(ctx, ks.SID)
	if err != nil {
		return err
	}
	wg.Go(func() { rv.Serve(ctx, reg) })
	return serveNovice(ctx, stdout, noviceSide{
		opts: opts, policy: policy, display: d, listener: l, viaServer: rv.Experts(),
		expires: ks.Expires, expert: ks.Peer, once: true, again: "ask again", stdin: stdin,
		status: novicepage.Status{Expires: ks.Expires, Server: ks.Server, State: session.Waiting, Agent: opts.Agent},
	})
}

// runKeyedExpert runs the expert's side of a keyed session, as assist join
// CODE does: it joins ks.SID at ks.Server (waiting a little while the
// novice's device registers it), authenticates with ks.Password, prints the
// "connected to", "path:", "rfb on" and "browser viewer:" lines, serves
// local viewers and the browser viewer, and returns when the session ends.
func runKeyedExpert(ctx context.Context, stdout io.Writer, ks keyedSession, opts expertOptions) error {
	ks = ks.withDefaults()
	if err := ks.check(); err != nil {
		return err
	}
	if err := checkLoopback(opts.RFB); err != nil {
		return fmt.Errorf("--rfb: %w", err)
	}
	paths := []rendezvous.Path{rendezvous.ServerPath(rendezvous.JoinConfig{
		URL: ks.Server, Fingerprint: ks.Fingerprint, LookupID: ks.SID, InvitationID: ks.SID,
		Password: ks.Password, Name: opts.Name, WaitRegistered: keyedJoinWait,
	})}
	return serveExpert(ctx, stdout, paths, ks.Peer, opts)
}

// noPort is a net.Listener that accepts nothing, for a transport.Listener
// that only counts the attempts of a session reached through the server.
type noPort struct {
	closed chan struct{}
	once   sync.Once
}

func newNoPort() *noPort { return &noPort{closed: make(chan struct{})} }

func (p *noPort) Accept() (net.Conn, error) {
	<-p.closed
	return nil, net.ErrClosed
}

func (p *noPort) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

func (p *noPort) Addr() net.Addr { return noPortAddr{} }

// noPortAddr names noPort in log lines.
type noPortAddr struct{}

func (noPortAddr) Network() string { return "rendezvous" }
func (noPortAddr) String() string  { return "rendezvous server only" }

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
