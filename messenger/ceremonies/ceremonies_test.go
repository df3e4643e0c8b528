package ceremonies

import (
	"fmt"
	"testing"
	"time"
)

// TestTable: ceremonies are bounded per client address (an IPv6 /64
// counts as one) and in all, found only when match accepts them, taken at
// most once, and forgotten when they expire, which frees their address's
// places.
func TestTable(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	tab := New[string](Limits{TTL: time.Minute, Max: 5, PerAddress: 2}, clock)

	for i, tt := range []struct {
		remote string
		ok     bool
	}{
		{"192.0.2.1:1000", true},
		{"192.0.2.1:1001", true},
		{"192.0.2.1:1002", false}, // the address's two places are taken
		{"[2001:db8::1]:1000", true},
		{"[2001:db8::2]:1000", true},
		{"[2001:db8::3]:1000", false}, // the same /64
		{"[2001:db8:0:1::1]:1000", true},
		{"192.0.2.2:1000", false}, // five in all
	} {
		if _, ok := tab.Add(tt.remote, fmt.Sprint(i)); ok != tt.ok {
			t.Errorf("Add #%d from %s: %v, want %v", i, tt.remote, ok, tt.ok)
		}
	}
	if n := tab.Len(); n != 5 {
		t.Fatalf("Len %d, want 5", n)
	}

	now = now.Add(30 * time.Second)
	if _, ok := tab.Add("[::ffff:198.51.100.7]:1", "mine"); ok {
		t.Fatal("a sixth ceremony was kept")
	}
	now = now.Add(31 * time.Second) // the first five expire
	id, ok := tab.Add("[::ffff:198.51.100.7]:1", "mine")
	if !ok || len(id) != 22 {
		t.Fatalf("Add after expiry: %q %v", id, ok)
	}
	if n := tab.Len(); n != 1 {
		t.Errorf("Len %d after expiry, want 1", n)
	}
	if _, ok := tab.Get(id, func(c string) bool { return c == "other" }, true); ok {
		t.Error("Get found a ceremony its match refused")
	}
	if c, ok := tab.Get(id, nil, false); !ok || c != "mine" {
		t.Errorf("Get = %q %v", c, ok)
	}
	if c, ok := tab.Get(id, func(c string) bool { return c == "mine" }, true); !ok || c != "mine" {
		t.Errorf("Get and take = %q %v", c, ok)
	}
	if _, ok := tab.Get(id, nil, true); ok {
		t.Error("a ceremony was taken twice")
	}
	// Its address has its places back.
	for range 2 {
		if _, ok := tab.Add("198.51.100.7:2", "again"); !ok {
			t.Error("the address's places were not given back")
		}
	}
	id, _ = tab.Add("203.0.113.9:1", "gone")
	tab.Delete(id)
	if _, ok := tab.Get(id, nil, false); ok {
		t.Error("a deleted ceremony was found")
	}
	now = now.Add(time.Minute)
	if _, ok := tab.Get("", nil, false); ok || tab.Len() != 0 {
		t.Errorf("Len %d after every ceremony expired", tab.Len())
	}
}
