// Package ceremonies keeps the web app's begun sign-ins (a passkey's
// registration or sign-in, a company sign-in) in server memory until they
// are finished or expire. The table is bounded in all and per client
// address (an IPv4 address or an IPv6 /64, as internal/ratelimit counts
// them), so one client cannot fill it. Packages messenger/passkey and
// messenger/oidclogin both keep theirs here.
package ceremonies

import (
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"sync"
	"time"

	"github.com/assist-project/assist/internal/ratelimit"
)

// Limits bound a Table.
type Limits struct {
	// TTL is how long a begun ceremony may be finished.
	TTL time.Duration
	// Max bounds the live ceremonies of all clients, PerAddress those
	// of one client address.
	Max, PerAddress int
}

// Table holds live ceremonies of type C under random ids.
type Table[C any] struct {
	limits Limits
	now    func() time.Time

	mu    sync.Mutex
	live  map[string]entry[C]
	addrs map[netip.Prefix]int
}

type entry[C any] struct {
	c       C
	addr    netip.Prefix
	expires time.Time
}

// New returns an empty Table; now is its clock.
func New[C any](l Limits, now func() time.Time) *Table[C] {
	return &Table[C]{limits: l, now: now, live: map[string]entry[C]{}, addrs: map[netip.Prefix]int{}}
}

// Add keeps c, begun by the client at remote (an HTTP request's
// RemoteAddr), for TTL and returns its new id: 128 random bits,
// base64url. ok is false, and nothing kept, when the client or everyone
// has too many ceremonies under way.
func (t *Table[C]) Add(remote string, c C) (id string, ok bool) {
	raw := make([]byte, 16)
	rand.Read(raw)
	id = base64.RawURLEncoding.EncodeToString(raw)
	addr := ratelimit.Key(ratelimit.RemoteAddr(remote))
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneLocked(now)
	if len(t.live) >= t.limits.Max || t.addrs[addr] >= t.limits.PerAddress {
		return "", false
	}
	t.live[id] = entry[C]{c: c, addr: addr, expires: now.Add(t.limits.TTL)}
	t.addrs[addr]++
	return id, true
}

// Get returns the live ceremony id if match (nil: any) accepts it, and
// removes it when take is set: a ceremony is finished at most once.
func (t *Table[C]) Get(id string, match func(C) bool, take bool) (C, bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneLocked(now)
	e, ok := t.live[id]
	if !ok || match != nil && !match(e.c) {
		var zero C
		return zero, false
	}
	if take {
		t.deleteLocked(id)
	}
	return e.c, true
}

// Delete forgets ceremony id, if it is live.
func (t *Table[C]) Delete(id string) {
	t.mu.Lock()
	t.deleteLocked(id)
	t.mu.Unlock()
}

// Len returns the number of ceremonies kept, expired ones not yet
// forgotten included (tests).
func (t *Table[C]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}

func (t *Table[C]) pruneLocked(now time.Time) {
	for id, e := range t.live {
		if !now.Before(e.expires) {
			t.deleteLocked(id)
		}
	}
}

func (t *Table[C]) deleteLocked(id string) {
	e, ok := t.live[id]
	if !ok {
		return
	}
	delete(t.live, id)
	if t.addrs[e.addr]--; t.addrs[e.addr] <= 0 {
		delete(t.addrs, e.addr)
	}
}
