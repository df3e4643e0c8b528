package server

import "time"

// bucket is a token bucket: it holds up to burst tokens and gains rate
// tokens a second. Its owner serialises access (a connection's reader, or
// addrLimits' lock).
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// refill adds the tokens gained since the last call.
func (b *bucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt*b.rate)
		b.last = now
	}
}

// take removes n tokens if the bucket holds them.
func (b *bucket) take(n float64, now time.Time) bool {
	b.refill(now)
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// wait returns how long until the bucket holds n tokens; 0 if it does.
func (b *bucket) wait(n float64, now time.Time) time.Duration {
	b.refill(now)
	if b.tokens >= n {
		return 0
	}
	if b.rate <= 0 {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration((n - b.tokens) / b.rate * float64(time.Second))
}

// full reports whether the bucket is back at its burst.
func (b *bucket) full(now time.Time) bool {
	b.refill(now)
	return b.tokens >= b.burst
}
