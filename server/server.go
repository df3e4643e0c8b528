package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	// ExpiredGrace is how long an expired invitation is kept so joins get
	// "expired" rather than "unknown"; default 24 h.
	ExpiredGrace time.Duration
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
	// PingInterval is how often idle connections are pinged, so a vanished
	// peer is noticed; default 30 s.
	PingInterval time.Duration
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

	ctx    context.Context // cancelled by Close, after the last connection
	cancel context.CancelFunc
	conns  sync.WaitGroup // connection handlers
	bg     sync.WaitGroup // the pruner

	mu       sync.Mutex
	closed   bool
	clients  map[*client]struct{}
	novices  map[string]*client // invitation id -> its connected novice
	sessions map[string]*pairing
}

// pairing is a paired novice and expert.
type pairing struct {
	novice, expert *client
}

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
		metrics:  newMetrics(),
		clients:  make(map[*client]struct{}),
		novices:  make(map[string]*client),
		sessions: make(map[string]*pairing),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v1/signal", s.serveSignal)
	s.mux.HandleFunc("GET /v1/ice", s.serveICE)
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	if cfg.App != nil {
		s.mux.Handle("/", cfg.App)
	}
	s.bg.Add(1)
	go s.prune()
	return s, nil
}

// ice returns the ICE servers for a session, with fresh TURN credentials.
func (s *Server) ice(session string) []ICEServer {
	return iceServers(s.cfg.ICEServers, s.secret, session, s.cfg.Now().Add(s.cfg.CredentialTTL))
}

// TURNSecret returns the TURN REST shared secret in use, for an embedded
// relay that must accept the credentials this server hands out.
func (s *Server) TURNSecret() string { return s.secret }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

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
	s.mu.Unlock()
	// Handlers finish what they were doing (a store write, say) first.
	s.conns.Wait()
	s.cancel()
	s.bg.Wait()
	return nil
}

// prune forgets long-expired invitations and old audit events, hourly.
func (s *Server) prune() {
	defer s.bg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		now := s.cfg.Now()
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		n, err := s.cfg.Store.DeleteExpired(ctx, now.Add(-s.cfg.ExpiredGrace), now.Add(-s.cfg.AuditRetention))
		cancel()
		switch {
		case err != nil && s.ctx.Err() == nil:
			s.log.Warn("pruning the store", "err", err)
		case n > 0:
			s.log.Info("forgot expired invitations", "count", n)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
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
func (s *Server) serveICE(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("session")
	s.mu.Lock()
	p := s.sessions[id]
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	if id == "" || p == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// Fresh credentials on each call, so a session outliving them (an ICE
	// restart hours later) can renew them.
	_ = json.NewEncoder(w).Encode(iceResponse{ICE: s.ice(id), TTL: int64(s.cfg.CredentialTTL / time.Second)})
}
