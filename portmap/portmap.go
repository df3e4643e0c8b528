// Package portmap asks the home router to forward a port to this machine,
// so that an expert on the internet can connect straight to the novice
// without a rendezvous server.
//
// Map tries UPnP IGD (found by SSDP on the LAN; WANIPConnection:2,
// WANIPConnection:1 and WANPPPConnection:1) and NAT-PMP (RFC 6886, at the
// default gateway) at the same time and keeps the first mapping a router
// grants. The Mapping renews itself at half its lifetime until Close
// deletes it.
package portmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Options tune Map. The zero value is ready to use.
type Options struct {
	// Lifetime is the lease asked of the router; the Mapping renews it at
	// half-life. Default 1 h.
	Lifetime time.Duration
	// Description is the label routers show in their list of forwarded
	// ports. Default "assist".
	Description string
	// Logger receives progress and renewal failures. Default: discard.
	Logger *slog.Logger
}

const (
	defaultLifetime    = time.Hour
	defaultDescription = "assist"
)

// discoveryTimeout bounds everything Map does before it gives up: routers
// that support port mapping answer in milliseconds, and a user waits for
// this when none does. Tests shorten it.
var discoveryTimeout = 3 * time.Second

// requestTimeout bounds one renewal or deletion.
var requestTimeout = 3 * time.Second

// minRenewRetry is the shortest wait before retrying a failed renewal.
var minRenewRetry = 5 * time.Second

// request is what Map asks of every method.
type request struct {
	proto        string // "tcp" or "udp"
	internalPort int
	lifetime     time.Duration
	description  string
	log          *slog.Logger
}

// lease is one mapping a router granted.
type lease struct {
	method   string
	external netip.AddrPort
	// lifetime is what the router granted; 0 means permanent (routers that
	// only support permanent leases), so no renewal.
	lifetime time.Duration
	// renew refreshes the mapping and returns its (possibly new) external
	// address and lifetime.
	renew func(ctx context.Context) (netip.AddrPort, time.Duration, error)
	// remove deletes the mapping from the router.
	remove func(ctx context.Context) error
}

// method is one way of asking a router for a mapping.
type method struct {
	name string // "upnp" or "natpmp"
	// what names what was tried, for the error when nothing worked, e.g.
	// "UPnP IGD".
	what string
	try  func(ctx context.Context, req request) (*lease, error)
}

// methods is what Map races; tests replace it.
var methods = []method{
	{name: "upnp", what: "UPnP IGD", try: mapUPnP},
	{name: "natpmp", what: "NAT-PMP", try: mapNATPMP},
}

// Map asks the router to forward proto ("tcp" or "udp") port internalPort
// on this machine from an external port (the same number when the router
// allows it). It returns within a few seconds, or sooner when ctx ends. The
// error, when no router grants a mapping, says what was tried and what
// helps.
func Map(ctx context.Context, proto string, internalPort int, opts Options) (*Mapping, error) {
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("portmap: protocol %q: want tcp or udp", proto)
	}
	if internalPort < 1 || internalPort > 65535 {
		return nil, fmt.Errorf("portmap: port %d out of range 1-65535", internalPort)
	}
	req := request{
		proto:        proto,
		internalPort: internalPort,
		lifetime:     opts.Lifetime,
		description:  opts.Description,
		log:          opts.Logger,
	}
	if req.lifetime <= 0 {
		req.lifetime = defaultLifetime
	}
	if req.lifetime < time.Second {
		req.lifetime = time.Second
	}
	if req.description == "" {
		req.description = defaultDescription
	}
	if req.log == nil {
		req.log = slog.New(slog.DiscardHandler)
	}
	return race(ctx, req, methods)
}

type result struct {
	m   method
	l   *lease
	err error
}

// race runs every method at once and keeps the first lease. Methods still
// running when Map returns go on in the background, bounded by the
// discovery timeout; any lease they win later is deleted, unless it is the
// winner's own (a router that speaks both protocols keeps one forwarding
// per port, and deleting it through one protocol deletes it for both).
func race(ctx context.Context, req request, ms []method) (*Mapping, error) {
	dctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	results := make(chan result, len(ms))
	for _, m := range ms {
		go func() {
			l, err := m.try(dctx, req)
			results <- result{m, l, err}
		}()
	}
	var (
		winner  *lease
		errs    = make([]error, len(ms))
		pending = len(ms)
	)
	for pending > 0 && winner == nil {
		select {
		case r := <-results:
			pending--
			if r.err != nil {
				req.log.Debug("portmap: method failed", "method", r.m.name, "err", r.err)
				for i := range ms {
					if ms[i].name == r.m.name {
						errs[i] = r.err
					}
				}
				continue
			}
			winner = r.l
		case <-ctx.Done():
			cancel()
			go discardLeases(results, pending, nil, req.log)
			return nil, fmt.Errorf("portmap: %w", ctx.Err())
		}
	}
	cancel() // stop the losers
	if winner == nil {
		e := &Error{Proto: req.proto, Port: req.internalPort}
		for i, m := range ms {
			e.Tried = append(e.Tried, Attempt{Method: m.name, What: m.what, Err: errs[i]})
		}
		return nil, e
	}
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		discardLeases(results, pending, winner, req.log)
	}()
	req.log.Info("portmap: mapped", "method", winner.method, "proto", req.proto,
		"internal", req.internalPort, "external", winner.external.String(), "lifetime", winner.lifetime)
	return newMapping(winner, req, settled), nil
}

// discardLeases waits for n more results and deletes every lease among
// them that is not keep.
func discardLeases(results <-chan result, n int, keep *lease, log *slog.Logger) {
	for ; n > 0; n-- {
		r := <-results
		if r.err != nil {
			continue
		}
		if keep != nil && r.l.external == keep.external {
			log.Debug("portmap: both methods made the same mapping", "method", r.l.method)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		if err := r.l.remove(ctx); err != nil {
			log.Warn("portmap: could not delete a surplus mapping", "method", r.l.method,
				"external", r.l.external.String(), "err", err)
		}
		cancel()
	}
}

// Mapping is a port forwarding on the router, kept alive until Close.
type Mapping struct {
	method string
	log    *slog.Logger
	lease  *lease

	mu       sync.Mutex
	external netip.AddrPort

	stop    context.CancelFunc
	renewed chan struct{} // closed when the renewal goroutine has ended
	settled chan struct{} // closed when losing methods are cleaned up

	closeOnce sync.Once
	closeErr  error
}

func newMapping(l *lease, req request, settled chan struct{}) *Mapping {
	ctx, stop := context.WithCancel(context.Background())
	m := &Mapping{
		method:   l.method,
		log:      req.log,
		lease:    l,
		external: l.external,
		stop:     stop,
		renewed:  make(chan struct{}),
		settled:  settled,
	}
	go m.renewLoop(ctx, l.lifetime)
	return m
}

// External is the address and port on the router's internet side that
// forward to the internal port, as the router reports it. The address may
// itself be private when the router sits behind another NAT.
func (m *Mapping) External() netip.AddrPort {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.external
}

// Method is the protocol that made the mapping: "upnp" or "natpmp".
func (m *Mapping) Method() string { return m.method }

// Close stops renewal and deletes the mapping on the router. It is safe to
// call more than once; later calls return the first call's result.
func (m *Mapping) Close() error {
	m.closeOnce.Do(func() {
		m.stop()
		<-m.renewed
		// A losing method may still be finishing; deleting before it
		// settles could let its late success re-create the forwarding.
		<-m.settled
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		if err := m.lease.remove(ctx); err != nil {
			m.closeErr = fmt.Errorf("portmap: delete %s mapping %s: %w", m.method, m.External(), err)
			return
		}
		m.log.Info("portmap: mapping deleted", "method", m.method, "external", m.External().String())
	})
	return m.closeErr
}

// renewLoop refreshes the lease at half its lifetime. After a failure it
// tries again at half the time left, but at least a few seconds apart, so a
// router that reboots gets the mapping back soon after it is up.
func (m *Mapping) renewLoop(ctx context.Context, lifetime time.Duration) {
	defer close(m.renewed)
	if lifetime <= 0 {
		return // permanent lease
	}
	expiry := time.Now().Add(lifetime)
	next := lifetime / 2
	for {
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		ext, granted, err := m.lease.renew(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			next = max(time.Until(expiry)/2, minRenewRetry)
			m.log.Warn("portmap: renewal failed", "method", m.method, "retry", next, "err", err)
			continue
		}
		m.mu.Lock()
		if ext != m.external {
			m.log.Warn("portmap: router moved the mapping", "method", m.method,
				"from", m.external.String(), "to", ext.String())
			m.external = ext
		}
		m.mu.Unlock()
		if granted <= 0 {
			return
		}
		expiry = time.Now().Add(granted)
		next = granted / 2
		m.log.Debug("portmap: renewed", "method", m.method, "external", ext.String(), "lifetime", granted)
	}
}

// Attempt is what one method did when Map failed.
type Attempt struct {
	Method string // "upnp" or "natpmp"
	What   string // human name, e.g. "UPnP IGD"
	Err    error
}

// Error is Map's error when no method produced a mapping.
type Error struct {
	Proto string
	Port  int
	Tried []Attempt
}

// ErrNoAnswer is wrapped by an Attempt's error when nothing answered that
// method at all, as opposed to a router that answered and refused.
var ErrNoAnswer = errors.New("no answer")

func (e *Error) Error() string {
	var b strings.Builder
	silent := true
	for _, a := range e.Tried {
		if !errors.Is(a.Err, ErrNoAnswer) {
			silent = false
		}
	}
	if silent {
		// The common case gets the message a user can act on.
		fmt.Fprintf(&b, "portmap: no router answered ")
		for i, a := range e.Tried {
			if i > 0 {
				b.WriteString(" or ")
			}
			b.WriteString(a.What)
			if d := detail(a.Err); d != "" {
				fmt.Fprintf(&b, " (%s)", d)
			}
		}
		b.WriteString(": the router may have port mapping turned off")
	} else {
		fmt.Fprintf(&b, "portmap: could not map %s port %d: ", e.Proto, e.Port)
		for i, a := range e.Tried {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s: %v", a.What, a.Err)
		}
	}
	b.WriteString("; a rendezvous server (assist serve) works without it")
	return b.String()
}

// Unwrap lets errors.Is and errors.As see every method's error.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, len(e.Tried))
	for _, a := range e.Tried {
		if a.Err != nil {
			errs = append(errs, a.Err)
		}
	}
	return errs
}

// noAnswerError says where a method looked without hearing anything back.
type noAnswerError struct{ where string }

func (e *noAnswerError) Error() string { return e.where + ": no answer" }
func (e *noAnswerError) Unwrap() error { return ErrNoAnswer }

// detail is the "where" of a no-answer error, for the short message.
func detail(err error) string {
	var na *noAnswerError
	if errors.As(err, &na) {
		return na.where
	}
	return ""
}
