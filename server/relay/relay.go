// Package relay is the embedded STUN and TURN server of "assist serve".
//
// It answers STUN binding requests and serves TURN (RFC 8656) over UDP,
// TCP and TLS, always relaying over UDP, which is what browsers and
// pion/webrtc use. TURN allocations are authenticated with the short-lived
// "TURN REST API" credentials that coturn also accepts (see Credentials).
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
)

// Defaults for the resource bounds of Config.
const (
	DefaultMaxAllocations        = 1000
	DefaultMaxAllocationsPerUser = 16
	// DefaultMaxAllocationsPerAddress is four sessions' worth, as the
	// rendezvous server gives one address TURN credentials for at most
	// four live pairings (server.Config.MaxRelaysPerAddress).
	DefaultMaxAllocationsPerAddress = 64
	DefaultAllocationLifetime       = 10 * time.Minute
	// DefaultTCPIdleTimeout outlives the 5-minute TURN permission lifetime:
	// a client that still uses its allocation talks at least that often.
	DefaultTCPIdleTimeout = 6 * time.Minute
	// defaultRealm is the realm advertised when Config.Realm is empty.
	defaultRealm = "assist"
)

// Config configures a Relay. The zero value of every bound picks its default.
type Config struct {
	// UDP, TCP and TLS are listen addresses ("127.0.0.1:3478",
	// ":5349"); an empty address disables that transport.
	UDP, TCP, TLS string
	// TLSConfig holds the certificate of the TLS listener; required with TLS.
	TLSConfig *tls.Config
	// Realm is the TURN realm; "assist" when empty.
	Realm string
	// Secret is the shared REST secret (coturn's static-auth-secret).
	// Required: without it the relay would be an open proxy.
	Secret []byte
	// RelayIP is the address put in relayed candidates, the public address
	// of the host. When nil, the host of the first listen address is used
	// if it is a specific IP.
	RelayIP net.IP
	// RelayBindIP is the local address relay sockets bind to. When nil it
	// is RelayIP if that address is local, else the unspecified address
	// (a host behind 1:1 NAT advertises an address it does not own).
	RelayBindIP net.IP
	// RelayPortMin and RelayPortMax bound the relay ports (inclusive); both
	// zero lets the kernel pick.
	RelayPortMin, RelayPortMax int
	// Logger receives the server's logs; slog.Default() when nil.
	Logger *slog.Logger
	// MaxAllocations bounds the live allocations of the whole server
	// (DefaultMaxAllocations when 0). Beyond it, Allocate gets 486.
	MaxAllocations int
	// MaxAllocationsPerUser bounds the live allocations of one session
	// (the id part of the REST username, whatever the expiry), so that
	// one session cannot starve the others (DefaultMaxAllocationsPerUser
	// when 0).
	MaxAllocationsPerUser int
	// MaxAllocationsPerAddress bounds the live allocations from one
	// client address (an IPv4 address or an IPv6 /64), so that credentials
	// gathered over many pairings cannot starve the others
	// (DefaultMaxAllocationsPerAddress when 0).
	MaxAllocationsPerAddress int
	// AllocationLifetime is the lifetime granted when the client does not
	// ask for one (DefaultAllocationLifetime when 0). Pion caps requested
	// lifetimes at one hour; clients must refresh to keep an allocation.
	AllocationLifetime time.Duration
	// MaxTCPConns bounds the simultaneous TCP plus TLS client connections
	// (4*MaxAllocations when 0).
	MaxTCPConns int
	// TCPIdleTimeout closes TCP and TLS client connections that send
	// nothing for that long (DefaultTCPIdleTimeout when 0).
	TCPIdleTimeout time.Duration
	// AllowPeer decides which peer addresses clients may relay to. When nil,
	// unspecified, multicast, broadcast and link-local addresses are
	// refused, and so are loopback addresses unless the relay itself binds
	// to loopback, so that a TURN client cannot reach services on the
	// server's host.
	AllowPeer func(peer net.IP) bool
}

// Stats is a snapshot of the relay's counters, for metrics.
type Stats struct {
	// Allocations is the number of live TURN allocations.
	Allocations int
	// RelayedBytes counts the UDP payload bytes exchanged between relay
	// sockets and peers, both directions, since Start.
	RelayedBytes uint64
	// AuthFailures counts TURN requests refused for bad credentials:
	// unparsable or expired usernames and wrong passwords.
	AuthFailures uint64
}

// Relay is a running STUN/TURN server.
type Relay struct {
	server        *turn.Server
	log           *slog.Logger
	udp, tcp, tls net.Addr
	tracker       *connTracker
	stopCtx       func() bool

	relayed      atomic.Uint64
	authFailures atomic.Uint64

	mu      sync.Mutex
	allocs  int
	perUser map[string]int
	perAddr map[netip.Prefix]int
	closed  bool // allocation events after Close are ignored

	closeOnce sync.Once
	closeErr  error
}

// Start listens on the configured addresses and serves until Close is
// called or ctx is done.
func Start(ctx context.Context, cfg Config) (*Relay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Relay{log: cfg.Logger, tracker: newConnTracker(), perUser: make(map[string]int), perAddr: make(map[netip.Prefix]int)}
	alloc, err := newAllocator(cfg.RelayIP, cfg.RelayBindIP, cfg.RelayPortMin, cfg.RelayPortMax, &r.relayed)
	if err != nil {
		return nil, err
	}
	permit := r.permissionHandler(cfg.AllowPeer)

	var (
		packetConns []turn.PacketConnConfig
		listeners   []turn.ListenerConfig
		closers     []func() error
	)
	fail := func(err error) (*Relay, error) {
		for _, c := range closers {
			_ = c()
		}
		return nil, err
	}
	var lc net.ListenConfig
	if cfg.UDP != "" {
		pc, err := lc.ListenPacket(ctx, "udp", cfg.UDP)
		if err != nil {
			return fail(fmt.Errorf("relay: listen udp %s: %w", cfg.UDP, err))
		}
		closers = append(closers, pc.Close)
		r.udp = pc.LocalAddr()
		packetConns = append(packetConns, turn.PacketConnConfig{
			PacketConn: pc, RelayAddressGenerator: alloc, PermissionHandler: permit,
		})
	}
	sem := make(chan struct{}, cfg.MaxTCPConns) // shared: TCP and TLS draw on the same descriptors
	for _, l := range []struct {
		addr   string
		tls    bool
		record *net.Addr
	}{{cfg.TCP, false, &r.tcp}, {cfg.TLS, true, &r.tls}} {
		if l.addr == "" {
			continue
		}
		ln, err := lc.Listen(ctx, "tcp", l.addr)
		if err != nil {
			return fail(fmt.Errorf("relay: listen tcp %s: %w", l.addr, err))
		}
		closers = append(closers, ln.Close)
		*l.record = ln.Addr()
		var bounded net.Listener = &boundedListener{Listener: ln, tracker: r.tracker, sem: sem, idle: cfg.TCPIdleTimeout}
		if l.tls {
			bounded = &tlsListener{Listener: bounded, config: cfg.TLSConfig}
		}
		listeners = append(listeners, turn.ListenerConfig{
			Listener: bounded, RelayAddressGenerator: alloc, PermissionHandler: permit,
		})
	}

	server, err := turn.NewServer(turn.ServerConfig{
		PacketConnConfigs:  packetConns,
		ListenerConfigs:    listeners,
		LoggerFactory:      slogFactory{log: cfg.Logger},
		Realm:              cfg.Realm,
		AuthHandler:        r.authHandler(cfg.Secret),
		QuotaHandler:       r.quotaHandler(cfg.MaxAllocations, cfg.MaxAllocationsPerUser, cfg.MaxAllocationsPerAddress),
		EventHandler:       r.eventHandler(),
		AllocationLifetime: cfg.AllocationLifetime,
	})
	if err != nil {
		return fail(fmt.Errorf("relay: start turn server: %w", err))
	}
	r.server = server
	r.stopCtx = context.AfterFunc(ctx, func() { _ = r.Close() })
	r.log.Info("relay: listening", "udp", addrString(r.udp), "tcp", addrString(r.tcp), "tls", addrString(r.tls),
		"relay_ip", cfg.RelayIP.String(), "relay_bind_ip", cfg.RelayBindIP.String())
	return r, nil
}

// Close stops the listeners, the client connections and all allocations.
// It is safe to call more than once.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.stopCtx()
		err := r.server.Close()
		r.tracker.closeAll()
		// Pion closes the allocations without reporting their deletion.
		r.mu.Lock()
		r.closed = true
		r.allocs = 0
		clear(r.perUser)
		clear(r.perAddr)
		r.mu.Unlock()
		if err != nil {
			r.closeErr = fmt.Errorf("relay: close: %w", err)
		}
	})
	return r.closeErr
}

// Addrs returns the bound listen addresses; a disabled transport is nil.
func (r *Relay) Addrs() (udp, tcp, tls net.Addr) { return r.udp, r.tcp, r.tls }

// Stats returns a snapshot of the counters.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	n := r.allocs
	r.mu.Unlock()
	return Stats{Allocations: n, RelayedBytes: r.relayed.Load(), AuthFailures: r.authFailures.Load()}
}

// withDefaults validates cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.UDP == "" && cfg.TCP == "" && cfg.TLS == "" {
		return cfg, errors.New("relay: no listen address")
	}
	if len(cfg.Secret) == 0 {
		return cfg, errors.New("relay: empty REST secret")
	}
	if cfg.TLS != "" && (cfg.TLSConfig == nil || (len(cfg.TLSConfig.Certificates) == 0 && cfg.TLSConfig.GetCertificate == nil)) {
		return cfg, errors.New("relay: TLS listener without certificate")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Realm == "" {
		cfg.Realm = defaultRealm
	}
	if cfg.RelayIP == nil {
		ip, err := listenIP(cfg.UDP, cfg.TCP, cfg.TLS)
		if err != nil {
			return cfg, err
		}
		cfg.RelayIP = ip
	}
	if cfg.RelayBindIP == nil {
		cfg.RelayBindIP = bindIPFor(cfg.RelayIP)
	}
	if cfg.MaxAllocations <= 0 {
		cfg.MaxAllocations = DefaultMaxAllocations
	}
	if cfg.MaxAllocationsPerUser <= 0 {
		cfg.MaxAllocationsPerUser = DefaultMaxAllocationsPerUser
	}
	if cfg.MaxAllocationsPerAddress <= 0 {
		cfg.MaxAllocationsPerAddress = DefaultMaxAllocationsPerAddress
	}
	if cfg.AllocationLifetime <= 0 {
		cfg.AllocationLifetime = DefaultAllocationLifetime
	}
	if cfg.MaxTCPConns <= 0 {
		cfg.MaxTCPConns = 4 * cfg.MaxAllocations
	}
	if cfg.TCPIdleTimeout <= 0 {
		cfg.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if cfg.AllowPeer == nil {
		cfg.AllowPeer = defaultAllowPeer(cfg.RelayBindIP.IsLoopback())
	}
	return cfg, nil
}

// listenIP returns the first specific IP among the listen addresses.
func listenIP(addrs ...string) (net.IP, error) {
	for _, a := range addrs {
		if a == "" {
			continue
		}
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("relay: listen address %q: %w", a, err)
		}
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			return ip, nil
		}
	}
	return nil, errors.New("relay: RelayIP is required when listening on all interfaces")
}

// bindIPFor returns relayIP when a local interface owns it, else the
// unspecified address of its family.
func bindIPFor(relayIP net.IP) net.IP {
	if relayIP.IsLoopback() {
		return relayIP
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(relayIP) {
				return relayIP
			}
		}
	}
	if relayIP.To4() != nil {
		return net.IPv4zero
	}
	return net.IPv6unspecified
}

// defaultAllowPeer is the peer policy when Config.AllowPeer is nil.
func defaultAllowPeer(allowLoopback bool) func(net.IP) bool {
	return func(ip net.IP) bool {
		switch {
		case ip.IsUnspecified(), ip.IsMulticast(), ip.Equal(net.IPv4bcast),
			// Link-local covers cloud metadata services (169.254.169.254),
			// never a WebRTC peer reached through a relay.
			ip.IsLinkLocalUnicast():
			return false
		case ip.IsLoopback():
			return allowLoopback
		}
		return true
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}
