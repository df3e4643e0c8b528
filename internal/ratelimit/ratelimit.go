// Package ratelimit holds what the servers' abuse limits share: a token
// bucket, and the key under which a client address is counted.
//
// The signalling server (package server), the messenger (messenger/hub)
// and the TURN relay (server/relay) each keep their own accounting; they
// must agree on what "one client" is, or a client could spend each
// server's budget under a different identity.
package ratelimit

import (
	"math"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Bucket is a token bucket: it holds up to burst tokens and gains rate
// tokens a second. Its owner serialises access (a connection's reader, or
// the lock of the accounting that holds it). Time is passed in so that
// the owner decides which clock counts.
type Bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// NewBucket returns a full bucket.
func NewBucket(rate float64, burst int, now time.Time) Bucket {
	return Bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// Every is the rate of a bucket that gains one token per d.
func Every(d time.Duration) float64 { return 1 / d.Seconds() }

// refill adds the tokens gained since the last call.
func (b *Bucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt*b.rate)
		b.last = now
	}
}

// Take removes n tokens if the bucket holds them.
func (b *Bucket) Take(n float64, now time.Time) bool {
	b.refill(now)
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// Wait returns how long until the bucket holds n tokens; 0 if it does.
func (b *Bucket) Wait(n float64, now time.Time) time.Duration {
	b.refill(now)
	if b.tokens >= n {
		return 0
	}
	if b.rate <= 0 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration((n - b.tokens) / b.rate * float64(time.Second))
}

// Refund gives back n tokens, up to the burst: for an action that was
// charged in advance and turned out to be a legitimate one.
func (b *Bucket) Refund(n float64) {
	b.tokens = min(b.burst, b.tokens+n)
}

// Full reports whether the bucket is back at its burst, so that its owner
// may forget it.
func (b *Bucket) Full(now time.Time) bool {
	b.refill(now)
	return b.tokens >= b.burst
}

// RetryIn says how long to wait in whole seconds, rounded up and at least
// one, as the servers' refusals tell it ("try again in 3s").
func RetryIn(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(max(d, time.Second).Seconds()))) + "s"
}

// RemoteAddr returns the IP address of an HTTP request's RemoteAddr
// ("IP:port"), unmapped and without a zone; the zero Addr if it cannot be
// read. Headers such as X-Forwarded-For are not trusted: anyone could
// send them.
func RemoteAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// Key returns the key a client address is counted under: the IPv4
// address, or the /64 of an IPv6 address (an IPv6 host is usually given
// a whole /64, so counting single addresses would give it 2^64 budgets).
// Addresses that cannot be read share the zero key.
func Key(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return netip.Prefix{}
	}
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, err := a.Prefix(64)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// KeyOfNet is Key for a socket address (the TURN relay's clients).
func KeyOfNet(a net.Addr) netip.Prefix {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case nil:
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	return Key(ip)
}
