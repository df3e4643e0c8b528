package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/coder/websocket"

	"github.com/assist-project/assist/internal/ratelimit"
)

// pairing is one open pairing; every field is under Hub.mu.
type pairing struct {
	id, purpose string
	user        string // the opener's account
	expires     time.Time
	opener      *conn
	joiner      *conn     // nil until joined
	claims      [2][]byte // the peer key each side named in pair-done: [0] opener, [1] joiner
	cert        []byte    // device link: the opener's signature over the new key
	relays      int
	timer       *time.Timer
	over        bool
}

// maxPairings bounds the live pairings of the whole hub, so the id space
// (2^20) stays sparse and a new id is found quickly.
const maxPairings = 50000

// notOpen answers every pair-join that finds nothing it may join.
const notOpen = "no pairing with this code is open: check the code, or ask for a new one"

func (h *Hub) pairOpen(c *conn, m messenger.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if h.openPair[c.user] >= h.cfg.MaxPairings {
		c.fail(m.Ref, messenger.CodeTooMany, "too many open pairings: finish or wait for one")
		return
	}
	if len(h.pairings) >= maxPairings {
		c.fail(m.Ref, messenger.CodeTooMany, "the server has too many open pairings: try again in a minute")
		return
	}
	id := newPairID()
	for h.pairings[id] != nil {
		id = newPairID()
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

func (h *Hub) pairJoin(ctx context.Context, c *conn, m messenger.Message) {
	now := time.Now()
	if wait := h.limits.pairJoinAllowed(c.addr, c.user, now); wait > 0 {
		c.fail(m.Ref, messenger.CodeTooMany, "too many codes that did not work: try again in "+ratelimit.RetryIn(wait))
		return
	}
	h.mu.Lock()
	p := h.pairings[m.Pair]
	ok := p != nil && !p.over && p.joiner == nil && p.purpose == messenger.PurposeContact &&
		m.Purpose == messenger.PurposeContact && p.user != c.user
	var opener string
	if ok {
		opener = p.user
	}
	h.mu.Unlock()
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
		ok = !p.over && p.joiner == nil
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
	ok := p != nil && !p.over && p.joiner == nil && p.purpose == messenger.PurposeDevice && p.user == m.User
	if ok {
		p.joiner = c
		c.key, c.link, c.linkUser, c.linkName, c.loginRef = m.Key, p, m.User, m.Name, m.Ref
		c.pairs[p] = struct{}{}
		c.timer.Reset(h.cfg.LinkTimeout)
		p.opener.send(encode(messenger.Message{Type: messenger.TypePairPeer, Pair: p.id, User: m.User, Display: display}))
		c.send(encode(messenger.Message{Type: messenger.TypePairPeer, Pair: p.id, User: p.user, Display: p.opener.display}))
	}
	h.mu.Unlock()
	if !ok {
		h.limits.pairMissed(c.addr, "", now)
		c.fail(m.Ref, messenger.CodeNotFound, "no device link with this code is open: run `assist devices add` on a device already signed in, and use its code")
	}
}

// party returns the pairing m names if c is one of its two joined sides,
// and which ([0] opener, [1] joiner); h.mu is held.
func (h *Hub) party(c *conn, id string) (*pairing, int) {
	p := h.pairings[id]
	if p == nil || p.over || p.joiner == nil {
		return nil, 0
	}
	switch c {
	case p.opener:
		return p, 0
	case p.joiner:
		return p, 1
	}
	return nil, 0
}

func (p *pairing) side(i int) *conn {
	if i == 0 {
		return p.opener
	}
	return p.joiner
}

func (h *Hub) pairRelay(c *conn, m messenger.Message) {
	h.mu.Lock()
	p, i := h.party(c, m.Pair)
	if p == nil {
		h.mu.Unlock()
		c.fail(m.Ref, messenger.CodeNotFound, "no such pairing under way on this connection")
		return
	}
	p.relays++
	if p.relays > h.cfg.MaxPairRelays {
		h.mu.Unlock()
		h.failPairing(p, "too many messages")
		return
	}
	p.side(1 - i).send(encode(messenger.Message{Type: messenger.TypePairRelay, Pair: p.id, Data: m.Data}))
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
	if p.claims[i] != nil {
		h.mu.Unlock()
		c.fail(m.Ref, messenger.CodeInvalid, "pair-done was sent already")
		return
	}
	peerKey := p.side(1 - i).key
	reason := ""
	switch {
	case !bytes.Equal(m.Key, peerKey):
		reason = "the keys do not match: a code typed wrong, or someone in the middle; start again"
	case p.purpose == messenger.PurposeDevice && i == 0 &&
		(m.Cert == nil || !ed25519.Verify(ed25519.PublicKey(c.key), messenger.CertMessage(p.user, peerKey), m.Cert)):
		reason = "the new device's certificate does not verify"
	case m.Cert != nil && (p.purpose != messenger.PurposeDevice || i != 0):
		reason = "a certificate where none belongs"
	}
	if reason != "" {
		h.mu.Unlock()
		h.failPairing(p, reason)
		return
	}
	p.claims[i] = m.Key
	if i == 0 {
		p.cert = m.Cert
	}
	complete := p.claims[0] != nil && p.claims[1] != nil
	if complete {
		h.endPairingLocked(p)
	}
	h.mu.Unlock()
	if !complete {
		return
	}
	if p.purpose == messenger.PurposeContact {
		h.completeContact(ctx, p)
	} else {
		h.completeDevice(ctx, p)
	}
}

// endPairingLocked forgets p; h.mu is held.
func (h *Hub) endPairingLocked(p *pairing) {
	p.over = true
	p.timer.Stop()
	if h.pairings[p.id] == p {
		delete(h.pairings, p.id)
	}
	if h.openPair[p.user]--; h.openPair[p.user] <= 0 {
		delete(h.openPair, p.user)
	}
	delete(p.opener.pairs, p)
	if p.joiner != nil {
		delete(p.joiner.pairs, p)
	}
}

// failPairing ends p with "pair-failed" to both sides; a device link's new
// device is disconnected.
func (h *Hub) failPairing(p *pairing, reason string) {
	h.mu.Lock()
	if p.over {
		h.mu.Unlock()
		return
	}
	h.endPairingLocked(p)
	msg := encode(messenger.Message{Type: messenger.TypePairFailed, Pair: p.id, Reason: reason})
	p.opener.send(msg)
	j := p.joiner
	if j != nil {
		j.send(msg)
	}
	h.mu.Unlock()
	if j != nil && !j.loggedIn.Load() {
		j.closeWith(websocket.StatusPolicyViolation, "device link failed")
	}
}

func (h *Hub) completeContact(ctx context.Context, p *pairing) {
	a, b := p.opener, p.joiner
	if err := h.store.AddContact(ctx, a.user, b.user, h.cfg.Now()); err != nil {
		reason := "the server failed: try again"
		if errors.Is(err, ErrBlocked) {
			reason = "one of you blocked the other"
		} else {
			h.log.Error("messenger: add contact", "err", err)
		}
		msg := encode(messenger.Message{Type: messenger.TypePairFailed, Pair: p.id, Reason: reason})
		a.send(msg)
		b.send(msg)
		return
	}
	h.log.Info("messenger: contact added", "users", a.user+" "+b.user)
	a.send(encode(messenger.Message{Type: messenger.TypeContactAdded, Pair: p.id, User: b.user, Display: b.display}))
	b.send(encode(messenger.Message{Type: messenger.TypeContactAdded, Pair: p.id, User: a.user, Display: a.display}))
	h.publish(ctx, Delivery{User: a.user, Except: []string{a.id}, Msg: encode(messenger.Message{Type: messenger.TypeContactAdded, User: b.user, Display: b.display})})
	h.publish(ctx, Delivery{User: b.user, Except: []string{b.id}, Msg: encode(messenger.Message{Type: messenger.TypeContactAdded, User: a.user, Display: a.display})})
	// Each now sees the other's state; serialised with presence changes
	// so a newer state cannot be overtaken.
	for _, pr := range [][2]string{{a.user, b.user}, {b.user, a.user}} {
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
	key, name, ref := nu.key, nu.linkName, nu.loginRef
	h.mu.Unlock()
	fail := func(reason string) {
		msg := encode(messenger.Message{Type: messenger.TypePairFailed, Pair: p.id, Reason: reason})
		old.send(msg)
		nu.send(msg)
		nu.closeWith(websocket.StatusPolicyViolation, "device link failed")
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
	nu.timer.Stop()
	h.welcome(ctx, nu, a, d, false, ref)
}
