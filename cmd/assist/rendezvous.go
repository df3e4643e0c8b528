package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/transport"
	"github.com/assist-project/assist/transport/rtc"
)

// The rendezvous path: the novice's agent registers its invitation with an
// "assist serve" server, the expert joins it there, and the two set up a
// WebRTC connection (transport/rtc) over the server's relayed signalling.
// The server only carries opaque messages: rtc's signalling, base64 in a
// JSON string, never a password or a key.

// Timeouts of the rendezvous path.
const (
	// signalTimeout bounds dialling the server and one request (register,
	// join) or one relayed message.
	signalTimeout = 15 * time.Second
	// rtcTimeout bounds one WebRTC setup and handshake: ICE over TURN
	// through a proxy can take several seconds.
	rtcTimeout = 30 * time.Second
	// firstMessageTimeout bounds the wait for a paired expert's first
	// message: an expert that pairs and stays silent holds the code.
	firstMessageTimeout = 5 * time.Second
	// queueTimeout bounds a join that waits in line at the server (the
	// novice is paired with another expert): the server's longest wait
	// (server.Config.QueueTimeout, 60 s) and a margin.
	queueTimeout = 60*time.Second + signalTimeout
	// maxRegisterBackoff caps the pause between attempts to register again
	// after the server went away.
	maxRegisterBackoff = 30 * time.Second
)

// serverOptions are the --server flags of invite and join.
type serverOptions struct {
	url, fingerprint *string
}

// addServerFlags adds --server and --server-fingerprint, which default to
// $ASSIST_SERVER and $ASSIST_SERVER_FINGERPRINT.
func addServerFlags(fs *flag.FlagSet) serverOptions {
	return serverOptions{
		url:         fs.String("server", os.Getenv("ASSIST_SERVER"), "rendezvous server (https://HOST:PORT, as assist serve prints); default $ASSIST_SERVER"),
		fingerprint: fs.String("server-fingerprint", os.Getenv("ASSIST_SERVER_FINGERPRINT"), "accept only the server certificate with this fingerprint (sha256:HEX, as assist serve prints); default $ASSIST_SERVER_FINGERPRINT, else the system's certificate authorities"),
	}
}

// rtcLoopback reports whether WebRTC should gather loopback candidates: only
// when the server itself is on loopback, which means both ends are on this
// machine (tests, demos) and loopback may be the only path between them.
// Elsewhere loopback candidates would only cost useless checks.
func rtcLoopback(serverURL string) bool {
	u, err := url.Parse(serverURL)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(u.Hostname())
	return err == nil && ip.IsLoopback()
}

// iceServers converts the server's ICE server list for pion.
func iceServers(list []server.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(list))
	for _, s := range list {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// signalConn is a signalling connection with one goroutine reading it. The
// websocket closes itself when a read's context is cancelled, so rtc (which
// cancels its reads when it stops signalling) must never read it directly:
// it reads from msgs instead.
type signalConn struct {
	c      *server.Client
	msgs   chan server.Message
	done   chan struct{} // closed when the reader stops
	err    error         // why it stopped; read after done
	closed chan struct{}
	once   sync.Once
}

// dialSignal connects to the server.
func dialSignal(ctx context.Context, serverURL, fingerprint string) (*server.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	c, err := server.DialSignal(ctx, serverURL, fingerprint)
	if err != nil {
		return nil, fmt.Errorf("rendezvous server: %w", err)
	}
	return c, nil
}

// startReading starts the reader of c, once its request (register, join)
// got its answer.
func startReading(c *server.Client) *signalConn {
	s := &signalConn{c: c, msgs: make(chan server.Message, 64), done: make(chan struct{}), closed: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			m, err := c.Recv(context.Background())
			var se *server.SignalError
			if err != nil && !errors.As(err, &se) {
				s.err = classifyRecvError(err)
				return
			}
			select {
			case s.msgs <- m:
			case <-s.closed:
				s.err = errors.New("closed")
				return
			}
		}
	}()
	return s
}

// classifyRecvError tells a server that broke the protocol (a message that
// is not JSON, or a binary one: rtc.ErrSignalling, so an attempt under way
// ends at once with that reason) from a connection that merely went away
// (the server restarting, the network), which an established session
// outlives and an attempt may too.
func classifyRecvError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.Is(err, server.ErrMalformedMessage) || errors.As(err, &syntax) || errors.As(err, &typ) || strings.HasSuffix(err.Error(), "binary message") {
		return fmt.Errorf("%w: %v", rtc.ErrSignalling, err)
	}
	return err
}

// next returns the next message from the server, or why there is none.
func (s *signalConn) next(ctx context.Context) (server.Message, error) {
	select {
	case m := <-s.msgs:
		return m, nil
	case <-s.done:
		select {
		case m := <-s.msgs:
			return m, nil
		default:
		}
		if errors.Is(s.err, rtc.ErrSignalling) {
			return server.Message{}, s.err
		}
		return server.Message{}, fmt.Errorf("connection to the rendezvous server lost: %w", s.err)
	case <-ctx.Done():
		return server.Message{}, ctx.Err()
	}
}

// send sends one message. Its own context: a write cancelled half-way
// would close the websocket under the other users of the connection.
func (s *signalConn) send(m server.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), signalTimeout)
	defer cancel()
	return s.c.Send(ctx, m)
}

// bye ends the pairing session, if it is still the current one, telling
// the peer why. Naming the session keeps a late bye from ending the next
// expert's pairing.
func (s *signalConn) bye(session, reason string) {
	if len(reason) > server.MaxReasonLen {
		reason = reason[:server.MaxReasonLen]
	}
	if err := s.send(server.Message{Type: server.TypeBye, Session: session, Reason: reason}); err != nil {
		slog.Debug("rendezvous server: bye not sent", "err", err)
	}
}

func (s *signalConn) close() {
	s.once.Do(func() {
		close(s.closed)
		s.c.Close()
	})
}

// peerEndedError is the peer ending the pairing before the connection was
// set up: the novice's agent turning the expert away, or either end
// leaving the server.
type peerEndedError struct{ reason string }

// Unwrap tells the novice's refusals apart by their words (a bye's reason
// is free text): transport.ErrDenied while the invitation rests after a
// no, transport.ErrClosed once the noes closed it.
func (e *peerEndedError) Unwrap() error {
	switch {
	case strings.HasPrefix(e.reason, transport.DeniedPrefix):
		return transport.ErrDenied
	case strings.HasPrefix(e.reason, closedPrefix):
		return transport.ErrClosed
	}
	return nil
}

// closedPrefix starts transport.ClosedMessage (and is not DeniedPrefix).
const closedPrefix = "The person you are helping said no "

func (e *peerEndedError) Error() string {
	switch e.reason {
	case "":
		return "the other computer left the rendezvous server before the connection was set up"
	case server.ReasonAuthFailed:
		return "the other computer ended the attempt: " + rtc.ErrWrongPassword.Error()
	}
	if e.Unwrap() != nil {
		return e.reason // the novice's refusal, in words for the expert
	}
	return "the other computer ended the attempt: " + e.reason
}

// relaySignaler carries rtc's signalling in the server's relay messages
// of one pairing.
type relaySignaler struct {
	s       *signalConn // where it sends
	in      messages    // where it reads: s itself, or a novice's link
	session string      // the pairing's session id
	// ended is called when the peer ends the pairing (bye, peer-left).
	ended func(*peerEndedError)

	// broken is closed when Recv failed for good: the pairing ended, the
	// connection broke, or a bad message came.
	brokenOnce sync.Once
	broken     chan struct{}
	brokenErr  error
}

func newRelaySignaler(s *signalConn, in messages, session string) *relaySignaler {
	return &relaySignaler{s: s, in: in, session: session, broken: make(chan struct{})}
}

// err is why the signaler broke; call it after broken is closed.
func (r *relaySignaler) err() error { return r.brokenErr }

func (r *relaySignaler) fail(err error) error {
	r.brokenOnce.Do(func() {
		r.brokenErr = err
		close(r.broken)
	})
	return err
}

var _ rtc.Signaler = (*relaySignaler)(nil)

func (r *relaySignaler) Send(ctx context.Context, msg []byte) error {
	data, err := json.Marshal(base64.StdEncoding.EncodeToString(msg))
	if err != nil {
		return err
	}
	return r.s.send(server.Message{Type: server.TypeRelay, Session: r.session, Data: data})
}

func (r *relaySignaler) Recv(ctx context.Context) ([]byte, error) {
	b, err := r.recv(ctx)
	if err != nil && ctx.Err() == nil {
		r.fail(err)
	}
	return b, err
}

func (r *relaySignaler) recv(ctx context.Context) ([]byte, error) {
	for {
		m, err := r.in.next(ctx)
		if err != nil {
			return nil, err
		}
		switch m.Type {
		case server.TypeRelay:
			var s string
			if err := json.Unmarshal(m.Data, &s); err != nil {
				return nil, fmt.Errorf("%w: relayed data is not a string", rtc.ErrSignalling)
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("%w: relayed data is not base64", rtc.ErrSignalling)
			}
			return b, nil
		case server.TypeBye, server.TypePeerLeft:
			e := &peerEndedError{reason: printable(m.Reason)}
			if r.ended != nil {
				r.ended(e)
			}
			return nil, e
		case server.TypeError:
			if m.Code == server.CodeNotPaired {
				// The answer to a late bye or relay of a pairing that is
				// over (errors name no session); the end of this one
				// comes as "bye" or "peer-left".
				continue
			}
			// The server refused one of our relays (we broke a limit):
			// what we sent is lost, so the attempt cannot go on. An
			// unknown code is a server we do not understand.
			return nil, fmt.Errorf("%w: the rendezvous server answered with error %q: %s", rtc.ErrSignalling, printable(m.Code), printable(m.Message))
		case server.TypeRegistered, server.TypePaired:
			// Not signalling: a late answer to a request.
			continue
		}
		return nil, fmt.Errorf("%w: unknown message type %q from the rendezvous server", rtc.ErrSignalling, printable(m.Type))
	}
}

// printable drops control characters from text a peer or the server sent,
// before it reaches a terminal, and bounds its length.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' || r == '\u202d' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) > server.MaxReasonLen {
		s = strings.ToValidUTF8(s[:server.MaxReasonLen], "")
	}
	return s
}

// rtcExpert is an expert authenticated over WebRTC: it holds the
// invitation (like a direct connection does) until closed.
type rtcExpert struct {
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
func (e *rtcExpert) setPairing(sc *signalConn, session string) bool {
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
func (e *rtcExpert) Close() error {
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

// noviceRendezvous serves an invitation through the rendezvous server,
// next to the direct Listener, and shares its attempt counter.
type noviceRendezvous struct {
	url, fingerprint string
	expires          time.Time
	// owner is this agent's secret for its ids (server.NewOwner): nobody
	// else can register them while the agent is away, e.g. during a
	// restart of the server.
	owner    string
	password string
	listener *transport.Listener
	// experts receives each expert authenticated through the server.
	experts chan *rtcExpert
	log     *slog.Logger

	mu sync.Mutex
	// active is the session set up through the server that is running,
	// if any: an expert who joins again resumes it (resume.go).
	active *rtcExpert
}

// register connects to the server and registers id.
func (r *noviceRendezvous) register(ctx context.Context, id string) (*signalConn, error) {
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
func (r *noviceRendezvous) registerCode(ctx context.Context, newID func() (string, error)) (string, *signalConn, error) {
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
func (r *noviceRendezvous) serve(ctx context.Context, id string, sc *signalConn) {
	log := r.log.With("lookup", id)
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
func (r *noviceRendezvous) listen(ctx context.Context, id string, sc *signalConn, attempts *sync.WaitGroup) error {
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
func (r *noviceRendezvous) pairing(ctx context.Context, id string, sc *signalConn, paired server.Message, l *link) {
	log := r.log.With("lookup", id, "session_tag", server.SessionTag(paired.Session))
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
		r.resume(log, sc, paired.Session, l, proof)
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
	actx, cancelTimeout := context.WithTimeout(actx, rtcTimeout)
	defer cancelTimeout()
	sig := newRelaySignaler(sc, l, paired.Session)
	sig.ended = func(e *peerEndedError) { cancel(e) }
	conn, err := rtc.Accept(actx, sig, rtc.Config{
		Password:        r.password,
		InvitationID:    id,
		ICEServers:      iceServers(paired.ICE),
		TURNPin:         turnPin(r.fingerprint),
		Logger:          log,
		IncludeLoopback: rtcLoopback(r.url),
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
	e := &rtcExpert{Conn: conn, attempt: att, sig: sc, session: paired.Session, from: fromAddr(paired.From),
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

// joinViaServer is the expert's side: it joins lookupID at the server and
// sets up the WebRTC connection. close ends the pairing; call it when the
// session is over (the novice's agent then waits for the next expert).
// beforeAuth, if not nil, is rtc.Config.BeforeAuth (the race of join.go).
func joinViaServer(ctx context.Context, serverURL, fingerprint, lookupID, invitationID, password, name string,
	beforeAuth func(context.Context) (func(error), error)) (conn *rtc.Conn, close func(), err error) {
	c, err := dialSignal(ctx, serverURL, fingerprint)
	if err != nil {
		return nil, nil, err
	}
	paired, err := joinInLine(ctx, c, lookupID)
	if err != nil {
		c.Close()
		return nil, nil, joinError(serverURL, err)
	}
	sc := startReading(c)
	dctx, cancelDial := context.WithCancelCause(ctx)
	defer cancelDial(nil)
	dctx, cancelTimeout := context.WithTimeout(dctx, rtcTimeout)
	defer cancelTimeout()
	sig := newRelaySignaler(sc, sc, paired.Session)
	sig.ended = func(e *peerEndedError) { cancelDial(e) }
	conn, err = rtc.Dial(dctx, sig, rtc.Config{
		Password:        password,
		InvitationID:    invitationID,
		Name:            name,
		ICEServers:      iceServers(paired.ICE),
		TURNPin:         turnPin(fingerprint),
		Logger:          slog.Default(),
		IncludeLoopback: rtcLoopback(serverURL),
		BeforeAuth:      beforeAuth,
	})
	if err != nil {
		if errors.Is(err, rtc.ErrWrongPassword) {
			// The server counts failed authentications from the first
			// bye that reaches it while the pairing lasts: ours, or the
			// novice's if the novice is quicker.
			sc.bye(paired.Session, server.ReasonAuthFailed)
		}
		sc.close()
		var pe *peerEndedError
		if !errors.Is(err, rtc.ErrWrongPassword) && errors.As(context.Cause(dctx), &pe) {
			return nil, nil, pe
		}
		return nil, nil, err
	}
	k := startKeeper(conn, sc, sig, serverURL, fingerprint, lookupID)
	return conn, k.close, nil
}

// errJoinTimeout ends a join the server did not answer in time.
var errJoinTimeout = errors.New("the rendezvous server did not answer in time: try again")

// joinInLine joins lookupID within signalTimeout, or within queueTimeout
// once the server says we wait in line behind another expert (which is
// news, not trouble: it is logged, not printed).
func joinInLine(ctx context.Context, c *server.Client, lookupID string) (server.Message, error) {
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(signalTimeout, func() { cancel(errJoinTimeout) })
	defer timer.Stop()
	paired, err := c.JoinQueued(jctx, lookupID, func() {
		slog.Info("rendezvous server: another expert is connecting to this person; waiting in line")
		timer.Reset(queueTimeout)
	})
	if err != nil && errors.Is(context.Cause(jctx), errJoinTimeout) {
		return paired, errJoinTimeout
	}
	return paired, err
}

// joinError turns the server's answer to a join into advice.
func joinError(serverURL string, err error) error {
	var se *server.SignalError
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code {
	case server.CodeUnknown:
		// The server gives one answer for an unknown, expired or
		// unconnected invitation, so probing numbers learns nothing.
		return fmt.Errorf("no invitation is waiting under this number at %s: check the code; if it is right, the invitation may have expired or its computer may be offline: ask for a new one", serverURL)
	case server.CodeOffline: // older servers
		return errors.New("the novice's computer is not connected to the rendezvous server right now: ask them to check that assist invite is still running, then try again")
	case server.CodeBusy:
		return errors.New("another expert is connected to this invitation, and was still there after a minute in line: try again later")
	case server.CodeExpired: // older servers
		return errors.New("the invitation has expired: ask for a new invitation")
	case server.CodeTooMany:
		return fmt.Errorf("the rendezvous server refuses more attempts from this network for now: %s", printable(se.Message))
	}
	return fmt.Errorf("rendezvous server %s: %w", serverURL, err)
}

// fromAddr is the expert's address from the server's "paired" message, or
// "" when the server did not say.
func fromAddr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
