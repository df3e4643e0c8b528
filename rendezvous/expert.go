package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/transport"
	"github.com/assist-project/assist/transport/rtc"
)

// JoinConfig is what the expert's side needs to reach a novice through the
// server.
type JoinConfig struct {
	// URL is the rendezvous server, https://HOST:PORT.
	URL string
	// Fingerprint pins the server's certificate ("sha256:HEX"); "" trusts
	// the system's certificate authorities.
	Fingerprint string
	// LookupID is the id the novice registered: a short code's look-up
	// number, an invitation's id, a messenger session id.
	LookupID string
	// InvitationID is the PAKE's session id: the id the novice's side
	// registered it under (the same as LookupID unless the novice
	// registered the invitation under two ids).
	InvitationID string
	// Password is the PAKE's password, normalised.
	Password string
	// Name is the expert's name as the novice sees it.
	Name string
	// BeforeAuth, if not nil, is rtc.Config.BeforeAuth (Race sets it).
	BeforeAuth AuthHook
	// WaitRegistered, if positive, is how long to keep joining while the
	// server does not know LookupID: a messenger session's two devices
	// learn the id at the same moment, and the novice's may not have
	// registered it yet. Zero gives up at the first "unknown", as a typed
	// code should.
	WaitRegistered time.Duration
	// Logger receives the set-up's lines; nil uses slog.Default().
	Logger *slog.Logger
}

// Join is the expert's side: it joins cfg.LookupID at the server and sets
// up and authenticates the WebRTC connection. end ends the pairing; call it
// when the session is over (the novice's agent then waits for the next
// expert). Until then the pairing is kept: when it breaks without the
// novice's goodbye, Join's keeper joins again and resumes the session.
func Join(ctx context.Context, cfg JoinConfig) (conn *rtc.Conn, end func(), err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c, paired, err := joinRegistered(ctx, cfg.URL, cfg.Fingerprint, cfg.LookupID, cfg.WaitRegistered)
	if err != nil {
		return nil, nil, err
	}
	return joinViaServer(ctx, log, c, paired, cfg.URL, cfg.Fingerprint, cfg.LookupID, cfg.InvitationID, cfg.Password, cfg.Name, cfg.BeforeAuth)
}

// joinRegistered joins lookupID, again while the server does not know it
// for up to wait (with backoff: every join that misses costs one of the
// address's join tokens at the server).
func joinRegistered(ctx context.Context, serverURL, fingerprint, lookupID string, wait time.Duration) (*server.Client, server.Message, error) {
	deadline := time.Now().Add(wait)
	backoff := 250 * time.Millisecond
	away := 0
	for {
		c, err := dialSignal(ctx, serverURL, fingerprint)
		if err != nil {
			if away == 0 || away > goingAwayTries || ctx.Err() != nil {
				return nil, server.Message{}, err
			}
			// The server that went away may still refuse; behind a load
			// balancer the next try reaches another.
			away++
		} else {
			paired, err := joinInLine(ctx, c, lookupID)
			if err == nil {
				return c, paired, nil
			}
			c.Close()
			var se *server.SignalError
			switch {
			case websocket.CloseStatus(err) == websocket.StatusGoingAway && away < goingAwayTries:
				// The server is shutting down (draining) and tells us to
				// connect again: not the end of the join.
				away++
				slog.Info("rendezvous server: going away; joining again", "err", err)
			case wait <= 0 || !errors.As(err, &se) || se.Code != server.CodeUnknown:
				return nil, server.Message{}, joinError(serverURL, err)
			case time.Now().Add(backoff).After(deadline):
				return nil, server.Message{}, fmt.Errorf("the other computer did not come to the rendezvous server %s for this session within %s: ask again", serverURL, wait.Round(time.Second))
			}
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, server.Message{}, ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// goingAwayTries is how many times a join is made again after the server
// closed it with status 1001 (going away: it is draining, and a load
// balancer sends the next connection to another server).
const goingAwayTries = 5

// joinViaServer is the rest of Join, once c is paired.
func joinViaServer(ctx context.Context, log *slog.Logger, c *server.Client, paired server.Message, serverURL, fingerprint, lookupID, invitationID, password, name string,
	beforeAuth func(context.Context) (func(error), error)) (conn *rtc.Conn, close func(), err error) {
	sc := startReading(c)
	if secretID(invitationID) {
		log = log.With(lookupAttr(invitationID))
	}
	dctx, cancelDial := context.WithCancelCause(ctx)
	defer cancelDial(nil)
	dctx, cancelTimeout := context.WithTimeout(dctx, RTCTimeout)
	defer cancelTimeout()
	sig := newRelaySignaler(sc, sc, paired.Session)
	sig.ended = func(e *peerEndedError) { cancelDial(e) }
	conn, err = rtc.Dial(dctx, sig, rtc.Config{
		Password:           password,
		InvitationID:       invitationID,
		SecretInvitationID: secretID(invitationID),
		Name:               name,
		ICEServers:         iceServers(paired.ICE),
		TURNPin:            turnPin(fingerprint),
		Logger:             log,
		IncludeLoopback:    rtcLoopback(serverURL),
		BeforeAuth:         beforeAuth,
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
	k := startKeeper(log, conn, sc, sig, serverURL, fingerprint, lookupID)
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

// directBudget bounds the direct path: TCP and TLS on each address (at most
// transport.DefaultPerAddressTimeout each, all at once) and the PAKE.
const directBudget = 30 * time.Second

// DirectPath is the way to the novice through an invitation's addresses
// (transport.Dial), for Race.
func DirectPath(addrs []string, invitationID, password, name string) Path {
	return Path{
		Name: "direct",
		What: "the invitation's addresses",
		Dial: func(ctx context.Context, beforeAuth AuthHook) (*Joined, error) {
			ctx, cancel := context.WithTimeout(ctx, directBudget)
			defer cancel()
			tc, err := transport.Dial(ctx, addrs, transport.DialConfig{
				InvitationID: invitationID, Password: password, Name: name, Logger: slog.Default(),
				BeforeAuth: beforeAuth,
			})
			if err != nil {
				return nil, err
			}
			return &Joined{Conn: tc, Via: tc.Path(), Path: "direct"}, nil
		},
	}
}

// ServerPath is the way to the novice through the rendezvous server (Join),
// for Race; cfg.BeforeAuth is set by the race.
func ServerPath(cfg JoinConfig) Path {
	return Path{
		Name: "server",
		What: "the rendezvous server",
		Dial: func(ctx context.Context, beforeAuth AuthHook) (*Joined, error) {
			cfg := cfg
			cfg.BeforeAuth = beforeAuth
			rc, end, err := Join(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return &Joined{Conn: rc, Via: "the rendezvous server (" + rc.Path() + ")", Path: rc.Path(),
				End: end, Paths: rc.PathChanges()}, nil
		},
	}
}

// NoviceRefusal is, for a join the novice's agent turned away because the
// novice said no (transport.ErrDenied: wait; transport.ErrClosed: over),
// the agent's own words for the expert, by either path. Only texts that
// are the agent's refusals pass; anything else gets our generic words.
func NoviceRefusal(err error) (string, bool) {
	var kind error
	switch {
	case errors.Is(err, transport.ErrClosed):
		kind = transport.ErrClosed
	case errors.Is(err, transport.ErrDenied):
		kind = transport.ErrDenied
	default:
		return "", false
	}
	var msg string
	var he *transport.HandshakeError
	var pe *peerEndedError
	switch {
	case errors.As(err, &he):
		msg = he.PeerMessage
	case errors.As(err, &pe):
		msg = pe.reason
	}
	if !strings.HasPrefix(msg, transport.DeniedPrefix) && !strings.HasPrefix(msg, closedPrefix) {
		msg = kind.Error()
	}
	return printable(msg), true
}
