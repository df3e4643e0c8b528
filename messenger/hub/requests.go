package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/messenger"
)

// notYours answers every request id that this connection may not act on
// (unknown, closed, expired, someone else's): one answer for all, so it
// tells nothing about other people's requests.
const notYours = "no open request with this id for you: it was answered on another device, cancelled, or has expired"

func (h *Hub) ask(ctx context.Context, c *conn, m messenger.Message) {
	if m.To == c.user {
		c.fail(m.Ref, messenger.CodeInvalid, "you cannot ask yourself")
		return
	}
	contact, err := h.store.IsContact(ctx, c.user, m.To)
	if err != nil {
		c.internal(m.Ref, "ask", err)
		return
	}
	blocked, err := h.store.EitherBlocked(ctx, c.user, m.To)
	if err != nil {
		c.internal(m.Ref, "ask", err)
		return
	}
	var org *messenger.Org
	if !contact {
		// Not a contact: perhaps a machine of an organisation this
		// account helps.
		if org, err = h.offerOrg(ctx, c.user, m.To, m.Kind); err != nil {
			c.internal(m.Ref, "ask", err)
			return
		}
	}
	if (!contact && org == nil) || blocked {
		c.fail(m.Ref, messenger.CodeUnauthorized, m.To+" is not one of your contacts: add them first (assist contacts invite, assist contacts add CODE)")
		return
	}
	now := h.cfg.Now()
	ttl := h.cfg.RequestTTL
	if org != nil {
		// An offer is answered on the machine only by its agent, which
		// must be there to ask its user now; it declines by itself after
		// the policy's timeout, and the request expires a little later
		// should the agent vanish.
		states, err := h.bus.States(ctx, []string{m.To})
		if err != nil {
			c.internal(m.Ref, "ask", err)
			return
		}
		if states[m.To] == messenger.StateOffline {
			c.fail(m.Ref, messenger.CodeNotFound, m.To+" is offline: its agent is not running (the machine is off, or nobody is logged in)")
			return
		}
		ttl = time.Duration(org.Policy.Timeout)*time.Second + orgExpiryMargin
	}
	n, err := h.store.CountOpenRequests(ctx, c.user, now)
	if err != nil {
		c.internal(m.Ref, "ask", err)
		return
	}
	if n >= h.cfg.MaxOpenRequests {
		c.fail(m.Ref, messenger.CodeTooMany, fmt.Sprintf("you have %d open requests: cancel some or wait for answers", n))
		return
	}
	r := Request{ID: newRequestID(), From: c.user, FromDevice: c.device, FromConn: c.id, To: m.To, Kind: m.Kind,
		Created: now, Expires: now.Add(ttl).Truncate(1e9)}
	if err := h.store.PutRequest(ctx, r); err != nil {
		c.internal(m.Ref, "ask", err)
		return
	}
	h.mu.Lock()
	c.asked[r.ID] = struct{}{}
	h.mu.Unlock()
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeAsked, Request: r.ID, To: r.To, Kind: r.Kind, Expires: r.Expires})
	if org != nil {
		h.auditOffer(ctx, org.Name, r, audit.KindConsent, audit.ServerOffered, "")
	}
	h.publish(ctx, Delivery{User: r.To, Msg: requestMessage(r, c.display, org)})
}

// orgExpiryMargin is how much longer than its policy's timeout an offer
// to a machine waits for the agent's own decline.
const orgExpiryMargin = 30 * time.Second

// forgetAsked drops a closed request from its asking connection, if it
// is here.
func (h *Hub) forgetAsked(r Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.local[r.From] {
		if c.id == r.FromConn {
			delete(c.asked, r.ID)
		}
	}
}

func (h *Hub) answer(ctx context.Context, c *conn, m messenger.Message) {
	r, err := h.store.Request(ctx, m.Request)
	if errors.Is(err, ErrNotFound) || err == nil && (r.To != c.user || r.Closed != "" || !h.cfg.Now().Before(r.Expires)) {
		c.fail(m.Ref, messenger.CodeNotFound, notYours)
		return
	} else if err != nil {
		c.internal(m.Ref, "answer", err)
		return
	}
	// A block or removal since the request ends it: nobody answers a
	// request of someone who is no longer a contact.
	contact, err := h.store.IsContact(ctx, r.From, r.To)
	if err != nil {
		c.internal(m.Ref, "answer", err)
		return
	}
	blocked, err := h.store.EitherBlocked(ctx, r.From, r.To)
	if err != nil {
		c.internal(m.Ref, "answer", err)
		return
	}
	var org *messenger.Org
	if !contact {
		// A helper's offer holds only while they still help the
		// machine's organisation.
		if org, err = h.offerOrg(ctx, r.From, r.To, r.Kind); err != nil {
			c.internal(m.Ref, "answer", err)
			return
		}
	}
	if (!contact && org == nil) || blocked {
		c.fail(m.Ref, messenger.CodeNotFound, notYours)
		return
	}
	reason := messenger.ReasonDeclined
	if *m.Accept {
		reason = messenger.ReasonAnswered
	}
	// The store decides who answered first.
	r, err = h.store.CloseRequest(ctx, r.ID, reason)
	if errors.Is(err, ErrNotFound) {
		c.fail(m.Ref, messenger.CodeNotFound, notYours)
		return
	} else if err != nil {
		c.internal(m.Ref, "answer", err)
		return
	}
	h.forgetAsked(r)
	closed := encode(messenger.Message{Type: messenger.TypeRequestClosed, Request: r.ID, Reason: reason})
	if org != nil {
		action := audit.ServerDeclined
		if *m.Accept {
			action = audit.ServerAccepted
		}
		h.auditOffer(ctx, org.Name, r, audit.KindConsent, action, "answered by "+c.user)
	}
	if !*m.Accept {
		h.publish(ctx, Delivery{User: r.From, Conn: r.FromConn, Msg: encode(messenger.Message{Type: messenger.TypeDeclined, Request: r.ID, By: c.user})})
		c.reply(m.Ref, messenger.Message{Type: messenger.TypeRequestClosed, Request: r.ID, Reason: reason})
		h.publish(ctx, Delivery{User: c.user, Except: []string{c.id}, Msg: closed})
		h.publish(ctx, Delivery{User: r.From, Except: []string{r.FromConn}, Msg: closed})
		return
	}
	from, err := h.store.Account(ctx, r.From)
	if err != nil {
		c.internal(m.Ref, "answer", err)
		return
	}
	var asker *Device
	ds, err := h.store.Devices(ctx, r.From)
	if err != nil {
		c.internal(m.Ref, "answer", err)
		return
	}
	for i := range ds {
		if ds[i].ID == r.FromDevice {
			asker = &ds[i]
		}
	}
	if asker == nil {
		// The asking device was removed meanwhile.
		c.fail(m.Ref, messenger.CodeNotFound, notYours)
		return
	}
	session := newSessionID()
	askerRole, answerRole := messenger.RoleNovice, messenger.RoleExpert
	if r.Kind == messenger.KindOffer {
		askerRole, answerRole = answerRole, askerRole
	}
	c.log.Info("messenger: request accepted", "from", r.From, "by", c.user)
	if org != nil {
		// The pairing: the session id goes to the two devices only.
		h.auditOffer(ctx, org.Name, r, audit.KindStart, "", "")
	}
	h.publish(ctx, Delivery{User: r.From, Conn: r.FromConn, Msg: encode(messenger.Message{Type: messenger.TypeAccepted,
		Request: r.ID, By: c.user, Session: session, Role: askerRole,
		Peer: &messenger.Peer{User: c.user, Display: c.display, Device: wireDevice(c.dev)}, Org: org})})
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeAccepted, Request: r.ID, By: c.user, Session: session, Role: answerRole,
		Peer: &messenger.Peer{User: r.From, Display: from.Display, Device: wireDevice(*asker)}, Org: org})
	h.publish(ctx, Delivery{User: c.user, Except: []string{c.id}, Msg: closed})
	h.publish(ctx, Delivery{User: r.From, Except: []string{r.FromConn}, Msg: closed})
}

// cancelRequest withdraws a request of c's device: asked by the client
// (explicit, with an answer) or because the asking connection closed.
func (h *Hub) cancelRequest(ctx context.Context, c *conn, m messenger.Message, explicit bool) {
	r, err := h.store.Request(ctx, m.Request)
	if errors.Is(err, ErrNotFound) || err == nil && (r.From != c.user || r.FromDevice != c.device || r.Closed != "") {
		if explicit {
			c.fail(m.Ref, messenger.CodeNotFound, notYours)
		}
		return
	} else if err != nil {
		if explicit {
			c.internal(m.Ref, "cancel", err)
		}
		return
	}
	r, err = h.store.CloseRequest(ctx, r.ID, messenger.ReasonCancelled)
	if err != nil {
		if explicit && errors.Is(err, ErrNotFound) {
			c.fail(m.Ref, messenger.CodeNotFound, notYours)
		} else if explicit {
			c.internal(m.Ref, "cancel", err)
		}
		return
	}
	h.forgetAsked(r)
	if org := h.offerOrgOf(ctx, r); org != "" {
		reason := "the helper withdrew it"
		if !explicit {
			reason = "the helper's connection closed"
		}
		h.auditOffer(ctx, org, r, audit.KindConsent, audit.ServerCancelled, reason)
	}
	closed := encode(messenger.Message{Type: messenger.TypeRequestClosed, Request: r.ID, Reason: messenger.ReasonCancelled})
	if explicit {
		c.reply(m.Ref, messenger.Message{Type: messenger.TypeRequestClosed, Request: r.ID, Reason: messenger.ReasonCancelled})
	}
	h.publish(ctx, Delivery{User: r.To, Msg: closed})
	h.publish(ctx, Delivery{User: r.From, Except: []string{c.id}, Msg: closed})
}
