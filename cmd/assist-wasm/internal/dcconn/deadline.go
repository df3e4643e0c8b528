package dcconn

import (
	"sync"
	"time"
)

// deadline is a settable deadline whose passing closes a channel, so a
// blocked Read or Write can select on it. A zero time means none.
type deadline struct {
	mu     *sync.Mutex
	timer  *time.Timer
	passed chan struct{} // closed when the deadline passes
}

func makeDeadline() deadline {
	return deadline{mu: new(sync.Mutex), passed: make(chan struct{})}
}

// set arms the deadline at t, or disarms it for a zero t.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		// The timer fired, or is firing: its channel is closed or about
		// to be. Either way the next deadline needs a new one.
		d.passed = make(chan struct{})
	}
	d.timer = nil
	select {
	case <-d.passed:
		d.passed = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.passed)
		return
	}
	ch := d.passed
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		// A later set replaced the channel: this firing is stale.
		if d.passed == ch {
			close(ch)
		}
	})
}

// wait returns a channel closed once the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool {
	select {
	case <-d.wait():
		return true
	default:
		return false
	}
}
