package messenger

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// LoginOptions are the optional parts of a login.
type LoginOptions struct {
	// User and Display create the account User (display name Display;
	// default User) when the device key is not known to the server yet.
	// For a known key they are ignored.
	User, Display string
	// DeviceName names this device in the account's device list; default
	// chosen by the server.
	DeviceName string
	// Code is the pair id (the first group of a device code) of a device
	// link opened by a device already signed in to account User. Link
	// then runs the pairing exchange over the Pair and returns the old
	// device's key as it verified it; Dial sends it in "pair-done" and
	// returns when the server welcomes the new device.
	Code string
	Link func(ctx context.Context, p *Pair) (ed25519.PublicKey, error)
	// Token is an organisation's enrolment token: the new account User
	// is a machine of that organisation (Display: the user logged in on
	// it; DeviceName: the machine's name).
	Token string
}

// Welcome is the server's answer to a login.
type Welcome struct {
	User    string
	Display string
	Device  string // this device's id
	Created bool   // the account was created by this login
}

// Client is one device's logged-in messenger connection. Its methods may
// be called from any goroutine. Server pushes (presence, requests, and the
// answers to requests it made) arrive on Events. Close it to stop its
// goroutines.
type Client struct {
	ws  *websocket.Conn
	key ed25519.PrivateKey

	welcome Welcome
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when the reader has ended
	events  chan Message
	pumped  chan struct{} // closed when the event pump has ended

	mu      sync.Mutex
	err     error // why the connection ended
	nextRef uint64
	waiting map[string]chan Message // by ref
	pairs   map[string]*Pair        // by pair id
	queue   []Message               // events not yet taken by the pump
	wake    chan struct{}           // cap 1: the queue grew
	closed  bool
}

// maxQueuedEvents bounds the events nobody has read yet; past it the
// client closes, as a reader who never reads would otherwise make it grow
// for ever.
const maxQueuedEvents = 10000

// ErrClosed is returned by the methods of a closed Client (wrapped with
// the reason the connection ended, if any).
var ErrClosed = errors.New("messenger: connection closed")

// Dial connects to the messenger of the server at serverURL
// ("https://HOST[:PORT]") and logs in with the device key. With a
// fingerprint ("sha256:HEX", as "assist serve" prints) only that
// certificate is accepted; without one, the system's roots verify it. In a
// browser (GOOS=js) the fingerprint is required.
func Dial(ctx context.Context, serverURL, fingerprint string, key ed25519.PrivateKey, opts LoginOptions) (*Client, Welcome, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, Welcome{}, errors.New("messenger: the device key is not an Ed25519 private key")
	}
	if opts.Code != "" && opts.Link == nil {
		return nil, Welcome{}, errors.New("messenger: LoginOptions.Code needs LoginOptions.Link")
	}
	ws, serverFP, err := dialWS(ctx, serverURL, fingerprint)
	if err != nil {
		return nil, Welcome{}, err
	}
	ws.SetReadLimit(MaxMessageBytes)
	c := &Client{
		ws:      ws,
		key:     key,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		events:  make(chan Message),
		pumped:  make(chan struct{}),
		waiting: make(map[string]chan Message),
		pairs:   make(map[string]*Pair),
		wake:    make(chan struct{}, 1),
	}
	// The challenge comes first, before the reader takes over.
	var challenge Message
	for challenge.Type != TypeChallenge {
		if challenge, err = c.read(ctx); err != nil {
			ws.CloseNow()
			return nil, Welcome{}, fmt.Errorf("messenger: login: %w", err)
		}
	}
	go c.readLoop()
	go c.pump()
	w, err := c.login(ctx, challenge.Nonce, serverFP, opts)
	if err != nil {
		c.Close()
		return nil, Welcome{}, err
	}
	c.welcome = w
	return c, w, nil
}

// login answers the challenge and, for a device link, runs it.
func (c *Client) login(ctx context.Context, nonce []byte, serverFP [32]byte, opts LoginOptions) (Welcome, error) {
	m := Message{Type: TypeLogin, Key: B64(c.key.Public().(ed25519.PublicKey)),
		Sig:  ed25519.Sign(c.key, LoginMessage(nonce, serverFP)),
		User: opts.User, Display: opts.Display, Name: opts.DeviceName, Code: opts.Code, Token: opts.Token}
	var p *Pair
	if opts.Code != "" {
		p = c.addPair(opts.Code, PurposeDevice)
		defer p.Close()
	}
	ref, reply, err := c.send(ctx, m)
	if err != nil {
		return Welcome{}, fmt.Errorf("messenger: login: %w", err)
	}
	defer c.forget(ref)
	if p != nil {
		// The server answers a link's login only after "pair-done".
		select {
		case r := <-reply:
			return welcomeOf(r)
		case <-p.peerSet:
		case <-ctx.Done():
			return Welcome{}, fmt.Errorf("messenger: login: %w", ctx.Err())
		case <-c.done:
			return Welcome{}, fmt.Errorf("messenger: login: %w", c.closedErr())
		}
		peerKey, err := opts.Link(ctx, p)
		if err != nil {
			return Welcome{}, fmt.Errorf("messenger: device link: %w", err)
		}
		if err := c.write(ctx, Message{Type: TypePairDone, Pair: p.ID, Key: B64(peerKey)}); err != nil {
			return Welcome{}, fmt.Errorf("messenger: device link: %w", err)
		}
		select {
		case r := <-reply:
			return welcomeOf(r)
		case r := <-p.result:
			if r.Type == TypePairFailed {
				return Welcome{}, &PairFailedError{Reason: r.Reason}
			}
			return Welcome{}, fmt.Errorf("messenger: device link: got %q, want welcome", r.Type)
		case <-ctx.Done():
			return Welcome{}, fmt.Errorf("messenger: login: %w", ctx.Err())
		case <-c.done:
			return Welcome{}, fmt.Errorf("messenger: login: %w", c.closedErr())
		}
	}
	r, err := c.wait(ctx, reply)
	if err != nil {
		return Welcome{}, fmt.Errorf("messenger: login: %w", err)
	}
	return welcomeOf(r)
}

func welcomeOf(r Message) (Welcome, error) {
	if r.Type == TypeError {
		// The server's words say what went wrong and what to do; a
		// "login:" prefix only came out as "messenger: login: messenger:".
		return Welcome{}, &Error{Code: r.Code, Message: r.Message}
	}
	if r.Type != TypeWelcome || r.Created == nil {
		return Welcome{}, fmt.Errorf("messenger: login: got %q, want welcome", r.Type)
	}
	return Welcome{User: r.User, Display: r.Display, Device: r.Device, Created: *r.Created}, nil
}

// Welcome returns the server's answer to the login.
func (c *Client) Welcome() Welcome { return c.welcome }

// Events returns the server's pushes: "presence", "request", "accepted",
// "declined", "request-closed", "contact-added", "removed", "blocked" (by
// another device of the account), "device-removed", and "pair-*" messages
// of pairings this client did not open or join, and errors that answer no
// request. It is closed after the connection ends and the remaining
// events are read.
func (c *Client) Events() <-chan Message { return c.events }

// Done is closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection and stops the client's goroutines.
func (c *Client) Close() error {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return nil
	}
	close(c.closing)
	// An error here means the connection had ended already.
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
	<-c.pumped
	return nil
}

// Contacts returns the account's contacts (with their state and devices)
// and the users it blocked.
func (c *Client) Contacts(ctx context.Context) ([]Contact, []string, error) {
	r, err := c.call(ctx, Message{Type: TypeContacts}, TypeContacts)
	if err != nil {
		return nil, nil, err
	}
	return r.Contacts, r.Blocked, nil
}

// SetState sets this device's state: StateOnline, StateBusy or StateAway.
// The server answers nothing unless the state is refused.
func (c *Client) SetState(ctx context.Context, state string) error {
	if state != StateOnline && state != StateBusy && state != StateAway {
		return fmt.Errorf("messenger: state %q: want online, busy or away", state)
	}
	return c.write(ctx, Message{Type: TypeState, State: state})
}

// Remove removes the contact user from both accounts.
func (c *Client) Remove(ctx context.Context, user string) error {
	_, err := c.call(ctx, Message{Type: TypeRemove, User: user}, TypeRemoved)
	return err
}

// Block removes user and keeps them from pairing with or asking this
// account until Unblock.
func (c *Client) Block(ctx context.Context, user string) error {
	_, err := c.call(ctx, Message{Type: TypeBlock, User: user}, TypeBlocked)
	return err
}

// Unblock lifts a Block.
func (c *Client) Unblock(ctx context.Context, user string) error {
	_, err := c.call(ctx, Message{Type: TypeUnblock, User: user}, TypeUnblocked)
	return err
}

// Devices lists the account's devices.
func (c *Client) Devices(ctx context.Context) ([]OwnDevice, error) {
	r, err := c.call(ctx, Message{Type: TypeDevices}, TypeDevices)
	if err != nil {
		return nil, err
	}
	return r.Devices, nil
}

// RemoveDevice removes one of the account's devices; its connections are
// closed.
func (c *Client) RemoveDevice(ctx context.Context, id string) error {
	_, err := c.call(ctx, Message{Type: TypeRemoveDevice, Device: id}, TypeDeviceRemoved)
	return err
}

// Ask asks the contact to for help (KindHelp: this side is the novice) or
// offers help (KindOffer: this side is the expert). The answer comes on
// Events: "accepted", "declined", or "request-closed" (expired).
func (c *Client) Ask(ctx context.Context, to, kind string) (Message, error) {
	return c.call(ctx, Message{Type: TypeAsk, To: to, Kind: kind}, TypeAsked)
}

// Answer accepts or declines a request made to this account. Accepting
// returns the "accepted" message (the session id, this side's role, and
// the asking device); declining returns the "request-closed" message.
func (c *Client) Answer(ctx context.Context, request string, accept bool) (Message, error) {
	want := TypeRequestClosed
	if accept {
		want = TypeAccepted
	}
	return c.call(ctx, Message{Type: TypeAnswer, Request: request, Accept: &accept}, want)
}

// Machines lists the machines of the organisations this account helps
// (as a helper or admin), with their presence.
func (c *Client) Machines(ctx context.Context) ([]Machine, error) {
	r, err := c.call(ctx, Message{Type: TypeMachines}, TypeMachines)
	if err != nil {
		return nil, err
	}
	return r.Machines, nil
}

// EnrolToken makes an enrolment token of org for uses machines (0: one);
// only the organisation's admins may. It returns the token and when it
// expires.
func (c *Client) EnrolToken(ctx context.Context, org string, uses int) (string, time.Time, error) {
	r, err := c.call(ctx, Message{Type: TypeEnrolToken, Organisation: org, Uses: uses}, TypeEnrolToken)
	if err != nil {
		return "", time.Time{}, err
	}
	return r.Token, r.Expires, nil
}

// AuditUpload sends entries of this device's audit chain (package
// audit's upload format; "" only asks) and returns the last entry the
// server holds of it. A chain that contradicts what the server holds is
// refused with "invalid".
func (c *Client) AuditUpload(ctx context.Context, jsonl string) (uint64, error) {
	r, err := c.call(ctx, Message{Type: TypeAuditUpload, Audit: jsonl}, TypeAuditStored)
	if err != nil {
		return 0, err
	}
	return *r.Seq, nil
}

// AuditSearch returns one page of an organisation's audit entries (for
// its admins), from offset: the entries as JSONL, and whether more
// follow.
func (c *Client) AuditSearch(ctx context.Context, org string, since time.Time, text string, offset int) (string, bool, error) {
	r, err := c.call(ctx, Message{Type: TypeAuditSearch, Organisation: org, Since: since, Text: text, Offset: offset}, TypeAuditEntries)
	if err != nil {
		return "", false, err
	}
	return r.Audit, r.More, nil
}

// AuditVerify verifies every audit chain the server stores for an
// organisation (for its admins) and returns the verdict on each.
func (c *Client) AuditVerify(ctx context.Context, org string) ([]AuditChain, error) {
	r, err := c.call(ctx, Message{Type: TypeAuditVerify, Organisation: org}, TypeAuditVerified)
	if err != nil {
		return nil, err
	}
	return r.Chains, nil
}

// Cancel withdraws a request this device made.
func (c *Client) Cancel(ctx context.Context, request string) error {
	_, err := c.call(ctx, Message{Type: TypeCancel, Request: request}, TypeRequestClosed)
	return err
}

// PairOpen opens a pairing (PurposeContact: a contact; PurposeDevice: a
// new device of this account). Give its ID with the secret to the other
// side; Peer then says who joined.
func (c *Client) PairOpen(ctx context.Context, purpose string) (*Pair, error) {
	ref, reply, err := c.send(ctx, Message{Type: TypePairOpen, Purpose: purpose})
	if err != nil {
		return nil, err
	}
	defer c.forget(ref)
	r, err := c.expect(ctx, reply, TypePairOpened)
	if err != nil {
		return nil, err
	}
	p := c.addPair(r.Pair, purpose)
	p.Expires = r.Expires
	return p, nil
}

// PairJoin joins the pairing id that another user (or device) opened and
// returns it once the server has named the peer (Pair.Peer).
func (c *Client) PairJoin(ctx context.Context, id, purpose string) (*Pair, error) {
	// Registered first: the peer's relays may follow "pair-peer" at once.
	p := c.addPair(id, purpose)
	r, err := c.call(ctx, Message{Type: TypePairJoin, Pair: id, Purpose: purpose}, TypePairPeer)
	if err != nil {
		p.Close()
		return nil, err
	}
	c.mu.Lock()
	p.deliver(r)
	c.mu.Unlock()
	return p, nil
}

// call sends m and waits for its answer of type want.
func (c *Client) call(ctx context.Context, m Message, want string) (Message, error) {
	ref, reply, err := c.send(ctx, m)
	if err != nil {
		return Message{}, err
	}
	defer c.forget(ref)
	return c.expect(ctx, reply, want)
}

func (c *Client) expect(ctx context.Context, reply chan Message, want string) (Message, error) {
	r, err := c.wait(ctx, reply)
	if err != nil {
		return Message{}, err
	}
	if r.Type == TypeError {
		return r, &Error{Code: r.Code, Message: r.Message}
	}
	if r.Type != want {
		return r, fmt.Errorf("messenger: got a %q message, want %q", r.Type, want)
	}
	return r, nil
}

func (c *Client) wait(ctx context.Context, reply chan Message) (Message, error) {
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	case <-c.done:
		// An answer may have arrived just before the end.
		select {
		case r := <-reply:
			return r, nil
		default:
		}
		return Message{}, c.closedErr()
	}
}

// send gives m a fresh ref, registers for its answer and sends it.
func (c *Client) send(ctx context.Context, m Message) (string, chan Message, error) {
	reply := make(chan Message, 1)
	c.mu.Lock()
	c.nextRef++
	m.Ref = "r" + strconv.FormatUint(c.nextRef, 10)
	c.waiting[m.Ref] = reply
	c.mu.Unlock()
	if err := c.write(ctx, m); err != nil {
		c.forget(m.Ref)
		return "", nil, err
	}
	return m.Ref, reply, nil
}

func (c *Client) forget(ref string) {
	c.mu.Lock()
	delete(c.waiting, ref)
	c.mu.Unlock()
}

// write sends one message.
func (c *Client) write(ctx context.Context, m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("messenger: send %s: %w", m.Type, err)
	}
	select {
	case <-c.done:
		return c.closedErr()
	default:
	}
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("messenger: send %s: %w", m.Type, err)
	}
	return nil
}

// read reads and parses one message.
func (c *Client) read(ctx context.Context) (Message, error) {
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return Message{}, err
	}
	if typ != websocket.MessageText {
		return Message{}, fmt.Errorf("%w: binary message", ErrMalformed)
	}
	return ParseServerMessage(b)
}

func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return fmt.Errorf("%w: %w", ErrClosed, c.err)
	}
	return ErrClosed
}

// readLoop routes every message from the server: answers to their
// waiting call, pairing messages to their Pair, the rest to Events.
func (c *Client) readLoop() {
	defer close(c.done)
	for {
		m, err := c.read(context.Background())
		if err != nil {
			c.mu.Lock()
			if c.err == nil {
				c.err = err
			}
			c.mu.Unlock()
			c.ws.CloseNow()
			return
		}
		c.route(m)
	}
}

func (c *Client) route(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Ref != "" {
		if ch := c.waiting[m.Ref]; ch != nil {
			delete(c.waiting, m.Ref)
			ch <- m // cap 1, one answer per ref
			return
		}
	}
	if m.Pair != "" {
		if p := c.pairs[m.Pair]; p != nil && p.deliver(m) {
			return
		}
	}
	if len(c.queue) >= maxQueuedEvents {
		if c.err == nil {
			c.err = errors.New("messenger: events were not read")
		}
		go c.ws.Close(websocket.StatusPolicyViolation, "client too slow")
		return
	}
	c.queue = append(c.queue, m)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// pump hands queued events to Events, until Close, or until the
// connection has ended and the queue is empty.
func (c *Client) pump() {
	defer close(c.pumped)
	defer close(c.events)
	for {
		c.mu.Lock()
		var next *Message
		if len(c.queue) > 0 {
			next = &c.queue[0]
		}
		c.mu.Unlock()
		if next == nil {
			select {
			case <-c.wake:
				continue
			case <-c.done:
				c.mu.Lock()
				empty := len(c.queue) == 0
				c.mu.Unlock()
				if empty {
					return
				}
				continue
			case <-c.closing:
				return
			}
		}
		select {
		case c.events <- *next:
			c.mu.Lock()
			c.queue[0] = Message{}
			c.queue = c.queue[1:]
			c.mu.Unlock()
		case <-c.closing:
			return
		}
	}
}

// PairFailedError is a pairing the server ended ("pair-failed"): the two
// sides named keys that were not each other's, the peer left, or it
// expired.
type PairFailedError struct{ Reason string }

func (e *PairFailedError) Error() string { return "messenger: pairing failed: " + e.Reason }

// PeerInfo is who the server says the other side of a pairing is. It is
// the server's claim: the pairing exchange proves the peer's key.
type PeerInfo struct{ User, Display string }

// Pair is one pairing this client opened or joined. It carries the
// pairing exchange (Send and Recv, e.g. for package pairing) and ends
// with Done. Close forgets it.
type Pair struct {
	c       *Client
	ID      string
	Purpose string
	Expires time.Time // for the opener

	peerSet chan struct{} // closed when peer is set
	peer    PeerInfo
	relay   chan []byte
	result  chan Message  // contact-added, device-added or pair-failed
	failed  chan struct{} // closed on pair-failed
	once    sync.Once
	reason  string
}

func (c *Client) addPair(id, purpose string) *Pair {
	p := &Pair{c: c, ID: id, Purpose: purpose, peerSet: make(chan struct{}),
		relay: make(chan []byte, 64), result: make(chan Message, 1), failed: make(chan struct{})}
	c.mu.Lock()
	c.pairs[id] = p
	c.mu.Unlock()
	return p
}

// deliver takes a pairing message from the reader (c.mu held); false if
// it is not one.
func (p *Pair) deliver(m Message) bool {
	switch m.Type {
	case TypePairPeer:
		select {
		case <-p.peerSet:
		default:
			p.peer = PeerInfo{User: m.User, Display: m.Display}
			close(p.peerSet)
		}
	case TypePairRelay:
		var s string
		b, err := []byte(nil), json.Unmarshal(m.Data, &s)
		if err == nil {
			b, err = B64Decode(s)
		}
		if err != nil {
			return true // not ours to judge; Recv times out
		}
		select {
		case p.relay <- b:
		default: // the peer floods; the exchange will fail
		}
	case TypePairFailed:
		p.once.Do(func() { p.reason = m.Reason; close(p.failed) })
		select {
		case p.result <- m:
		default:
		}
	case TypeContactAdded, TypeDeviceAdded:
		select {
		case p.result <- m:
		default:
		}
	default:
		return false
	}
	return true
}

// Peer waits for the server to say who the other side is.
func (p *Pair) Peer(ctx context.Context) (PeerInfo, error) {
	select {
	case <-p.peerSet:
		return p.peer, nil
	case <-p.failed:
		return PeerInfo{}, &PairFailedError{Reason: p.reason}
	case <-ctx.Done():
		return PeerInfo{}, ctx.Err()
	case <-p.c.done:
		return PeerInfo{}, p.c.closedErr()
	}
}

// relayTimeout bounds one Send, which has no context (pairing.Channel).
const relayTimeout = 10 * time.Second

// Send relays b to the peer (as a base64url string in "data").
func (p *Pair) Send(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	data, _ := json.Marshal(B64(b))
	return p.c.write(ctx, Message{Type: TypePairRelay, Pair: p.ID, Data: data})
}

// Recv returns the peer's next relayed message. Messages the peer sent
// before the pairing failed or the connection closed still come first: a
// peer that sees the wrong code and leaves has already sent the
// confirmation that tells this side the same, and "the code does not
// match" is what its person needs to read, not "the other side left".
func (p *Pair) Recv(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.relay:
		return b, nil
	default:
	}
	select {
	case b := <-p.relay:
		return b, nil
	case <-p.failed:
		if b, ok := p.pending(); ok {
			return b, nil
		}
		return nil, &PairFailedError{Reason: p.reason}
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.c.done:
		if b, ok := p.pending(); ok {
			return b, nil
		}
		return nil, p.c.closedErr()
	}
}

// pending returns a relayed message already delivered, if any. The reader
// delivers in order, so once failed or done is closed every message that
// came before it is in p.relay.
func (p *Pair) pending() ([]byte, bool) {
	select {
	case b := <-p.relay:
		return b, true
	default:
		return nil, false
	}
}

// Done tells the server the peer's key as the exchange verified it (and,
// for a device link on the old device, cert: the signature of
// CertMessage(user, peerKey)), and waits for the outcome: "contact-added"
// or "device-added", or a *PairFailedError.
func (p *Pair) Done(ctx context.Context, peerKey ed25519.PublicKey, cert []byte) (Message, error) {
	if err := p.c.write(ctx, Message{Type: TypePairDone, Pair: p.ID, Key: B64(peerKey), Cert: B64(cert)}); err != nil {
		return Message{}, err
	}
	select {
	case r := <-p.result:
		if r.Type == TypePairFailed {
			return r, &PairFailedError{Reason: r.Reason}
		}
		return r, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	case <-p.c.done:
		return Message{}, p.c.closedErr()
	}
}

// Close forgets the pairing on this side: its later messages go to
// Events. (The server ends it when it expires, fails, or the connection
// closes.)
func (p *Pair) Close() {
	p.c.mu.Lock()
	if p.c.pairs[p.ID] == p {
		delete(p.c.pairs, p.ID)
	}
	p.c.mu.Unlock()
}

// Fingerprint returns "sha256:" and the lowercase hex of sum, the form
// "assist serve" prints.
func FormatFingerprint(sum [32]byte) string { return "sha256:" + hex.EncodeToString(sum[:]) }

// ParseFingerprint parses "sha256:HEX" (64 hex digits, any case).
func ParseFingerprint(s string) ([32]byte, error) {
	var sum [32]byte
	h, ok := strings.CutPrefix(strings.ToLower(s), "sha256:")
	if !ok || len(h) != 64 {
		return sum, fmt.Errorf("messenger: server fingerprint %q: want sha256: and 64 hex digits", clip(s))
	}
	if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
		return sum, fmt.Errorf("messenger: server fingerprint %q: want sha256: and 64 hex digits", clip(s))
	}
	return sum, nil
}

// KeyFingerprint is how people compare device keys: "sha256:" and the
// lowercase hex SHA-256 of the 32-byte public key.
func KeyFingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// recordingPace spaces the chunks of a recording's upload or download:
// below the server's default of 20 messages a second per connection,
// beyond which it closes the connection, with room for the others.
const recordingPace = 60 * time.Millisecond

// paced waits until next, or returns ctx's error.
func paced(ctx context.Context, next time.Time) error {
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// UploadRecording sends an encrypted session recording of this machine
// to its organisation's server in chunks (paced under the server's
// message rate: about 500 KiB a second), naming the helper who saw the
// session and when it started; it returns the recording's id there.
func (c *Client) UploadRecording(ctx context.Context, r io.Reader, helper string, start time.Time) (string, error) {
	buf := make([]byte, RecordingChunk)
	id, offset := "", 0
	next := time.Now()
	for {
		if err := paced(ctx, next); err != nil {
			return "", err
		}
		next = time.Now().Add(recordingPace)
		n, err := io.ReadFull(r, buf)
		last := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !last {
			return "", fmt.Errorf("reading the recording: %w", err)
		}
		m := Message{Type: TypeRecordingUpload, Session: id, Offset: offset, Recording: buf[:n], More: !last}
		if id == "" {
			m.User, m.Since = helper, start
		}
		got, err := c.call(ctx, m, TypeRecordingStored)
		if err != nil {
			return "", err
		}
		id, offset = got.Session, got.Offset
		if last {
			return id, nil
		}
	}
}

// Recordings lists an organisation's uploaded recordings (for its
// admins), oldest first.
func (c *Client) Recordings(ctx context.Context, org string) ([]Recording, error) {
	r, err := c.call(ctx, Message{Type: TypeRecordingList, Organisation: org}, TypeRecordings)
	if err != nil {
		return nil, err
	}
	return r.Recordings, nil
}

// GetRecording writes an organisation's recording id to w (for its
// admins) and returns its size.
func (c *Client) GetRecording(ctx context.Context, org, id string, w io.Writer) (int64, error) {
	var n int64
	next := time.Now()
	for {
		if err := paced(ctx, next); err != nil {
			return n, err
		}
		next = time.Now().Add(recordingPace)
		r, err := c.call(ctx, Message{Type: TypeRecordingGet, Organisation: org, Session: id, Offset: int(n)}, TypeRecordingData)
		if err != nil {
			return n, err
		}
		if _, err := w.Write(r.Recording); err != nil {
			return n, fmt.Errorf("writing the recording: %w", err)
		}
		n += int64(len(r.Recording))
		if !r.More || len(r.Recording) == 0 {
			return n, nil
		}
	}
}
