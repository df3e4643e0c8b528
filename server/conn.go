package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// outQueue is how many messages may wait for a slow client before it is
// disconnected, so one stuck reader cannot hold memory or its peer.
const outQueue = 256

// storeTimeout bounds one store operation of a handler.
const storeTimeout = 10 * time.Second

// writeTimeout bounds one message write (and the closing handshake).
const writeTimeout = 10 * time.Second

// client is one signalling connection.
type client struct {
	s      *Server
	ws     *websocket.Conn
	log    *slog.Logger
	out    chan []byte
	done   chan struct{} // closed by closeWith: the writer flushes and closes
	closed sync.Once
	code   websocket.StatusCode // set before done is closed
	reason string

	// Guarded by s.mu.
	role    string
	id      string  // the invitation registered (novice) or last joined (expert)
	peer    *client // nil unless paired
	session string
}

func (s *Server) serveSignal(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	refuse := s.closed || len(s.clients) >= s.cfg.MaxConns
	s.mu.Unlock()
	if refuse {
		http.Error(w, "server busy or shutting down", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debug("signal: websocket handshake", "remote", r.RemoteAddr, "err", err)
		return
	}
	// The reader enforces the configured limit itself, so it can answer
	// with an error message first; this is only a backstop.
	ws.SetReadLimit(int64(s.cfg.MaxMessageBytes) + 1<<20)
	c := &client{
		s:    s,
		ws:   ws,
		log:  s.log.With("remote", r.RemoteAddr),
		out:  make(chan []byte, outQueue),
		done: make(chan struct{}),
		role: rolePending,
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	s.clients[c] = struct{}{}
	s.conns.Add(1)
	s.mu.Unlock()
	defer s.conns.Done()
	s.metrics.conns.WithLabelValues(rolePending).Inc()
	c.log.Debug("signal: connected")

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	s.leave(c)
	c.closeWith(websocket.StatusNormalClosure, "")
	<-writerDone

	s.mu.Lock()
	delete(s.clients, c)
	role := c.role
	s.mu.Unlock()
	s.metrics.conns.WithLabelValues(role).Dec()
	c.log.Debug("signal: disconnected", "role", role)
}

// closeWith makes the writer send what is queued, then close the
// connection with this status. Only the first call counts.
func (c *client) closeWith(code websocket.StatusCode, reason string) {
	c.closed.Do(func() {
		c.code, c.reason = code, reason
		close(c.done)
	})
}

// send queues a message without blocking; a client too slow to take it is
// disconnected.
func (c *client) send(msg []byte) {
	select {
	case <-c.done:
	case c.out <- msg:
	default:
		c.log.Warn("signal: client too slow, disconnecting")
		c.closeWith(websocket.StatusPolicyViolation, "too slow: messages piled up")
	}
}

// fail sends an error message. Codes for broken clients also close the
// connection (the reader stops on its own).
func (c *client) fail(code, message string) {
	c.s.metrics.errors.WithLabelValues(code).Inc()
	c.send(encode(errorMsg{Type: TypeError, Code: code, Message: message}))
	switch code {
	case CodeTooLarge:
		c.closeWith(websocket.StatusMessageTooBig, message)
	case CodeMalformed, CodeRateLimited:
		c.closeWith(websocket.StatusPolicyViolation, message)
	}
}

func (c *client) writeLoop() {
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	write := func(msg []byte) bool {
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		defer cancel()
		if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
			c.log.Debug("signal: write", "err", err)
			c.closeWith(websocket.StatusAbnormalClosure, "")
			return false
		}
		return true
	}
	for {
		select {
		case msg := <-c.out:
			if !write(msg) {
				c.ws.CloseNow()
				return
			}
		case <-ping.C:
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				c.log.Debug("signal: ping", "err", err)
				c.closeWith(websocket.StatusGoingAway, "no answer to ping")
				c.ws.CloseNow()
				return
			}
		case <-c.done:
			for {
				select {
				case msg := <-c.out:
					if !write(msg) {
						c.ws.CloseNow()
						return
					}
					continue
				default:
				}
				break
			}
			if c.code == websocket.StatusAbnormalClosure {
				c.ws.CloseNow()
			} else {
				// Waits (bounded by the library) for the client's answer.
				c.ws.Close(c.code, c.reason)
			}
			return
		}
	}
}

// readLoop reads, checks and handles messages until the connection ends or
// the client breaks a rule.
func (c *client) readLoop() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Unblock the read when the writer has closed the connection or
		// the server is going away.
		select {
		case <-c.done:
		case <-ctx.Done():
			return
		}
		select {
		case <-time.After(writeTimeout):
			cancel()
		case <-ctx.Done():
		}
	}()
	max := c.s.cfg.MaxMessageBytes
	// Rate limits run on real time, whatever the configured clock.
	now := time.Now()
	msgs := newBucket(c.s.cfg.MessageRate, c.s.cfg.MessageBurst, now)
	bytesIn := newBucket(c.s.cfg.ByteRate, c.s.cfg.ByteBurst, now)
	var buf bytes.Buffer
	for {
		typ, r, err := c.ws.Reader(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == -1 && !errors.Is(err, io.EOF) && ctx.Err() == nil {
				c.log.Debug("signal: read", "err", err)
			}
			return
		}
		buf.Reset()
		n, err := buf.ReadFrom(io.LimitReader(r, int64(max)+1))
		if err != nil {
			c.log.Debug("signal: read", "err", err)
			return
		}
		if n > int64(max) {
			c.fail(CodeTooLarge, fmt.Sprintf("message larger than %d bytes", max))
			return
		}
		now := time.Now()
		if !msgs.take(1, now) || !bytesIn.take(float64(n), now) {
			c.fail(CodeRateLimited, "too many messages: slow down")
			return
		}
		if typ != websocket.MessageText {
			c.fail(CodeMalformed, "signalling messages are JSON text, not binary")
			return
		}
		sig, err := ParseSignal(buf.Bytes())
		if err != nil {
			var se *SignalError
			if errors.As(err, &se) {
				c.fail(se.Code, se.Message)
			} else {
				c.fail(CodeMalformed, err.Error())
			}
			return
		}
		c.s.handle(c, sig)
		select {
		case <-c.done:
			return
		default:
		}
	}
}

// handle acts on one parsed message.
func (s *Server) handle(c *client, sig Signal) {
	switch sig.Type {
	case TypeRegister:
		s.register(c, sig)
	case TypeJoin:
		s.join(c, sig)
	case TypeRelay:
		s.relay(c, sig)
	case TypeBye:
		s.bye(c, sig)
	}
}

func (s *Server) register(c *client, sig Signal) {
	now := s.cfg.Now()
	switch {
	case !sig.Expires.After(now):
		c.fail(CodeExpired, "this invitation has already expired: make a new one")
		return
	case sig.Expires.Sub(now) > s.cfg.MaxInvitationTTL:
		c.fail(CodeInvalid, fmt.Sprintf("invitations may last at most %v", s.cfg.MaxInvitationTTL))
		return
	}
	s.mu.Lock()
	if c.role != rolePending {
		s.mu.Unlock()
		c.fail(CodeUnexpected, "this connection has already registered or joined: open a new one")
		return
	}
	if other := s.novices[sig.ID]; other != nil {
		s.mu.Unlock()
		c.fail(CodeTaken, "another connected agent holds this invitation id: pick another")
		return
	}
	// Reserve the id before the store write, so two registrations cannot
	// both win.
	s.novices[sig.ID] = c
	c.role, c.id = roleNovice, sig.ID
	s.mu.Unlock()
	s.metrics.conns.WithLabelValues(rolePending).Dec()
	s.metrics.conns.WithLabelValues(roleNovice).Inc()

	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.cfg.Store.PutInvitation(ctx, Invitation{ID: sig.ID, Expires: sig.Expires, Created: now}); err != nil {
		c.log.Error("signal: register", "err", err)
		s.mu.Lock()
		if s.novices[sig.ID] == c {
			delete(s.novices, sig.ID)
		}
		c.role, c.id = rolePending, ""
		s.mu.Unlock()
		s.metrics.conns.WithLabelValues(roleNovice).Dec()
		s.metrics.conns.WithLabelValues(rolePending).Inc()
		c.fail(CodeInternal, "the server could not store the invitation: try again later")
		return
	}
	s.audit(Event{Time: now, Kind: EventRegister, ID: sig.ID})
	c.log.Info("signal: registered", "id", sig.ID, "expires", sig.Expires)
	c.send(encode(registeredMsg{Type: TypeRegistered, ID: sig.ID, Expires: sig.Expires.UTC().Format(time.RFC3339)}))
}

func (s *Server) join(c *client, sig Signal) {
	s.mu.Lock()
	role, paired := c.role, c.peer != nil
	if role == rolePending {
		c.role = roleExpert
	}
	s.mu.Unlock()
	switch {
	case role == roleNovice:
		c.fail(CodeUnexpected, "this connection registered an invitation: an expert joins on a connection of its own")
		return
	case paired:
		c.fail(CodeUnexpected, "already paired: send bye first")
		return
	case role == rolePending:
		s.metrics.conns.WithLabelValues(rolePending).Dec()
		s.metrics.conns.WithLabelValues(roleExpert).Inc()
	}

	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	inv, err := s.cfg.Store.Invitation(ctx, sig.ID)
	cancel()
	now := s.cfg.Now()
	switch {
	case errors.Is(err, ErrNotFound):
		c.fail(CodeUnknown, "no invitation with this code: check the code with the person who needs help")
		return
	case err != nil:
		c.log.Error("signal: join", "err", err)
		c.fail(CodeInternal, "the server could not look up the invitation: try again later")
		return
	case !inv.Expires.After(now):
		c.fail(CodeExpired, "this invitation has expired: ask the person who needs help for a new one")
		return
	}

	session, err := newSessionID()
	if err != nil {
		c.log.Error("signal: join", "err", err)
		c.fail(CodeInternal, "the server could not make a session: try again later")
		return
	}
	ice := s.ice(session)
	s.mu.Lock()
	n := s.novices[sig.ID]
	switch {
	case n == nil:
		s.mu.Unlock()
		c.fail(CodeOffline, "the person who needs help is not connected right now: ask them to start assist again, or try again in a moment")
		return
	case n.peer != nil:
		s.mu.Unlock()
		c.fail(CodeBusy, "the person who needs help is already with another expert")
		return
	case c.peer != nil:
		s.mu.Unlock()
		c.fail(CodeUnexpected, "already paired: send bye first")
		return
	}
	c.peer, n.peer = n, c
	c.session, n.session = session, session
	c.id = sig.ID
	s.sessions[session] = &pairing{novice: n, expert: c}
	msg := encode(pairedMsg{Type: TypePaired, Session: session, ICE: ice})
	// Queue under the lock: the novice cannot relay before the expert has
	// "paired" in its queue.
	c.send(msg)
	n.send(msg)
	s.mu.Unlock()
	s.metrics.sessions.Inc()
	s.metrics.pairings.Inc()
	c.log.Info("signal: paired", "id", sig.ID, "session", session)
	s.audit(Event{Time: now, Kind: EventPair, ID: sig.ID, Session: session})
}

func (s *Server) relay(c *client, sig Signal) {
	s.mu.Lock()
	p := c.peer
	if p != nil && !sig.forSession(c.session) {
		p = nil // a late message of a pairing that is over
	}
	if p != nil {
		// Queued under the lock so the peer never gets this after a later
		// bye or a pairing with someone else.
		p.send(relayMessage(sig.Data))
	}
	s.mu.Unlock()
	if p == nil {
		c.fail(CodeNotPaired, "not paired with anyone (the peer may just have left)")
		return
	}
	s.metrics.relayedMessages.Inc()
	s.metrics.relayedBytes.Add(float64(len(sig.Data)))
}

func (s *Server) bye(c *client, sig Signal) {
	s.mu.Lock()
	p, session, id := c.peer, c.session, c.id
	if p != nil && !sig.forSession(session) {
		p = nil // a late bye of a pairing that is over
	}
	if p != nil {
		s.unpair(c, p)
		p.send(encode(byeMsg{Type: TypeBye, Reason: sig.Reason}))
	}
	s.mu.Unlock()
	if p == nil {
		c.fail(CodeNotPaired, "not paired with anyone (the peer may just have left)")
		return
	}
	if sig.Reason == ReasonAuthFailed {
		s.metrics.failedAuth.Inc()
	}
	c.log.Info("signal: bye", "session", session, "reason", sig.Reason)
	s.audit(Event{Time: s.cfg.Now(), Kind: EventBye, ID: id, Session: session, Detail: sig.Reason})
}

// leave forgets a closing connection and tells its peer.
func (s *Server) leave(c *client) {
	s.mu.Lock()
	if c.role == roleNovice && s.novices[c.id] == c {
		delete(s.novices, c.id)
	}
	p, session, id := c.peer, c.session, c.id
	if p != nil {
		s.unpair(c, p)
		p.send(peerLeftMsg)
	}
	s.mu.Unlock()
	if p != nil {
		c.log.Info("signal: peer left", "session", session)
		s.audit(Event{Time: s.cfg.Now(), Kind: EventPeerLeft, ID: id, Session: session})
	}
}

// unpair ends a pairing; s.mu is held.
func (s *Server) unpair(a, b *client) {
	delete(s.sessions, a.session)
	a.peer, b.peer = nil, nil
	a.session, b.session = "", ""
	s.metrics.sessions.Dec()
}

func (s *Server) audit(e Event) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.cfg.Store.Audit(ctx, e); err != nil {
		s.log.Warn("audit", "kind", e.Kind, "err", err)
	}
}

// newSessionID returns 128 random bits, URL-safe: the session id also
// authorises GET /v1/ice.
func newSessionID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("server: session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// forSession reports whether a relay or bye belongs to the pairing with
// this session id: it names it, or names none.
func (sig Signal) forSession(session string) bool {
	return sig.Session == "" || sig.Session == session
}
