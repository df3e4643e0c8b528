// Package hub is the server side of the messenger (see package messenger
// for the protocol): the /v1/messenger WebSocket handler, with accounts,
// devices, contacts and requests behind a Store (SQLiteStore by default)
// and presence and deliveries behind a Bus (MemBus by default; package
// natsbus over NATS), so that several servers can share a database and a
// message bus.
//
// Authorization is by account on every message: a connection sees and
// reaches only its own account's devices and its contacts; the tests in
// authz_test.go try every message type as a stranger.
//
// Toward several servers: the Store decides everything that must be
// decided once (accounts, first answer wins) and the Bus carries every
// message for a user's connections by user name, with connection ids
// unique across servers. A pairing lives in the memory of the server
// that opened it; with a Bus that implements Nodes, a joiner connected to
// another server reaches it there (see Nodes). The per-address and
// per-account limits stay each server's own.
package hub

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/messenger"
	"github.com/coder/websocket"

	"github.com/assist-project/assist/internal/ratelimit"
)

// Config configures a Hub. Store and Fingerprint are required.
type Config struct {
	Store Store
	// Bus carries presence and deliveries; default a fresh MemBus.
	Bus Bus
	// Fingerprint is the SHA-256 of the TLS leaf certificate clients
	// see: logins sign it, so a login relayed through another server
	// fails.
	Fingerprint [32]byte

	// MaxConns bounds the connections; default 20000.
	MaxConns int
	// MaxConnsPerAddress bounds one address's connections (an IPv4
	// address or an IPv6 /64); beyond, HTTP 429 before the upgrade.
	// Default 64.
	MaxConnsPerAddress int
	// MaxConnsPerAccount bounds one account's logged-in connections on
	// this server; beyond, the login gets "too-many". Default 32.
	MaxConnsPerAccount int
	// LoginTimeout is how long a connection may stay without logging in;
	// default 10 s. LinkTimeout bounds a device link from its login to
	// its welcome; default 60 s.
	LoginTimeout time.Duration
	LinkTimeout  time.Duration
	// Failed logins per address: LoginFailBurst at once, then one per
	// LoginFailEvery (defaults 10 and 6 s); then every login from the
	// address is refused until a token is back.
	LoginFailBurst int
	LoginFailEvery time.Duration
	// Account creations per address: CreateBurst, then one per
	// CreateEvery (defaults 10 and 1 min).
	CreateBurst int
	CreateEvery time.Duration
	// Pair-joins (and device-link logins) that find no pairing, per
	// address and per account: PairMissBurst at once, then one per
	// PairMissEvery (defaults 10 and 6 s). Spent: every pair-join is
	// refused before the look-up.
	PairMissBurst int
	PairMissEvery time.Duration
	// MessageRate and MessageBurst limit each connection's messages;
	// defaults 20/s and 100.
	MessageRate  float64
	MessageBurst int
	// MaxPairings bounds an account's open pairings on this server
	// (default 16),
	// MaxOpenRequests its open requests (default 32), MaxBlocks its
	// blocks (default 1000), MaxPairRelays the messages one pairing
	// relays (default 64).
	MaxPairings     int
	MaxOpenRequests int
	MaxBlocks       int
	MaxPairRelays   int
	// PairTTL is how long a pairing may be joined and run; default 10
	// min. RequestTTL is how long a request waits for an answer; default
	// 5 min.
	PairTTL    time.Duration
	RequestTTL time.Duration
	// SweepEvery is how often expired requests are closed and idle
	// limits forgotten; default 1 s.
	SweepEvery time.Duration
	// AuditKey signs the server's own audit chain (offers and pairings of
	// organisations); nil keeps no audit trail and refuses audit
	// messages. The Store must be an AuditStore too.
	AuditKey ed25519.PrivateKey
	// RecordingsDir, if set, keeps the encrypted session recordings
	// organisations' machines upload (created 0700, files 0600); without
	// it the server takes none. MaxRecordingBytes bounds one file
	// (default 512 MiB), MaxOrgRecordingBytes an organisation's total
	// (default 8 GiB).
	RecordingsDir        string
	MaxRecordingBytes    int64
	MaxOrgRecordingBytes int64
	// AuditPruneEvery is how often the organisations' retention is
	// applied; default an hour (and once at start).
	AuditPruneEvery time.Duration
	// PingInterval is how often connections are pinged; default 30 s.
	PingInterval time.Duration
	// Logger gets structured logs (never keys, signatures or session
	// ids); default slog.Default().
	Logger *slog.Logger
	// Now is the clock of expiries; default time.Now. Rate limits run on
	// real time.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defInt(&c.MaxConns, 20000)
	defInt(&c.MaxConnsPerAddress, 64)
	defInt(&c.MaxConnsPerAccount, 32)
	def(&c.LoginTimeout, 10*time.Second)
	def(&c.LinkTimeout, time.Minute)
	defInt(&c.LoginFailBurst, 10)
	def(&c.LoginFailEvery, 6*time.Second)
	defInt(&c.CreateBurst, 10)
	def(&c.CreateEvery, time.Minute)
	defInt(&c.PairMissBurst, 10)
	def(&c.PairMissEvery, 6*time.Second)
	if c.MessageRate <= 0 {
		c.MessageRate = 20
	}
	defInt(&c.MessageBurst, 100)
	defInt(&c.MaxPairings, 16)
	defInt(&c.MaxOpenRequests, 32)
	defInt(&c.MaxBlocks, 1000)
	defInt(&c.MaxPairRelays, 64)
	def(&c.PairTTL, 10*time.Minute)
	def(&c.RequestTTL, 5*time.Minute)
	def(&c.SweepEvery, time.Second)
	def(&c.AuditPruneEvery, time.Hour)
	def(&c.PingInterval, 30*time.Second)
	if c.Bus == nil {
		c.Bus = NewMemBus()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Hub is the messenger's http.Handler. Close it to disconnect everyone.
type Hub struct {
	cfg    Config
	log    *slog.Logger
	store  Store
	bus    Bus
	limits *limits
	node   string // prefix of this hub's connection ids
	seed   maphash.Seed

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	conns  sync.WaitGroup // connection handlers
	bg     sync.WaitGroup // the sweeper and pairing timers

	userLocks [64]sync.Mutex // by hash of the user: presence order, subscriptions

	unwatch   func()        // ends the bus's WatchStates
	changesMu sync.Mutex    // guards changes
	changes   []StateChange // reported by the bus, not yet announced
	changed   chan struct{} // wakes announceChanges

	// States clients set while the bus could not take them, applied
	// once it can (see keepState); under mu.
	pendingStates map[*conn]string
	retrying      bool // retryStates runs

	mu       sync.Mutex
	closed   bool
	all      map[*conn]struct{}
	local    map[string]map[*conn]struct{} // logged-in connections by user
	subs     map[string]func()             // bus subscriptions by user
	pairings map[string]*pairing
	openPair map[string]int // open pairings by opening user
	seq      uint64

	// With several nodes (nodes set, see Nodes); under mu but nodes,
	// releaseWake and stopNodes.
	nodes       Nodes
	stopNodes   func()                // ends ListenNodes
	edges       map[string]*pairing   // pairings joined here whose home is another node, by id
	linked      map[*pairing]struct{} // pairings shared with another node (edges, and home pairings with a remote joiner)
	claiming    int                   // pair ids being claimed
	releases    []string              // claims of ended pairings to release
	releaseWake chan struct{}
}

// New returns a hub and starts its sweeper.
func New(cfg Config) (*Hub, error) {
	if cfg.Store == nil {
		return nil, errors.New("messenger hub: Config.Store is nil")
	}
	if cfg.Fingerprint == ([32]byte{}) {
		return nil, errors.New("messenger hub: Config.Fingerprint is not set")
	}
	cfg.setDefaults()
	node := make([]byte, 6)
	if _, err := rand.Read(node); err != nil {
		return nil, fmt.Errorf("messenger hub: %w", err)
	}
	h := &Hub{
		cfg:      cfg,
		log:      cfg.Logger,
		store:    cfg.Store,
		bus:      cfg.Bus,
		node:     hex.EncodeToString(node),
		seed:     maphash.MakeSeed(),
		all:      make(map[*conn]struct{}),
		local:    make(map[string]map[*conn]struct{}),
		subs:     make(map[string]func()),
		pairings: make(map[string]*pairing),
		openPair: make(map[string]int),
		edges:    make(map[string]*pairing),
		linked:   make(map[*pairing]struct{}),

		pendingStates: make(map[*conn]string),
	}
	h.limits = newLimits(&h.cfg)
	if _, single := cfg.Bus.(*MemBus); single {
		// A request belongs to the connection that asked, and every
		// connection of a single server ended with its last run: the
		// requests it left open can no longer be answered to anyone.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := cfg.Store.ExpireRequests(ctx, cfg.Now().Add(cfg.RequestTTL+time.Minute))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("messenger hub: closing the requests of the last run: %w", err)
		}
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.changed = make(chan struct{}, 1)
	h.unwatch = cfg.Bus.WatchStates(h.stateChanged)
	h.bg.Add(2)
	go h.sweep()
	go h.announceChanges()
	if nodes, ok := cfg.Bus.(Nodes); ok {
		// Pairings may cross nodes: listen to the others, check the
		// pairings shared with them, release the ids of ended ones.
		h.nodes = nodes
		h.releaseWake = make(chan struct{}, 1)
		stop, err := nodes.ListenNodes(h.nodeMessage)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("messenger hub: listening to the other nodes: %w", err)
		}
		h.stopNodes = stop
		h.bg.Add(2)
		go h.checkNodes()
		go h.releaseClaims()
	}
	return h, nil
}

// Close disconnects every client (1001), stops the sweeper and waits for
// all of it. It closes neither the Store nor the Bus.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	for c := range h.all {
		c.closeWith(websocket.StatusGoingAway, "server shutting down")
	}
	for _, p := range h.pairings {
		p.timer.Stop()
	}
	h.mu.Unlock()
	h.conns.Wait()
	if h.stopNodes != nil {
		// After the connections: their pairings' other nodes were told.
		h.stopNodes()
	}
	h.unwatch()
	h.cancel()
	h.bg.Wait()
	return nil
}

// Ready returns nil if the hub can serve: its bus reaches the other
// servers (see Bus.Ready). For a readiness check.
func (h *Hub) Ready(ctx context.Context) error {
	if err := h.bus.Ready(ctx); err != nil {
		return fmt.Errorf("messenger hub: %w", err)
	}
	return nil
}

// stateChanged queues a change the bus reports (a dead server's
// connections expired); it must not block the bus.
func (h *Hub) stateChanged(c StateChange) {
	h.changesMu.Lock()
	h.changes = append(h.changes, c)
	h.changesMu.Unlock()
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// announceChanges tells this hub's connections of each changed user's
// contacts the new state, in the bus's order, until Close. Every hub on
// the bus does the same for its own connections, so each contact hears
// of a change once.
func (h *Hub) announceChanges() {
	defer h.bg.Done()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.changed:
		}
		h.changesMu.Lock()
		cs := h.changes
		h.changes = nil
		h.changesMu.Unlock()
		for _, c := range cs {
			h.announceLocal(c)
		}
	}
}

// announceLocal delivers c to this hub's connections of c.User's
// contacts.
func (h *Hub) announceLocal(c StateChange) {
	lk := h.userLock(c.User)
	lk.Lock()
	defer lk.Unlock()
	ctx, cancel := context.WithTimeout(h.ctx, opTimeout)
	defer cancel()
	contacts, err := h.store.Contacts(ctx, c.User)
	if err != nil {
		if h.ctx.Err() == nil {
			h.log.Warn("messenger: presence: contacts", "err", err)
		}
		return
	}
	msg := encode(messenger.Message{Type: messenger.TypePresence, User: c.User, State: c.After})
	for _, a := range contacts {
		h.deliverLocal(Delivery{User: a.User, Msg: msg})
	}
}

// Conns returns the number of connections, for tests and benchmarks.
func (h *Hub) Conns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.all)
}

// goBackground runs f on a goroutine the hub waits for in Close; false
// (and f not run) once the hub is closed.
func (h *Hub) goBackground(f func()) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		f()
	}()
	return true
}

// sweep closes expired requests and forgets idle limits, every
// SweepEvery until Close.
func (h *Hub) sweep() {
	defer h.bg.Done()
	t := time.NewTicker(h.cfg.SweepEvery)
	defer t.Stop()
	var last, pruned time.Time
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		now := h.cfg.Now()
		ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
		expired, err := h.store.ExpireRequests(ctx, now)
		if err != nil && ctx.Err() == nil {
			h.log.Warn("messenger: expiring requests", "err", err)
		}
		for _, r := range expired {
			h.forgetAsked(r)
			if org := h.offerOrgOf(ctx, r); org != "" {
				h.auditOffer(ctx, org, r, audit.KindConsent, audit.ServerTimedOut, "no answer before the offer expired")
			}
			msg := encode(messenger.Message{Type: messenger.TypeRequestClosed, Request: r.ID, Reason: messenger.ReasonExpired})
			h.publish(ctx, Delivery{User: r.To, Msg: msg})
			h.publish(ctx, Delivery{User: r.From, Msg: msg})
		}
		if now.Sub(last) > time.Minute {
			last = now
			if _, err := h.store.DeleteClosedRequests(ctx, now.Add(-time.Hour)); err != nil && ctx.Err() == nil {
				h.log.Warn("messenger: forgetting old requests", "err", err)
			}
			h.limits.sweep(time.Now())
		}
		if now.Sub(pruned) >= h.cfg.AuditPruneEvery {
			pruned = now
			h.pruneAudit(ctx, now)
		}
		cancel()
	}
}

// userLock serialises one user's presence changes and subscription.
func (h *Hub) userLock(user string) *sync.Mutex {
	return &h.userLocks[maphash.String(h.seed, user)%uint64(len(h.userLocks))]
}

// publish hands d to the bus, logging a failure.
func (h *Hub) publish(ctx context.Context, d Delivery) {
	if err := h.bus.Publish(ctx, d); err != nil {
		h.log.Warn("messenger: bus publish", "err", err)
	}
}

// deliverLocal is every subscription's callback: it hands d to this hub's
// matching connections.
func (h *Hub) deliverLocal(d Delivery) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.local[d.User] {
		if d.Conn != "" && c.id != d.Conn || d.Device != "" && c.device != d.Device || slices.Contains(d.Except, c.id) {
			continue
		}
		if d.Msg != nil {
			c.send(d.Msg)
		}
		if d.Close {
			c.closeWith(websocket.StatusPolicyViolation, "this device was removed from the account")
		}
	}
}

// errAccountConns refuses a login past Config.MaxConnsPerAccount.
var errAccountConns = errors.New("too many connections of this account")

// errGone refuses to add a connection that is closing.
var errGone = errors.New("connection closed")

// addLocal makes a logged-in connection reachable through the bus.
func (h *Hub) addLocal(c *conn) error {
	lk := h.userLock(c.user)
	lk.Lock()
	defer lk.Unlock()
	h.mu.Lock()
	if c.left {
		h.mu.Unlock()
		return errGone
	}
	set := h.local[c.user]
	if len(set) >= h.cfg.MaxConnsPerAccount {
		h.mu.Unlock()
		return errAccountConns
	}
	first := set == nil
	if first {
		set = make(map[*conn]struct{})
		h.local[c.user] = set
	}
	set[c] = struct{}{}
	h.mu.Unlock()
	if !first {
		return nil
	}
	cancel, err := h.bus.Subscribe(c.user, h.deliverLocal)
	if err != nil {
		h.mu.Lock()
		delete(set, c)
		if len(set) == 0 {
			delete(h.local, c.user)
		}
		h.mu.Unlock()
		return fmt.Errorf("subscribe: %w", err)
	}
	h.mu.Lock()
	h.subs[c.user] = cancel
	h.mu.Unlock()
	return nil
}

// removeLocal undoes addLocal; false if c was not added.
func (h *Hub) removeLocal(c *conn) bool {
	lk := h.userLock(c.user)
	lk.Lock()
	defer lk.Unlock()
	h.mu.Lock()
	set := h.local[c.user]
	if _, ok := set[c]; !ok {
		h.mu.Unlock()
		return false
	}
	delete(set, c)
	var cancel func()
	if set != nil && len(set) == 0 {
		delete(h.local, c.user)
		cancel = h.subs[c.user]
		delete(h.subs, c.user)
	}
	h.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return true
}

// setState records c's state and, if its user's state changed, pushes
// the new one to every contact.
func (h *Hub) setState(ctx context.Context, c *conn, state string) {
	lk := h.userLock(c.user)
	lk.Lock()
	defer lk.Unlock()
	h.setStateLocked(ctx, c, state)
}

// setStateLocked is setState under c.user's lock. A state the bus
// cannot take now (ErrUnavailable) is kept and set once it can: the
// client, told nothing ("state" has no answer), counts on it.
func (h *Hub) setStateLocked(ctx context.Context, c *conn, state string) {
	h.mu.Lock()
	delete(h.pendingStates, c) // this state supersedes a kept one
	gone := c.left
	h.mu.Unlock()
	if gone && state != messenger.StateOffline {
		return
	}
	before, after, err := h.bus.SetState(ctx, c.user, c.device, c.id, state)
	if err != nil {
		h.log.Warn("messenger: presence", "err", err)
		if errors.Is(err, ErrUnavailable) && state != messenger.StateOffline {
			h.keepState(c, state)
		}
		return
	}
	if before == after {
		return
	}
	contacts, err := h.store.Contacts(ctx, c.user)
	if err != nil {
		h.log.Warn("messenger: presence", "err", err)
		return
	}
	msg := encode(messenger.Message{Type: messenger.TypePresence, User: c.user, State: after})
	for _, a := range contacts {
		h.publish(ctx, Delivery{User: a.User, Msg: msg})
	}
}

// stateRetryEvery is how often kept states are tried again while the
// bus is unavailable.
const stateRetryEvery = 250 * time.Millisecond

// keepState keeps state as c's until the bus can take it: a client's
// "state" has no answer, so refusing it would silently lose it. A later
// state of c, or its leaving, replaces it.
func (h *Hub) keepState(c *conn, state string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || c.left {
		return
	}
	h.pendingStates[c] = state
	if h.retrying {
		return
	}
	h.retrying = true
	h.bg.Add(1)
	go h.retryStates()
}

// retryStates sets the kept states once the bus is ready, until none is
// left or the hub closes.
func (h *Hub) retryStates() {
	defer h.bg.Done()
	t := time.NewTicker(stateRetryEvery)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		if h.bus.Ready(h.ctx) != nil {
			continue
		}
		h.mu.Lock()
		if len(h.pendingStates) == 0 {
			h.retrying = false
			h.mu.Unlock()
			return
		}
		cs := make([]*conn, 0, len(h.pendingStates))
		for c := range h.pendingStates {
			cs = append(cs, c)
		}
		h.mu.Unlock()
		for _, c := range cs {
			h.applyKept(c)
		}
	}
}

// applyKept sets c's kept state, if it still has one, under its user's
// lock: a state c sets meanwhile is not overtaken.
func (h *Hub) applyKept(c *conn) {
	lk := h.userLock(c.user)
	lk.Lock()
	defer lk.Unlock()
	h.mu.Lock()
	state, ok := h.pendingStates[c]
	h.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, opTimeout)
	defer cancel()
	h.setStateLocked(ctx, c, state)
}

// encode marshals a server message; the types cannot fail.
func encode(m messenger.Message) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic("messenger hub: encode: " + err.Error())
	}
	return b
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("messenger hub: random: " + err.Error()) // crypto/rand does not fail
	}
	return b
}

// newDeviceID is 12 of [a-z2-7]: 60 random bits.
func newDeviceID() string { return lowerBase32.EncodeToString(randomBytes(8))[:12] }

// newRequestID is 16 random bytes, base64url.
func newRequestID() string { return base64.RawURLEncoding.EncodeToString(randomBytes(16)) }

// newSessionID is "r-" and 26 lowercase base32 characters of 128 random
// bits: a valid /v1/signal invitation id.
func newSessionID() string { return "r-" + lowerBase32.EncodeToString(randomBytes(16)) }

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newPairID is 4 Crockford base32 symbols.
func newPairID() string {
	b := randomBytes(4)
	var s strings.Builder
	for _, x := range b {
		s.WriteByte(crockford[x%32])
	}
	return s.String()
}

// ServeHTTP upgrades to the messenger WebSocket and serves it.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	addr := ratelimit.Key(ratelimit.RemoteAddr(r.RemoteAddr))
	h.mu.Lock()
	refuse := h.closed || len(h.all) >= h.cfg.MaxConns
	h.mu.Unlock()
	if refuse {
		http.Error(w, "server busy or shutting down: try again later", http.StatusServiceUnavailable)
		return
	}
	if err := h.bus.Ready(r.Context()); err != nil {
		// Without its bus this server cannot reach the others' users:
		// the client retries, through a load balancer maybe elsewhere.
		h.log.Debug("messenger: refused while the bus is unavailable", "err", err)
		http.Error(w, busyMessage, http.StatusServiceUnavailable)
		return
	}
	if !h.limits.connect(addr, time.Now()) {
		http.Error(w, fmt.Sprintf("too many connections from your address (at most %d): close some, then try again",
			h.cfg.MaxConnsPerAddress), http.StatusTooManyRequests)
		return
	}
	defer h.limits.disconnect(addr)
	// The default Origin check stays: a page of another site must not
	// open a messenger connection in a visitor's browser.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		h.log.Debug("messenger: websocket handshake", "remote", r.RemoteAddr, "err", err)
		return
	}
	// The reader enforces the limit itself, to answer first; a backstop.
	ws.SetReadLimit(messenger.MaxMessageBytes + 1<<10)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	h.seq++
	c := newConn(h, ws, addr, fmt.Sprintf("%s-%d", h.node, h.seq), r.RemoteAddr)
	h.all[c] = struct{}{}
	h.conns.Add(1)
	h.mu.Unlock()
	defer h.conns.Done()
	c.serve()
	h.mu.Lock()
	delete(h.all, c)
	h.mu.Unlock()
}
