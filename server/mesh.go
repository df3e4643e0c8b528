package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/internal/ratelimit"
)

// Mesh joins several rendezvous servers ("nodes") behind one load
// balancer, so that a novice connected to one node and an expert connected
// to another still meet. Without one (Config.Mesh nil) the server is a
// single node and pairs only its own clients, exactly as before.
//
// The node a novice registered on is its invitation's home, and holds all
// of the invitation's pairing state (line, deadlines, limits, audit). The
// mesh keeps a directory of homes (id to node), with claims that expire by
// themselves unless their node renews them, so a dead node's invitations
// are free again after a while. An expert who joins on another node has
// its signalling forwarded to the home node, where it is a "remote client"
// whose messages travel back the same way.
//
// Package server/natsmesh implements it over NATS.
type Mesh interface {
	// Node is this node's name, unique in the mesh.
	Node() string
	// Claim makes this node the home of id, for a novice whose secret
	// has SHA-256 owner (nil: none). It returns "" when this node now
	// holds the claim, or the name of the node that holds it for another
	// owner. A claim held for the same non-nil owner is taken over: its
	// agent came back through another node.
	Claim(ctx context.Context, id string, owner []byte) (holder string, err error)
	// Release gives up this node's claim on id, if it still holds it.
	Release(ctx context.Context, id string) error
	// Refresh renews this node's claims on ids (making them again if
	// they expired meanwhile) and returns the ids another node holds now.
	Refresh(ctx context.Context, ids []string) (lost []string, err error)
	// Home returns the node that holds id, or "" when none does.
	Home(ctx context.Context, id string) (string, error)
	// Send hands msg to node's Listen handler without waiting, at most
	// once, in order with this node's other messages to it; node ""
	// sends to every node, this one included, in no particular order
	// with messages to one node.
	Send(node string, msg []byte) error
	// Ask sends msg to node's handler and returns its answer; node ""
	// asks every node and returns the first answer (a handler that
	// returns nil stays silent).
	Ask(ctx context.Context, node string, msg []byte) ([]byte, error)
	// Listen hands every message sent to or asked of this node to h, one
	// at a time, until stop is called; h's result answers an Ask.
	Listen(h func(msg []byte) []byte) (stop func(), err error)
	// Every is how often the server renews its claims and checks on the
	// nodes it forwards to: well within a claim's lifetime.
	Every() time.Duration
	// Ready reports whether the mesh can reach the other nodes now.
	Ready(ctx context.Context) error
}

// Operations between nodes (meshMsg.Op).
const (
	// To the home node, from the node where the expert is connected.
	opJoin   = "join"   // the expert's first join: make a remote client
	opSignal = "signal" // a later message of the expert's (Msg)
	opLeft   = "left"   // the expert's connection closed
	// To the expert's node, from the home node.
	opSend   = "send"   // deliver Msg to the expert
	opCommit = "commit" // it is paired or waits in line: no pending deadline
	opDetach = "detach" // the home keeps nothing of it: handle it locally again
	opClose  = "close"  // close its connection with Code and Reason
	// Either way, asked: which of these connections do you no longer know?
	opCheck = "check"
	// Asked of all nodes: the ICE servers of Session, from its node.
	opICE = "ice"
	// Sent to all nodes: ID's agent has registered it on the sender,
	// which is its home now.
	opMoved = "moved"
)

// meshMsg is one message between nodes.
type meshMsg struct {
	Op   string `json:"op"`
	From string `json:"from"`
	// Conn names the expert's connection on its node (edge).
	Conn   string          `json:"conn,omitempty"`
	Addr   string          `json:"addr,omitempty"` // join: where the expert comes from
	Msg    json.RawMessage `json:"msg,omitempty"`
	Code   int             `json:"code,omitempty"`
	Reason string          `json:"reason,omitempty"`
	// Check: the asker's edges forwarded to the asked node, and its
	// remote clients from the asked node. The answer: those of them the
	// asked node does not know.
	Edges   []string `json:"edges,omitempty"`
	Remotes []string `json:"remotes,omitempty"`
	Session string   `json:"session,omitempty"` // ice
	ID      string   `json:"id,omitempty"`      // moved
}

// meshTimeout bounds one directory operation or check.
const meshTimeout = 3 * time.Second

// meshStrikes is how many checks in a row a node may fail to answer (or
// answer "gone" for a connection) before the links with it are closed.
const meshStrikes = 3

// meshState is the Server's part of the mesh; guarded by Server.mu.
type meshState struct {
	incarnation string // tells this process's connection ids from a previous one's
	seq         atomic.Uint64
	// edges are this node's clients whose signalling goes to another
	// node, by connection id; remotes are the other nodes' experts
	// handled here, by node and connection id.
	edges   map[string]*client
	remotes map[remoteKey]*client
	// strikes counts failed checks per node; gone counts the checks in a
	// row that called a connection gone, by node, kind and id.
	strikes map[string]int
	gone    map[string]int
	stop    func()
}

type remoteKey struct{ node, conn string }

func newMeshState() (*meshState, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("server: mesh: %w", err)
	}
	return &meshState{incarnation: hex.EncodeToString(b), edges: make(map[string]*client),
		remotes: make(map[remoteKey]*client), strikes: make(map[string]int), gone: make(map[string]int)}, nil
}

// outbox is where a client's messages go: its WebSocket's writer, or for
// a remote client, the node its expert is connected to.
type outbox interface {
	Send(msg []byte)
	Close(code websocket.StatusCode, reason string)
}

// remoteOut is a remote client's outbox: it sends to the expert's node.
type remoteOut struct {
	s          *Server
	node, conn string
	once       sync.Once
	done       chan struct{} // closed when the remote client ends
}

func (o *remoteOut) Send(msg []byte) {
	select {
	case <-o.done:
		return
	default:
	}
	o.s.meshSend(o.node, meshMsg{Op: opSend, Conn: o.conn, Msg: msg})
}

func (o *remoteOut) Close(code websocket.StatusCode, reason string) {
	o.end(func() { o.s.meshSend(o.node, meshMsg{Op: opClose, Conn: o.conn, Code: int(code), Reason: reason}) })
}

// end ends the remote client once, running tell first (nil: the expert's
// node already knows).
func (o *remoteOut) end(tell func()) {
	o.once.Do(func() {
		if tell != nil {
			tell()
		}
		close(o.done)
	})
}

// meshSend sends m to node, logging a failure: the checks find what it
// breaks.
func (s *Server) meshSend(node string, m meshMsg) {
	m.From = s.cfg.Mesh.Node()
	b, err := json.Marshal(m)
	if err == nil {
		err = s.cfg.Mesh.Send(node, b)
	}
	if err != nil {
		s.log.Warn("signal: mesh: send", "node", node, "op", m.Op, "err", err)
	}
}

// startMesh listens to the other nodes and starts renewing claims and
// checking links.
func (s *Server) startMesh() error {
	stop, err := s.cfg.Mesh.Listen(s.meshHandle)
	if err != nil {
		return fmt.Errorf("server: mesh: %w", err)
	}
	s.mesh.stop = stop
	s.bg.Add(1)
	go s.meshLoop()
	return nil
}

// meshHandle acts on one message from another node.
func (s *Server) meshHandle(b []byte) []byte {
	var m meshMsg
	if err := json.Unmarshal(b, &m); err != nil || m.From == "" {
		s.log.Warn("signal: mesh: malformed message from another node", "err", err)
		return nil
	}
	switch m.Op {
	case opJoin, opSignal, opLeft:
		s.homeHandle(m)
	case opSend, opCommit, opDetach, opClose:
		s.edgeHandle(m)
	case opCheck:
		return s.checkAnswer(m)
	case opMoved:
		if m.From != s.cfg.Mesh.Node() {
			s.mu.Lock()
			s.closeMovedEdgesLocked(m.ID, m.From)
			s.mu.Unlock()
		}
	case opICE:
		s.mu.Lock()
		p := s.sessions[m.Session]
		turn := p != nil && p.turn
		s.mu.Unlock()
		if p == nil || m.Session == "" {
			return nil // another node's, or none
		}
		b, _ := json.Marshal(iceResponse{ICE: s.ice(m.Session, turn), TTL: int64(s.cfg.CredentialTTL / time.Second)})
		return b
	default:
		s.log.Warn("signal: mesh: unknown operation", "op", m.Op, "node", m.From)
	}
	return nil
}

// homeHandle acts, on the home node, on a message about another node's
// expert.
func (s *Server) homeHandle(m meshMsg) {
	k := remoteKey{m.From, m.Conn}
	var sig Signal
	if m.Op != opLeft {
		var err error
		if sig, err = ParseSignal(m.Msg); err != nil {
			// The expert's node parsed it already: a bug or a hostile node.
			s.log.Warn("signal: mesh: bad forwarded message", "node", m.From, "err", err)
			return
		}
	}
	s.mu.Lock()
	rc := s.mesh.remotes[k]
	if m.Op == opLeft {
		s.mu.Unlock()
		if rc != nil {
			rc.out.(*remoteOut).end(nil)
		}
		return
	}
	if rc == nil && m.Op == opJoin && sig.Type == TypeJoin && !s.closed {
		rc = s.newRemote(k, m.Addr)
	}
	s.mu.Unlock()
	if rc == nil {
		// The link is gone (the check closed it): the expert's node
		// learns that from its next check.
		return
	}
	s.handle(rc, sig)
	s.mu.Lock()
	committed, tell := rc.committed, rc.committed && !rc.commitSent
	rc.commitSent = rc.committed
	done := rc.out.(*remoteOut).done
	s.mu.Unlock()
	select {
	case <-done:
		return
	default:
	}
	if tell {
		s.meshSend(m.From, meshMsg{Op: opCommit, Conn: m.Conn})
	}
	if committed {
		return
	}
	// Refused: nothing of it stays here, and its node treats it as its
	// own again (its pending deadline, its next join).
	rc.out.(*remoteOut).end(func() { s.meshSend(m.From, meshMsg{Op: opDetach, Conn: m.Conn}) })
}

// newRemote makes a remote client for node k.node's connection k.conn;
// s.mu is held. A goroutine of its own runs its deadlines until it ends.
func (s *Server) newRemote(k remoteKey, addr string) *client {
	a, _ := netip.ParseAddr(addr)
	out := &remoteOut{s: s, node: k.node, conn: k.conn, done: make(chan struct{})}
	rc := &client{
		s:    s,
		log:  s.log.With("remote", addr, "node", k.node),
		addr: a.Unmap(),
		key:  ratelimit.Key(a.Unmap()),
		out:  out,
		role: rolePending,
		// No pending deadline here: the expert's node keeps it until
		// this node says the expert is paired or waits in line.
		timer:  time.NewTimer(time.Hour),
		remote: true,
	}
	rc.timer.Stop()
	s.mesh.remotes[k] = rc
	s.conns.Add(1)
	s.metrics.conns.WithLabelValues(rolePending).Inc()
	s.metrics.remote.Inc()
	go func() {
		defer s.conns.Done()
		defer rc.timer.Stop()
		for {
			select {
			case <-rc.timer.C:
				s.onDeadline(rc)
			case <-out.done:
				s.leave(rc)
				s.mu.Lock()
				if s.mesh.remotes[k] == rc {
					delete(s.mesh.remotes, k)
				}
				role := rc.role
				s.mu.Unlock()
				s.metrics.conns.WithLabelValues(role).Dec()
				s.metrics.remote.Dec()
				return
			}
		}
	}()
	return rc
}

// edgeHandle acts, on the expert's node, on the home node's message for
// one of its connections.
func (s *Server) edgeHandle(m meshMsg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.mesh.edges[m.Conn]
	if c == nil || c.home != m.From {
		return
	}
	switch m.Op {
	case opSend:
		c.send(m.Msg)
	case opCommit:
		c.committed = true
		if c.deadline == pendingDeadline {
			c.setDeadline(noDeadline, 0)
		}
	case opDetach:
		s.detachLocked(c)
	case opClose:
		s.detachLocked(c)
		c.closeWith(websocket.StatusCode(m.Code), m.Reason)
	}
}

// detachLocked makes c a local client again; s.mu is held.
func (s *Server) detachLocked(c *client) {
	delete(s.mesh.edges, c.edge)
	c.home, c.edge, c.edgeFor = "", "", ""
}

// closeMovedEdgesLocked tells this node's experts whose joins of id were
// forwarded to another node than home to join again: id's agent has just
// registered it on home (this node, or the sender of an opMoved), so its
// pairing state on the node they were forwarded to is gone or about to
// be. Without this an expert whose novice came back on another node after
// its home died waited for the checks to give the dead node up
// (meshStrikes of them, about a claim's lifetime: 27 s in cmd/assist's
// TestClusterRelayFailover), its ICE restarts going nowhere meanwhile.
// Experts already forwarded to home are left alone. Called with Server.mu
// held.
func (s *Server) closeMovedEdgesLocked(id, home string) {
	for _, c := range s.mesh.edges {
		if c.edgeFor != id || c.home == home {
			continue
		}
		c.log.Info("signal: the invitation moved to another server", IDAttr(id), "from", c.home, "to", home)
		s.detachLocked(c)
		c.closeWith(websocket.StatusGoingAway, movedMessage)
	}
}

// movedMessage is the close reason of an expert's connection whose
// invitation came back on another server than the one it was joined on.
const movedMessage = "the invitation moved to another server: join again"

// forwardJoin looks up the home of a join's id on the other nodes and, if
// one holds it, hands c's signalling to it. It reports whether it did;
// otherwise it has answered c.
func (s *Server) forwardJoin(c *client, sig Signal) bool {
	ctx, cancel := context.WithTimeout(context.Background(), meshTimeout)
	home, err := s.cfg.Mesh.Home(ctx, sig.ID)
	cancel()
	if err != nil {
		c.log.Error("signal: join: looking up the invitation's server", "err", err)
		c.fail(CodeInternal, "the server could not look up the invitation: try again in a moment")
		return false
	}
	if home == "" || home == s.cfg.Mesh.Node() {
		c.fail(CodeUnknown, unknownMessage)
		return false
	}
	s.limits.hit(c.key)
	s.mu.Lock()
	if c.home == "" {
		c.edge = s.mesh.incarnation + "-" + fmt.Sprint(s.mesh.seq.Add(1))
		c.home = home
		s.mesh.edges[c.edge] = c
	}
	c.edgeFor = sig.ID
	home, edge := c.home, c.edge
	s.mu.Unlock()
	from := ""
	if c.addr.IsValid() {
		from = c.addr.String()
	}
	msg, _ := json.Marshal(map[string]string{"type": TypeJoin, "id": sig.ID})
	s.meshSend(home, meshMsg{Op: opJoin, Conn: edge, Addr: from, Msg: msg})
	c.log.Info("signal: join forwarded to the invitation's server", IDAttr(sig.ID), "node", home)
	return true
}

// forwardRaw sends a message of c's to its home node, if it has one, and
// reports whether it did.
func (s *Server) forwardRaw(c *client, raw []byte) bool {
	s.mu.Lock()
	home, edge := c.home, c.edge
	s.mu.Unlock()
	if home == "" {
		return false
	}
	s.meshSend(home, meshMsg{Op: opSignal, Conn: edge, Msg: append([]byte(nil), raw...)})
	return true
}

// edgeLeft tells c's home node that c's connection closed.
func (s *Server) edgeLeft(c *client) {
	s.mu.Lock()
	home, edge := c.home, c.edge
	if home != "" {
		s.detachLocked(c)
	}
	s.mu.Unlock()
	if home != "" {
		s.meshSend(home, meshMsg{Op: opLeft, Conn: edge})
	}
}

// meshLoop renews this node's claims and checks its links with other
// nodes, every Mesh.Every, until Close.
func (s *Server) meshLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.cfg.Mesh.Every())
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.refreshClaims()
		s.checkLinks()
	}
}

// refreshClaims renews the claims of the novices connected here, and
// closes those whose id another node took over (their agent came back
// there).
func (s *Server) refreshClaims() {
	s.mu.Lock()
	ids := make([]string, 0, len(s.novices))
	for id, n := range s.novices {
		if !n.registering {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, meshTimeout)
	lost, err := s.cfg.Mesh.Refresh(ctx, ids)
	cancel()
	if err != nil && s.ctx.Err() == nil {
		s.log.Warn("signal: mesh: renewing this server's invitations", "err", err)
	}
	for _, id := range lost {
		s.mu.Lock()
		n := s.novices[id]
		s.mu.Unlock()
		if n != nil {
			n.log.Info("signal: the invitation was registered again on another server", IDAttr(id))
			n.closeWith(websocket.StatusGoingAway, "this invitation is now registered on another server")
		}
	}
}

// checkLinks asks every node this one has links with which of them it no
// longer knows, and closes the links of a node that fails to answer (or
// calls a link gone) meshStrikes times in a row.
func (s *Server) checkLinks() {
	type links struct{ edges, remotes []string }
	by := make(map[string]*links)
	get := func(node string) *links {
		if by[node] == nil {
			by[node] = &links{}
		}
		return by[node]
	}
	s.mu.Lock()
	for id, c := range s.mesh.edges {
		l := get(c.home)
		l.edges = append(l.edges, id)
	}
	for k := range s.mesh.remotes {
		l := get(k.node)
		l.remotes = append(l.remotes, k.conn)
	}
	for node := range s.mesh.strikes {
		if by[node] == nil {
			delete(s.mesh.strikes, node)
		}
	}
	// Forgotten once it is no longer asked about.
	asked := make(map[string]bool)
	s.mu.Unlock()
	for node, l := range by {
		b, _ := json.Marshal(meshMsg{Op: opCheck, From: s.cfg.Mesh.Node(), Edges: l.edges, Remotes: l.remotes})
		ctx, cancel := context.WithTimeout(s.ctx, meshTimeout)
		ans, err := s.cfg.Mesh.Ask(ctx, node, b)
		cancel()
		var gone meshMsg
		if err == nil {
			err = json.Unmarshal(ans, &gone)
		}
		s.mu.Lock()
		if err != nil {
			s.mesh.strikes[node]++
			n := s.mesh.strikes[node]
			s.mu.Unlock()
			if s.ctx.Err() != nil {
				return
			}
			s.log.Warn("signal: mesh: a server does not answer", "node", node, "times", n, "err", err)
			if n >= meshStrikes {
				s.closeLinks(node, l.edges, l.remotes)
			}
			continue
		}
		delete(s.mesh.strikes, node)
		edges := s.mesh.goneTwice(node, "e", l.edges, gone.Edges, asked)
		remotes := s.mesh.goneTwice(node, "r", l.remotes, gone.Remotes, asked)
		s.mu.Unlock()
		s.closeLinks(node, edges, remotes)
	}
	s.mu.Lock()
	for k := range s.mesh.gone {
		if !asked[k] {
			delete(s.mesh.gone, k)
		}
	}
	s.mu.Unlock()
}

// goneTwice returns those of ids (node's links of one kind, "e" for
// edges or "r" for remotes) that node called gone (goneIDs) at this check
// and the one before, and marks each as asked. A link called gone once may
// only be on its way (a detach crossing the check), so its count starts
// again when node knows it. Called with Server.mu held.
func (m *meshState) goneTwice(node, kind string, ids, goneIDs []string, asked map[string]bool) []string {
	isGone := make(map[string]bool, len(goneIDs))
	for _, id := range goneIDs {
		isGone[id] = true
	}
	var twice []string
	for _, id := range ids {
		k := node + "\x00" + kind + id
		asked[k] = true
		if !isGone[id] {
			delete(m.gone, k)
		} else if m.gone[k]++; m.gone[k] >= 2 {
			delete(m.gone, k)
			twice = append(twice, id)
		}
	}
	return twice
}

// closeLinks ends links with node: this node's experts forwarded there
// are told to connect again (the load balancer may pick a node that
// works), and its experts handled here leave.
func (s *Server) closeLinks(node string, edges, remotes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range edges {
		if c := s.mesh.edges[id]; c != nil && c.home == node {
			s.detachLocked(c)
			c.log.Info("signal: lost the server holding the invitation", "node", node)
			c.closeWith(websocket.StatusGoingAway, "lost contact with the server holding this invitation: join again")
		}
	}
	for _, id := range remotes {
		if rc := s.mesh.remotes[remoteKey{node, id}]; rc != nil {
			rc.out.(*remoteOut).end(nil)
		}
	}
}

// checkAnswer answers another node's check: the connections it listed
// that this node does not know.
func (s *Server) checkAnswer(m meshMsg) []byte {
	var gone meshMsg
	gone.Op, gone.From = opCheck, s.cfg.Mesh.Node()
	s.mu.Lock()
	for _, id := range m.Edges {
		if s.mesh.remotes[remoteKey{m.From, id}] == nil {
			gone.Edges = append(gone.Edges, id)
		}
	}
	for _, id := range m.Remotes {
		if c := s.mesh.edges[id]; c == nil || c.home != m.From {
			gone.Remotes = append(gone.Remotes, id)
		}
	}
	s.mu.Unlock()
	b, _ := json.Marshal(gone)
	return b
}

// meshRelease gives up this node's claim on id, if no novice here holds
// it again already.
func (s *Server) meshRelease(id string) {
	s.mu.Lock()
	again := s.novices[id] != nil
	s.mu.Unlock()
	if again {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), meshTimeout)
	defer cancel()
	if err := s.cfg.Mesh.Release(ctx, id); err != nil {
		// It expires by itself.
		s.log.Warn("signal: mesh: releasing an invitation", IDAttr(id), "err", err)
	}
}

// remoteICE asks the other nodes for the ICE servers of a session paired
// on one of them (the load balancer may send GET /v1/ice anywhere); nil
// when none answers.
func (s *Server) remoteICE(ctx context.Context, session string) []byte {
	b, _ := json.Marshal(meshMsg{Op: opICE, From: s.cfg.Mesh.Node(), Session: session})
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	ans, err := s.cfg.Mesh.Ask(ctx, "", b)
	if err != nil {
		return nil
	}
	var r iceResponse
	if json.Unmarshal(ans, &r) != nil {
		return nil
	}
	return ans
}
