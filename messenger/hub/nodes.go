package hub

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/coder/websocket"
)

// Nodes is what a Bus shared by several servers ("nodes") also
// implements so that a pairing opened on one node can be joined from
// another. natsbus implements it; MemBus does not: one server's
// pairings are its own. The hub finds it on Config.Bus by a type
// assertion.
//
// The node where a pairing was opened is its home: it keeps the pairing
// and decides everything about it (who may join, the relays and their
// limit, the keys and the device certificate, the store's writes) as a
// single server does. The joiner's node relays the joiner's side to the
// home and the home's answers back (see pairing.go). Messages between
// nodes are at most once: every wait is bounded, and each node checks,
// every pairCheckEvery, that the other node of each of its pairings still
// knows it.
type Nodes interface {
	// Node names this node among those sharing the bus.
	Node() string
	// ClaimPair makes this node the holder of pair id for ttl, or until
	// ReleasePair; false if another claim (this node's or another's)
	// holds it. Claims keep pair ids unique across the nodes.
	ClaimPair(ctx context.Context, id string, ttl time.Duration) (bool, error)
	// ReleasePair gives up this node's claim on id, if it still holds it.
	ReleasePair(ctx context.Context, id string) error
	// PairHome returns the node holding id, or "" if none does.
	PairHome(ctx context.Context, id string) (string, error)
	// SendNode hands msg to node's ListenNodes handler without waiting,
	// at most once. SendNode and AskNode messages from this node to one
	// node arrive in the order they were sent.
	SendNode(node string, msg []byte) error
	// AskNode sends msg to node's handler and returns its answer; the
	// error wraps ErrNodeGone if no node of that name listens.
	AskNode(ctx context.Context, node string, msg []byte) ([]byte, error)
	// ListenNodes hands every message sent to or asked of this node to
	// h, one at a time and in order, until stop is called; stop returns
	// once no call of h runs. h's result answers an AskNode.
	ListenNodes(h func(msg []byte) []byte) (stop func(), err error)
}

// ErrNodeGone is wrapped by Nodes.AskNode's error when no node of that
// name listens (it died, or closed its bus).
var ErrNodeGone = errors.New("no such node on the bus")

// Operations between nodes (nodeMsg.Op). "Home" is the pairing's node,
// "edge" the joiner's.
const (
	// Edge to home.
	opJoin  = "join"  // the joiner asks to join (Purpose, User, Display, Key; Name for a device)
	opRelay = "relay" // the joiner's pair-relay (Data)
	opDone  = "done"  // the joiner's pair-done (Key)
	opLeft  = "left"  // the joiner's side ended (Reason)
	// Home to edge.
	opJoined  = "joined"  // the join was taken (User, Display: the opener's)
	opRefused = "refused" // it was not (Code)
	opDeliver = "deliver" // a pair-relay, pair-failed or contact-added for the joiner (Type, ...)
	opLinked  = "linked"  // a device link succeeded: the joiner is Device
	// Either way, asked: which of these pairings (Pairs) do you not know?
	// The answer's Pairs are those.
	opCheck = "check"
)

// nodeMsg is one message between nodes about pairings. Conn names the
// joiner's connection on the edge node (ids are unique across nodes).
type nodeMsg struct {
	Op      string          `json:"op"`
	From    string          `json:"from"`
	Pair    string          `json:"pair,omitempty"`
	Conn    string          `json:"conn,omitempty"`
	Purpose string          `json:"purpose,omitempty"`
	User    string          `json:"user,omitempty"`
	Display string          `json:"display,omitempty"`
	Name    string          `json:"name,omitempty"`
	Key     []byte          `json:"key,omitempty"`
	Type    string          `json:"type,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Code    string          `json:"code,omitempty"`
	Device  string          `json:"device,omitempty"`
	Pairs   []string        `json:"pairs,omitempty"`
}

// maxCheckPairs bounds the pairings one check names: a node's pairings
// are bounded by maxPairings, and a check larger than this is split.
const maxCheckPairs = 1000

// parseNodeMsg decodes and checks a message from another node: the
// fields its operation uses must be well formed (another node is trusted
// with what a single server's own connections tell it, nothing more).
func parseNodeMsg(b []byte) (nodeMsg, error) {
	var m nodeMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("undecodable: %w", err)
	}
	if m.From == "" || len(m.From) > 128 {
		return m, errors.New("no sender")
	}
	if m.Op != opCheck && (!messenger.ValidPairID(m.Pair) || m.Conn == "" || len(m.Conn) > 128) {
		return m, fmt.Errorf("%s: bad pair or connection", m.Op)
	}
	switch m.Op {
	case opJoin:
		if m.Purpose != messenger.PurposeContact && m.Purpose != messenger.PurposeDevice || !messenger.ValidUser(m.User) ||
			len(m.Key) != ed25519.PublicKeySize || len(m.Display) > 256 || len(m.Name) > 256 {
			return m, errors.New("join: bad fields")
		}
	case opRelay:
		if len(m.Data) == 0 || len(m.Data) > messenger.MaxMessageBytes {
			return m, errors.New("relay: bad data")
		}
	case opDone:
		if len(m.Key) != ed25519.PublicKeySize {
			return m, errors.New("done: bad key")
		}
	case opLeft:
		if m.Reason != reasonLeft && m.Reason != reasonLinkSlow {
			m.Reason = reasonLeft
		}
	case opJoined:
		if !messenger.ValidUser(m.User) || len(m.Display) > 256 {
			return m, errors.New("joined: bad fields")
		}
	case opRefused:
	case opDeliver:
		switch m.Type {
		case messenger.TypePairRelay:
			if len(m.Data) == 0 || len(m.Data) > messenger.MaxMessageBytes {
				return m, errors.New("deliver: bad data")
			}
		case messenger.TypePairFailed:
			if m.Reason == "" || len(m.Reason) > 256 {
				return m, errors.New("deliver: bad reason")
			}
		case messenger.TypeContactAdded:
			if !messenger.ValidUser(m.User) || len(m.Display) > 256 {
				return m, errors.New("deliver: bad contact")
			}
		default:
			return m, fmt.Errorf("deliver: type %q", m.Type)
		}
	case opLinked:
		if !messenger.ValidDeviceID(m.Device) {
			return m, errors.New("linked: bad device")
		}
	case opCheck:
		if len(m.Pairs) > maxCheckPairs {
			return m, errors.New("check: too many pairings")
		}
	default:
		return m, fmt.Errorf("unknown operation %q", m.Op)
	}
	return m, nil
}

// Reasons an edge gives its home for its side ending; the home tells the
// opener the same.
const (
	reasonLeft     = "the other side left"
	reasonLinkSlow = "the device link took too long"
)

// Cross-node timing.
const (
	// pairJoinTimeout bounds a joiner's wait for the home's answer.
	pairJoinTimeout = 5 * time.Second
	// pairCheckEvery is how often a node checks the other node of each
	// pairing it shares; pairCheckTimeout bounds one check; a pairing
	// fails once pairStrikes checks in a row found the other node gone,
	// silent, or not knowing it. One failed check is not enough: an
	// outcome the other node sent may still be on its way.
	pairCheckEvery   = time.Second
	pairCheckTimeout = 2 * time.Second
	pairStrikes      = 2
	// claimMargin keeps a pair id claimed a little longer than its
	// pairing can live: the claim is made before the pairing's timer
	// starts.
	claimMargin = 5 * time.Second
	// claimTries bounds the ids tried for one new pairing; with the
	// nodes' pairings far fewer than the 2^20 ids, a few suffice.
	claimTries = 16
)

// sendNodeLocked sends m to node, logging a failure (the checks find what
// it breaks); h.mu is held, so that messages to one node keep the order
// in which the hub decided them.
func (h *Hub) sendNodeLocked(node string, m nodeMsg) {
	m.From = h.nodes.Node()
	b, err := json.Marshal(m)
	if err == nil {
		err = h.nodes.SendNode(node, b)
	}
	if err != nil {
		h.log.Warn("messenger: pairing: sending to another node", "node", node, "op", m.Op, "err", err)
	}
}

// nodeMessage is the ListenNodes handler: one message from another node.
func (h *Hub) nodeMessage(b []byte) []byte {
	m, err := parseNodeMsg(b)
	if err != nil {
		h.log.Warn("messenger: pairing: a malformed message from another node", "err", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(h.ctx, opTimeout)
	defer cancel()
	switch m.Op {
	case opJoin:
		h.nodeJoin(ctx, m)
	case opRelay:
		h.nodeRelay(m)
	case opDone:
		h.nodeDone(ctx, m)
	case opLeft:
		if p := h.remoteParty(m); p != nil {
			h.failPairing(p, m.Reason)
		}
	case opJoined, opRefused:
		h.edgeAnswered(m)
	case opDeliver:
		h.edgeDeliver(m)
	case opLinked:
		h.edgeLinked(m)
	case opCheck:
		return h.nodeCheck(m)
	}
	return nil
}

// remoteParty returns the home pairing m is about if m's node and
// connection are its joiner's.
func (h *Hub) remoteParty(m nodeMsg) *pairing {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pairings[m.Pair]
	if p == nil || p.over || p.remote == nil || p.remote.node != m.From || p.remote.conn != m.Conn {
		return nil
	}
	return p
}

// nodeJoin takes or refuses a join from another node, with the checks of
// pairJoin and linkLogin.
func (h *Hub) nodeJoin(ctx context.Context, m nodeMsg) {
	refuse := func(code string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.sendNodeLocked(m.From, nodeMsg{Op: opRefused, Pair: m.Pair, Conn: m.Conn, Code: code})
	}
	h.mu.Lock()
	p := h.pairings[m.Pair]
	ok := !h.closed && p != nil && !p.over && p.joiner == nil && p.remote == nil && p.purpose == m.Purpose
	if ok && m.Purpose == messenger.PurposeContact {
		ok = p.user != m.User
	} else if ok {
		ok = p.user == m.User // a device link, to this account only
	}
	h.mu.Unlock()
	if ok && m.Purpose == messenger.PurposeContact {
		blocked, err := h.store.EitherBlocked(ctx, p.user, m.User)
		if err != nil {
			h.log.Error("messenger: pair-join from another node", "err", err)
			refuse(messenger.CodeInternal)
			return
		}
		ok = !blocked
	}
	if !ok {
		refuse(messenger.CodeNotFound)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if p.over || p.joiner != nil || p.remote != nil {
		h.sendNodeLocked(m.From, nodeMsg{Op: opRefused, Pair: m.Pair, Conn: m.Conn, Code: messenger.CodeNotFound})
		return
	}
	p.remote = &remoteJoiner{node: m.From, conn: m.Conn, user: m.User, display: m.Display, key: m.Key, name: m.Name}
	h.linked[p] = struct{}{}
	// "joined" first: once the opener hears of the joiner, its relays
	// follow on the same way.
	h.sendNodeLocked(m.From, nodeMsg{Op: opJoined, Pair: p.id, Conn: m.Conn, User: p.user, Display: p.opener.display})
	p.opener.send(encode(messenger.Message{Type: messenger.TypePairPeer, Pair: p.id, User: m.User, Display: m.Display}))
}

// nodeRelay relays the remote joiner's message to the opener.
func (h *Hub) nodeRelay(m nodeMsg) {
	p := h.remoteParty(m)
	if p == nil {
		return
	}
	h.relay(p, 1, m.Data)
}

// nodeDone takes the remote joiner's pair-done; a second one is ignored
// (its node answered the joiner already).
func (h *Hub) nodeDone(ctx context.Context, m nodeMsg) {
	if p := h.remoteParty(m); p != nil {
		h.settle(ctx, p, 1, m.Key, nil)
	}
}

// nodeCheck answers a check: the pairings named that this node does not
// share with the asking node.
func (h *Hub) nodeCheck(m nodeMsg) []byte {
	var unknown []string
	h.mu.Lock()
	for _, id := range m.Pairs {
		p, e := h.pairings[id], h.edges[id]
		home := p != nil && !p.over && p.remote != nil && p.remote.node == m.From
		edge := e != nil && !e.over && e.home == m.From
		if !home && !edge {
			unknown = append(unknown, id)
		}
	}
	h.mu.Unlock()
	b, _ := json.Marshal(nodeMsg{Op: opCheck, From: h.nodes.Node(), Pairs: unknown})
	return b
}

// edgeLocked returns the edge pairing m is about, if m comes from its home and
// names its joiner; h.mu is held.
func (h *Hub) edgeLocked(m nodeMsg) *pairing {
	e := h.edges[m.Pair]
	if e == nil || e.over || e.home != m.From || e.joiner.id != m.Conn {
		return nil
	}
	return e
}

// edgeAnswered takes the home's answer to a join: the joiner hears who
// the opener is (for a contact, as the answer to its pair-join) before
// any relay that follows.
func (h *Hub) edgeAnswered(m nodeMsg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.edgeLocked(m)
	if e == nil || e.established {
		return
	}
	if m.Op == opRefused {
		h.endEdgeLocked(e)
		e.answer <- m.Code
		return
	}
	e.established = true
	c := e.joiner
	if c.link == e {
		// A device link: to the account the joiner named, which the home
		// checked.
		c.timer.Reset(h.cfg.LinkTimeout)
		c.send(encode(messenger.Message{Type: messenger.TypePairPeer, Pair: e.id, User: c.linkUser, Display: m.Display}))
	} else {
		e.user = m.User
		c.reply(e.joinRef, messenger.Message{Type: messenger.TypePairPeer, Pair: e.id, User: m.User, Display: m.Display})
	}
	e.answer <- ""
}

// edgeDeliver hands the joiner what its home sends it.
func (h *Hub) edgeDeliver(m nodeMsg) {
	h.mu.Lock()
	e := h.edgeLocked(m)
	if e == nil || !e.established {
		h.mu.Unlock()
		return
	}
	c := e.joiner
	out := messenger.Message{Type: m.Type, Pair: e.id}
	switch m.Type {
	case messenger.TypePairRelay:
		out.Data = m.Data
	case messenger.TypePairFailed:
		out.Reason = m.Reason
		h.endEdgeLocked(e)
	case messenger.TypeContactAdded:
		if e.purpose != messenger.PurposeContact {
			h.mu.Unlock()
			return
		}
		out.User, out.Display = m.User, m.Display
		h.endEdgeLocked(e)
	}
	c.send(encode(out))
	h.mu.Unlock()
	if m.Type == messenger.TypePairFailed && !c.loggedIn.Load() {
		c.closeWith(websocket.StatusPolicyViolation, "device link failed")
	}
}

// edgeLinked logs the joiner of a device link in, once its home added
// the device: as any login, from the store (the device must be the
// joiner's key, on the account it named), not from what the home says.
func (h *Hub) edgeLinked(m nodeMsg) {
	h.mu.Lock()
	e := h.edgeLocked(m)
	if e == nil || !e.established || e.joiner.link != e {
		h.mu.Unlock()
		return
	}
	h.endEdgeLocked(e)
	c := e.joiner
	key, user, ref := c.key, c.linkUser, c.loginRef
	h.mu.Unlock()
	fail := func(err error) {
		h.log.Error("messenger: device link from another node", "err", err)
		c.send(encode(messenger.Message{Type: messenger.TypePairFailed, Pair: e.id, Reason: "the server failed: try again"}))
		c.closeWith(websocket.StatusPolicyViolation, "device link failed")
	}
	// The welcome subscribes and sets presence: not on the goroutine of
	// every node message.
	if !h.goBackground(func() {
		ctx, cancel := context.WithTimeout(h.ctx, opTimeout)
		defer cancel()
		d, err := h.store.DeviceByKey(ctx, key)
		if err != nil {
			fail(fmt.Errorf("the linked device: %w", err))
			return
		}
		if d.User != user || d.ID != m.Device {
			fail(fmt.Errorf("the home node named device %s, the store has %s of %s", m.Device, d.ID, d.User))
			return
		}
		a, err := h.store.Account(ctx, d.User)
		if err != nil {
			fail(fmt.Errorf("the linked device's account: %w", err))
			return
		}
		c.timer.Stop()
		h.welcome(ctx, c, a, d, false, ref)
	}) {
		c.closeWith(websocket.StatusGoingAway, "server shutting down")
	}
}

// joinElsewhere joins pairing id, which this node does not hold, at its
// home: c is the joiner, j its join (Op, Pair and Conn are filled in). It
// returns false when no node holds an open pairing id that c may join
// (the caller answers and counts the miss), and an error when the home
// could not be asked or did not answer; true once the joiner was told its
// peer.
func (h *Hub) joinElsewhere(ctx context.Context, c *conn, ref string, j nodeMsg, link bool) (bool, error) {
	home, err := h.nodes.PairHome(ctx, j.Pair)
	if err != nil {
		return false, fmt.Errorf("looking the code up: %w", err)
	}
	if home == "" || home == h.nodes.Node() {
		return false, nil
	}
	h.mu.Lock()
	if h.closed || h.edges[j.Pair] != nil {
		h.mu.Unlock()
		return false, nil
	}
	e := &pairing{id: j.Pair, purpose: j.Purpose, home: home, joiner: c, joinRef: ref, answer: make(chan string, 1)}
	h.edges[e.id] = e
	h.linked[e] = struct{}{}
	c.pairs[e] = struct{}{}
	if link {
		c.key, c.link, c.linkUser, c.linkName, c.loginRef = j.Key, e, j.User, j.Name, ref
	}
	j.Op, j.Conn = opJoin, c.id
	h.sendNodeLocked(home, j)
	h.mu.Unlock()

	t := time.NewTimer(pairJoinTimeout)
	defer t.Stop()
	var code string
	select {
	case code = <-e.answer:
	case <-t.C:
		code = "timeout"
	case <-ctx.Done():
		code = "timeout"
	case <-c.w.Done():
		code = "timeout"
	}
	if code == "timeout" {
		h.mu.Lock()
		select {
		case code = <-e.answer: // it came meanwhile
		default:
			// The home may take the join late: it hears that the joiner
			// is gone.
			h.endEdgeLocked(e)
			h.sendNodeLocked(home, nodeMsg{Op: opLeft, Pair: e.id, Conn: c.id, Reason: reasonLeft})
		}
		h.mu.Unlock()
	}
	if code != "" && link {
		h.mu.Lock()
		if c.link == e {
			// As if it had never tried: it may log in again.
			c.key, c.link, c.linkUser, c.linkName, c.loginRef = nil, nil, "", "", ""
		}
		h.mu.Unlock()
	}
	switch code {
	case "":
		return true, nil
	case messenger.CodeNotFound:
		return false, nil
	case "timeout":
		return false, errHomeSilent
	default:
		return false, fmt.Errorf("the server that opened this code failed (%s)", code)
	}
}

// errHomeSilent: the node holding a code did not answer a join in time.
var errHomeSilent = errors.New("the server that opened this code did not answer in time")

// failJoin answers a joiner whose join could not be decided.
func (c *conn) failJoin(ref, what string, err error) {
	if errors.Is(err, errHomeSilent) {
		c.log.Warn("messenger: "+what, "err", err)
		c.fail(ref, messenger.CodeUnavailable, "the server that opened this code did not answer in time: try again in a few seconds, or ask for a new code")
		return
	}
	c.internal(ref, what, err)
}

// checkNodes checks, every pairCheckEvery until Close, that the other
// node of each pairing shared with another node still knows it, and
// fails those it does not (the node died, or lost a message) after
// pairStrikes checks in a row.
func (h *Hub) checkNodes() {
	defer h.bg.Done()
	t := time.NewTicker(pairCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		byNode := make(map[string][]*pairing)
		h.mu.Lock()
		for p := range h.linked {
			switch {
			case p.over:
			case p.home != "":
				if p.established { // a join under way has its own deadline
					byNode[p.home] = append(byNode[p.home], p)
				}
			case p.remote != nil:
				byNode[p.remote.node] = append(byNode[p.remote.node], p)
			}
		}
		h.mu.Unlock()
		for node, ps := range byNode {
			for len(ps) > 0 {
				n := min(len(ps), maxCheckPairs)
				h.checkNode(node, ps[:n])
				ps = ps[n:]
			}
		}
	}
}

// checkNode asks node about ps and fails those with pairStrikes strikes.
func (h *Hub) checkNode(node string, ps []*pairing) {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.id
	}
	b, _ := json.Marshal(nodeMsg{Op: opCheck, From: h.nodes.Node(), Pairs: ids})
	ctx, cancel := context.WithTimeout(h.ctx, pairCheckTimeout)
	ans, err := h.nodes.AskNode(ctx, node, b)
	cancel()
	if h.ctx.Err() != nil {
		return
	}
	gone := make(map[string]bool)
	if err == nil {
		var m nodeMsg
		if m, err = parseNodeMsg(ans); err == nil {
			for _, id := range m.Pairs {
				gone[id] = true
			}
		}
	}
	if err != nil {
		h.log.Info("messenger: pairing: another node did not answer a check", "node", node, "err", err)
		for _, id := range ids {
			gone[id] = true
		}
	}
	var fail []*pairing
	h.mu.Lock()
	for _, p := range ps {
		if !gone[p.id] {
			p.strikes = 0
			continue
		}
		if p.strikes++; p.strikes >= pairStrikes && !p.over {
			fail = append(fail, p)
		}
	}
	h.mu.Unlock()
	for _, p := range fail {
		h.failPairing(p, reasonLeft)
	}
}

// releaseClaims gives up the claims of ended pairings until Close, then
// those left.
func (h *Hub) releaseClaims() {
	defer h.bg.Done()
	for {
		done := false
		select {
		case <-h.ctx.Done():
			done = true
		case <-h.releaseWake:
		}
		h.mu.Lock()
		ids := h.releases
		h.releases = nil
		h.mu.Unlock()
		d := opTimeout
		if done {
			d = 2 * time.Second // closing: what is left expires by itself
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		for _, id := range ids {
			if err := h.nodes.ReleasePair(ctx, id); err != nil {
				// It expires with its TTL.
				h.log.Debug("messenger: pairing: releasing a pair id", "err", err)
			}
		}
		cancel()
		if done {
			return
		}
	}
}
