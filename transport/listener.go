package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Defaults of ListenerConfig and DialConfig.
const (
	DefaultMaxFailures       = 5
	DefaultHandshakeTimeout  = 15 * time.Second
	DefaultPerAddressTimeout = 10 * time.Second
	DefaultStartTimeout      = 5 * time.Second
	DefaultDenyCooldown      = 2 * time.Minute
	DefaultMaxDenials        = 3
)

// ErrListenerClosed is what Accept returns once Close was called.
var ErrListenerClosed = errors.New("transport: listener closed")

// ListenerConfig describes the invitation a Listener serves.
type ListenerConfig struct {
	// InvitationID is the invitation's public ID; experts send it in their
	// hello and it is the PAKE's session ID. Printable ASCII, at most
	// MaxInvitationID bytes.
	InvitationID string
	// Password is the invitation password, the same bytes the expert types
	// (normalise before, e.g. to UTF-8 NFC). It never leaves the process and
	// is never logged.
	Password string
	// Expires is when the invitation stops accepting experts; the zero
	// time means never. An expert already connected stays connected.
	Expires time.Time
	// MaxFailures is how many failed password attempts void the invitation
	// (default DefaultMaxFailures).
	MaxFailures int
	// Logger receives one line per attempt; nil discards them.
	Logger *slog.Logger
	// Now is the clock for Expires (default time.Now).
	Now func() time.Time
	// HandshakeTimeout bounds one whole handshake, TLS and PAKE (default
	// DefaultHandshakeTimeout). Handshakes run concurrently, so a slow or
	// hostile peer only ever holds up itself.
	HandshakeTimeout time.Duration
	// StartTimeout bounds the start of a handshake, from the TCP
	// connection to the expert's PAKE share (TLS, hello, share: three round
	// trips), within HandshakeTimeout; default DefaultStartTimeout. An
	// expert that connects and stalls holds an attempt in flight only this
	// long.
	StartTimeout time.Duration
	// DenyCooldown is how long the invitation turns every expert away
	// (ErrDenied, no attempt counted) after the novice said no to one
	// (Denied); default DefaultDenyCooldown. Names are typed by the
	// expert, so "the same expert" cannot be told apart: an invitation is
	// for one helper, and it rests as a whole.
	DenyCooldown time.Duration
	// MaxDenials is how many noes close the invitation for good
	// (ErrClosed); default DefaultMaxDenials.
	MaxDenials int
}

// Listener is the novice's side: it accepts TCP connections from a
// net.Listener, runs the TLS and PAKE handshake on each concurrently, and
// hands out only authenticated connections. It enforces the invitation's
// expiry, its failure limit, and one expert at a time. Close must be called
// to stop its goroutines.
type Listener struct {
	ln     net.Listener
	cfg    ListenerConfig
	log    *slog.Logger
	tlsCfg *tls.Config
	// setupErr is a bad config or a failure to make the certificate;
	// Accept reports it.
	setupErr error

	ctx    context.Context // canceled by Close: aborts every handshake
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// ready holds at most one authenticated connection not yet accepted:
	// it owns the invitation, so no second one can get in behind it.
	ready      chan *Conn
	loopDone   chan struct{} // closed when the accept loop ends
	loopErr    error         // why the accept loop ended; read after loopDone
	closeOnce  sync.Once
	closeError error

	mu       sync.Mutex
	failures int   // failed attempts so far
	inFlight int   // attempts reserved and not yet judged
	active   *Conn // the authenticated connection holding the invitation

	denials    int       // the novice's noes so far
	coolsUntil time.Time // experts are turned away until then
}

// NewListener starts serving the invitation described by cfg on ln. The
// Listener takes ownership of ln. Configuration errors are reported by
// Accept.
func NewListener(ln net.Listener, cfg ListenerConfig) *Listener {
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.DenyCooldown <= 0 {
		cfg.DenyCooldown = DefaultDenyCooldown
	}
	if cfg.MaxDenials <= 0 {
		cfg.MaxDenials = DefaultMaxDenials
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		ln:       ln,
		cfg:      cfg,
		log:      log.With("component", "transport", "listen", ln.Addr().String()),
		ctx:      ctx,
		cancel:   cancel,
		ready:    make(chan *Conn, 1),
		loopDone: make(chan struct{}),
	}
	if err := checkInvitationID(cfg.InvitationID); err != nil {
		l.setupErr = fmt.Errorf("transport: listener: %w", err)
	} else if cfg.Password == "" {
		l.setupErr = errors.New("transport: listener: empty password")
	} else if cert, err := newCertificate(cfg.Now()); err != nil {
		l.setupErr = fmt.Errorf("transport: listener: %w", err)
	} else {
		l.tlsCfg = serverTLSConfig(cert)
	}
	if l.setupErr != nil {
		l.loopErr = l.setupErr
		close(l.loopDone)
		return l
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Addr returns the address the Listener accepts on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Accept waits for the next authenticated connection. It returns
// ErrListenerClosed after Close, ctx's error when ctx ends first, and the
// configuration or network error that stopped the Listener otherwise.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	// A connection that is ready wins over a concurrent Close or an ended
	// accept loop, so it is handed out rather than dropped.
	select {
	case c := <-l.ready:
		return c, nil
	default:
	}
	select {
	case c := <-l.ready:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.ctx.Done():
		return nil, ErrListenerClosed
	case <-l.loopDone:
		select {
		case c := <-l.ready:
			return c, nil
		default:
		}
		return nil, l.loopErr
	}
}

// Close stops accepting, aborts the handshakes in progress, closes an
// authenticated connection that Accept has not returned, and waits for the
// Listener's goroutines. Connections Accept returned stay open: they belong
// to the caller.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			l.closeError = fmt.Errorf("transport: close listener: %w", err)
		}
		l.wg.Wait()
		select {
		case c := <-l.ready:
			c.Close()
		default:
		}
	})
	return l.closeError
}

// Void reports whether the invitation has seen MaxFailures failed attempts
// and refuses every expert from now on.
func (l *Listener) Void() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures >= l.cfg.MaxFailures
}

// AttemptsLeft is how many more failed attempts the invitation tolerates.
func (l *Listener) AttemptsLeft() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.cfg.MaxFailures-l.failures, 0)
}

// Denied records that the novice said no to an expert's question to see
// the screen (or left it unanswered): for DenyCooldown every expert is
// turned away, on every path, without counting an attempt; the
// MaxDenials-th no closes the invitation for good. It reports whether the
// invitation is now closed.
func (l *Listener) Denied() (closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.denials++
	l.coolsUntil = l.cfg.Now().Add(l.cfg.DenyCooldown)
	return l.denials >= l.cfg.MaxDenials
}

// Closed reports whether the novice's noes closed the invitation.
func (l *Listener) Closed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.denials >= l.cfg.MaxDenials
}

// Denials is how many times the novice said no, and how many noes close
// the invitation.
func (l *Listener) Denials() (n, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.denials, l.cfg.MaxDenials
}

// refusedByNovice is the refusal while the novice's noes keep experts
// out, or nil.
func (l *Listener) refusedByNovice(a admission, left time.Duration) *RefusedError {
	switch a {
	case deniedClosed:
		return &RefusedError{Kind: ErrClosed, Message: ClosedMessage(l.cfg.MaxDenials)}
	case deniedCooling:
		return &RefusedError{Kind: ErrDenied, Message: DeniedMessage(left)}
	}
	return nil
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	defer close(l.loopDone)
	var backoff time.Duration
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil {
				l.loopErr = ErrListenerClosed
				return
			}
			// Running out of file descriptors and the like pass; keep
			// serving after a pause rather than spin or give up.
			if ne, ok := err.(net.Error); (ok && ne.Timeout()) || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.log.Warn("accept failed, retrying", "err", err, "after", backoff)
				select {
				case <-time.After(backoff):
					continue
				case <-l.ctx.Done():
					l.loopErr = ErrListenerClosed
					return
				}
			}
			l.loopErr = fmt.Errorf("transport: accept: %w", err)
			l.log.Error("accept failed, listener stopped", "err", err)
			return
		}
		backoff = 0
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.serve(raw)
		}()
	}
}

// isTemporary reports errors such as EMFILE that net still flags Temporary.
func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// admission is the outcome of reserving an attempt.
type admission int

const (
	admitted admission = iota
	deniedExpired
	deniedVoid
	deniedBusy
	deniedClosed  // the novice's noes closed the invitation
	deniedCooling // the novice said no a moment ago
)

// reserve decides, atomically with the counters, whether an expert may start
// a PAKE, and if so counts the attempt as in flight. Failures plus attempts
// in flight never exceed MaxFailures, so a burst of parallel attempts cannot
// get more guesses than the limit. For deniedCooling it also says how long
// the cooldown has left.
func (l *Listener) reserve() (admission, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	switch {
	case !l.cfg.Expires.IsZero() && !now.Before(l.cfg.Expires):
		return deniedExpired, 0
	case l.failures >= l.cfg.MaxFailures:
		return deniedVoid, 0
	case l.denials >= l.cfg.MaxDenials:
		return deniedClosed, 0
	case now.Before(l.coolsUntil):
		return deniedCooling, l.coolsUntil.Sub(now)
	case l.active != nil || l.failures+l.inFlight >= l.cfg.MaxFailures:
		return deniedBusy, 0
	}
	l.inFlight++
	return admitted, 0
}

// release ends a reserved attempt that the peer learnt nothing from (it
// never saw our confirmation), so it does not count.
func (l *Listener) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
}

// fail ends a reserved attempt as a failure and returns the attempts left.
func (l *Listener) fail() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	l.failures++
	return max(l.cfg.MaxFailures-l.failures, 0)
}

// succeed ends a reserved attempt whose password was right and gives c the
// invitation, unless another expert holds it already.
func (l *Listener) succeed(c *Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if l.active != nil {
		return false
	}
	l.active = c
	return true
}

// vacate frees the invitation when its connection closes.
func (l *Listener) vacate(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active == c {
		l.active = nil
	}
}
