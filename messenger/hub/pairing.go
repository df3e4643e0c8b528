package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/coder/websocket"

	"github.com/assist-project/assist/internal/ratelimit"
)

// pairing is one open pairing; every field is under Hub.mu.
//
// With several nodes (see Nodes) a pairing lives on its opener's node,
// its home; a joiner connected to another node is its remote joiner
// there, and on the joiner's node the pairing is an edge: a pairing with
// home set, joiner the joiner, and no opener, whose messages go to the
// home.
type pairing struct {
	id, purpose string
	user        string // the opener's account
	expires     time.Time
	opener      *conn         // nil on an edge
	joiner      *conn         // nil until joined, or joined from another node
	remote      *remoteJoiner // the joiner, on another node
	claims      [2][]byte     // the peer key each side named in pair-done: [0] opener, [1] joiner
	cert        []byte        // device link: the opener's signature over the new key
	relays      int
	timer       *time.Timer // nil on an edge
	over        bool
	strikes     int // checks in a row that found the other node gone or not knowing this pairing

	// An edge's.
	home        string      // the home node
	joinRef     string      // the joiner's pair-join ref, answered when the home takes it
	answer      chan string // the home's answer to the join: "" taken, else an error code
	established bool        // the home took the join
}

// remoteJoiner is a pairing's joiner connected to another node, as that
// node told: for a contact, the logged-in account and device key; for a
// device link, the account it links to, its login key (which that node
// verified) and name.
type remoteJoiner struct {
	node, conn    string
	user, display string
	key           []byte
	name          string
}

// maxPairings bounds the live pairings of the whole hub, so the id space
// (2^20) stays sparse and a new id is found quickly.
const maxPairings = 50000

// notOpen answers every pair-join that finds nothing it may join.
const notOpen = "no pairing with this code is open: check the code, or ask for a new one"

func (h *Hub) pairOpen(ctx context.Context, c *conn, m messenger.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if h.openPair[c.user] >= h.cfg.MaxPairings {
		c.fail(m.Ref, messenger.CodeTooMany, "too many open pairings: finish or wait for one")
		return
	}
	if len(h.pairings)+h.claiming >= maxPairings {
		c.fail(m.Ref, messenger.CodeTooMany, "the server has too many open pairings: try again in a minute")
		return
	}
	var id string
	if h.nodes == nil {
		id = newPairID()
		for h.pairings[id] != nil {
			id = newPairID()
		}
	} else {
		// Counted while the id is claimed, without the lock.
		h.openPair[c.user]++
		h.claiming++
		h.mu.Unlock()
		var err error
		id, err = h.claimPairID(ctx)
		h.mu.Lock()
		h.claiming--
		h.dropOpenLocked(c.user)
		if err == nil && h.closed {
			h.releaseLocked(id)
			return
		}
		if errors.Is(err, errNoPairID) {
			c.fail(m.Ref, messenger.CodeTooMany, "the servers have too many open pairings: try again in a minute")
			return
		}
		if err != nil {
			c.internal(m.Ref, "pair-open", err)
			return
		}
	}
	p := &pairing{id: id, purpose: m.Purpose, user: c.user, opener: c, expires: h.cfg.Now().Add(h.cfg.PairTTL).Truncate(time.Second)}
	p.timer = time.AfterFunc(h.cfg.PairTTL, func() {
		h.goBackground(func() { h.failPairing(p, "the code expired") })
	})
	h.pairings[id] = p
	h.openPair[c.user]++
	c.pairs[p] = struct{}{}
	c.reply(m.Ref, messenger.Message{Type: messenger.TypePairOpened, Pair: id, Expires: p.expires})
}

// errNoPairID: every id tried was claimed already.
var errNoPairID = errors.New("no free pair id")

// claimPairID finds a pair id no node holds and claims it for this one.
func (h *Hub) claimPairID(ctx context.Context) (string, error) {
	for range claimTries {
		id := newPairID()
		h.mu.Lock()
		taken := h.pairings[id] != nil || h.edges[id] != nil
		h.mu.Unlock()
		if taken {
			continue
		}
		ok, err := h.nodes.ClaimPair(ctx, id, h.cfg.PairTTL+claimMargin)
		if err != nil {
			return "", fmt.Errorf("claiming a pair id: %w", err)
		}
		if ok {
			return id, nil
		}
	}
	return "", errNoPairID
}

// dropOpenLocked forgets one open pairing of user; h.mu is held.
func (h *Hub) dropOpenLocked(user string) {
	if h.openPair[user]--; h.openPair[user] <= 0 {
		delete(h.openPair, user)
	}
}

// releaseLocked has the claim on id released in the background; h.mu is
// held.
func (h *Hub) releaseLocked(id string) {
	h.releases = append(h.releases, id)
	select {
	case h.releaseWake <- struct{}{}:
	default:
	}
}

func (h *Hub) pairJoin(ctx context.Context, c *conn, m messenger.Message) {
	now := time.Now()
	if wait := h.limits.pairJoinAllowed(c.addr, c.user, now); wait > 0 {
		c.fail(m.Ref, messenger.CodeTooMany, "too many codes that did not work: try again in "+ratelimit.RetryIn(wait))
		return
	}
	h.mu.Lock()
	p := h.pairings[m.Pair]
	ok := p != nil && !p.over && p.joiner == nil && p.remote == nil && p.purpose == messenger.PurposeContact &&
		m.Purpose == messenger.PurposeContact && p.user != c.user
	var opener string
	if ok {
		opener = p.user
	}
	key := c.key
	h.mu.Unlock()
	if p == nil && h.nodes != nil && m.Purpose == messenger.PurposeContact {
		joined, err := h.joinElsewhere(ctx, c, m.Ref, nodeMsg{Pair: m.Pair, Purpose: m.Purpose, User: c.user, Display: c.display, Key: key}, false)
		if err != nil {
			c.failJoin(m.Ref, "pair-join", err)
			return
		}
		if !joined {
			h.limits.pairMissed(c.addr, c.user, now)
			c.fail(m.Ref, messenger.CodeNotFound, notOpen)
		}
		return
	}
	if ok {
		blocked, err := h.store.EitherBlocked(ctx, opener, c.user)
		if err != nil {
			c.internal(m.Ref, "pair-join", err)
			return
		}
		ok = !blocked
	}
	if ok {
		h.mu.Lock()
		ok = !p.over && p.joiner == nil && p.remote == nil
		if ok {
			p.joiner = c
			c.pairs[p] = struct{}{}
			p.opener.send(encode(messenger.Message{Type: messenger.TypePairPeer, Pair: p.id, User: c.user, Display: c.display}))
			c.reply(m.Ref, messenger.Message{Type: messenger.TypePairPeer, Pair: p.id, User: p.opener.user, Display: p.opener.display})
		}
		h.mu.Unlock()
	}
	if !ok {
		h.limits.pairMissed(c.addr, c.user, now)
		c.fail(m.Ref, messenger.CodeNotFound, notOpen)
	}
}

// noLink answers a device link's login that finds nothing it may join.
const noLink = "no device link with this code is open: run `assist devices add` on a device already signed in, and use its code"

// linkLogin joins a device link by its login: c is not logged in, and
// becomes the new device of m.User when the link succeeds.
func (h *Hub) linkLogin(ctx context.Context, c *conn, m messenger.Message) {
	now := time.Now()
	if wait := h.limits.pairJoinAllowed(c.addr, "", now); wait > 0 {
		c.fail(m.Ref, messenger.CodeTooMany, "too many codes that did not work: try again in "+ratelimit.RetryIn(wait))
		return
	}
	display := m.Name
	if display == "" {
		display = "a new device"
	}
	h.mu.Lock()
	p := h.pairings[m.Code]
	ok := p != nil && !p.over && p.joiner == nil && p.remote == nil && p.purpose == messenger.PurposeDevice && p.user == m.User
	if ok {
		p.joiner = c
		c.key, c.link, c.linkUser, c.linkName, c.loginRef = m.Key, p, m.User, m.Name, m.Ref
		c.pairs[p] = struct{}{}
		c.timer.Reset(h.cfg.LinkTimeout)
		p.opener.send(encode(messenger.Message{Type: messenger.TypePairPeer, Pair: p.id, User: m.User, Display: display}))
		c.send(encode(messenger.Message{Type: messenger.TypePairPeer, Pair: p.id, User: p.user, Display: p.opener.display}))
	}
	h.mu.Unlock()
	if p == nil && h.nodes != nil {
		// The link's home is another node: c stays here, not logged in,
		// until the home says the device was added.
		joined, err := h.joinElsewhere(ctx, c, m.Ref, nodeMsg{Pair: m.Code, Purpose: messenger.PurposeDevice,
			User: m.User, Display: display, Key: m.Key, Name: m.Name}, true)
		if err != nil {
			c.failJoin(m.Ref, "device link", err)
			return
		}
		ok = joined
	}
	if !ok {
		h.limits.pairMissed(c.addr, "", now)
		c.fail(m.Ref, messenger.CodeNotFound, noLink)
	}
}

// party returns the pairing id if c is one of its two joined sides, and
// which ([0] opener, [1] joiner); h.mu is held.
func (h *Hub) party(c *conn, id string) (*pairing, int) {
	if p := h.pairings[id]; p != nil && !p.over && (p.joiner != nil || p.remote != nil) {
		switch c {
		case p.opener:
			return p, 0
		case p.joiner:
			return p, 1
		}
	}
	if e := h.edges[id]; e != nil && !e.over && e.established && e.joiner == c {
		return e, 1
	}
	return nil, 0
}

// sendLocked sends m to side i of home pairing p ([0] opener, [1]
// joiner), wherever it is connected; h.mu is held.
func (h *Hub) sendLocked(p *pairing, i int, m messenger.Message) {
	switch {
	case i == 0:
		p.opener.send(encode(m))
	case p.joiner != nil:
		p.joiner.send(encode(m))
	case p.remote != nil:
		h.sendNodeLocked(p.remote.node, nodeMsg{Op: opDeliver, Pair: p.id, Conn: p.remote.conn,
			Type: m.Type, Data: m.Data, Reason: m.Reason, User: m.User, Display: m.Display})
	}
}

// keyLocked is the key side i of home pairing p logged in with (for a
// device link's joiner, the new key); h.mu is held.
func (p *pairing) keyLocked(i int) []byte {
	switch {
	case i == 0:
		return p.opener.key
	case p.joiner != nil:
		return p.joiner.key
	case p.remote != nil:
		return p.remote.key
	}
	return nil
}

func (h *Hub) pairRelay(c *conn, m messenger.Message) {
	h.mu.Lock()
	p, i := h.party(c, m.Pair)
	if p == nil {
		h.mu.Unlock()
		c.fail(m.Ref, messenger.CodeNotFound, "no such pairing under way on this connection")
		return
	}
	if p.home != "" {
		// The home counts and relays it.
		h.sendNodeLocked(p.home, nodeMsg{Op: opRelay, Pair: p.id, Conn: c.id, Data: m.Data})
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	h.relay(p, i, m.Data)
}

// relay relays side i's message of home pairing p to the other side,
// within the pairing's allowance.
func (h *Hub) relay(p *pairing, i int, data json.RawMessage) {
	h.mu.Lock()
	if p.over {
		h.mu.Unlock()
		return
	}
	p.relays++
	if p.relays > h.cfg.MaxPairRelays {
		h.mu.Unlock()
		h.failPairing(p, "too many messages")
		return
	}
	h.sendLocked(p, 1-i, messenger.Message{Type: messenger.TypePairRelay, Pair: p.id, Data: data})
	h.mu.Unlock()
}

func (h *Hub) pairDone(ctx context.Context, c *conn, m messenger.Message) {
	h.mu.Lock()
	p, i := h.party(c, m.Pair)
	if p == nil {
		h.mu.Unlock()
		c.fail(m.Ref, messenger.CodeNotFound, "no such pairing under way on this connection")
		return
	}
	if p.home != "" {
		if p.claims[1] != nil {
			h.mu.Unlock()
			c.fail(m.Ref, messenger.CodeInvalid, "pair-done was sent already")
			return
		}
		if m.Cert != nil {
			// Only an opener certifies, and the opener is at the home.
			h.mu.Unlock()
			h.failPairing(p, "a certificate where none belongs")
			return
		}
		p.claims[1] = m.Key
		h.sendNodeLocked(p.home, nodeMsg{Op: opDone, Pair: p.id, Conn: c.id, Key: m.Key})
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	if !h.settle(ctx, p, i, m.Key, m.Cert) {
		c.fail(m.Ref, messenger.CodeInvalid, "pair-done was sent already")
	}
}

// settle takes side i's pair-done of home pairing p: the peer key its
// exchange verified, and for a device link's opener the certificate of
// the new key. Once both sides agree, the pairing completes; any
// mismatch fails it. False if side i had sent its pair-done already.
func (h *Hub) settle(ctx context.Context, p *pairing, i int, key, cert []byte) bool {
	h.mu.Lock()
	if p.over {
		h.mu.Unlock()
		return true
	}
	if p.claims[i] != nil {
		h.mu.Unlock()
		return false
	}
	peerKey := p.keyLocked(1 - i)
	reason := ""
	switch {
	case !bytes.Equal(key, peerKey):
		reason = "the keys do not match: a code typed wrong, or someone in the middle; start again"
	case p.purpose == messenger.PurposeDevice && i == 0 &&
		(cert == nil || !ed25519.Verify(ed25519.PublicKey(p.opener.key), messenger.CertMessage(p.user, peerKey), cert)):
		reason = "the new device's certificate does not verify"
	case cert != nil && (p.purpose != messenger.PurposeDevice || i != 0):
		reason = "a certificate where none belongs"
	}
	if reason != "" {
		h.mu.Unlock()
		h.failPairing(p, reason)
		return true
	}
	p.claims[i] = key
	if i == 0 {
		p.cert = cert
	}
	complete := p.claims[0] != nil && p.claims[1] != nil
	if complete {
		h.endPairingLocked(p)
	}
	h.mu.Unlock()
	if !complete {
		return true
	}
	if p.purpose == messenger.PurposeContact {
		h.completeContact(ctx, p)
	} else {
		h.completeDevice(ctx, p)
	}
	return true
}

// endPairingLocked forgets home pairing p; h.mu is held.
func (h *Hub) endPairingLocked(p *pairing) {
	p.over = true
	p.timer.Stop()
	if h.pairings[p.id] == p {
		delete(h.pairings, p.id)
		if h.nodes != nil {
			h.releaseLocked(p.id)
		}
	}
	h.dropOpenLocked(p.user)
	delete(p.opener.pairs, p)
	if p.joiner != nil {
		delete(p.joiner.pairs, p)
	}
	delete(h.linked, p)
}

// endEdgeLocked forgets edge e; h.mu is held.
func (h *Hub) endEdgeLocked(e *pairing) {
	e.over = true
	if h.edges[e.id] == e {
		delete(h.edges, e.id)
	}
	delete(e.joiner.pairs, e)
	delete(h.linked, e)
}

// failPairing ends p with "pair-failed" to both sides; a device link's new
// device is disconnected. On an edge, the home hears the reason.
func (h *Hub) failPairing(p *pairing, reason string) {
	h.mu.Lock()
	if p.over {
		h.mu.Unlock()
		return
	}
	msg := messenger.Message{Type: messenger.TypePairFailed, Pair: p.id, Reason: reason}
	j := p.joiner
	if p.home != "" {
		h.endEdgeLocked(p)
		h.sendNodeLocked(p.home, nodeMsg{Op: opLeft, Pair: p.id, Conn: j.id, Reason: reason})
		j.send(encode(msg))
	} else {
		h.endPairingLocked(p)
		h.sendLocked(p, 0, msg)
		h.sendLocked(p, 1, msg)
	}
	h.mu.Unlock()
	if j != nil && !j.loggedIn.Load() {
		j.closeWith(websocket.StatusPolicyViolation, "device link failed")
	}
}

// joinerLocked is who joined home pairing p: account, display name and
// connection id, wherever it is connected; h.mu is held.
func (p *pairing) joinerLocked() (user, display, conn string) {
	if p.joiner != nil {
		return p.joiner.user, p.joiner.display, p.joiner.id
	}
	return p.remote.user, p.remote.display, p.remote.conn
}

func (h *Hub) completeContact(ctx context.Context, p *pairing) {
	a := p.opener
	h.mu.Lock()
	bUser, bDisplay, bID := p.joinerLocked()
	h.mu.Unlock()
	if err := h.store.AddContact(ctx, a.user, bUser, h.cfg.Now()); err != nil {
		reason := "the server failed: try again"
		if errors.Is(err, ErrBlocked) {
			reason = "one of you blocked the other"
		} else {
			h.log.Error("messenger: add contact", "err", err)
		}
		msg := messenger.Message{Type: messenger.TypePairFailed, Pair: p.id, Reason: reason}
		h.mu.Lock()
		h.sendLocked(p, 0, msg)
		h.sendLocked(p, 1, msg)
		h.mu.Unlock()
		return
	}
	h.log.Info("messenger: contact added", "users", a.user+" "+bUser)
	h.mu.Lock()
	h.sendLocked(p, 0, messenger.Message{Type: messenger.TypeContactAdded, Pair: p.id, User: bUser, Display: bDisplay})
	h.sendLocked(p, 1, messenger.Message{Type: messenger.TypeContactAdded, Pair: p.id, User: a.user, Display: a.display})
	h.mu.Unlock()
	h.publish(ctx, Delivery{User: a.user, Except: []string{a.id}, Msg: encode(messenger.Message{Type: messenger.TypeContactAdded, User: bUser, Display: bDisplay})})
	h.publish(ctx, Delivery{User: bUser, Except: []string{bID}, Msg: encode(messenger.Message{Type: messenger.TypeContactAdded, User: a.user, Display: a.display})})
	// Each now sees the other's state; serialised with presence changes
	// so a newer state cannot be overtaken.
	for _, pr := range [][2]string{{a.user, bUser}, {bUser, a.user}} {
		lk := h.userLock(pr[0])
		lk.Lock()
		st, err := h.bus.States(ctx, []string{pr[0]})
		if err == nil {
			h.publish(ctx, Delivery{User: pr[1], Msg: encode(messenger.Message{Type: messenger.TypePresence, User: pr[0], State: st[pr[0]]})})
		}
		lk.Unlock()
	}
}

func (h *Hub) completeDevice(ctx context.Context, p *pairing) {
	old, nu := p.opener, p.joiner
	h.mu.Lock()
	var key []byte
	var name, ref string
	if nu != nil {
		key, name, ref = nu.key, nu.linkName, nu.loginRef
	} else {
		key, name = p.remote.key, p.remote.name
	}
	h.mu.Unlock()
	fail := func(reason string) {
		msg := messenger.Message{Type: messenger.TypePairFailed, Pair: p.id, Reason: reason}
		h.mu.Lock()
		h.sendLocked(p, 0, msg)
		h.sendLocked(p, 1, msg)
		h.mu.Unlock()
		if nu != nil {
			nu.closeWith(websocket.StatusPolicyViolation, "device link failed")
		}
	}
	a, err := h.store.Account(ctx, p.user)
	if err != nil {
		h.log.Error("messenger: device link", "err", err)
		fail("the server failed: try again")
		return
	}
	if name == "" {
		ds, err := h.store.Devices(ctx, p.user)
		if err != nil {
			h.log.Error("messenger: device link", "err", err)
			fail("the server failed: try again")
			return
		}
		name = fmt.Sprintf("device %d", len(ds)+1)
	}
	d := Device{ID: newDeviceID(), User: p.user, Key: key, Name: name, CertSigner: old.key, CertSig: p.cert, Created: h.cfg.Now()}
	if err := h.store.AddDevice(ctx, d); err != nil {
		if errors.Is(err, ErrTaken) {
			fail("this device is signed in to an account already")
		} else {
			h.log.Error("messenger: device link", "err", err)
			fail("the server failed: try again")
		}
		return
	}
	h.log.Info("messenger: device linked", "user", p.user, "device", d.ID)
	old.send(encode(messenger.Message{Type: messenger.TypeDeviceAdded, Pair: p.id, Device: d.ID}))
	if nu == nil {
		// The new device's node logs it in.
		h.mu.Lock()
		h.sendNodeLocked(p.remote.node, nodeMsg{Op: opLinked, Pair: p.id, Conn: p.remote.conn, Device: d.ID})
		h.mu.Unlock()
		return
	}
	nu.timer.Stop()
	h.welcome(ctx, nu, a, d, false, ref)
}
