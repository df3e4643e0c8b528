package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/transport"
	"github.com/assist-project/assist/transport/rtc"
)

// Expert is an expert authenticated over WebRTC through the server: it
// holds the invitation (like a direct connection does) until closed.
type Expert struct {
	*rtc.Conn
	attempt *transport.Attempt
	// from is the expert's IP address as the server saw it ("" if it did
	// not say): a claim of the server.
	from string
	// resumeKey checks the proof of an expert that joins the server
	// again to resume this session (resume.go).
	resumeKey []byte
	// onClose forgets the session as the running one.
	onClose func()

	mu      sync.Mutex
	closed  bool
	sig     *signalConn // the current pairing's, for the goodbye
	session string
}

// setPairing records the pairing the session's signalling now goes
// through; false if the session is over.
func (e *Expert) setPairing(sc *signalConn, session string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.sig, e.session = sc, session
	return true
}

// Close closes the connection, frees the invitation for the next expert
// and ends the pairing at the server.
func (e *Expert) Close() error {
	err := e.Conn.Close()
	e.mu.Lock()
	closed := e.closed
	e.closed = true
	sc, session := e.sig, e.session
	e.mu.Unlock()
	if !closed {
		if e.onClose != nil {
			e.onClose()
		}
		e.attempt.Vacate()
		sc.bye(session, "the session ended")
	}
	return err
}

// From is the expert's IP address as the server saw it ("" if it did not
// say): a claim of the server, for the novice's question (session.ViaServer).
func (e *Expert) From() string { return e.from }

// NoviceConfig describes the invitation a Novice serves through the server.
type NoviceConfig struct {
	// URL is the rendezvous server, https://HOST:PORT as assist serve
	// prints it.
	URL string
	// Fingerprint pins the server's certificate ("sha256:HEX"); "" trusts
	// the system's certificate authorities.
	Fingerprint string
	// Expires is when the registrations end.
	Expires time.Time
	// Owner is this agent's secret for its ids (server.NewOwner): nobody
	// else can register them while the agent is away, e.g. during a
	// restart of the server. NewNovice draws one if it is empty.
	Owner string
	// Password is the PAKE's password, normalised as the expert's side
	// normalises it. It never leaves the process. The PAKE's session id is
	// the id an expert joined (the expert's side must use the same).
	Password string
	// Attempts counts every expert's attempt against the invitation, like
	// the direct port's (ReserveAttempt), and keeps one expert at a time.
	Attempts *transport.Listener
	// Logger receives the attempts; nil uses slog.Default().
	Logger *slog.Logger
}

// Novice serves an invitation through the rendezvous server, next to the
// direct Listener, and shares its attempt counter. Register (or
// RegisterCode) each id, then Serve each registration until the invitation
// ends; authenticated experts arrive on Experts.
type Novice struct {
	url, fingerprint string
	expires          time.Time
	owner            string
	password         string
	listener         *transport.Listener
	// experts receives each expert authenticated through the server.
	experts chan *Expert
	log     *slog.Logger

	mu sync.Mutex
	// active is the session set up through the server that is running,
	// if any: an expert who joins again resumes it (resume.go).
	active *Expert
}

// NewNovice returns a Novice for cfg.
func NewNovice(cfg NoviceConfig) (*Novice, error) {
	if cfg.URL == "" || cfg.Attempts == nil {
		return nil, errors.New("rendezvous: a novice needs the server's URL and the invitation's attempt counter")
	}
	if cfg.Owner == "" {
		owner, err := server.NewOwner()
		if err != nil {
			return nil, err
		}
		cfg.Owner = owner
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Novice{
		url: cfg.URL, fingerprint: cfg.Fingerprint, expires: cfg.Expires, owner: cfg.Owner,
		password: cfg.Password, listener: cfg.Attempts,
		experts: make(chan *Expert), log: log.With("component", "rendezvous"),
	}, nil
}

// Experts delivers each expert authenticated through the server. The
// receiver owns it and closes it when the session is over, which frees the
// invitation for the next expert. An expert nobody takes before Serve's
// context ends is closed.
func (r *Novice) Experts() <-chan *Expert { return r.experts }

// Registration is an id registered at the server, waiting for experts.
type Registration struct {
	id string
	sc *signalConn
}

// ID is the id the registration was made under.
func (g *Registration) ID() string { return g.id }

// Close leaves the server; for a registration that will not be served.
func (g *Registration) Close() { g.sc.close() }

// Register connects to the server and registers id for the invitation. The
// server's refusals come back as *server.SignalError (wrapped).
func (r *Novice) Register(ctx context.Context, id string) (*Registration, error) {
	sc, err := r.register(ctx, id)
	if err != nil {
		return nil, err
	}
	return &Registration{id: id, sc: sc}, nil
}

// RegisterCode registers a fresh look-up number for a short code, from
// newID, drawing another while the server says one is taken.
func (r *Novice) RegisterCode(ctx context.Context, newID func() (string, error)) (*Registration, error) {
	id, sc, err := r.registerCode(ctx, newID)
	if err != nil {
		return nil, err
	}
	return &Registration{id: id, sc: sc}, nil
}

// Serve answers the experts who join g's id until ctx ends, registering
// again (with backoff) when the connection to the server breaks. It
// returns when ctx ends and every attempt it started is over; a session set
// up through the server does not depend on the server, so it goes on.
func (r *Novice) Serve(ctx context.Context, g *Registration) {
	r.serve(ctx, g.id, g.sc)
}

// register connects to the server and registers id.
func (r *Novice) register(ctx context.Context, id string) (*signalConn, error) {
	c, err := dialSignal(ctx, r.url, r.fingerprint)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	if err := c.Register(rctx, id, r.expires, r.owner); err != nil {
		c.Close()
		var se *server.SignalError
		if errors.As(err, &se) && se.Code == server.CodeTooMany {
			// The server's limit on this address; its message says when
			// to try again.
			return nil, fmt.Errorf("rendezvous server %s refuses more invitations from this network for now: %w", r.url, err)
		}
		return nil, fmt.Errorf("rendezvous server %s: register: %w", r.url, err)
	}
	return startReading(c), nil
}

// registerCode registers a fresh look-up number for the short code,
// drawing another while the server says one is taken.
func (r *Novice) registerCode(ctx context.Context, newID func() (string, error)) (string, *signalConn, error) {
	for range 10 {
		id, err := newID()
		if err != nil {
			return "", nil, err
		}
		sc, err := r.register(ctx, id)
		var se *server.SignalError
		if errors.As(err, &se) && se.Code == server.CodeTaken {
			continue
		}
		return id, sc, err
	}
	return "", nil, fmt.Errorf("rendezvous server %s: every look-up number tried is taken; try again", r.url)
}

// serve answers the experts who join id until ctx ends, registering again
// (with backoff) when the connection to the server breaks. A session set
// up through the server does not depend on the server, so it goes on.
func (r *Novice) serve(ctx context.Context, id string, sc *signalConn) {
	log := r.log.With(lookupAttr(id))
	// An attempt under way when the connection breaks goes on without
	// it (its descriptions may have gone through already) while we
	// register again.
	var attempts sync.WaitGroup
	defer attempts.Wait()
	backoff := time.Second
	for {
		if sc == nil {
			var err error
			sc, err = r.register(ctx, id)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("rendezvous server: registering again failed", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return
				}
				backoff = min(2*backoff, maxRegisterBackoff)
				continue
			}
			log.Info("rendezvous server: registered again")
			backoff = time.Second
		}
		err := r.listen(ctx, id, sc, &attempts)
		sc.close()
		sc = nil
		if ctx.Err() != nil {
			return
		}
		log.Warn("rendezvous server: connection lost, registering again", "err", err)
	}
}

// listen handles sc's messages until the connection ends: each pairing's
// messages go to its own link, read by the pairing's goroutine (started on
// attempts) and then by its session, which outlives the connection.
func (r *Novice) listen(ctx context.Context, id string, sc *signalConn, attempts *sync.WaitGroup) error {
	var cur *link
	for {
		m, err := sc.next(ctx)
		if err != nil {
			if cur != nil {
				cur.end(err)
			}
			return err
		}
		switch m.Type {
		case server.TypePaired:
			if cur != nil {
				cur.end(&peerEndedError{})
			}
			cur = newLink()
			l := cur
			attempts.Go(func() { r.pairing(ctx, id, sc, m, l) })
		case server.TypeBye, server.TypePeerLeft:
			if cur != nil {
				cur.push(m)
				cur.end(&peerEndedError{reason: printable(m.Reason)})
				cur = nil
			}
		default:
			// Relays, and errors such as "not-paired" (a bye after the
			// expert left), which the pairing's reader sorts out.
			if cur != nil {
				cur.push(m)
			}
		}
	}
}

// pairing runs one expert's attempt, counted against the invitation like
// an attempt on the direct port, or hands the pairing to the running
// session if the expert is that session's, back after losing its pairing.
func (r *Novice) pairing(ctx context.Context, id string, sc *signalConn, paired server.Message, l *link) {
	log := r.log.With(lookupAttr(id), "session_tag", server.SessionTag(paired.Session))
	fctx, cancelFirst := context.WithTimeout(ctx, firstMessageTimeout)
	first, err := l.next(fctx)
	cancelFirst()
	if err != nil {
		log.Info("rendezvous: the expert sent nothing; pairing dropped", "err", err, "after", firstMessageTimeout)
		sc.bye(paired.Session, "nothing received")
		return
	}
	if first.Type == server.TypeBye || first.Type == server.TypePeerLeft {
		// The pairing ended before the expert said anything: the server's
		// own deadline for the expert's first message (which races ours)
		// or the expert left. Nothing to set up, no attempt to reserve.
		log.Info("rendezvous: the expert sent nothing; pairing dropped", "by", "server", "reason", printable(first.Reason))
		return
	}
	if proof, ok := parseResume(first); ok {
		r.resume(log, sc, paired.Session, paired.ICE, l, proof)
		return
	}
	l.unread(first)
	att, err := r.listener.ReserveAttempt()
	if err != nil {
		log.Info("rendezvous: expert turned away", "err", err)
		sc.bye(paired.Session, err.Error())
		return
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	actx, cancelTimeout := context.WithTimeout(actx, RTCTimeout)
	defer cancelTimeout()
	sig := newRelaySignaler(sc, l, paired.Session)
	sig.ended = func(e *peerEndedError) { cancel(e) }
	conn, err := rtc.Accept(actx, sig, rtc.Config{
		Password:     r.password,
		InvitationID: id,
		// Named by lookupAttr in log instead, if it is a capability.
		SecretInvitationID: secretID(id),
		ICEServers:         iceServers(paired.ICE),
		TURNPin:            turnPin(r.fingerprint),
		Logger:             log,
		IncludeLoopback:    rtcLoopback(r.url),
		// The expert hears how many tries are left; Fail counts once, so
		// the Fail below only reads the count again.
		AttemptFailed: att.Fail,
	})
	if err != nil {
		if errors.Is(err, rtc.ErrWrongPassword) {
			left := att.Fail()
			log.Warn("rendezvous: wrong password", "attempts_left", left)
			sc.bye(paired.Session, server.ReasonAuthFailed)
		} else {
			att.Release()
			log.Info("rendezvous: expert's attempt failed", "err", err, "cause", context.Cause(actx))
			reason := "the connection could not be set up"
			// Tell the expert why: with a hostile server, this is what
			// both ends have to go on.
			for _, kind := range []error{rtc.ErrSignalling, rtc.ErrUnreachable} {
				if errors.Is(err, kind) {
					reason += ": " + kind.Error()
					break
				}
			}
			sc.bye(paired.Session, reason)
		}
		return
	}
	if !att.Succeed() {
		conn.Close()
		sc.bye(paired.Session, transport.ErrBusy.Error())
		return
	}
	e := &Expert{Conn: conn, attempt: att, sig: sc, session: paired.Session, from: fromAddr(paired.From),
		resumeKey: conn.SessionKey(resumeKeyLabel, 32)}
	e.onClose = func() {
		r.mu.Lock()
		if r.active == e {
			r.active = nil
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.active = e
	r.mu.Unlock()
	select {
	case r.experts <- e:
	case <-ctx.Done():
		e.Close()
	}
}

// fromAddr is the expert's address from the server's "paired" message, or
// "" when the server did not say.
func fromAddr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// lookupAttr names a registered id in log lines. A messenger session id
// (server.MessengerIDPrefix) is the capability of one pairing of two devices, so it is
// logged by its tag (server.SessionTag), like the server's session ids;
// invitation ids and look-up numbers are printed to the novice anyway.
func lookupAttr(id string) slog.Attr {
	if secretID(id) {
		return slog.String("lookup_tag", server.SessionTag(id))
	}
	return slog.String("lookup", id)
}

// secretID reports whether a registered id is a capability that no log
// line may hold: a messenger session's id.
func secretID(id string) bool { return strings.HasPrefix(id, server.MessengerIDPrefix) }
