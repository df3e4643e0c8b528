package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assist-project/assist/internal/ratelimit"
)

// Config configures a Server. Only Store is required.
type Config struct {
	// Store keeps invitations, the TURN secret and the audit log.
	Store Store
	// ICEServers are the STUN and TURN URLs handed to paired clients, e.g.
	// "stun:relay.example.org:3478", "turn:relay.example.org:3478?transport=udp",
	// "turns:relay.example.org:443?transport=tcp". TURN URLs get REST
	// credentials (see TURNCredentials).
	ICEServers []string
	// TURNSecret is the TURN REST shared secret, e.g. an external coturn's
	// static-auth-secret. Empty: the store's own (Store.TURNSecret).
	TURNSecret string
	// CredentialTTL is how long TURN credentials stay valid; default 1 h.
	CredentialTTL time.Duration
	// MaxInvitationTTL bounds a registration's "expires"; default 7 days.
	MaxInvitationTTL time.Duration
	// ExpiredGrace is how long an expired invitation is kept in the store
	// (joins get "unknown" for it all the same); default 24 h.
	ExpiredGrace time.Duration
	// UnconnectedTTL is how long an invitation whose novice is not
	// connected is kept (to within the pruner's minute: between
	// UnconnectedTTL and one minute more); default 10 min. Invitations
	// stored before a restart count as unconnected from the server's
	// start.
	UnconnectedTTL time.Duration
	// AuditRetention is how long audit events are kept; default 90 days.
	AuditRetention time.Duration
	// MaxMessageBytes bounds one signalling message; default 64 KiB.
	MaxMessageBytes int
	// MessageRate and MessageBurst limit each connection's messages (a
	// token bucket); defaults 50/s and 200. ByteRate and ByteBurst limit
	// its bytes; defaults 256 KiB/s and 1 MiB.
	MessageRate  float64
	MessageBurst int
	ByteRate     float64
	ByteBurst    int
	// MaxConns bounds concurrent signalling connections; default 10000.
	MaxConns int

	// Limits per client address: an IPv4 address, or an IPv6 /64, as
	// the connection comes from (no X-Forwarded-For: a reverse proxy in
	// front makes every client one address). See addrlimit.go.
	//
	// MaxConnsPerAddress bounds one address's concurrent signalling
	// connections; beyond it, HTTP 429 before the upgrade. Default 64.
	MaxConnsPerAddress int
	// PendingTimeout is how long a connection may stay without
	// registering, pairing or waiting in line; then it is closed (status
	// 1008). Default 10 s.
	PendingTimeout time.Duration
	// RegisterBurst and RegisterEvery: an address may register
	// RegisterBurst invitations at once, then one per RegisterEvery;
	// defaults 10 and 1 min. MaxNovicesPerAddress bounds its live
	// registered novices; default 20. Beyond: error "too-many".
	RegisterBurst        int
	RegisterEvery        time.Duration
	MaxNovicesPerAddress int
	// JoinMissBurst and JoinMissEvery bound the joins of an address that
	// find no live invitation: JoinMissBurst at once, then one per
	// JoinMissEvery (defaults 10 and 6 s). Once they are spent, every join
	// of the address is refused ("too-many") before anything is looked
	// up. JoinBurst and JoinEvery bound all its joins, hits included
	// (defaults 30 and 1 s).
	JoinMissBurst int
	JoinMissEvery time.Duration
	JoinBurst     int
	JoinEvery     time.Duration
	// MaxQueue bounds the experts waiting in line for one invitation
	// while its novice is paired (default 8); QueueTimeout is how long
	// one waits at most before "busy" (default 60 s).
	MaxQueue     int
	QueueTimeout time.Duration
	// ExpertDeadline is how soon after "paired" the expert must send its
	// first relay message, or the pairing is ended ("bye" to both) and the
	// next in line is paired; default 5 s.
	ExpertDeadline time.Duration
	// MaxRelaysPerAddress bounds the live pairings with TURN credentials
	// that one address may be party to; beyond it, and for a novice and
	// an expert on the same address, pairings get STUN servers only.
	// Default 4.
	MaxRelaysPerAddress int
	// MetricsPublic serves /metrics to everyone; by default only to
	// loopback clients.
	MetricsPublic bool

	// PingInterval is how often idle connections are pinged, so a vanished
	// peer is noticed; default 30 s.
	PingInterval time.Duration
	// Node names this server among several behind a load balancer: it
	// labels every metric (node="NAME") and the logs. Default: the
	// Mesh's node name, or none.
	Node string
	// ReadyChecks are further checks of GET /readyz besides the store
	// and the Mesh (e.g. the messenger's bus), by what they check.
	ReadyChecks map[string]func(context.Context) error
	// Mesh, if set, joins this server to others behind one load
	// balancer (see Mesh); nil: a single node.
	Mesh Mesh
	// App, if set, serves every path the server does not (the web app).
	App http.Handler
	// Logger gets structured logs; default slog.Default(). Relay payloads
	// are never logged.
	Logger *slog.Logger
	// Now is the clock; default time.Now. For tests.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.CredentialTTL, time.Hour)
	def(&c.MaxInvitationTTL, 7*24*time.Hour)
	def(&c.ExpiredGrace, 24*time.Hour)
	def(&c.AuditRetention, 90*24*time.Hour)
	def(&c.PingInterval, 30*time.Second)
	def(&c.UnconnectedTTL, 10*time.Minute)
	def(&c.PendingTimeout, 10*time.Second)
	def(&c.RegisterEvery, time.Minute)
	def(&c.JoinMissEvery, 6*time.Second)
	def(&c.JoinEvery, time.Second)
	def(&c.QueueTimeout, time.Minute)
	def(&c.ExpertDeadline, 5*time.Second)
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defInt(&c.MaxConnsPerAddress, 64)
	defInt(&c.RegisterBurst, 10)
	defInt(&c.MaxNovicesPerAddress, 20)
	defInt(&c.JoinMissBurst, 10)
	defInt(&c.JoinBurst, 30)
	defInt(&c.MaxQueue, 8)
	defInt(&c.MaxRelaysPerAddress, 4)
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 64 << 10
	}
	if c.MessageRate <= 0 {
		c.MessageRate = 50
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = 200
	}
	if c.ByteRate <= 0 {
		c.ByteRate = 256 << 10
	}
	if c.ByteBurst < c.MaxMessageBytes {
		c.ByteBurst = max(1<<20, c.MaxMessageBytes)
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Server is the rendezvous server: an http.Handler for the endpoints in
// the package documentation. Close it to disconnect every client.
type Server struct {
	cfg     Config
	log     *slog.Logger
	secret  string
	metrics *metrics
	mux     *http.ServeMux
	limits  *addrLimits
	started time.Time // by cfg.Now: invitations stored before count as unconnected from then

	ctx    context.Context // cancelled by Close, after the last connection
	cancel context.CancelFunc
	conns  sync.WaitGroup // connection handlers
	bg     sync.WaitGroup // the pruner

	mu     sync.Mutex
	closed bool
	// draining: Drain was called; readiness is off and new signalling
	// connections are refused.
	draining bool
	clients  map[*client]struct{}
	novices  map[string]*client // invitation id -> its connected novice
	sessions map[string]*pairing
	// queues holds, per invitation id, the experts waiting in line while
	// its novice is paired (or away), oldest first.
	queues map[string][]*client
	// mesh is the state of the links with other nodes; nil without
	// Config.Mesh.
	mesh *meshState
	// connsHigh is the most connections since the pruner last looked, to
	// give memory back after many closed (see freeMemory).
	connsHigh int
	freeMu    sync.Mutex // serialises freeMemory
}

// pairing is a paired novice and expert.
type pairing struct {
	id             string // the invitation's
	session        string
	novice, expert *client
	// turn: the pairing got TURN credentials, and counts against both
	// addresses' MaxRelaysPerAddress until it ends.
	turn bool
	// expertSent: the expert sent its first relay message in time.
	expertSent bool
}

// pruneEvery is how often the pruner forgets unconnected and expired
// invitations, idle addresses, and gives memory back.
const pruneEvery = time.Minute

// freeMemoryDrop is the fall in connections since the pruner last looked
// past which it returns freed memory to the operating system at once:
// after a flood the Go runtime would otherwise keep it for minutes.
const freeMemoryDrop = 500

// New returns a server using cfg. It reads the TURN secret from the store
// when cfg has none, and starts pruning expired invitations.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is nil")
	}
	for _, u := range cfg.ICEServers {
		if err := ValidateICEURL(u); err != nil {
			return nil, err
		}
	}
	cfg.setDefaults()
	if cfg.Node == "" && cfg.Mesh != nil {
		cfg.Node = cfg.Mesh.Node()
	}
	if cfg.Node != "" {
		cfg.Logger = cfg.Logger.With("node", cfg.Node)
	}
	secret := cfg.TURNSecret
	if secret == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		secret, err = cfg.Store.TURNSecret(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		secret:   secret,
		metrics:  newMetrics(cfg.Node),
		started:  cfg.Now(),
		clients:  make(map[*client]struct{}),
		novices:  make(map[string]*client),
		sessions: make(map[string]*pairing),
		queues:   make(map[string][]*client),
	}
	s.limits = newAddrLimits(&s.cfg)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.Mesh != nil {
		ms, err := newMeshState()
		if err != nil {
			return nil, err
		}
		s.mesh = ms
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v1/signal", s.serveSignal)
	s.mux.HandleFunc("GET /v1/ice", s.serveICE)
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	s.mux.Handle("GET /metrics", s.metricsGuard(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})))
	if cfg.App != nil {
		s.mux.Handle("/", cfg.App)
	}
	s.bg.Add(1)
	go s.prune()
	if cfg.Mesh != nil {
		if err := s.startMesh(); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// ice returns the ICE servers for a session: with fresh TURN credentials
// if it is allowed them, else the STUN servers only.
func (s *Server) ice(session string, turn bool) []ICEServer {
	return iceServers(s.cfg.ICEServers, s.secret, session, s.cfg.Now().Add(s.cfg.CredentialTTL), turn)
}

// TURNSecret returns the TURN REST shared secret in use, for an embedded
// relay that must accept the credentials this server hands out.
func (s *Server) TURNSecret() string { return s.secret }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS != nil {
		// The web app must never be loaded over plain HTTP, where anyone
		// on the way could change its code.
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
	}
	s.mux.ServeHTTP(w, r)
}

// metricsGuard serves /metrics to loopback clients only, unless
// Config.MetricsPublic: the numbers tell an attacker how busy the server is
// and whether their flood works.
func (s *Server) metricsGuard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.MetricsPublic && !ratelimit.RemoteAddr(r.RemoteAddr).IsLoopback() {
			http.Error(w, "metrics are served to loopback clients only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Close disconnects every signalling client (status 1001, "server shutting
// down"), stops background work and waits for it. It does not close the
// store. Handlers for requests still arriving refuse new connections.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.clients {
		c.closeWith(websocket.StatusGoingAway, "server shutting down")
	}
	var stopMesh func()
	if s.mesh != nil {
		// Other nodes' experts handled here are told to connect again.
		for _, rc := range s.mesh.remotes {
			rc.closeWith(websocket.StatusGoingAway, "server shutting down")
		}
		stopMesh = s.mesh.stop
	}
	s.mu.Unlock()
	if stopMesh != nil {
		stopMesh()
	}
	// Handlers finish what they were doing (a store write, say) first.
	s.conns.Wait()
	s.cancel()
	s.bg.Wait()
	return nil
}

// prune runs pruneOnce at start and every pruneEvery until Close.
func (s *Server) prune() {
	defer s.bg.Done()
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		s.pruneOnce(s.ctx)
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneOnce forgets long-expired invitations, invitations whose novice has
// not been connected for UnconnectedTTL, old audit events and idle
// addresses, and gives memory back after many connections closed.
func (s *Server) pruneOnce(ctx context.Context) {
	now := s.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	warn := func(what string, err error) {
		if err != nil && ctx.Err() == nil {
			s.log.Warn("pruning the store: "+what, "err", err)
		}
	}
	n, err := s.cfg.Store.DeleteExpired(ctx, now.Add(-s.cfg.ExpiredGrace), now.Add(-s.cfg.AuditRetention))
	warn("expired invitations", err)
	if n > 0 {
		s.log.Info("forgot expired invitations", "count", n)
	}
	s.mu.Lock()
	live := make([]string, 0, len(s.novices))
	for id := range s.novices {
		live = append(live, id)
	}
	s.mu.Unlock()
	// Connected novices are seen now, so the sweep below spares them.
	warn("connected invitations", s.cfg.Store.Seen(ctx, live, now))
	// A novice was last seen connected at most pruneEvery before it
	// left, so the cutoff allows that much more. An invitation last seen
	// before the start has been unconnected since the start at least: its
	// novice may be reconnecting.
	if cutoff := now.Add(-s.cfg.UnconnectedTTL - pruneEvery); !cutoff.Before(s.started) {
		n, err := s.cfg.Store.DeleteUnseen(ctx, cutoff)
		warn("unconnected invitations", err)
		if n > 0 {
			s.log.Info("forgot invitations whose agent left", "count", n, "after", s.cfg.UnconnectedTTL)
		}
	}
	s.limits.sweep(now)
	s.freeMemory()
}

// freeMemory returns memory to the operating system when the connections
// fell by freeMemoryDrop or more since the last call: a flood of idle
// connections leaves hundreds of megabytes that the runtime would
// otherwise hand back only slowly.
func (s *Server) freeMemory() {
	// One at a time, the log line included: the pruner's first run and a
	// direct call (a test) would otherwise race, one taking the drop and
	// logging after the other returned.
	s.freeMu.Lock()
	defer s.freeMu.Unlock()
	s.mu.Lock()
	cur := len(s.clients)
	drop := s.connsHigh - cur
	s.connsHigh = cur
	s.mu.Unlock()
	if drop >= freeMemoryDrop {
		debug.FreeOSMemory()
		s.log.Debug("returned memory to the system", "connections_closed", drop)
	}
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.log.Error("health check", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// iceResponse is the body of GET /v1/ice.
type iceResponse struct {
	ICE []ICEServer `json:"ice"`
	TTL int64       `json:"ttl"` // seconds the TURN credentials remain valid
}

// serveICE returns a live session's ICE servers. The session id, 128
// random bits known only to the two paired clients, is the authorisation.
// A session that got no TURN credentials with "paired" gets none here
// either.
func (s *Server) serveICE(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("session")
	s.mu.Lock()
	p := s.sessions[id]
	turn := p != nil && p.turn
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	if id != "" && p == nil && s.cfg.Mesh != nil {
		if b := s.remoteICE(r.Context(), id); b != nil {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
			return
		}
	}
	if id == "" || p == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// Fresh credentials on each call, so a session outliving them (an ICE
	// restart hours later) can renew them.
	_ = json.NewEncoder(w).Encode(iceResponse{ICE: s.ice(id, turn), TTL: int64(s.cfg.CredentialTTL / time.Second)})
}
