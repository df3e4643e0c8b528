package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/internal/ratelimit"
	"github.com/assist-project/assist/internal/sqldb"
	"github.com/assist-project/assist/internal/wsconn"
)

// outQueue is how many messages may wait for a slow client before it is
// disconnected, so one stuck reader cannot hold memory or its peer. A
// pairing's burst is an offer or answer and its candidates (rtc sends at
// most 64): far less.
const outQueue = 64

// storeTimeout bounds one store operation of a handler.
const storeTimeout = 10 * time.Second

// unknownMessage answers every join that finds no live invitation,
// whatever the reason (never registered, expired, or its novice not
// connected), so that the answer tells a prober nothing more.
const unknownMessage = "no invitation is waiting under this number: check the code; if it is right, " +
	"the invitation may have expired or its computer may be offline: ask for a new one"

// deadlineKind says what a client's timer is waiting for.
type deadlineKind int

const (
	noDeadline deadlineKind = iota
	// pendingDeadline: register, be paired or wait in line within
	// Config.PendingTimeout, or be closed.
	pendingDeadline
	// queueDeadline: be paired within Config.QueueTimeout, or get "busy".
	queueDeadline
	// relayDeadline: a paired expert sends its first relay message within
	// Config.ExpertDeadline, or the pairing ends.
	relayDeadline
)

// client is one signalling connection.
type client struct {
	s    *Server
	ws   *websocket.Conn
	log  *slog.Logger
	addr netip.Addr // where it comes from, as the server saw it
	key  addrKey
	w    *wsconn.Conn // nil for a remote client
	// out takes its messages: w, or for a remote client (an expert
	// connected to another node), that node.
	out outbox
	// remote: an expert connected to another node, whose signalling
	// that node forwards here (mesh.go).
	remote bool
	// timer fires at the deadline; the writer waits for it. Reset under
	// s.mu by setDeadline.
	timer *time.Timer

	// Guarded by s.mu.
	role    string
	id      string  // the invitation registered (novice) or last joined (expert)
	peer    *client // nil unless paired
	session string
	// expires is a novice's invitation's expiry; registering is true from
	// its registration until the store has it.
	expires     time.Time
	registering bool
	// committed: it has registered, been paired or waited in line, so
	// the pending deadline no longer applies.
	committed  bool
	queued     string // the invitation whose line it waits in, or ""
	deadline   deadlineKind
	deadlineAt time.Time
	// home is the node this connection's signalling is forwarded to
	// ("" while it is handled here), edge its id there (mesh.go), and
	// edgeFor the invitation its join named.
	home, edge, edgeFor string
	// commitSent: a remote client's node knows it is committed.
	commitSent bool
}

func (s *Server) serveSignal(w http.ResponseWriter, r *http.Request) {
	addr := ratelimit.RemoteAddr(r.RemoteAddr)
	key := ratelimit.Key(addr)
	s.mu.Lock()
	refuse := s.closed || len(s.clients) >= s.cfg.MaxConns
	draining := s.draining
	s.mu.Unlock()
	if draining && !refuse {
		s.metrics.refused.WithLabelValues("draining").Inc()
		// The load balancer sends the client's next try to another node.
		http.Error(w, "this server is shutting down: connect again", http.StatusServiceUnavailable)
		return
	}
	if refuse {
		s.metrics.refused.WithLabelValues("server-full").Inc()
		http.Error(w, "server busy or shutting down", http.StatusServiceUnavailable)
		return
	}
	// Before the upgrade: a refused connection costs no WebSocket.
	if !s.limits.connect(key, s.cfg.Now()) {
		s.metrics.refused.WithLabelValues("per-address").Inc()
		http.Error(w, fmt.Sprintf("too many connections from your address (at most %d): close some, then try again",
			s.cfg.MaxConnsPerAddress), http.StatusTooManyRequests)
		return
	}
	defer s.limits.disconnect(key)
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
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
		addr: addr,
		key:  key,
		w:    wsconn.New(ws, outQueue, s.log.With("remote", r.RemoteAddr), "signal"),
		role: rolePending,
	}
	c.out = c.w
	// deadlineAt first: the timer must not fire before it.
	c.deadline, c.deadlineAt = pendingDeadline, time.Now().Add(s.cfg.PendingTimeout)
	c.timer = time.NewTimer(s.cfg.PendingTimeout)
	defer c.w.CancelRead()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.timer.Stop()
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	s.clients[c] = struct{}{}
	s.connsHigh = max(s.connsHigh, len(s.clients))
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
	if s.cfg.Mesh != nil {
		s.edgeLeft(c)
	}
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

// setDeadline sets what c's timer waits for, d from now; s.mu is held.
func (c *client) setDeadline(k deadlineKind, d time.Duration) {
	c.deadline = k
	if k == noDeadline {
		c.timer.Stop()
		return
	}
	c.deadlineAt = time.Now().Add(d)
	c.timer.Reset(d)
}

// closeWith makes the writer send what is queued, then close the
// connection with this status. Only the first call counts.
func (c *client) closeWith(code websocket.StatusCode, reason string) { c.out.Close(code, reason) }

// send queues a message without blocking; a client too slow to take it is
// disconnected.
func (c *client) send(msg []byte) { c.out.Send(msg) }

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
	defer c.timer.Stop()
	c.w.Run(c.s.cfg.PingInterval, c.timer.C, func() { c.s.onDeadline(c) })
}

// readLoop reads, checks and handles messages until the connection ends or
// the client breaks a rule.
func (c *client) readLoop() {
	ctx := c.w.ReadContext()
	defer c.w.CancelRead()
	max := c.s.cfg.MaxMessageBytes
	// Rate limits run on real time, whatever the configured clock.
	now := time.Now()
	msgs := ratelimit.NewBucket(c.s.cfg.MessageRate, c.s.cfg.MessageBurst, now)
	bytesIn := ratelimit.NewBucket(c.s.cfg.ByteRate, c.s.cfg.ByteBurst, now)
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
		if !msgs.Take(1, now) || !bytesIn.Take(float64(n), now) {
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
		// An expert joined through another node (the invitation's home)
		// talks to that node; it checks the message again.
		if c.s.cfg.Mesh == nil || !c.s.forwardRaw(c, buf.Bytes()) {
			c.s.handle(c, sig)
		}
		select {
		case <-c.w.Done():
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
	role := c.role
	s.mu.Unlock()
	if role != rolePending {
		c.fail(CodeUnexpected, "this connection has already registered or joined: open a new one")
		return
	}
	// The address's budget first: "taken" tells whether an id is live,
	// so asking costs a registration too.
	if refusal := s.limits.register(c.key, now); refusal != "" {
		c.fail(CodeTooMany, refusal)
		return
	}
	s.mu.Lock()
	if other := s.novices[sig.ID]; other != nil {
		s.mu.Unlock()
		s.limits.unregister(c.key)
		c.fail(CodeTaken, "another connected agent holds this invitation id: pick another")
		return
	}
	// Reserve the id before the store write, so two registrations cannot
	// both win. Experts who join meanwhile wait in line.
	s.novices[sig.ID] = c
	c.role, c.id, c.expires, c.registering = roleNovice, sig.ID, sig.Expires, true
	c.committed = true
	c.setDeadline(noDeadline, 0)
	s.mu.Unlock()
	s.metrics.conns.WithLabelValues(rolePending).Dec()
	s.metrics.conns.WithLabelValues(roleNovice).Inc()

	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	var owner []byte
	if sig.Owner != "" {
		h := sha256.Sum256([]byte(sig.Owner))
		owner = h[:]
	}
	undo := func() {
		s.mu.Lock()
		if s.novices[sig.ID] == c {
			delete(s.novices, sig.ID)
		}
		c.role, c.id, c.registering, c.committed = rolePending, "", false, false
		c.setDeadline(pendingDeadline, s.cfg.PendingTimeout)
		s.mu.Unlock()
		s.limits.unregister(c.key)
		s.metrics.conns.WithLabelValues(roleNovice).Dec()
		s.metrics.conns.WithLabelValues(rolePending).Inc()
	}
	if s.cfg.Mesh != nil {
		// The id's home is this node from now on, unless another node's
		// agent holds it.
		holder, err := s.cfg.Mesh.Claim(ctx, sig.ID, owner)
		switch {
		case err != nil:
			// Experts on this node can still join; the renewal makes
			// the claim once the other nodes can be reached.
			c.log.Warn("signal: register: the other servers cannot be told of this invitation yet", "err", err)
		case holder != "":
			undo()
			c.fail(CodeTaken, "another connected agent holds this invitation id: pick another")
			return
		}
	}
	if err := s.cfg.Store.PutInvitation(ctx, Invitation{ID: sig.ID, Expires: sig.Expires, Created: now, Seen: now, Owner: owner}); err != nil {
		owned := errors.Is(err, ErrOwned)
		if !owned {
			c.log.Error("signal: register", "err", err)
		}
		undo()
		if s.cfg.Mesh != nil {
			s.meshRelease(sig.ID)
		}
		if owned {
			// Its agent is away, and it has not expired: the id is still
			// that agent's.
			c.fail(CodeTaken, "this invitation id belongs to another agent: pick another")
			return
		}
		if sqldb.IsUnavailable(err) {
			c.fail(CodeUnavailable, storeAwayMessage)
			return
		}
		c.fail(CodeInternal, "the server could not store the invitation: try again later")
		return
	}
	s.audit(Event{Time: now, Kind: EventRegister, ID: sig.ID})
	c.log.Info("signal: registered", IDAttr(sig.ID), "expires", sig.Expires)
	s.mu.Lock()
	c.registering = false
	// "registered" goes before the "paired" of an expert waiting in line.
	c.send(encode(registeredMsg{Type: TypeRegistered, ID: sig.ID, Expires: sig.Expires.UTC().Format(time.RFC3339)}))
	events := s.promote(sig.ID)
	if s.cfg.Mesh != nil {
		s.closeMovedEdgesLocked(sig.ID, s.cfg.Mesh.Node())
	}
	s.mu.Unlock()
	if s.cfg.Mesh != nil {
		// Experts on the other nodes joined to id's former home learn
		// it here too (closeMovedEdgesLocked there).
		s.meshSend("", meshMsg{Op: opMoved, ID: sig.ID})
	}
	s.auditAll(events)
}

func (s *Server) join(c *client, sig Signal) {
	s.mu.Lock()
	role, paired, queued := c.role, c.peer != nil, c.queued != ""
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
	case queued:
		c.fail(CodeUnexpected, "already waiting in line for an invitation: wait for \"paired\", or open a new connection")
		return
	case role == rolePending:
		s.metrics.conns.WithLabelValues(rolePending).Dec()
		s.metrics.conns.WithLabelValues(roleExpert).Inc()
	}

	// Admitted or refused before anything is looked up: a refusal says
	// nothing about the id.
	now := s.cfg.Now()
	// A remote client's node admitted its join already.
	if !c.remote {
		if refusal := s.limits.join(c.key, now); refusal != "" {
			c.fail(CodeTooMany, refusal)
			return
		}
	}
	var events []Event
	s.mu.Lock()
	n := s.novices[sig.ID]
	if n == nil && s.cfg.Mesh != nil && !c.remote {
		// Perhaps another node's: it is asked from here on.
		s.mu.Unlock()
		s.forwardJoin(c, sig)
		return
	}
	if n == nil || !n.expires.After(now) {
		s.mu.Unlock()
		c.fail(CodeUnknown, unknownMessage)
		return
	}
	if !c.remote {
		s.limits.hit(c.key)
	}
	q := s.queues[sig.ID]
	switch {
	case s.holds(c.key, sig.ID):
		s.mu.Unlock()
		c.fail(CodeTooMany, "a connection from your address is already paired or waiting in line for this invitation: close it, then try again")
		return
	case n.peer == nil && !n.registering && len(q) == 0:
		ev, err := s.pairLocked(n, c)
		if err != nil {
			s.mu.Unlock()
			c.log.Error("signal: join", "err", err)
			c.fail(CodeInternal, "the server could not make a session: try again later")
			return
		}
		events = append(events, ev)
	case len(q) >= s.cfg.MaxQueue:
		s.mu.Unlock()
		c.fail(CodeBusy, "the person who needs help is with another helper and others are waiting: try again in a few minutes")
		return
	default:
		s.enqueue(sig.ID, c)
		c.send(queuedMsg)
		c.log.Info("signal: waiting in line", IDAttr(sig.ID), "position", len(s.queues[sig.ID]))
	}
	s.mu.Unlock()
	s.auditAll(events)
}

// holds reports whether a client at k is paired with id's novice or
// waiting in its line; s.mu is held. One entry per address and invitation:
// a single address cannot fill the line.
func (s *Server) holds(k addrKey, id string) bool {
	if n := s.novices[id]; n != nil && n.peer != nil && n.peer.key == k {
		return true
	}
	for _, e := range s.queues[id] {
		if e.key == k {
			return true
		}
	}
	return false
}

// enqueue puts expert e at the end of id's line; s.mu is held.
func (s *Server) enqueue(id string, e *client) {
	s.queues[id] = append(s.queues[id], e)
	e.queued, e.id, e.committed = id, id, true
	e.setDeadline(queueDeadline, s.cfg.QueueTimeout)
	s.metrics.queued.Inc()
}

// dequeue takes e out of the line it waits in; s.mu is held.
func (s *Server) dequeue(e *client) {
	q := s.queues[e.queued]
	for i, x := range q {
		if x == e {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(s.queues, e.queued)
	} else {
		s.queues[e.queued] = q
	}
	e.queued = ""
	if e.deadline == queueDeadline {
		e.setDeadline(noDeadline, 0)
	}
	s.metrics.queued.Dec()
}

// promote pairs id's free novice with the first expert in its line, if
// any; s.mu is held. It returns the audit events to write once s.mu is
// released.
func (s *Server) promote(id string) []Event {
	n := s.novices[id]
	q := s.queues[id]
	if n == nil || n.peer != nil || n.registering || len(q) == 0 {
		return nil
	}
	if !n.expires.After(s.cfg.Now()) {
		for _, e := range q {
			s.dequeue(e)
			e.fail(CodeUnknown, unknownMessage)
		}
		return nil
	}
	for len(s.queues[id]) > 0 {
		e := s.queues[id][0]
		s.dequeue(e)
		ev, err := s.pairLocked(n, e)
		if err != nil {
			e.log.Error("signal: pairing from the line", "err", err)
			e.fail(CodeInternal, "the server could not make a session: try again later")
			continue
		}
		return []Event{ev}
	}
	return nil
}

// pairLocked pairs novice n with expert e; s.mu is held. The expert must
// relay within ExpertDeadline. It returns the audit event to write once
// s.mu is released.
func (s *Server) pairLocked(n, e *client) (Event, error) {
	session, err := newSessionID()
	if err != nil {
		return Event{}, err
	}
	now := s.cfg.Now()
	turn := s.limits.acquireRelay(n.key, e.key, now)
	ice := s.ice(session, turn)
	p := &pairing{id: n.id, session: session, novice: n, expert: e, turn: turn}
	e.peer, n.peer = n, e
	e.session, n.session = session, session
	e.id, e.committed = n.id, true
	s.sessions[session] = p
	// Queued under the lock: the novice cannot relay before the expert
	// has "paired" in its queue. Only the novice learns where the other
	// end comes from.
	e.send(encode(pairedMsg{Type: TypePaired, Session: session, ICE: ice}))
	from := ""
	if e.addr.IsValid() {
		from = e.addr.String()
	}
	n.send(encode(pairedMsg{Type: TypePaired, Session: session, ICE: ice, From: from}))
	e.setDeadline(relayDeadline, s.cfg.ExpertDeadline)
	s.metrics.sessions.Inc()
	s.metrics.pairings.Inc()
	e.log.Info("signal: paired", IDAttr(n.id), "session", SessionTag(session), "turn", turn)
	return Event{Time: now, Kind: EventPair, ID: n.id, Session: session}, nil
}

// onDeadline acts on c's timer: it closes a connection that never
// registered or joined, turns away an expert that waited in line too long,
// and ends a pairing whose expert sent nothing.
func (s *Server) onDeadline(c *client) {
	var events []Event
	s.mu.Lock()
	kind := c.deadline
	if kind == noDeadline {
		// Cancelled since the timer fired.
		s.mu.Unlock()
		return
	}
	if left := time.Until(c.deadlineAt); left > 0 {
		// Moved since the timer fired, or the timer was armed a moment
		// before deadlineAt was taken: wait for the rest, or this
		// deadline would never be enforced.
		c.timer.Reset(left)
		s.mu.Unlock()
		return
	}
	c.deadline = noDeadline
	switch kind {
	case pendingDeadline:
		if !c.committed {
			c.log.Debug("signal: closing a connection that neither registered nor joined")
			c.closeWith(websocket.StatusPolicyViolation, fmt.Sprintf("register or join within %v", s.cfg.PendingTimeout))
		}
	case queueDeadline:
		if c.queued != "" {
			s.dequeue(c)
			c.fail(CodeBusy, fmt.Sprintf("the person who needs help was with another helper for the %s you waited: try again later",
				ratelimit.RetryIn(s.cfg.QueueTimeout)))
		}
	case relayDeadline:
		if p := s.sessions[c.session]; p != nil && p.expert == c && !p.expertSent {
			c.log.Info("signal: the expert sent nothing in time", IDAttr(p.id), "session", SessionTag(p.session))
			events = s.endPairing(p, ReasonExpertTimeout)
		}
	}
	s.mu.Unlock()
	s.auditAll(events)
}

// endPairing ends p for both sides with a bye and pairs the next expert
// in line; s.mu is held.
func (s *Server) endPairing(p *pairing, reason string) []Event {
	s.unpair(p)
	bye := encode(byeMsg{Type: TypeBye, Reason: reason})
	p.novice.send(bye)
	p.expert.send(bye)
	events := []Event{{Time: s.cfg.Now(), Kind: EventBye, ID: p.id, Session: p.session, Detail: reason}}
	return append(events, s.promote(p.id)...)
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
		if pr := s.sessions[c.session]; pr != nil && pr.expert == c && !pr.expertSent {
			pr.expertSent = true
			if c.deadline == relayDeadline {
				c.setDeadline(noDeadline, 0)
			}
		}
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
	var events []Event
	s.mu.Lock()
	var p *pairing
	if c.peer != nil && sig.forSession(c.session) {
		p = s.sessions[c.session]
	}
	if p != nil {
		// c is one side of p; the other gets the bye.
		other := p.novice
		if other == c {
			other = p.expert
		}
		s.unpair(p)
		other.send(encode(byeMsg{Type: TypeBye, Reason: sig.Reason}))
		events = append(events, Event{Time: s.cfg.Now(), Kind: EventBye, ID: p.id, Session: p.session, Detail: sig.Reason})
		events = append(events, s.promote(p.id)...)
	}
	s.mu.Unlock()
	if p == nil {
		c.fail(CodeNotPaired, "not paired with anyone (the peer may just have left)")
		return
	}
	if sig.Reason == ReasonAuthFailed {
		s.metrics.failedAuth.Inc()
	}
	c.log.Info("signal: bye", "session", SessionTag(p.session), "reason", sig.Reason)
	s.auditAll(events)
}

// leave forgets a closing connection, tells its peer and pairs the next
// expert in line.
func (s *Server) leave(c *client) {
	var events []Event
	s.mu.Lock()
	novice := c.role == roleNovice && s.novices[c.id] == c
	if novice {
		delete(s.novices, c.id)
	}
	if c.queued != "" {
		s.dequeue(c)
	}
	var p *pairing
	if c.peer != nil {
		p = s.sessions[c.session]
	}
	if p != nil {
		other := p.novice
		if other == c {
			other = p.expert
		}
		s.unpair(p)
		other.send(peerLeftMsg)
		events = append(events, Event{Time: s.cfg.Now(), Kind: EventPeerLeft, ID: p.id, Session: p.session})
		events = append(events, s.promote(p.id)...)
	}
	s.mu.Unlock()
	if novice && s.cfg.Mesh != nil {
		s.meshRelease(c.id)
	}
	if novice {
		// No store write here: a flood of closing connections must not
		// become a flood of writes. The pruner records connected novices
		// each minute, which dates the departure closely enough.
		s.limits.unregister(c.key)
	}
	if p != nil {
		c.log.Info("signal: peer left", "session", SessionTag(p.session))
	}
	s.auditAll(events)
}

// unpair ends a pairing; s.mu is held.
func (s *Server) unpair(p *pairing) {
	delete(s.sessions, p.session)
	n, e := p.novice, p.expert
	n.peer, e.peer = nil, nil
	n.session, e.session = "", ""
	if e.deadline == relayDeadline {
		e.setDeadline(noDeadline, 0)
	}
	if p.turn {
		s.limits.releaseRelay(n.key, e.key)
	}
	s.metrics.sessions.Dec()
}

func (s *Server) auditAll(events []Event) {
	for _, e := range events {
		s.audit(e)
	}
}

func (s *Server) audit(e Event) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.cfg.Store.Audit(ctx, e); err != nil {
		s.log.Warn("audit", "kind", e.Kind, "err", err)
	}
}

// SessionTag names a session in logs without revealing it: the session
// id authorises GET /v1/ice (TURN credentials), so it never reaches a
// log, yet logs must tell one pairing from the next. Four hex digits of
// its SHA-256; the agents use the same tag, so their logs and the
// server's can be matched up.
func SessionTag(session string) string {
	h := sha256.Sum256([]byte(session))
	return hex.EncodeToString(h[:2])
}

// MessengerIDPrefix starts the ids of the messenger's sessions (the SID of
// an accepted request): the two devices of a request learn it, nobody else.
const MessengerIDPrefix = "r-"

// IDAttr names a registered id in log lines: "id" in full for an
// invitation's id or a short code's number (the novice hands those out),
// "id_tag" (SessionTag) for a messenger session's id, which is the
// capability to pair with that novice's device and never reaches a log.
func IDAttr(id string) slog.Attr {
	if strings.HasPrefix(id, MessengerIDPrefix) {
		return slog.String("id_tag", SessionTag(id))
	}
	return slog.String("id", id)
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
