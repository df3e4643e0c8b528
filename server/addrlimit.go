package server

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/assist-project/assist/internal/ratelimit"
)

// addrKey identifies a client for the per-address limits (see
// ratelimit.Key).
type addrKey = netip.Prefix

// addrLimits is the accounting of each client address: its live
// connections, registered novices and relayed pairings, and token buckets
// for its registrations and joins. An address's entry lives while it has
// something live or a bucket that is not yet full again; sweep forgets the
// others. Its lock may be taken while holding Server.mu, never the other
// way round.
type addrLimits struct {
	cfg *Config

	mu    sync.Mutex
	addrs map[addrKey]*addrState
}

// addrState is one address's accounting.
type addrState struct {
	conns   int // live signalling connections
	novices int // live registered novices
	relays  int // live pairings with TURN credentials it is party to
	// regs: registrations; misses: joins of an id with no live
	// invitation; joins: all joins.
	regs, misses, joins ratelimit.Bucket
}

func newAddrLimits(cfg *Config) *addrLimits {
	return &addrLimits{cfg: cfg, addrs: make(map[addrKey]*addrState)}
}

// state returns k's entry, creating it; l.mu is held.
func (l *addrLimits) state(k addrKey, now time.Time) *addrState {
	st := l.addrs[k]
	if st == nil {
		c := l.cfg
		st = &addrState{
			regs:   ratelimit.NewBucket(ratelimit.Every(c.RegisterEvery), c.RegisterBurst, now),
			misses: ratelimit.NewBucket(ratelimit.Every(c.JoinMissEvery), c.JoinMissBurst, now),
			joins:  ratelimit.NewBucket(ratelimit.Every(c.JoinEvery), c.JoinBurst, now),
		}
		l.addrs[k] = st
	}
	return st
}

// connect counts a new signalling connection from k, unless k already
// has the most allowed.
func (l *addrLimits) connect(k addrKey, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(k, now)
	if st.conns >= l.cfg.MaxConnsPerAddress {
		return false
	}
	st.conns++
	return true
}

// disconnect forgets a connection counted by connect.
func (l *addrLimits) disconnect(k addrKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.addrs[k]; st != nil && st.conns > 0 {
		st.conns--
	}
}

// register takes a registration token of k and a place for one more live
// novice. On refusal it returns the message for the client.
func (l *addrLimits) register(k addrKey, now time.Time) (refusal string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(k, now)
	if st.novices >= l.cfg.MaxNovicesPerAddress {
		return fmt.Sprintf("%d registrations from your address are live already: end an invitation, then try again", st.novices)
	}
	if !st.regs.Take(1, now) {
		return "too many invitations from your address: try again in " + ratelimit.RetryIn(st.regs.Wait(1, now))
	}
	st.novices++
	return ""
}

// unregister frees the place of a live novice counted by register.
func (l *addrLimits) unregister(k addrKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.addrs[k]; st != nil && st.novices > 0 {
		st.novices--
	}
}

// join admits a join from k before anything is looked up, so that the
// answer to a refused join says nothing about the id: it needs a token
// of the joins bucket, which it takes, and one of the misses bucket, which
// it takes too (hit gives it back). On refusal it returns the message for
// the client.
func (l *addrLimits) join(k addrKey, now time.Time) (refusal string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(k, now)
	wait := max(st.misses.Wait(1, now), st.joins.Wait(1, now))
	if wait > 0 {
		return "too many attempts to join from your address: try again in " + ratelimit.RetryIn(wait)
	}
	st.misses.Take(1, now)
	st.joins.Take(1, now)
	return ""
}

// hit gives back the misses token of a join that found a live invitation:
// a help desk behind one address joins many real codes.
func (l *addrLimits) hit(k addrKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.addrs[k]; st != nil {
		st.misses.Refund(1)
	}
}

// acquireRelay decides whether a pairing of a novice at n and an expert
// at e gets TURN credentials: only when they are distinct addresses (two
// ends on one address reach each other directly) and neither is already
// party to MaxRelaysPerAddress live pairings that got them. When it says
// yes, the pairing counts for both until releaseRelay.
func (l *addrLimits) acquireRelay(n, e addrKey, now time.Time) bool {
	if n == e {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	sn, se := l.state(n, now), l.state(e, now)
	if sn.relays >= l.cfg.MaxRelaysPerAddress || se.relays >= l.cfg.MaxRelaysPerAddress {
		return false
	}
	sn.relays++
	se.relays++
	return true
}

// releaseRelay ends the count of a pairing acquireRelay accepted.
func (l *addrLimits) releaseRelay(n, e addrKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []addrKey{n, e} {
		if st := l.addrs[k]; st != nil && st.relays > 0 {
			st.relays--
		}
	}
}

// sweep forgets the addresses that have nothing live and whose buckets are
// full again: they are as if never seen.
func (l *addrLimits) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, st := range l.addrs {
		if st.conns == 0 && st.novices == 0 && st.relays == 0 &&
			st.regs.Full(now) && st.misses.Full(now) && st.joins.Full(now) {
			delete(l.addrs, k)
		}
	}
}

// tracked returns how many addresses have an entry, for tests and metrics.
func (l *addrLimits) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}
