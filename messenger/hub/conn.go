package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/coder/websocket"

	"github.com/assist-project/assist/internal/ratelimit"
	"github.com/assist-project/assist/internal/sqldb"
	"github.com/assist-project/assist/internal/wsconn"
)

// outQueue is how many messages may wait for a slow client; past it the
// client is disconnected. The largest burst is a login's: welcome, then
// the pending requests (at most MaxOpenRequests per contact, in practice
// a few). Each slot costs every connection 24 bytes.
const outQueue = 64

// opTimeout bounds the store and bus work of one message.
const opTimeout = 15 * time.Second

// conn is one messenger connection.
type conn struct {
	h    *Hub
	ws   *websocket.Conn
	id   string
	addr addrKey
	log  *slog.Logger

	w     *wsconn.Conn
	timer *time.Timer // login (or device link) deadline

	nonce []byte

	// Set once, before loggedIn is stored true (by the reader, or for a
	// device link by whichever reader completes it); read after loading
	// loggedIn, or under h.mu by those who found c through the hub.
	loggedIn atomic.Bool
	user     string
	display  string
	device   string
	dev      Device

	// Under h.mu.
	key      []byte                // the login key (set before a link joins)
	link     *pairing              // device link this unauthenticated connection joined
	linkUser string                // the account it links to
	linkName string                // its device name
	loginRef string                // ref of its login, for the welcome
	pairs    map[*pairing]struct{} // pairings it is party to
	asked    map[string]struct{}   // open requests it made
	left     bool                  // leave has begun: no more addLocal, no state but offline
}

func newConn(h *Hub, ws *websocket.Conn, addr addrKey, id, remote string) *conn {
	c := &conn{
		h:     h,
		ws:    ws,
		id:    id,
		addr:  addr,
		log:   h.log.With("remote", remote, "conn", id),
		w:     wsconn.New(ws, outQueue, h.log.With("remote", remote, "conn", id), "messenger"),
		nonce: randomBytes(32),
		pairs: make(map[*pairing]struct{}),
		asked: make(map[string]struct{}),
	}
	c.timer = time.NewTimer(h.cfg.LoginTimeout)
	return c
}

// serve runs the connection until it ends, then cleans up after it.
func (c *conn) serve() {
	defer c.w.CancelRead()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.send(encode(messenger.Message{Type: messenger.TypeChallenge, Nonce: c.nonce}))
	c.readLoop()
	c.closeWith(websocket.StatusNormalClosure, "")
	<-writerDone
	c.leave()
}

// closeWith makes the writer send what is queued, then close with this
// status. Only the first call counts.
func (c *conn) closeWith(code websocket.StatusCode, reason string) { c.w.Close(code, reason) }

// send queues a message without blocking; a client too slow to take its
// messages is disconnected.
func (c *conn) send(msg []byte) { c.w.Send(msg) }

// reply sends m with ref.
func (c *conn) reply(ref string, m messenger.Message) {
	m.Ref = ref
	c.send(encode(m))
}

// fail sends an error; malformed also closes the connection.
func (c *conn) fail(ref, code, message string) {
	c.send(encode(messenger.Message{Type: messenger.TypeError, Code: code, Message: message, Ref: ref}))
	if code == messenger.CodeMalformed {
		c.closeWith(websocket.StatusPolicyViolation, "malformed message")
	}
}

// busyMessage tells a client the server cannot serve for now.
const busyMessage = "the service is busy (its message bus cannot be reached): try again in a few seconds"

// storeAwayMessage tells a client the server cannot reach its database
// (PostgreSQL restarting): nothing was decided, and asking again once it is
// back works.
const storeAwayMessage = "the server cannot reach its database: try again in a minute"

// internal reports a server failure to the client and logs it. A bus or
// database that cannot be reached is "unavailable" (the client asks
// again later, as it does while the bus is away), anything else
// "internal".
func (c *conn) internal(ref, what string, err error) {
	if errors.Is(err, ErrUnavailable) {
		c.log.Warn("messenger: "+what, "err", err)
		c.fail(ref, messenger.CodeUnavailable, busyMessage)
		return
	}
	if sqldb.IsUnavailable(err) {
		c.log.Warn("messenger: "+what+": the database cannot be reached", "err", err)
		c.fail(ref, messenger.CodeUnavailable, storeAwayMessage)
		return
	}
	c.log.Error("messenger: "+what, "err", err)
	c.fail(ref, messenger.CodeInternal, "the server failed ("+what+"): try again")
}

func (c *conn) writeLoop() {
	defer c.timer.Stop()
	c.w.Run(c.h.cfg.PingInterval, c.timer.C, c.onLoginDeadline)
}

// onLoginDeadline closes a connection that has not logged in (or finished
// its device link) in time.
func (c *conn) onLoginDeadline() {
	if !c.loggedIn.Load() {
		c.h.mu.Lock()
		p := c.link
		c.h.mu.Unlock()
		if p != nil {
			c.h.failPairing(p, "the device link took too long")
		}
		c.closeWith(websocket.StatusPolicyViolation, fmt.Sprintf("log in within %v", c.h.cfg.LoginTimeout))
	}
}

func (c *conn) readLoop() {
	ctx := c.w.ReadContext()
	cfg := &c.h.cfg
	msgs := ratelimit.NewBucket(cfg.MessageRate, cfg.MessageBurst, time.Now())
	var buf bytes.Buffer
	for {
		typ, r, err := c.ws.Reader(ctx)
		if err != nil {
			return
		}
		buf.Reset()
		n, err := buf.ReadFrom(io.LimitReader(r, messenger.MaxMessageBytes+1))
		if err != nil {
			return
		}
		if n > messenger.MaxMessageBytes {
			c.send(encode(messenger.Message{Type: messenger.TypeError, Code: messenger.CodeMalformed,
				Message: fmt.Sprintf("message larger than %d bytes", messenger.MaxMessageBytes)}))
			c.closeWith(websocket.StatusMessageTooBig, "message too large")
			return
		}
		if !msgs.Take(1, time.Now()) {
			c.send(encode(messenger.Message{Type: messenger.TypeError, Code: messenger.CodeTooMany, Message: "too many messages: slow down"}))
			c.closeWith(websocket.StatusPolicyViolation, "too many messages")
			return
		}
		if typ != websocket.MessageText {
			c.fail("", messenger.CodeMalformed, "messenger messages are JSON text, not binary")
			return
		}
		m, err := messenger.ParseClientMessage(buf.Bytes())
		if err != nil {
			c.fail("", messenger.CodeMalformed, err.Error())
			return
		}
		c.handle(m)
		select {
		case <-c.w.Done():
			return
		default:
		}
	}
}

// handle authorises and acts on one message.
func (c *conn) handle(m messenger.Message) {
	ctx, cancel := context.WithTimeout(c.h.ctx, opTimeout)
	defer cancel()
	h := c.h
	// Refused before anything is decided, so nothing a client was told
	// is accepted is lost while the bus is away: it asks again.
	if err := h.bus.Ready(ctx); err != nil {
		if m.Type == messenger.TypeState && c.loggedIn.Load() {
			// "state" has no answer: the client cannot hear a refusal,
			// so the state is kept and set once the bus is back.
			c.log.Debug("messenger: state kept while the bus is unavailable", "err", err)
			h.keepState(c, m.State)
			return
		}
		c.log.Debug("messenger: refused while the bus is unavailable", "err", err)
		c.fail(m.Ref, messenger.CodeUnavailable, busyMessage)
		return
	}
	if !c.loggedIn.Load() {
		switch m.Type {
		case messenger.TypeLogin:
			h.mu.Lock()
			linking := c.link != nil
			h.mu.Unlock()
			if linking {
				c.fail(m.Ref, messenger.CodeUnauthorized, "a device link is under way on this connection")
				return
			}
			h.login(ctx, c, m)
		case messenger.TypePairRelay, messenger.TypePairDone:
			// Only the device link this connection joined by its login.
			h.mu.Lock()
			ok := c.link != nil && c.link.id == m.Pair
			h.mu.Unlock()
			if !ok {
				c.fail(m.Ref, messenger.CodeUnauthorized, "log in first")
				return
			}
			if m.Type == messenger.TypePairRelay {
				h.pairRelay(c, m)
			} else {
				h.pairDone(ctx, c, m)
			}
		default:
			c.fail(m.Ref, messenger.CodeUnauthorized, "log in first")
		}
		return
	}
	switch m.Type {
	case messenger.TypeLogin:
		c.fail(m.Ref, messenger.CodeInvalid, "this connection is logged in already")
	case messenger.TypeContacts:
		h.contacts(ctx, c, m)
	case messenger.TypeState:
		h.setState(ctx, c, m.State)
	case messenger.TypeRemove:
		h.remove(ctx, c, m)
	case messenger.TypeBlock:
		h.block(ctx, c, m)
	case messenger.TypeUnblock:
		h.unblock(ctx, c, m)
	case messenger.TypeDevices:
		h.devices(ctx, c, m)
	case messenger.TypeRemoveDevice:
		h.removeDevice(ctx, c, m)
	case messenger.TypePairOpen:
		h.pairOpen(ctx, c, m)
	case messenger.TypePairJoin:
		h.pairJoin(ctx, c, m)
	case messenger.TypePairRelay:
		h.pairRelay(c, m)
	case messenger.TypePairDone:
		h.pairDone(ctx, c, m)
	case messenger.TypeAsk:
		h.ask(ctx, c, m)
	case messenger.TypeAnswer:
		h.answer(ctx, c, m)
	case messenger.TypeCancel:
		h.cancelRequest(ctx, c, m, true)
	case messenger.TypeMachines:
		h.machines(ctx, c, m)
	case messenger.TypeEnrolToken:
		h.enrolToken(ctx, c, m)
	case messenger.TypeAuditUpload:
		h.auditUpload(ctx, c, m)
	case messenger.TypeAuditSearch:
		h.auditSearch(ctx, c, m)
	case messenger.TypeAuditVerify:
		h.auditVerify(ctx, c, m)
	case messenger.TypeRecordingUpload:
		h.recordingUpload(ctx, c, m)
	case messenger.TypeRecordingList:
		h.recordingList(ctx, c, m)
	case messenger.TypeRecordingGet:
		h.recordingGet(ctx, c, m)
	}
}

// leave cleans up after a closed connection: its pairings fail, its open
// requests are cancelled, its presence goes.
func (c *conn) leave() {
	h := c.h
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	h.mu.Lock()
	// A device link may complete on the other side's goroutine while this
	// connection closes: from here on, welcome can no longer make it
	// reachable or online.
	c.left = true
	delete(h.pendingStates, c)
	pairs := make([]*pairing, 0, len(c.pairs))
	for p := range c.pairs {
		pairs = append(pairs, p)
	}
	asked := make([]string, 0, len(c.asked))
	for id := range c.asked {
		asked = append(asked, id)
	}
	h.mu.Unlock()
	for _, p := range pairs {
		h.failPairing(p, "the other side left")
	}
	if !c.loggedIn.Load() || !h.removeLocal(c) {
		return
	}
	for _, id := range asked {
		h.cancelRequest(ctx, c, messenger.Message{Request: id}, false)
	}
	h.setState(ctx, c, messenger.StateOffline)
	c.log.Debug("messenger: disconnected")
}

// login handles "login" on a connection not yet logged in.
func (h *Hub) login(ctx context.Context, c *conn, m messenger.Message) {
	now := time.Now()
	if wait := h.limits.loginAllowed(c.addr, now); wait > 0 {
		c.fail(m.Ref, messenger.CodeTooMany, "too many failed logins from your address: try again in "+ratelimit.RetryIn(wait))
		return
	}
	if !ed25519.Verify(ed25519.PublicKey(m.Key), messenger.LoginMessage(c.nonce, h.cfg.Fingerprint), m.Sig) {
		h.limits.loginFailed(c.addr, now)
		c.fail(m.Ref, messenger.CodeUnauthorized, "the login signature does not verify: the server's certificate may not be the one you pinned, or the client is broken")
		return
	}
	d, err := h.store.DeviceByKey(ctx, m.Key)
	switch {
	case err == nil:
		a, err := h.store.Account(ctx, d.User)
		if err != nil {
			c.internal(m.Ref, "login", err)
			return
		}
		h.welcome(ctx, c, a, d, false, m.Ref)
		return
	case !errors.Is(err, ErrNotFound):
		c.internal(m.Ref, "login", err)
		return
	}
	if m.User == "" {
		c.fail(m.Ref, messenger.CodeNotFound, "this device has no account on this server: log in with a user name to create one")
		return
	}
	if m.Code != "" {
		h.linkLogin(ctx, c, m)
		return
	}
	if m.Token != "" {
		h.enrolLogin(ctx, c, m)
		return
	}
	if wait := h.limits.create(c.addr, now); wait > 0 {
		c.fail(m.Ref, messenger.CodeTooMany, "too many new accounts from your address: try again in "+ratelimit.RetryIn(wait))
		return
	}
	a, d := h.newAccount(m, "device 1")
	if err := h.store.CreateAccount(ctx, a, d); errors.Is(err, ErrTaken) {
		c.fail(m.Ref, messenger.CodeTaken, fmt.Sprintf("the name %s is taken; if it is yours, run `assist devices add` on a device already signed in and log in with --code CODE", m.User))
		return
	} else if err != nil {
		c.internal(m.Ref, "create account", err)
		return
	}
	c.log.Info("messenger: account created", "user", m.User)
	h.welcome(ctx, c, a, d, true, m.Ref)
}

// newAccount is the account and first device that login message m
// creates: the display name is the user name unless m gives one, and the
// device's name defaultDevice.
func (h *Hub) newAccount(m messenger.Message, defaultDevice string) (Account, Device) {
	display := m.Display
	if display == "" {
		display = m.User
	}
	name := m.Name
	if name == "" {
		name = defaultDevice
	}
	t := h.cfg.Now()
	return Account{User: m.User, Display: display, Created: t},
		Device{ID: newDeviceID(), User: m.User, Key: m.Key, Name: name, Created: t}
}

// welcome logs c in as device d of account a.
func (h *Hub) welcome(ctx context.Context, c *conn, a Account, d Device, created bool, ref string) {
	c.user, c.display, c.device, c.dev = a.User, a.Display, d.ID, d
	h.mu.Lock()
	c.key = d.Key
	c.link = nil
	h.mu.Unlock()
	c.loggedIn.Store(true)
	err := h.addLocal(c)
	if errors.Is(err, errGone) {
		return
	}
	if errors.Is(err, errAccountConns) {
		c.fail(ref, messenger.CodeTooMany, fmt.Sprintf("this account has %d connections open already: close some, then try again", h.cfg.MaxConnsPerAccount))
		c.closeWith(websocket.StatusPolicyViolation, "too many connections of this account")
		return
	}
	if err != nil {
		c.internal(ref, "login", err)
		c.closeWith(websocket.StatusInternalError, "server failure")
		return
	}
	c.reply(ref, messenger.Message{Type: messenger.TypeWelcome, User: a.User, Display: a.Display, Device: d.ID, Created: &created})
	c.log.Debug("messenger: logged in", "user", a.User, "device", d.ID)
	h.setState(ctx, c, messenger.StateOnline)
	pending, err := h.store.PendingRequests(ctx, a.User, h.cfg.Now())
	if err != nil {
		c.log.Warn("messenger: pending requests", "err", err)
		return
	}
	for _, r := range pending {
		from, err := h.store.Account(ctx, r.From)
		if err != nil {
			continue
		}
		// An organisation's offer carries its organisation and policy,
		// as when it was made: an agent that logs in again (its node
		// died) asks only about those.
		var org *messenger.Org
		contact, err := h.store.IsContact(ctx, r.From, r.To)
		if err == nil && !contact {
			org, err = h.offerOrg(ctx, r.From, r.To, r.Kind)
		}
		if err != nil {
			c.log.Warn("messenger: pending offer's organisation", "err", err)
			continue
		}
		c.send(requestMessage(r, from.Display, org))
	}
}

// requestMessage is the "request" a recipient gets; org is the
// organisation of an offer to one of its machines, else nil.
func requestMessage(r Request, display string, org *messenger.Org) []byte {
	return encode(messenger.Message{Type: messenger.TypeRequest, Request: r.ID, From: r.From, Display: display, Kind: r.Kind, Expires: r.Expires, Org: org})
}

func wireDevice(d Device) messenger.Device {
	w := messenger.Device{ID: d.ID, Key: d.Key, Name: d.Name}
	if len(d.CertSig) > 0 {
		w.Cert = &messenger.Cert{Signer: d.CertSigner, Sig: d.CertSig}
	}
	return w
}

// statesOf returns the presence of the accounts in list, named by user,
// for the answers that list accounts (contacts, machines).
func statesOf[T any](ctx context.Context, b Bus, list []T, user func(T) string) (map[string]string, error) {
	users := make([]string, len(list))
	for i, x := range list {
		users[i] = user(x)
	}
	return b.States(ctx, users)
}

func (h *Hub) contacts(ctx context.Context, c *conn, m messenger.Message) {
	accts, err := h.store.Contacts(ctx, c.user)
	if err != nil {
		c.internal(m.Ref, "contacts", err)
		return
	}
	states, err := statesOf(ctx, h.bus, accts, func(a Account) string { return a.User })
	if err != nil {
		c.internal(m.Ref, "contacts", err)
		return
	}
	out := make([]messenger.Contact, 0, len(accts))
	for _, a := range accts {
		ds, err := h.store.Devices(ctx, a.User)
		if err != nil {
			c.internal(m.Ref, "contacts", err)
			return
		}
		wd := make([]messenger.Device, 0, len(ds))
		for _, d := range ds {
			wd = append(wd, wireDevice(d))
		}
		out = append(out, messenger.Contact{User: a.User, Display: a.Display, State: states[a.User], Devices: wd})
	}
	blocked, err := h.store.Blocked(ctx, c.user)
	if err != nil {
		c.internal(m.Ref, "contacts", err)
		return
	}
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeContacts, Contacts: out, Blocked: blocked})
}

func (h *Hub) remove(ctx context.Context, c *conn, m messenger.Message) {
	if m.User == c.user {
		c.fail(m.Ref, messenger.CodeInvalid, "you cannot remove yourself")
		return
	}
	if err := h.store.RemoveContact(ctx, c.user, m.User); errors.Is(err, ErrNotFound) {
		c.fail(m.Ref, messenger.CodeNotFound, m.User+" is not one of your contacts")
		return
	} else if err != nil {
		c.internal(m.Ref, "remove", err)
		return
	}
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeRemoved, User: m.User})
	h.publish(ctx, Delivery{User: c.user, Except: []string{c.id}, Msg: encode(messenger.Message{Type: messenger.TypeRemoved, User: m.User})})
	h.publish(ctx, Delivery{User: m.User, Msg: encode(messenger.Message{Type: messenger.TypeRemoved, User: c.user})})
}

func (h *Hub) block(ctx context.Context, c *conn, m messenger.Message) {
	if m.User == c.user {
		c.fail(m.Ref, messenger.CodeInvalid, "you cannot block yourself")
		return
	}
	blocked, err := h.store.Blocked(ctx, c.user)
	if err != nil {
		c.internal(m.Ref, "block", err)
		return
	}
	if len(blocked) >= h.cfg.MaxBlocks {
		c.fail(m.Ref, messenger.CodeTooMany, fmt.Sprintf("you have blocked %d users, the most allowed: unblock some first", len(blocked)))
		return
	}
	was, err := h.store.Block(ctx, c.user, m.User, h.cfg.Now())
	if err != nil {
		c.internal(m.Ref, "block", err)
		return
	}
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeBlocked, User: m.User})
	h.publish(ctx, Delivery{User: c.user, Except: []string{c.id}, Msg: encode(messenger.Message{Type: messenger.TypeBlocked, User: m.User})})
	if was {
		// The blocked side learns only that the contact is gone.
		h.publish(ctx, Delivery{User: m.User, Msg: encode(messenger.Message{Type: messenger.TypeRemoved, User: c.user})})
	}
}

func (h *Hub) unblock(ctx context.Context, c *conn, m messenger.Message) {
	if err := h.store.Unblock(ctx, c.user, m.User); errors.Is(err, ErrNotFound) {
		c.fail(m.Ref, messenger.CodeNotFound, "you have not blocked "+m.User)
		return
	} else if err != nil {
		c.internal(m.Ref, "unblock", err)
		return
	}
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeUnblocked, User: m.User})
	h.publish(ctx, Delivery{User: c.user, Except: []string{c.id}, Msg: encode(messenger.Message{Type: messenger.TypeUnblocked, User: m.User})})
}

func (h *Hub) devices(ctx context.Context, c *conn, m messenger.Message) {
	ds, err := h.store.Devices(ctx, c.user)
	if err != nil {
		c.internal(m.Ref, "devices", err)
		return
	}
	online, err := h.bus.OnlineDevices(ctx, c.user)
	if err != nil {
		c.internal(m.Ref, "devices", err)
		return
	}
	out := make([]messenger.OwnDevice, 0, len(ds))
	for _, d := range ds {
		out = append(out, messenger.OwnDevice{Device: wireDevice(d), Self: d.ID == c.device, Online: online[d.ID]})
	}
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeDevices, Devices: out})
}

func (h *Hub) removeDevice(ctx context.Context, c *conn, m messenger.Message) {
	err := h.store.RemoveDevice(ctx, c.user, m.Device)
	switch {
	case errors.Is(err, ErrNotFound):
		c.fail(m.Ref, messenger.CodeNotFound, "your account has no device "+m.Device+": run `assist devices` for the list")
		return
	case errors.Is(err, ErrLastDevice):
		c.fail(m.Ref, messenger.CodeInvalid, "this is your account's only device: add another one first")
		return
	case err != nil:
		c.internal(m.Ref, "remove device", err)
		return
	}
	c.log.Info("messenger: device removed", "user", c.user, "device", m.Device)
	msg := encode(messenger.Message{Type: messenger.TypeDeviceRemoved, Device: m.Device})
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeDeviceRemoved, Device: m.Device})
	h.publish(ctx, Delivery{User: c.user, Except: []string{c.id}, Msg: msg})
	h.publish(ctx, Delivery{User: c.user, Device: m.Device, Close: true})
}
