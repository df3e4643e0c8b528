package transport

import "sync"

// Attempt is one password attempt on a Listener's invitation that arrives
// by another path than the Listener's own port (WebRTC through a rendezvous
// server). Every path shares the Listener's failure limit, expiry and
// one-expert-at-a-time rule, so a second path gives an attacker no extra
// guesses and a second expert no way in beside the first.
type Attempt struct {
	l *Listener

	mu sync.Mutex
	// ended: Fail or Release was called, or Succeed returned false.
	ended bool
	// hold stands for the other path's connection while it holds the
	// invitation; nil until Succeed and after Vacate.
	hold *Conn
}

// ReserveAttempt takes one attempt for a handshake the caller runs itself.
// It fails with ErrExpired, ErrVoid or ErrBusy, the errors an expert on the
// Listener's port would get, or with a *RefusedError (ErrDenied, ErrClosed)
// whose text is the novice's refusal in words for the expert. The caller
// must end the attempt with exactly one of Fail, Release or Succeed.
func (l *Listener) ReserveAttempt() (*Attempt, error) {
	a, left := l.reserve()
	if r := l.refusedByNovice(a, left); r != nil {
		return nil, r
	}
	switch a {
	case deniedExpired:
		return nil, ErrExpired
	case deniedVoid:
		return nil, ErrVoid
	case deniedBusy:
		return nil, ErrBusy
	}
	return &Attempt{l: l}, nil
}

// Fail counts the attempt as a failed password (the peer may have tested a
// guess) and returns the attempts left.
func (a *Attempt) Fail() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended || a.hold != nil {
		return a.l.AttemptsLeft()
	}
	a.ended = true
	return a.l.fail()
}

// Release ends an attempt the peer learnt nothing from: it does not count.
func (a *Attempt) Release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended || a.hold != nil {
		return
	}
	a.ended = true
	a.l.release()
}

// Succeed ends the attempt as a right password and makes it hold the
// invitation until Vacate, so that the Listener turns other experts away as
// busy. It returns false when another expert holds the invitation already;
// the caller then drops its connection.
func (a *Attempt) Succeed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended || a.hold != nil {
		return false
	}
	// The Listener tracks its holder by identity only: a bare Conn stands
	// for the connection of the other path.
	hold := new(Conn)
	if !a.l.succeed(hold) {
		a.ended = true
		return false
	}
	a.hold = hold
	return true
}

// Vacate frees the invitation held since Succeed, when the session ends.
func (a *Attempt) Vacate() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hold != nil {
		a.l.vacate(a.hold)
		a.hold = nil
		a.ended = true
	}
}
