package rendezvous

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/transport/rtc"
)

// Keeping the signalling of a session. A WebRTC session does not need the
// rendezvous server, but an ICE restart (transport/rtc, restart.go) needs a
// signalling path to the peer. So the expert keeps its pairing with the
// novice for the session's lifetime, and when it ends without the novice
// saying goodbye (the server restarting, either end's network dropping the
// WebSocket), joins the server again, proves to the novice's agent that it
// is the expert of the running session, and hands the new pairing to the
// connection (rtc.Conn.Resignal). The novice's agent does the same on its
// side: it registers again, and gives the new pairing to the session the
// proof names. No password, no new handshake, no question to the novice:
// the consent state lives in the session above, which never stopped.

const (
	// resumeKeyLabel derives, from the PAKE's session key, the key that
	// proves a pairing belongs to a running session.
	resumeKeyLabel = "resume"
	// maxRejoinBackoff caps the pause between the expert's attempts to
	// join the server again.
	maxRejoinBackoff = 8 * time.Second
	// rejoinUnknownFor is how long the expert keeps joining again while
	// the server answers "unknown": the novice's agent may be registering
	// again (it backs off up to maxRegisterBackoff), or its invitation
	// may be over for good; the server's answer does not say which.
	rejoinUnknownFor = 2 * time.Minute
	// maxLinkQueue bounds what one pairing may queue for a reader that is
	// not reading.
	maxLinkQueue = 256
)

// resumeMessage is the relay data by which an expert resumes a session in a
// new pairing: {"resume": base64(HMAC-SHA256(key, session))}. A JSON object,
// where rtc's messages are strings, so the two cannot be confused.
type resumeMessage struct {
	Resume string `json:"resume"`
}

// resumeProof binds the resume key to one pairing's session id, so the
// server cannot replay a proof into another pairing.
func resumeProof(key []byte, session string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("assist resume\x00" + session))
	return m.Sum(nil)
}

// parseResume returns the proof a relay message carries, if it is a resume
// message.
func parseResume(m server.Message) ([]byte, bool) {
	if m.Type != server.TypeRelay {
		return nil, false
	}
	var r resumeMessage
	dec := json.NewDecoder(bytes.NewReader(m.Data))
	dec.DisallowUnknownFields()
	if dec.Decode(&r) != nil || r.Resume == "" {
		return nil, false
	}
	p, err := base64.StdEncoding.DecodeString(r.Resume)
	if err != nil || len(p) != sha256.Size {
		return nil, false
	}
	return p, true
}

// messages is where a relaySignaler reads its pairing's messages: the
// expert's whole signalling connection, or a novice's link.
type messages interface {
	next(ctx context.Context) (server.Message, error)
}

// link is one pairing's share of a novice's signalling connection: the
// connection's reader (listen) pushes the pairing's messages, the attempt
// and then the session read them, until the pairing ends.
type link struct {
	mu    sync.Mutex
	queue []server.Message
	err   error         // why it ended; nil while it lasts
	more  chan struct{} // a message or the end arrived
}

func newLink() *link { return &link{more: make(chan struct{}, 1)} }

func (l *link) wake() {
	select {
	case l.more <- struct{}{}:
	default:
	}
}

// push queues m; a reader that lets too many pile up loses the pairing.
func (l *link) push(m server.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if len(l.queue) >= maxLinkQueue {
		l.err = fmt.Errorf("%w: more than %d messages queued", rtc.ErrSignalling, maxLinkQueue)
		l.queue = nil
	} else {
		l.queue = append(l.queue, m)
	}
	l.wake()
}

// unread puts m back in front.
func (l *link) unread(m server.Message) {
	l.mu.Lock()
	l.queue = append([]server.Message{m}, l.queue...)
	l.mu.Unlock()
	l.wake()
}

// end ends the pairing: once the queue is read, next returns err.
func (l *link) end(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	l.wake()
}

func (l *link) next(ctx context.Context) (server.Message, error) {
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			m := l.queue[0]
			l.queue = l.queue[1:]
			l.mu.Unlock()
			return m, nil
		}
		err := l.err
		l.mu.Unlock()
		if err != nil {
			return server.Message{}, err
		}
		select {
		case <-l.more:
		case <-ctx.Done():
			return server.Message{}, ctx.Err()
		}
	}
}

// resume hands the pairing to the running session whose expert sent this
// proof (novice's side), or refuses it.
func (r *Novice) resume(log *slog.Logger, sc *signalConn, session string, ice []server.ICEServer, l *link, proof []byte) {
	r.mu.Lock()
	e := r.active
	r.mu.Unlock()
	if e == nil || !hmac.Equal(proof, resumeProof(e.resumeKey, session)) {
		log.Info("rendezvous: an expert asked to resume a session that is not running here")
		sc.bye(session, "there is no such session to resume")
		return
	}
	if !e.setPairing(sc, session) {
		sc.bye(session, "the session ended")
		return
	}
	log.Info("rendezvous: the expert is back: the session's signalling goes through the new pairing")
	useICE(log, e.Conn, ice)
	e.Conn.Resignal(newRelaySignaler(sc, l, session))
}

// useICE hands a resumed session the ICE servers of its new pairing for
// its next ICE restart. The pairing's home may be another node than the
// one that set the session up (that node died: the novice's agent
// registered again elsewhere), and the old relay would then give no
// candidate; with the new one, a relayed session survives the loss of its
// relay's node.
func useICE(log *slog.Logger, c *rtc.Conn, ice []server.ICEServer) {
	if len(ice) == 0 {
		// A server that sent none: keep what worked.
		return
	}
	if err := c.SetICEServers(iceServers(ice)); err != nil {
		log.Info("rendezvous: the new pairing's ICE servers not taken", "err", err)
	}
}

// keeper keeps the expert paired with the novice for the session's
// lifetime, joining the server again when the pairing ends without a
// goodbye.
type keeper struct {
	conn                             *rtc.Conn
	serverURL, fingerprint, lookupID string
	key                              []byte
	log                              *slog.Logger
	stop                             chan struct{}
	wg                               sync.WaitGroup
	mu                               sync.Mutex
	sc                               *signalConn
	sig                              *relaySignaler
	closeOnce                        sync.Once
	ctx                              context.Context
	cancel                           context.CancelFunc
}

func startKeeper(log *slog.Logger, conn *rtc.Conn, sc *signalConn, sig *relaySignaler, serverURL, fingerprint, lookupID string) *keeper {
	k := &keeper{conn: conn, serverURL: serverURL, fingerprint: fingerprint, lookupID: lookupID,
		key: conn.SessionKey(resumeKeyLabel, 32), log: log.With("component", "rendezvous"),
		stop: make(chan struct{}), sc: sc, sig: sig}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	k.wg.Add(1)
	go k.run()
	return k
}

// close stops keeping the pairing and leaves the server.
func (k *keeper) close() {
	k.closeOnce.Do(func() {
		close(k.stop)
		k.cancel()
		k.wg.Wait()
		k.mu.Lock()
		k.sc.close()
		k.mu.Unlock()
	})
}

func (k *keeper) run() {
	defer k.wg.Done()
	for {
		k.mu.Lock()
		sig := k.sig
		k.mu.Unlock()
		select {
		case <-k.stop:
			return
		case <-sig.broken:
		}
		var pe *peerEndedError
		if errors.As(sig.err(), &pe) && pe.reason != "" {
			// The novice said goodbye: the session is over.
			k.log.Info("rendezvous: the novice ended the pairing", "reason", pe.reason)
			return
		}
		k.log.Info("rendezvous: pairing with the novice lost; joining again", "err", sig.err())
		if !k.rejoin() {
			return
		}
	}
}

// rejoin joins the server again (with backoff) until it is paired and has
// handed the new pairing to the connection, or stops.
func (k *keeper) rejoin() bool {
	backoff := time.Second
	var unknownSince time.Time
	for {
		sc, paired, err := k.join()
		if err == nil {
			proof, _ := json.Marshal(resumeMessage{Resume: base64.StdEncoding.EncodeToString(resumeProof(k.key, paired.Session))})
			if err = sc.send(server.Message{Type: server.TypeRelay, Session: paired.Session, Data: proof}); err == nil {
				sig := newRelaySignaler(sc, sc, paired.Session)
				k.mu.Lock()
				k.sc.close()
				k.sc, k.sig = sc, sig
				k.mu.Unlock()
				useICE(k.log, k.conn, paired.ICE)
				k.conn.Resignal(sig)
				k.log.Info("rendezvous: paired with the novice again")
				return true
			}
			sc.close()
		}
		// "unknown" may only mean that the novice's agent has not
		// registered again yet (the server restarted), so it is tried
		// again for a while.
		var se *server.SignalError
		if errors.As(err, &se) && se.Code == server.CodeUnknown {
			if unknownSince.IsZero() {
				unknownSince = time.Now()
			}
		} else {
			unknownSince = time.Time{}
		}
		if errors.As(err, &se) && (se.Code == server.CodeExpired ||
			se.Code == server.CodeUnknown && time.Since(unknownSince) > rejoinUnknownFor) {
			k.log.Info("rendezvous: cannot join again", "err", err)
			return false
		}
		k.log.Info("rendezvous: joining again failed", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-k.stop:
			return false
		}
		backoff = min(2*backoff, maxRejoinBackoff)
	}
}

func (k *keeper) join() (*signalConn, server.Message, error) {
	c, err := dialSignal(k.ctx, k.serverURL, k.fingerprint)
	if err != nil {
		return nil, server.Message{}, err
	}
	paired, err := joinInLine(k.ctx, c, k.lookupID)
	if err != nil {
		c.Close()
		return nil, server.Message{}, err
	}
	return startReading(c), paired, nil
}
