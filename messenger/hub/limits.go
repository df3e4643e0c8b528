package hub

import (
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"
)

// addrKey identifies a client for the per-address limits: its IPv4
// address, or the /64 of its IPv6 address (as in package server).
type addrKey = netip.Prefix

// remoteAddr returns the IP address of r.RemoteAddr ("IP:port"); the
// zero Addr if it cannot be read. X-Forwarded-For is not trusted.
func remoteAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

func keyOf(a netip.Addr) addrKey {
	if !a.IsValid() {
		return addrKey{}
	}
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, err := a.Prefix(64)
	if err != nil {
		return addrKey{}
	}
	return p
}

// bucket is a token bucket: up to burst tokens, gaining rate a second.
// Its owner serialises access.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int, now time.Time) bucket {
	return bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

func (b *bucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt*b.rate)
		b.last = now
	}
}

// take removes one token if there is one.
func (b *bucket) take(now time.Time) bool {
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// wait returns how long until a token is there; 0 if one is.
func (b *bucket) wait(now time.Time) time.Duration {
	b.refill(now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

func (b *bucket) full(now time.Time) bool {
	b.refill(now)
	return b.tokens >= b.burst
}

func everyRate(d time.Duration) float64 { return 1 / d.Seconds() }

// retryIn says how long to wait, in whole seconds rounded up.
func retryIn(d time.Duration) string {
	return fmt.Sprintf("%ds", int(math.Ceil(max(d, time.Second).Seconds())))
}

// limits is the accounting of client addresses and accounts: live
// connections, failed logins, account creations and pair-joins that
// missed. Entries whose counts are zero and buckets full are swept.
type limits struct {
	cfg *Config

	mu       sync.Mutex
	addrs    map[addrKey]*addrState
	accounts map[string]*bucket // pair-join misses per account
}

type addrState struct {
	conns                           int
	loginFails, creations, pairMiss bucket
}

func newLimits(cfg *Config) *limits {
	return &limits{cfg: cfg, addrs: make(map[addrKey]*addrState), accounts: make(map[string]*bucket)}
}

func (l *limits) state(k addrKey, now time.Time) *addrState {
	st := l.addrs[k]
	if st == nil {
		c := l.cfg
		st = &addrState{
			loginFails: newBucket(everyRate(c.LoginFailEvery), c.LoginFailBurst, now),
			creations:  newBucket(everyRate(c.CreateEvery), c.CreateBurst, now),
			pairMiss:   newBucket(everyRate(c.PairMissEvery), c.PairMissBurst, now),
		}
		l.addrs[k] = st
	}
	return st
}

// connect counts a connection of k unless k has the most allowed.
func (l *limits) connect(k addrKey, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(k, now)
	if st.conns >= l.cfg.MaxConnsPerAddress {
		return false
	}
	st.conns++
	return true
}

func (l *limits) disconnect(k addrKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.addrs[k]; st != nil && st.conns > 0 {
		st.conns--
	}
}

// loginFailed takes a token for a failed login; false when they are spent.
func (l *limits) loginFailed(k addrKey, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state(k, now).loginFails.take(now)
}

// loginAllowed reports, before the signature is checked, whether k may
// still try: a spent allowance refuses every login.
func (l *limits) loginAllowed(k addrKey, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state(k, now).loginFails.wait(now)
}

// create takes an account-creation token of k.
func (l *limits) create(k addrKey, now time.Time) (wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(k, now)
	if !st.creations.take(now) {
		return st.creations.wait(now)
	}
	return 0
}

// pairJoinAllowed says how long k (and account user, if not "") must wait
// before a pair-join is looked up at all; 0: go ahead.
func (l *limits) pairJoinAllowed(k addrKey, user string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.state(k, now).pairMiss.wait(now)
	if user != "" {
		w = max(w, l.account(user, now).wait(now))
	}
	return w
}

// pairMissed takes a token of k and user for a pair-join that missed.
func (l *limits) pairMissed(k addrKey, user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(k, now)
	st.pairMiss.take(now)
	if user != "" {
		b := l.account(user, now)
		b.take(now)
	}
}

func (l *limits) account(user string, now time.Time) *bucket {
	b := l.accounts[user]
	if b == nil {
		nb := newBucket(everyRate(l.cfg.PairMissEvery), l.cfg.PairMissBurst, now)
		b = &nb
		l.accounts[user] = b
	}
	return b
}

// sweep forgets the entries with nothing live and full buckets.
func (l *limits) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, st := range l.addrs {
		if st.conns == 0 && st.loginFails.full(now) && st.creations.full(now) && st.pairMiss.full(now) {
			delete(l.addrs, k)
		}
	}
	for u, b := range l.accounts {
		if b.full(now) {
			delete(l.accounts, u)
		}
	}
}
