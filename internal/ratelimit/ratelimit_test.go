package ratelimit

import (
	"net"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := NewBucket(2, 3, t0)
	for i := range 3 {
		if !b.Take(1, t0) {
			t.Fatalf("take %d of the burst failed", i)
		}
	}
	if b.Take(1, t0) {
		t.Fatal("took more than the burst")
	}
	if w := b.Wait(1, t0); w != 500*time.Millisecond {
		t.Fatalf("wait for a token at 2/s = %v, want 500ms", w)
	}
	if !b.Take(1, t0.Add(500*time.Millisecond)) {
		t.Fatal("no token after half a second at 2/s")
	}
	if b.Take(1, t0.Add(500*time.Millisecond)) {
		t.Fatal("two tokens after half a second at 2/s")
	}
	if b.Full(t0.Add(time.Second)) {
		t.Fatal("full again one second after spending three tokens at 2/s")
	}
	b.Refund(1)
	if !b.Take(1, t0.Add(500*time.Millisecond)) {
		t.Fatal("a refunded token cannot be taken")
	}
	b.Refund(10)
	if !b.Full(t0.Add(500 * time.Millisecond)) {
		t.Fatal("a refund of more than the burst did not fill the bucket")
	}
	if !b.Take(3, t0.Add(time.Hour)) || b.Take(1, t0.Add(time.Hour)) {
		t.Fatal("refill is not capped at the burst")
	}
	if !b.Full(t0.Add(3 * time.Hour)) {
		t.Fatal("not full after two hours")
	}
}

func TestBucketZeroRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := NewBucket(0, 1, t0)
	if !b.Take(1, t0) {
		t.Fatal("the burst of a zero-rate bucket cannot be taken")
	}
	if w := b.Wait(1, t0.Add(time.Hour)); w < 1000*time.Hour {
		t.Fatalf("a zero-rate bucket refills in %v", w)
	}
}

func TestEvery(t *testing.T) {
	if r := Every(250 * time.Millisecond); r != 4 {
		t.Fatalf("Every(250ms) = %v, want 4", r)
	}
}

func TestRetryIn(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "1s"},
		{300 * time.Millisecond, "1s"},
		{time.Second, "1s"},
		{1001 * time.Millisecond, "2s"},
		{90 * time.Second, "90s"},
	} {
		if got := RetryIn(tc.d); got != tc.want {
			t.Errorf("RetryIn(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestKey: an IPv4 address is its own key, an IPv6 address counts as its
// /64, and IPv4-mapped IPv6 as the IPv4 address.
func TestKey(t *testing.T) {
	for _, tc := range []struct{ remote, key string }{
		{"192.0.2.7:1234", "192.0.2.7/32"},
		{"[2001:db8:1:2:3:4:5:6]:1234", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:80", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:1", "192.0.2.7/32"},
		{"[fe80::1%eth0]:1", "fe80::/64"},
		{"pipe", "invalid Prefix"},
	} {
		if got := Key(RemoteAddr(tc.remote)).String(); got != tc.key {
			t.Errorf("key of %s = %s, want %s", tc.remote, got, tc.key)
		}
	}
}

// TestKeyOfNet: the relay's socket addresses are counted as the servers'
// HTTP clients are.
func TestKeyOfNet(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		key  string
	}{
		{&net.UDPAddr{IP: net.ParseIP("192.0.2.7"), Port: 3478}, "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2::9"), Port: 443}, "2001:db8:1:2::/64"},
		{&net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7/32"},
		{&net.UnixAddr{Name: "/run/x", Net: "unix"}, "invalid Prefix"},
		{nil, "invalid Prefix"},
	} {
		if got := KeyOfNet(tc.addr).String(); got != tc.key {
			t.Errorf("key of %v = %s, want %s", tc.addr, got, tc.key)
		}
	}
}
