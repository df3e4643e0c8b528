package hub

import (
	"context"
	"errors"
	"sync"

	"github.com/assist-project/assist/messenger"
)

// Delivery is a message for the connections of one user, wherever they
// are connected.
type Delivery struct {
	User string
	// Msg is the encoded server message; nil with Close.
	Msg []byte
	// Conn, if set, limits the delivery to that connection; Device to
	// that device's connections. Except leaves connections out.
	Conn   string
	Device string
	Except []string
	// Close closes the matching connections after Msg.
	Close bool
}

// ErrUnavailable is wrapped by a Bus's errors while it cannot reach what
// carries it (a NATS server restarting): the hub tells clients the
// service is busy and to try again, and recovers when the bus does.
var ErrUnavailable = errors.New("the message bus is unavailable")

// StateChange is a change of a user's state (see Aggregate).
type StateChange struct {
	User, Before, After string
}

// Bus carries presence and deliveries between the connections of a
// server, or of several servers sharing one Store: connection ids are
// unique across them. The in-process MemBus serves one server; package
// natsbus publishes Deliveries on a NATS subject per user and keeps the
// states in a key-value bucket. Implementations must be safe for
// concurrent use and keep the order of one user's deliveries;
// bustest.Run (package messenger/hub/bustest) is the suite every
// implementation must pass.
//
// Who announces a change of a user's state: the hub whose SetState
// returned it publishes it to the user's contacts. A change no SetState
// returned (the states of a dead server's connections expired, or came
// back after the bus did) is reported by WatchStates to every hub, and
// each tells its own connections of the user's contacts.
type Bus interface {
	// Subscribe calls deliver with every Delivery published for user
	// from now until cancel is called. deliver must not block.
	Subscribe(user string, deliver func(Delivery)) (cancel func(), err error)
	// Publish hands d to the subscribers of d.User.
	Publish(ctx context.Context, d Delivery) error
	// SetState records the state of one connection of user's device;
	// messenger.StateOffline forgets the connection. It returns the
	// user's state (see Aggregate) before and after.
	SetState(ctx context.Context, user, device, conn, state string) (before, after string, err error)
	// States returns the states of users; "offline" for one with no
	// connection.
	States(ctx context.Context, users []string) (map[string]string, error)
	// OnlineDevices returns the ids of user's devices that have a
	// connection.
	OnlineDevices(ctx context.Context, user string) (map[string]bool, error)
	// WatchStates calls f, in order, with every change of a user's state
	// that no SetState of this bus returned (see Bus), until cancel is
	// called. f must not block.
	WatchStates(f func(StateChange)) (cancel func())
	// Ready returns nil if the bus can carry deliveries and states now,
	// else an error wrapping ErrUnavailable. It does not wait for the
	// network: the hub asks before every message.
	Ready(ctx context.Context) error
	// Close releases the bus. It does not forget its connections'
	// states: the hub sets them offline first when it closes, and a bus
	// shared by several servers lets a dead server's states expire.
	Close() error
}

// Aggregate is a user's state from its connections' states: busy beats
// online beats away; none is offline.
func Aggregate(states []string) string {
	best := messenger.StateOffline
	rank := map[string]int{messenger.StateOffline: 0, messenger.StateAway: 1, messenger.StateOnline: 2, messenger.StateBusy: 3}
	for _, s := range states {
		if rank[s] > rank[best] {
			best = s
		}
	}
	return best
}

// MemBus is the Bus of a single server: deliveries are function calls.
type MemBus struct {
	mu    sync.Mutex
	subs  map[string]map[*func(Delivery)]struct{}
	users map[string]*userState
}

type userState struct {
	conns map[string]connState // by connection id
}

type connState struct{ device, state string }

func (u *userState) aggregate() string {
	if u == nil {
		return messenger.StateOffline
	}
	ss := make([]string, 0, len(u.conns))
	for _, c := range u.conns {
		ss = append(ss, c.state)
	}
	return Aggregate(ss)
}

// NewMemBus returns an empty in-process bus.
func NewMemBus() *MemBus {
	return &MemBus{subs: make(map[string]map[*func(Delivery)]struct{}), users: make(map[string]*userState)}
}

// Subscribe implements Bus.
func (b *MemBus) Subscribe(user string, deliver func(Delivery)) (func(), error) {
	f := &deliver
	b.mu.Lock()
	m := b.subs[user]
	if m == nil {
		m = make(map[*func(Delivery)]struct{})
		b.subs[user] = m
	}
	m[f] = struct{}{}
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if m := b.subs[user]; m != nil {
			delete(m, f)
			if len(m) == 0 {
				delete(b.subs, user)
			}
		}
	}, nil
}

// Publish implements Bus. Subscribers are called with the bus unlocked,
// so they may publish in turn.
func (b *MemBus) Publish(_ context.Context, d Delivery) error {
	b.mu.Lock()
	fs := make([]func(Delivery), 0, len(b.subs[d.User]))
	for f := range b.subs[d.User] {
		fs = append(fs, *f)
	}
	b.mu.Unlock()
	for _, f := range fs {
		f(d)
	}
	return nil
}

// SetState implements Bus.
func (b *MemBus) SetState(_ context.Context, user, device, conn, state string) (string, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.users[user]
	before := u.aggregate()
	if state == messenger.StateOffline {
		if u != nil {
			delete(u.conns, conn)
			if len(u.conns) == 0 {
				delete(b.users, user)
				u = nil
			}
		}
	} else {
		if u == nil {
			u = &userState{conns: make(map[string]connState)}
			b.users[user] = u
		}
		u.conns[conn] = connState{device: device, state: state}
	}
	return before, u.aggregate(), nil
}

// States implements Bus.
func (b *MemBus) States(_ context.Context, users []string) (map[string]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]string, len(users))
	for _, u := range users {
		out[u] = b.users[u].aggregate()
	}
	return out, nil
}

// OnlineDevices implements Bus.
func (b *MemBus) OnlineDevices(_ context.Context, user string) (map[string]bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]bool)
	if u := b.users[user]; u != nil {
		for _, c := range u.conns {
			out[c.device] = true
		}
	}
	return out, nil
}

// WatchStates implements Bus. A MemBus's states change only by SetState,
// so f is never called.
func (b *MemBus) WatchStates(func(StateChange)) func() { return func() {} }

// Ready implements Bus: a MemBus is always ready.
func (b *MemBus) Ready(context.Context) error { return nil }

// Close implements Bus.
func (b *MemBus) Close() error { return nil }
