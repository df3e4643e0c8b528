package hub

import (
	"net/netip"
	"sync"
	"time"

	"github.com/assist-project/assist/internal/ratelimit"
)

// addrKey identifies a client for the per-address limits (see
// ratelimit.Key), as package server counts them.
type addrKey = netip.Prefix

// limits is the accounting of client addresses and accounts: live
// connections, failed logins, account creations and pair-joins that
// missed. Entries whose counts are zero and buckets full are swept.
type limits struct {
	cfg *Config

	mu       sync.Mutex
	addrs    map[addrKey]*addrState
	accounts map[string]*ratelimit.Bucket // pair-join misses per account
}

type addrState struct {
	conns                           int
	loginFails, creations, pairMiss ratelimit.Bucket
}

func newLimits(cfg *Config) *limits {
	return &limits{cfg: cfg, addrs: make(map[addrKey]*addrState), accounts: make(map[string]*ratelimit.Bucket)}
}

func (l *limits) state(k addrKey, now time.Time) *addrState {
	st := l.addrs[k]
	if st == nil {
		c := l.cfg
		st = &addrState{
			loginFails: ratelimit.NewBucket(ratelimit.Every(c.LoginFailEvery), c.LoginFailBurst, now),
			creations:  ratelimit.NewBucket(ratelimit.Every(c.CreateEvery), c.CreateBurst, now),
			pairMiss:   ratelimit.NewBucket(ratelimit.Every(c.PairMissEvery), c.PairMissBurst, now),
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
	return l.state(k, now).loginFails.Take(1, now)
}

// loginAllowed reports, before the signature is checked, whether k may
// still try: a spent allowance refuses every login.
func (l *limits) loginAllowed(k addrKey, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state(k, now).loginFails.Wait(1, now)
}

// create takes an account-creation token of k.
func (l *limits) create(k addrKey, now time.Time) (wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(k, now)
	if !st.creations.Take(1, now) {
		return st.creations.Wait(1, now)
	}
	return 0
}

// pairJoinAllowed says how long k (and account user, if not "") must wait
// before a pair-join is looked up at all; 0: go ahead.
func (l *limits) pairJoinAllowed(k addrKey, user string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.state(k, now).pairMiss.Wait(1, now)
	if user != "" {
		w = max(w, l.account(user, now).Wait(1, now))
	}
	return w
}

// pairMissed takes a token of k and user for a pair-join that missed.
func (l *limits) pairMissed(k addrKey, user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(k, now)
	st.pairMiss.Take(1, now)
	if user != "" {
		b := l.account(user, now)
		b.Take(1, now)
	}
}

func (l *limits) account(user string, now time.Time) *ratelimit.Bucket {
	b := l.accounts[user]
	if b == nil {
		nb := ratelimit.NewBucket(ratelimit.Every(l.cfg.PairMissEvery), l.cfg.PairMissBurst, now)
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
		if st.conns == 0 && st.loginFails.Full(now) && st.creations.Full(now) && st.pairMiss.Full(now) {
			delete(l.addrs, k)
		}
	}
	for u, b := range l.accounts {
		if b.Full(now) {
			delete(l.accounts, u)
		}
	}
}
