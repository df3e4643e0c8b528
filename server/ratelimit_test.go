package server

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(2, 3, t0)
	for i := range 3 {
		if !b.take(1, t0) {
			t.Fatalf("take %d of the burst failed", i)
		}
	}
	if b.take(1, t0) {
		t.Fatal("took more than the burst")
	}
	if !b.take(1, t0.Add(500*time.Millisecond)) {
		t.Fatal("no token after half a second at 2/s")
	}
	if b.take(1, t0.Add(500*time.Millisecond)) {
		t.Fatal("two tokens after half a second at 2/s")
	}
	if !b.take(3, t0.Add(time.Hour)) || b.take(1, t0.Add(time.Hour)) {
		t.Fatal("refill is not capped at the burst")
	}
}
