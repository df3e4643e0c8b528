// Package natsbus is the messenger hub's Bus over NATS, for several
// `assist serve` nodes sharing one Store: deliveries are core NATS
// messages on a subject per user, and presence is soft state in a
// JetStream key-value bucket.
//
// Each connection's state is one key (user, connection) whose value names
// its device, state and node, written with a per-message TTL (NATS 2.11
// or later) and rewritten by its node's heartbeat. When a node dies its
// keys expire by themselves; the bucket keeps a delete marker
// (LimitMarkerTTL) that every node's watcher sees. Each node mirrors the
// whole bucket from that watcher, so States and OnlineDevices are local
// reads, and every node computes the same per-user changes in the
// bucket's one order. Every change (a SetState on any node, an expiry, a
// node's keys coming back after an outage) is reported by WatchStates on
// every node, and each hub tells its own connections: so contacts hear
// of one user's changes in the bucket's order, whichever nodes made them.
// Announced by the nodes that made them instead, two changes made at once
// on two nodes (a client moving from a draining node to another) could
// reach a contact in the wrong order and leave a stale state. SetState
// therefore returns no change for its caller to announce.
//
// For pairings across nodes (hub.Nodes), pair ids are claimed in a
// second bucket with create-only keys whose TTL is the pairing's, and
// nodes talk on a core NATS subject each (SUBJECT.n.NODE).
//
// While the NATS connection is down, Ready and every operation return
// errors wrapping hub.ErrUnavailable; nats.go reconnects by itself, the
// heartbeat rewrites the node's keys and the watcher reloads the bucket.
package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
)

// Defaults of Config.
const (
	DefaultBucket     = "assist_presence"
	DefaultPairBucket = "assist_pairings"
	DefaultSubject    = "assist.messenger"
	DefaultTTL        = 6 * time.Second
)

// Config configures a Bus. URL is required.
type Config struct {
	// URL is the NATS server, or several separated by commas
	// (nats://host:4222). Credentials in it never reach logs.
	URL string
	// Bucket is the key-value bucket of the states (default
	// DefaultBucket); Subject the prefix of delivery subjects (default
	// DefaultSubject). Nodes sharing a bus must agree on both.
	Bucket  string
	Subject string
	// PairBucket holds the claimed pair ids (default
	// DefaultPairBucket); nodes sharing a bus must agree on it.
	PairBucket string
	// Replicas of the bucket when this bus makes it; default 3 if the
	// NATS server knows of 3 or more in its cluster, else 1.
	Replicas int
	// TTL is how long a connection's state outlives its node's last
	// heartbeat (beats every TTL/3); default DefaultTTL, at least 1 s.
	TTL time.Duration
	// Name names this node to the NATS server (monitoring).
	Name string
	// Logger gets the bus's logs; default slog.Default().
	Logger *slog.Logger
}

// queueLen bounds the deliveries received and not yet dispatched; the
// dispatcher only hands them to non-blocking callbacks.
const queueLen = 1 << 16

// opTimeout bounds one NATS round trip of SetState when the caller's
// context allows more.
const opTimeout = 5 * time.Second

// Bus is a hub.Bus over NATS. Open it; Close it.
type Bus struct {
	cfg  Config
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream
	node string // this node's id in state values
	safe string // redacted URL for messages

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	msgs   chan *nats.Msg
	resync chan struct{}
	// seen is the highest bucket revision the watcher has applied; the
	// heartbeat compares it with its own acknowledged writes to notice a
	// watch that stopped (see heartbeat).
	seen atomic.Uint64

	smu  sync.Mutex
	subs map[string]*userSub // by user

	pairs  jetstream.KeyValue
	pmu    sync.Mutex
	claims map[string]uint64 // this node's pair ids, by the revision it wrote

	cmu   sync.Mutex
	conns map[string]*connEntry // this node's connections by key

	mu       sync.Mutex
	synced   bool                            // the mirror follows the bucket
	mirror   map[string]map[string]connState // user -> conn -> state
	waiters  map[string]chan transition      // by SetState id
	seq      uint64
	watchers map[*func(hub.StateChange)]struct{}
}

type userSub struct {
	sub *nats.Subscription
	fns map[*func(hub.Delivery)]struct{}
}

type connEntry struct {
	mu            sync.Mutex
	key           string
	device, state string
	gone          bool
}

type connState struct{ device, state string }

type transition struct{ before, after string }

// stateValue is a key's value in the bucket.
type stateValue struct {
	Device string `json:"d"`
	State  string `json:"s"`
	Node   string `json:"n"`
	// Op is opSet (SetState, whose ID its node waits for) or opBeat
	// (the heartbeat).
	Op string `json:"o"`
	ID string `json:"i,omitempty"`
}

const (
	opSet  = "set"
	opBeat = "beat"
)

// wireDelivery is a Delivery on the wire.
type wireDelivery struct {
	User   string   `json:"u"`
	Msg    []byte   `json:"m,omitempty"`
	Conn   string   `json:"c,omitempty"`
	Device string   `json:"d,omitempty"`
	Except []string `json:"e,omitempty"`
	Close  bool     `json:"x,omitempty"`
}

// Open connects to NATS, opens (or makes) the bucket and loads it. An
// unreachable server is an error here; later outages are waited out.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	if cfg.PairBucket == "" {
		cfg.PairBucket = DefaultPairBucket
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second {
		// The server refuses per-message TTLs under a second.
		cfg.TTL = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Bus{
		cfg:      cfg,
		log:      cfg.Logger,
		node:     strconv.FormatUint(uint64(time.Now().UnixNano()), 36) + "-" + nats.NewInbox()[len(nats.InboxPrefix):],
		safe:     redact(cfg.URL),
		msgs:     make(chan *nats.Msg, queueLen),
		resync:   make(chan struct{}, 1),
		subs:     make(map[string]*userSub),
		conns:    make(map[string]*connEntry),
		mirror:   make(map[string]map[string]connState),
		waiters:  make(map[string]chan transition),
		watchers: make(map[*func(hub.StateChange)]struct{}),
		claims:   make(map[string]uint64),
	}
	nc, err := nats.Connect(cfg.URL,
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.Timeout(5*time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			b.mu.Lock()
			b.synced = false
			b.mu.Unlock()
			if nc.IsClosed() {
				return // Close
			}
			b.log.Warn("messenger bus: NATS connection lost: refusing clients until it is back", "url", b.safe, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("messenger bus: NATS connection back", "url", nc.ConnectedUrlRedacted())
			b.requestResync()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.log.Warn("messenger bus: NATS", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("messenger bus: cannot reach NATS at %s: %w (start nats-server 2.11 or later with JetStream, or fix --bus)", b.safe, err)
	}
	b.nc = nc
	if b.cfg.Replicas <= 0 {
		b.cfg.Replicas = 1
		if len(nc.Servers()) >= 3 {
			b.cfg.Replicas = 3
		}
	}
	b.js, err = jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("messenger bus: %w", err)
	}
	for {
		_, err := b.bucket(ctx)
		if err == nil {
			b.pairs, err = b.pairBucket(ctx)
		}
		if err == nil {
			break
		}
		if !transient(err) || ctx.Err() != nil {
			nc.Close()
			return nil, err
		}
		// A cluster just started may not know its peers yet.
		b.log.Info("messenger bus: NATS not ready for the presence bucket yet; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	loaded := make(chan struct{})
	b.wg.Add(3)
	go b.dispatch()
	go b.watch(loaded)
	go b.heartbeat()
	select {
	case <-loaded:
	case <-ctx.Done():
		b.Close()
		return nil, fmt.Errorf("messenger bus: loading the states from NATS at %s: %w", b.safe, ctx.Err())
	}
	return b, nil
}

// transient reports whether err may pass by itself: a cluster without
// enough peers for the bucket's replicas yet, a timeout.
func transient(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) && api.ErrorCode == 10005 { // no suitable peers for placement
		return true
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// redact hides a password in a NATS URL (list).
func redact(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// bucket opens the states' bucket, making it if it does not exist.
func (b *Bus) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := b.js.KeyValue(ctx, b.cfg.Bucket)
	if err == nil {
		b.raiseReplicas(ctx, kv)
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("messenger bus: opening the presence bucket on NATS at %s: %w (is JetStream on? run nats-server with -js)", b.safe, err)
	}
	kv, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.cfg.Bucket,
		Description: "assist messenger presence: one key per connection, expiring unless its node renews it",
		History:     1,
		Replicas:    b.cfg.Replicas,
		// Expiries leave markers watchers see; a node's watcher that
		// missed one reloads the bucket when it reconnects.
		LimitMarkerTTL: max(b.cfg.TTL, time.Minute),
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return b.js.KeyValue(ctx, b.cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("messenger bus: making the presence bucket on NATS at %s: %w (per-key TTLs need nats-server 2.11 or later with JetStream)", b.safe, err)
	}
	return kv, nil
}

// pairBucket opens (or makes) the bucket of claimed pair ids: each key
// lives as long as the claim's TTL, and a released one leaves a marker
// for a second.
func (b *Bus) pairBucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := b.js.KeyValue(ctx, b.cfg.PairBucket)
	if err == nil {
		b.raiseReplicas(ctx, kv)
		return kv, nil
	}
	// Created, never updated: a node that knows fewer NATS servers must
	// not lower the replicas others gave it.
	kv, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         b.cfg.PairBucket,
		Description:    "assist messenger: the node holding each open pairing's id",
		History:        1,
		Replicas:       b.cfg.Replicas,
		LimitMarkerTTL: time.Second,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return b.js.KeyValue(ctx, b.cfg.PairBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("messenger bus: the pairings bucket on NATS at %s: %w (per-key TTLs need nats-server 2.11 or later with JetStream)", b.safe, err)
	}
	return kv, nil
}

// raiseReplicas gives an existing bucket the configured replicas if it has
// fewer (made while NATS was one server, now a cluster), so it outlives
// the loss of a server; it never lowers them. A failure only costs that
// resilience, so it is logged.
func (b *Bus) raiseReplicas(ctx context.Context, kv jetstream.KeyValue) {
	st, err := kv.Status(ctx)
	if err != nil {
		b.log.Warn("messenger bus: reading a bucket's replicas", "bucket", kv.Bucket(), "err", err)
		return
	}
	kvs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || kvs.StreamInfo().Config.Replicas >= b.cfg.Replicas {
		return
	}
	cfg := kvs.StreamInfo().Config
	from := cfg.Replicas
	cfg.Replicas = b.cfg.Replicas
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		b.log.Warn("messenger bus: cannot raise a bucket's replicas", "bucket", kv.Bucket(), "from", from, "to", cfg.Replicas, "err", err)
		return
	}
	b.log.Info("messenger bus: raised a bucket's replicas", "bucket", kv.Bucket(), "from", from, "to", cfg.Replicas)
}

// URL is the NATS server the bus is connected to, without credentials.
func (b *Bus) URL() string { return b.nc.ConnectedUrlRedacted() }

// Ready implements hub.Bus.
func (b *Bus) Ready(context.Context) error {
	if !b.nc.IsConnected() {
		return fmt.Errorf("NATS at %s: %w: reconnecting", b.safe, hub.ErrUnavailable)
	}
	b.mu.Lock()
	synced := b.synced
	b.mu.Unlock()
	if !synced {
		return fmt.Errorf("NATS at %s: %w: loading the presence states", b.safe, hub.ErrUnavailable)
	}
	return nil
}

func (b *Bus) connected() error {
	if !b.nc.IsConnected() {
		return fmt.Errorf("NATS at %s: %w: reconnecting", b.safe, hub.ErrUnavailable)
	}
	return nil
}

// Close implements hub.Bus: it stops the heartbeat and the watcher and
// closes the NATS connection; the states it kept expire.
func (b *Bus) Close() error {
	if b.cancel != nil {
		b.cancel()
	}
	b.wg.Wait()
	b.nc.Close()
	return nil
}

// EncodeToken makes s a single NATS subject token and key-value key
// token: a-z 0-9 _ - are kept, every other byte is =XX (upper-case hex).
func EncodeToken(s string) string {
	const hexd = "0123456789ABCDEF"
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			out.WriteByte(c)
			continue
		}
		out.WriteByte('=')
		out.WriteByte(hexd[c>>4])
		out.WriteByte(hexd[c&15])
	}
	return out.String()
}

// DecodeToken undoes EncodeToken; it refuses any other spelling.
func DecodeToken(t string) (string, error) {
	var out strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-':
			out.WriteByte(c)
		case c == '=' && i+2 < len(t):
			v, err := strconv.ParseUint(t[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("bad escape in %q", t)
			}
			out.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf("bad byte %q in %q", c, t)
		}
	}
	if EncodeToken(out.String()) != t {
		// One spelling per name, so two keys never hold one connection.
		return "", fmt.Errorf("%q is not in canonical form", t)
	}
	return out.String(), nil
}

func (b *Bus) subject(user string) string { return b.cfg.Subject + ".u." + EncodeToken(user) }

func stateKey(user, conn string) string { return EncodeToken(user) + "." + EncodeToken(conn) }

func parseKey(k string) (user, conn string, err error) {
	u, c, ok := strings.Cut(k, ".")
	if !ok {
		return "", "", fmt.Errorf("key %q is not user.conn", k)
	}
	if user, err = DecodeToken(u); err != nil {
		return "", "", err
	}
	if conn, err = DecodeToken(c); err != nil {
		return "", "", err
	}
	return user, conn, nil
}

// Subscribe implements hub.Bus: one NATS subscription per user on this
// node, whatever the number of callbacks.
func (b *Bus) Subscribe(user string, deliver func(hub.Delivery)) (func(), error) {
	if err := b.connected(); err != nil {
		return nil, err
	}
	f := &deliver
	b.smu.Lock()
	s := b.subs[user]
	fresh := s == nil
	if fresh {
		sub, err := b.nc.ChanSubscribe(b.subject(user), b.msgs)
		if err != nil {
			b.smu.Unlock()
			return nil, fmt.Errorf("messenger bus: subscribe: %w", err)
		}
		s = &userSub{sub: sub, fns: make(map[*func(hub.Delivery)]struct{})}
		b.subs[user] = s
	}
	s.fns[f] = struct{}{}
	b.smu.Unlock()
	cancel := func() {
		b.smu.Lock()
		defer b.smu.Unlock()
		if s := b.subs[user]; s != nil {
			delete(s.fns, f)
			if len(s.fns) == 0 {
				delete(b.subs, user)
				if err := s.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
					b.log.Debug("messenger bus: unsubscribe", "err", err)
				}
			}
		}
	}
	if fresh {
		// The server knows the interest once it answers a ping: from
		// then on, deliveries published through it arrive.
		if err := b.nc.FlushTimeout(opTimeout); err != nil {
			cancel()
			return nil, fmt.Errorf("messenger bus: subscribe on NATS at %s: %w: %w", b.safe, hub.ErrUnavailable, err)
		}
	}
	return cancel, nil
}

// Publish implements hub.Bus. While NATS is away it fails rather than
// queue, so the caller knows the delivery did not go.
func (b *Bus) Publish(_ context.Context, d hub.Delivery) error {
	if err := b.connected(); err != nil {
		return err
	}
	data, err := json.Marshal(wireDelivery{User: d.User, Msg: d.Msg, Conn: d.Conn, Device: d.Device, Except: d.Except, Close: d.Close})
	if err != nil {
		return fmt.Errorf("messenger bus: %w", err)
	}
	if err := b.nc.Publish(b.subject(d.User), data); err != nil {
		return fmt.Errorf("messenger bus: publish: %w", err)
	}
	return nil
}

// dispatch hands received deliveries to their user's callbacks, in the
// order NATS delivered them, until Close.
func (b *Bus) dispatch() {
	defer b.wg.Done()
	for {
		var m *nats.Msg
		select {
		case <-b.ctx.Done():
			return
		case m = <-b.msgs:
		}
		var w wireDelivery
		if err := json.Unmarshal(m.Data, &w); err != nil {
			b.log.Warn("messenger bus: undecodable delivery", "subject", m.Subject, "err", err)
			continue
		}
		if m.Subject != b.subject(w.User) {
			b.log.Warn("messenger bus: delivery on another user's subject", "subject", m.Subject)
			continue
		}
		b.smu.Lock()
		var fns []func(hub.Delivery)
		if s := b.subs[w.User]; s != nil {
			for f := range s.fns {
				fns = append(fns, *f)
			}
		}
		b.smu.Unlock()
		d := hub.Delivery{User: w.User, Msg: w.Msg, Conn: w.Conn, Device: w.Device, Except: w.Except, Close: w.Close}
		for _, f := range fns {
			f(d)
		}
	}
}

// SetState implements hub.Bus. It returns once this node's mirror has
// the write, with the user's state after it as both before and after:
// the change is reported by WatchStates on every node (see the package
// doc).
func (b *Bus) SetState(ctx context.Context, user, device, conn, state string) (string, string, error) {
	key := stateKey(user, conn)
	offline := state == messenger.StateOffline
	if offline {
		// Whatever happens to the write below, the heartbeat stops
		// renewing the connection: its state expires at worst.
		b.cmu.Lock()
		if e := b.conns[key]; e != nil {
			delete(b.conns, key)
			e.mu.Lock()
			e.gone = true
			e.mu.Unlock()
		}
		b.cmu.Unlock()
	}
	if err := b.Ready(ctx); err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b.cmu.Lock()
	e := b.conns[key]
	if e == nil {
		e = &connEntry{key: key, gone: offline}
		if !offline {
			b.conns[key] = e
		}
	}
	b.cmu.Unlock()

	b.mu.Lock()
	b.seq++
	id := strconv.FormatUint(b.seq, 36)
	w := make(chan transition, 1)
	b.waiters[id] = w
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.waiters, id)
		b.mu.Unlock()
	}()

	// Under the entry's lock, so a heartbeat never writes an older state
	// after this one: NATS keeps one connection's publishes in order.
	e.mu.Lock()
	err := b.put(ctx, key, stateValue{Device: device, State: state, Node: b.node, Op: opSet, ID: id})
	if err == nil {
		e.device, e.state = device, state
	}
	e.mu.Unlock()
	if err != nil {
		return "", "", err
	}
	select {
	case t := <-w:
		return t.after, t.after, nil
	case <-ctx.Done():
		return "", "", fmt.Errorf("messenger bus: waiting for the presence change to come back from NATS at %s: %w: %w", b.safe, hub.ErrUnavailable, ctx.Err())
	}
}

// put writes a state with the TTL and waits for the server's ack.
func (b *Bus) put(ctx context.Context, key string, v stateValue) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("messenger bus: %w", err)
	}
	m := &nats.Msg{Subject: "$KV." + b.cfg.Bucket + "." + key, Data: data}
	if _, err := b.js.PublishMsg(ctx, m, jetstream.WithMsgTTL(b.cfg.TTL)); err != nil {
		return fmt.Errorf("messenger bus: writing a presence state on NATS at %s: %w: %w", b.safe, hub.ErrUnavailable, err)
	}
	return nil
}

// heartbeat rewrites this node's states every TTL/3 until Close, so they
// outlive it by at most TTL.
//
// It also notices a watch that stopped while the connection stayed up: a
// NATS cluster that lost the server holding the watcher's consumer (the
// bucket's leader) sends it nothing more, and nats.go notices only after
// two missed 5-second idle heartbeats, and more while it retries, so this
// node's contacts would hear nothing for 10-15 s. A beat acknowledged two
// rounds ago (TTL*2/3) that the watcher still has not applied means it
// stopped: the watch is started over (and the bucket reloaded) at once.
func (b *Bus) heartbeat() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.TTL / 3)
	defer t.Stop()
	var acked [2]uint64 // the highest revision acknowledged one and two rounds ago
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		if !b.nc.IsConnected() {
			continue
		}
		b.cmu.Lock()
		es := make([]*connEntry, 0, len(b.conns))
		for _, e := range b.conns {
			es = append(es, e)
		}
		b.cmu.Unlock()
		failed := 0
		var futures []jetstream.PubAckFuture
		for _, e := range es {
			e.mu.Lock()
			// An entry whose first write has not succeeded has no state
			// yet: a beat would put one ("") that the hub never set.
			if !e.gone && e.state != "" {
				data, _ := json.Marshal(stateValue{Device: e.device, State: e.state, Node: b.node, Op: opBeat})
				m := &nats.Msg{Subject: "$KV." + b.cfg.Bucket + "." + e.key, Data: data}
				if f, err := b.js.PublishMsgAsync(m, jetstream.WithMsgTTL(b.cfg.TTL)); err != nil {
					failed++
				} else {
					futures = append(futures, f)
				}
			}
			e.mu.Unlock()
		}
		select {
		case <-b.js.PublishAsyncComplete():
		case <-time.After(b.cfg.TTL / 3):
			b.log.Warn("messenger bus: heartbeat not acknowledged in time", "url", b.safe)
		case <-b.ctx.Done():
			return
		}
		if failed > 0 {
			b.log.Warn("messenger bus: heartbeat failed for some connections", "failed", failed, "url", b.safe)
		}
		var top uint64
		for _, f := range futures {
			select {
			case a := <-f.Ok():
				top = max(top, a.Sequence)
			default:
			}
		}
		b.mu.Lock()
		synced := b.synced
		b.mu.Unlock()
		if synced && acked[1] > 0 && b.seen.Load() < acked[1] {
			b.log.Warn("messenger bus: the presence watch stopped (a NATS server lost?); watching again", "url", b.safe,
				"acknowledged", acked[1], "seen", b.seen.Load())
			b.requestResync()
			acked = [2]uint64{}
			continue
		}
		acked[1], acked[0] = acked[0], top
	}
}

// saw records that the watcher applied e.
func (b *Bus) saw(e jetstream.KeyValueEntry) {
	for {
		old := b.seen.Load()
		if e.Revision() <= old || b.seen.CompareAndSwap(old, e.Revision()) {
			return
		}
	}
}

func (b *Bus) requestResync() {
	select {
	case b.resync <- struct{}{}:
	default:
	}
}

// watch keeps the mirror following the bucket until Close: it loads the
// bucket, reports the differences from what it had, then applies each
// update; it starts over after a reconnect (an expiry marker may have
// come and gone meanwhile) or a failure.
func (b *Bus) watch(loaded chan struct{}) {
	defer b.wg.Done()
	for {
		err := b.watchOnce(loaded)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			b.log.Warn("messenger bus: watching the presence bucket", "url", b.safe, "err", err)
		}
		select {
		case <-b.ctx.Done():
			return
		case <-b.resync:
		case <-time.After(time.Second):
		}
	}
}

func (b *Bus) watchOnce(loaded chan struct{}) error {
	b.mu.Lock()
	b.synced = false
	b.mu.Unlock()
	// Counted afresh from the snapshot (whose newest entry is the
	// bucket's last revision): a bucket made again starts lower.
	b.seen.Store(0)
	// A resync asked before this point is this very reload.
	select {
	case <-b.resync:
	default:
	}
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	kv, err := b.bucket(ctx)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Stop()
	snap := make(map[string]map[string]connState)
	mine := make(map[string]string) // SetState ids of this node in the bucket -> user
	for {
		e, ok := <-w.Updates()
		if !ok {
			return errors.New("the watch ended while loading")
		}
		if e == nil {
			break
		}
		b.saw(e)
		if user, v, put, ok := applyEntry(snap, e, b.log); ok && put && v.Op == opSet && v.Node == b.node {
			mine[v.ID] = user
		}
	}
	b.load(snap, mine)
	select {
	case <-loaded:
	default:
		close(loaded)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.resync:
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the watch ended")
			}
			if e != nil {
				b.saw(e)
				b.apply(e)
			}
		}
	}
}

// applyEntry applies one bucket entry to m and returns the user it
// concerns, the value if it was a put, and whether it was usable.
func applyEntry(m map[string]map[string]connState, e jetstream.KeyValueEntry, log *slog.Logger) (user string, v stateValue, put, ok bool) {
	user, conn, err := parseKey(e.Key())
	if err != nil {
		log.Warn("messenger bus: foreign key in the presence bucket", "key", e.Key(), "err", err)
		return "", v, false, false
	}
	put = e.Operation() == jetstream.KeyValuePut
	if put {
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			log.Warn("messenger bus: undecodable presence state", "key", e.Key(), "err", err)
			return "", v, false, false
		}
	}
	if put && v.State != messenger.StateOffline {
		cs := m[user]
		if cs == nil {
			cs = make(map[string]connState)
			m[user] = cs
		}
		cs[conn] = connState{device: v.Device, state: v.State}
	} else if cs := m[user]; cs != nil {
		delete(cs, conn)
		if len(cs) == 0 {
			delete(m, user)
		}
	}
	return user, v, put, true
}

func aggregate(cs map[string]connState) string {
	ss := make([]string, 0, len(cs))
	for _, c := range cs {
		ss = append(ss, c.state)
	}
	return hub.Aggregate(ss)
}

// apply applies one update to the mirror and tells whoever must hear of
// the change it makes.
func (b *Bus) apply(e jetstream.KeyValueEntry) {
	user, _, err := parseKey(e.Key())
	if err != nil {
		b.log.Warn("messenger bus: foreign key in the presence bucket", "key", e.Key(), "err", err)
		return
	}
	b.mu.Lock()
	before := aggregate(b.mirror[user])
	_, v, put, ok := applyEntry(b.mirror, e, b.log)
	if !ok {
		b.mu.Unlock()
		return
	}
	after := aggregate(b.mirror[user])
	var w chan transition
	if put && v.Op == opSet && v.Node == b.node {
		w = b.waiters[v.ID]
		delete(b.waiters, v.ID)
	}
	fns := b.watcherFuncs(before != after)
	b.mu.Unlock()
	if w != nil {
		w <- transition{before, after}
	}
	for _, f := range fns {
		f(hub.StateChange{User: user, Before: before, After: after})
	}
}

// watcherFuncs returns the WatchStates callbacks if want; under b.mu.
func (b *Bus) watcherFuncs(want bool) []func(hub.StateChange) {
	if !want {
		return nil
	}
	fns := make([]func(hub.StateChange), 0, len(b.watchers))
	for f := range b.watchers {
		fns = append(fns, *f)
	}
	return fns
}

// load replaces the mirror with a fresh copy of the bucket and reports
// every user whose state differs: changes made while this node was not
// watching.
//
// A SetState whose write is in the snapshot (mine: its id -> user) gets
// its user's change from the old mirror to the new.
func (b *Bus) load(snap map[string]map[string]connState, mine map[string]string) {
	b.mu.Lock()
	for id, user := range mine {
		if w := b.waiters[id]; w != nil {
			delete(b.waiters, id)
			w <- transition{aggregate(b.mirror[user]), aggregate(snap[user])}
		}
	}
	var changes []hub.StateChange
	for user, cs := range b.mirror {
		if before, after := aggregate(cs), aggregate(snap[user]); before != after {
			changes = append(changes, hub.StateChange{User: user, Before: before, After: after})
		}
	}
	for user, cs := range snap {
		if _, had := b.mirror[user]; !had {
			changes = append(changes, hub.StateChange{User: user, Before: messenger.StateOffline, After: aggregate(cs)})
		}
	}
	b.mirror = snap
	b.synced = true
	fns := b.watcherFuncs(len(changes) > 0)
	b.mu.Unlock()
	for _, c := range changes {
		for _, f := range fns {
			f(c)
		}
	}
}

// States implements hub.Bus, from this node's mirror of the bucket.
func (b *Bus) States(ctx context.Context, users []string) (map[string]string, error) {
	if err := b.Ready(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]string, len(users))
	for _, u := range users {
		out[u] = aggregate(b.mirror[u])
	}
	return out, nil
}

// OnlineDevices implements hub.Bus, from this node's mirror.
func (b *Bus) OnlineDevices(ctx context.Context, user string) (map[string]bool, error) {
	if err := b.Ready(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]bool)
	for _, c := range b.mirror[user] {
		out[c.device] = true
	}
	return out, nil
}

// WatchStates implements hub.Bus. f is called on the watcher's goroutine.
func (b *Bus) WatchStates(f func(hub.StateChange)) func() {
	p := &f
	b.mu.Lock()
	b.watchers[p] = struct{}{}
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.watchers, p)
		b.mu.Unlock()
	}
}

// Node implements hub.Nodes.
func (b *Bus) Node() string { return b.node }

func (b *Bus) nodeSubject(node string) string { return b.cfg.Subject + ".n." + EncodeToken(node) }

// ClaimPair implements hub.Nodes: a create-only key with a TTL.
func (b *Bus) ClaimPair(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if err := b.connected(); err != nil {
		return false, err
	}
	rev, err := b.pairs.Create(ctx, EncodeToken(id), []byte(b.node), jetstream.KeyTTL(max(ttl, time.Second)))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("messenger bus: claiming a pair id on NATS at %s: %w: %w", b.safe, hub.ErrUnavailable, err)
	}
	b.pmu.Lock()
	b.claims[id] = rev
	b.pmu.Unlock()
	return true, nil
}

// ReleasePair implements hub.Nodes: the key is purged if it is still the
// one this node wrote.
func (b *Bus) ReleasePair(ctx context.Context, id string) error {
	b.pmu.Lock()
	rev, ok := b.claims[id]
	delete(b.claims, id)
	b.pmu.Unlock()
	if !ok {
		return nil
	}
	err := b.pairs.Purge(ctx, EncodeToken(id), jetstream.LastRevision(rev), jetstream.PurgeTTL(time.Second))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil // expired, and another node's now
	}
	if err != nil {
		return fmt.Errorf("messenger bus: releasing a pair id: %w", err)
	}
	return nil
}

// PairHome implements hub.Nodes.
func (b *Bus) PairHome(ctx context.Context, id string) (string, error) {
	if err := b.connected(); err != nil {
		return "", err
	}
	e, err := b.pairs.Get(ctx, EncodeToken(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("messenger bus: looking a pair id up on NATS at %s: %w: %w", b.safe, hub.ErrUnavailable, err)
	}
	return string(e.Value()), nil
}

// SendNode implements hub.Nodes: one core NATS message.
func (b *Bus) SendNode(node string, msg []byte) error {
	if err := b.connected(); err != nil {
		return err
	}
	if err := b.nc.Publish(b.nodeSubject(node), msg); err != nil {
		return fmt.Errorf("messenger bus: to node %s: %w", node, err)
	}
	return nil
}

// AskNode implements hub.Nodes: a core NATS request.
func (b *Bus) AskNode(ctx context.Context, node string, msg []byte) ([]byte, error) {
	if err := b.connected(); err != nil {
		return nil, err
	}
	r, err := b.nc.RequestWithContext(ctx, b.nodeSubject(node), msg)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("messenger bus: node %s: %w", node, hub.ErrNodeGone)
	}
	if err != nil {
		return nil, fmt.Errorf("messenger bus: asking node %s: %w", node, err)
	}
	return r.Data, nil
}

// ListenNodes implements hub.Nodes: NATS calls a subscription's handler
// on one goroutine, in order. It returns once the server has the
// subscription.
func (b *Bus) ListenNodes(h func([]byte) []byte) (func(), error) {
	var mu sync.Mutex
	stopped := false
	sub, err := b.nc.Subscribe(b.nodeSubject(b.node), func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		r := h(m.Data)
		if m.Reply != "" && r != nil {
			if err := m.Respond(r); err != nil {
				b.log.Debug("messenger bus: answering a node", "err", err)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("messenger bus: listening to the other nodes: %w", err)
	}
	// A burst of pairing messages must not be dropped as a slow
	// consumer's while a handler waits on the store.
	_ = sub.SetPendingLimits(64<<10, 64<<20)
	stop := func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.log.Debug("messenger bus: unsubscribe", "err", err)
		}
		// The server knows at once: asks find this node gone.
		_ = b.nc.FlushTimeout(time.Second)
	}
	if err := b.nc.FlushTimeout(opTimeout); err != nil {
		stop()
		return nil, fmt.Errorf("messenger bus: listening to the other nodes on NATS at %s: %w: %w", b.safe, hub.ErrUnavailable, err)
	}
	return stop, nil
}

var (
	_ hub.Bus   = (*Bus)(nil)
	_ hub.Nodes = (*Bus)(nil)
)
