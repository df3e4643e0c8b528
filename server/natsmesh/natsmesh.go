// Package natsmesh joins rendezvous servers ("nodes") over NATS: it
// implements server.Mesh. The directory of invitation homes is a
// JetStream key-value bucket whose entries expire TTL after their last
// write, so the claims of a node that died free themselves; nodes talk on
// core NATS subjects, one per node ("assist.signal.NODE").
package natsmesh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket is the key-value bucket of invitation homes.
const DefaultBucket = "assist_signal_homes"

// subjectPrefix starts every node's subject; allSubject reaches every
// node.
const (
	subjectPrefix = "assist.signal."
	allSubject    = "assist.signal-all"
)

// Config configures a Mesh.
type Config struct {
	// Node is this node's name: 1 to 64 characters of [A-Za-z0-9_-],
	// unique among the nodes.
	Node string
	// Bucket is the key-value bucket of homes; default DefaultBucket.
	Bucket string
	// TTL is how long a claim lives without renewal; default 30 s. The
	// server renews every TTL/3.
	TTL time.Duration
	// Replicas of the buckets in a NATS cluster; default (0) 3 if the
	// NATS connection knows of 3 or more servers (listed in the URL or
	// announced by the cluster), else 1. A bucket that already has more
	// replicas keeps them; one with fewer is raised, so a set-up that
	// grows from one NATS server to a cluster needs no manual step.
	Replicas int
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Mesh is a server.Mesh over one NATS connection.
type Mesh struct {
	cfg Config
	nc  *nats.Conn
	own bool // nc is ours to close
	kv  jetstream.KeyValue
	log *slog.Logger

	mu     sync.Mutex
	claims map[string]*claim // this node's, by id
}

// claim is one of this node's claims: the value it wrote and its
// revision (0: not written yet).
type claim struct {
	val []byte
	rev uint64
}

// entry is a claim's value in the bucket.
type entry struct {
	Node  string `json:"node"`
	Owner []byte `json:"owner,omitempty"`
}

// ValidNode reports whether name can name a node.
func ValidNode(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("node name %q: want 1 to 64 characters", name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("node name %q: only letters, digits, '-' and '_' may be used", name)
		}
	}
	return nil
}

// Dial connects to the NATS server(s) at url and returns a Mesh that
// closes the connection when closed. nats.go reconnects by itself.
func Dial(ctx context.Context, url string, cfg Config, opts ...nats.Option) (*Mesh, error) {
	opts = append([]nats.Option{nats.Name("assist-serve " + cfg.Node), nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("natsmesh: connecting to NATS at %s: %w", url, err)
	}
	m, err := New(ctx, nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	m.own = true
	return m, nil
}

// New returns a Mesh over nc (which stays the caller's) and makes its
// bucket if it does not exist.
func New(ctx context.Context, nc *nats.Conn, cfg Config) (*Mesh, error) {
	if err := ValidNode(cfg.Node); err != nil {
		return nil, fmt.Errorf("natsmesh: %w", err)
	}
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Second
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = AutoReplicas(nc)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsmesh: %w", err)
	}
	kv, err := keyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, Description: "assist serve: the node each invitation is registered on",
		TTL: cfg.TTL, History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	}, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("natsmesh: the key-value bucket %s (is JetStream enabled on the NATS server?): %w", cfg.Bucket, err)
	}
	return &Mesh{cfg: cfg, nc: nc, kv: kv, log: cfg.Logger, claims: make(map[string]*claim)}, nil
}

// AutoReplicas is the replica count for a bucket nobody configured: 3
// when nc knows of 3 or more NATS servers (a cluster, whose buckets must
// outlive the loss of one server), else 1 (one server cannot hold more).
func AutoReplicas(nc *nats.Conn) int {
	if len(nc.Servers()) >= 3 {
		return 3
	}
	return 1
}

// keyValue makes or updates the bucket of cfg, never lowering the
// replicas it already has (a node that knows fewer servers must not
// shrink what the others made), and waits out a cluster that cannot
// place the replicas yet (just started, or a server still joining).
func keyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, log *slog.Logger) (jetstream.KeyValue, error) {
	if kv, err := js.KeyValue(ctx, cfg.Bucket); err == nil {
		if st, err := kv.Status(ctx); err == nil {
			if kvs, ok := st.(*jetstream.KeyValueBucketStatus); ok && kvs.StreamInfo().Config.Replicas > cfg.Replicas {
				cfg.Replicas = kvs.StreamInfo().Config.Replicas
			}
		}
	}
	for {
		kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
		var api *jetstream.APIError
		// 10005: no suitable peers for placement; 10023: insufficient
		// resources (a peer not caught up yet).
		if err == nil || !errors.As(err, &api) || api.ErrorCode != 10005 && api.ErrorCode != 10023 {
			return kv, err
		}
		log.Info("natsmesh: NATS cannot place the bucket's replicas yet; retrying", "bucket", cfg.Bucket, "replicas", cfg.Replicas, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waiting for NATS to place %d replicas: %w)", err, cfg.Replicas, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Close closes the NATS connection if Dial made it.
func (m *Mesh) Close() {
	if m.own {
		m.nc.Close()
	}
}

// Node implements server.Mesh.
func (m *Mesh) Node() string { return m.cfg.Node }

// Every implements server.Mesh: a third of the claims' lifetime.
func (m *Mesh) Every() time.Duration { return m.cfg.TTL / 3 }

// Ready implements server.Mesh: the NATS connection is up.
func (m *Mesh) Ready(context.Context) error {
	if st := m.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("NATS is not connected (%v)", st)
	}
	return nil
}

// Claim implements server.Mesh.
func (m *Mesh) Claim(ctx context.Context, id string, owner []byte) (string, error) {
	val, err := json.Marshal(entry{Node: m.cfg.Node, Owner: owner})
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	// Remembered before it is written: if NATS cannot be reached now,
	// the renewal writes it.
	c := &claim{val: val}
	m.claims[id] = c
	m.mu.Unlock()
	holder, rev, err := m.take(ctx, id, val, owner, true)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claims[id] != c {
		return holder, err
	}
	if holder != "" {
		delete(m.claims, id)
	}
	if err == nil && holder == "" {
		c.rev = rev
	}
	return holder, err
}

// take writes val under id unless another node holds id, whom it returns.
// With sameOwner, another node's claim for the same non-nil owner is
// taken over (the agent came back here); a renewal never does, or two
// nodes would take it from each other in turn.
func (m *Mesh) take(ctx context.Context, id string, val, owner []byte, sameOwner bool) (holder string, rev uint64, err error) {
	for range 3 {
		rev, err = m.kv.Create(ctx, id, val)
		if err == nil {
			return "", rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", 0, fmt.Errorf("natsmesh: claim: %w", err)
		}
		e, err := m.kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return "", 0, fmt.Errorf("natsmesh: claim: %w", err)
		}
		var cur entry
		if json.Unmarshal(e.Value(), &cur) != nil {
			cur = entry{}
		}
		// Our own stale claim, or the same agent back through this node.
		if cur.Node != m.cfg.Node && cur.Node != "" && (!sameOwner || owner == nil || !bytes.Equal(cur.Owner, owner)) {
			return cur.Node, 0, nil
		}
		rev, err = m.kv.Update(ctx, id, val, e.Revision())
		if err == nil {
			return "", rev, nil
		}
		// Changed under us: look again.
	}
	return "", 0, fmt.Errorf("natsmesh: claim %s: the directory keeps changing", id)
}

// Release implements server.Mesh.
func (m *Mesh) Release(ctx context.Context, id string) error {
	m.mu.Lock()
	c := m.claims[id]
	delete(m.claims, id)
	m.mu.Unlock()
	if c == nil || c.rev == 0 {
		return nil
	}
	err := m.kv.Delete(ctx, id, jetstream.LastRevision(c.rev))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return nil // another node's now
	}
	if err != nil {
		return fmt.Errorf("natsmesh: release: %w", err)
	}
	return nil
}

// Refresh implements server.Mesh. The server passes the ids of the
// novices it has, so an id it holds without a claim here is claimed.
func (m *Mesh) Refresh(ctx context.Context, ids []string) (lost []string, err error) {
	var errs []error
	for _, id := range ids {
		m.mu.Lock()
		c := m.claims[id]
		if c == nil {
			// The server still has the novice (a release raced a
			// registration again): claim it anew, without an owner.
			val, _ := json.Marshal(entry{Node: m.cfg.Node})
			c = &claim{val: val}
			m.claims[id] = c
		}
		m.mu.Unlock()
		var rev uint64
		var e error
		if c.rev != 0 {
			rev, e = m.kv.Update(ctx, id, c.val, c.rev)
		}
		holder := ""
		if c.rev == 0 || e != nil {
			// Expired (NATS was away), or never written: claim it again.
			holder, rev, e = m.take(ctx, id, c.val, nil, false)
		}
		if e != nil {
			errs = append(errs, e)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		m.mu.Lock()
		if m.claims[id] == c {
			if holder != "" {
				delete(m.claims, id)
			} else {
				c.rev = rev
			}
		}
		m.mu.Unlock()
		if holder != "" {
			lost = append(lost, id)
		}
	}
	return lost, errors.Join(errs...)
}

// Home implements server.Mesh.
func (m *Mesh) Home(ctx context.Context, id string) (string, error) {
	e, err := m.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("natsmesh: look-up: %w", err)
	}
	var cur entry
	if err := json.Unmarshal(e.Value(), &cur); err != nil {
		return "", fmt.Errorf("natsmesh: look-up: a malformed entry: %w", err)
	}
	return cur.Node, nil
}

// Send implements server.Mesh.
func (m *Mesh) Send(node string, msg []byte) error {
	if node == "" {
		return m.nc.Publish(allSubject, msg)
	}
	return m.nc.Publish(subjectPrefix+node, msg)
}

// Ask implements server.Mesh.
func (m *Mesh) Ask(ctx context.Context, node string, msg []byte) ([]byte, error) {
	subject := subjectPrefix + node
	if node == "" {
		subject = allSubject
	}
	r, err := m.nc.RequestWithContext(ctx, subject, msg)
	if err != nil {
		return nil, err
	}
	return r.Data, nil
}

// Listen implements server.Mesh: it returns once NATS has the
// subscription; stop returns once no call of h runs.
func (m *Mesh) Listen(h func([]byte) []byte) (stop func(), err error) {
	var mu sync.Mutex
	stopped := false
	handle := func(msg *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		r := h(msg.Data)
		if msg.Reply != "" && r != nil {
			if err := msg.Respond(r); err != nil {
				m.log.Debug("natsmesh: answering", "err", err)
			}
		}
	}
	var subs []*nats.Subscription
	stop = func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}
	for _, subject := range []string{subjectPrefix + m.cfg.Node, allSubject} {
		sub, err := m.nc.Subscribe(subject, handle)
		if err != nil {
			stop()
			return nil, fmt.Errorf("natsmesh: listen: %w", err)
		}
		// A node's messages are few and small, but a burst must not be
		// dropped as a slow consumer's.
		_ = sub.SetPendingLimits(64<<10, 64<<20)
		subs = append(subs, sub)
	}
	// Subscribed at the server, not only queued: messages sent to this
	// node from now on reach it.
	if err := m.nc.FlushTimeout(5 * time.Second); err != nil {
		m.log.Warn("natsmesh: listen: NATS did not confirm the subscription yet", "err", err)
	}
	return stop, nil
}

// AgreeBucket holds what every node must share, as hashes.
const AgreeBucket = "assist_cluster"

// Agree checks that every node of the mesh shares value under name (a
// certificate's fingerprint, a secret's hash; never a secret itself): the
// first node to start records it, and each later one must match. It
// returns an error saying what differs; what to do about it is the
// caller's to say.
func (m *Mesh) Agree(ctx context.Context, name, value string) error {
	js, err := jetstream.New(m.nc)
	if err != nil {
		return fmt.Errorf("natsmesh: %w", err)
	}
	kv, err := keyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: AgreeBucket, Description: "assist serve: what every node must share (hashes)",
		History: 1, Storage: jetstream.FileStorage, Replicas: m.cfg.Replicas,
	}, m.log)
	if err != nil {
		return fmt.Errorf("natsmesh: the key-value bucket %s: %w", AgreeBucket, err)
	}
	_, err = kv.Create(ctx, name, []byte(value))
	if err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
		return err
	}
	e, err := kv.Get(ctx, name)
	if err != nil {
		return fmt.Errorf("natsmesh: %s: %w", name, err)
	}
	if string(e.Value()) != value {
		return &DisagreeError{Name: name, Theirs: string(e.Value()), Ours: value}
	}
	return nil
}

// DisagreeError says that this node's value of Name differs from the
// other nodes'.
type DisagreeError struct{ Name, Theirs, Ours string }

func (e *DisagreeError) Error() string {
	return fmt.Sprintf("the other nodes have %s %s, this node %s", e.Name, e.Theirs, e.Ours)
}
