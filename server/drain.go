package server

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/coder/websocket"
)

// Drain starts taking this server out of a load balancer's rotation:
// from now on GET /readyz answers 503 and new signalling connections are
// refused (HTTP 503), while connected clients carry on. After the load
// balancer has noticed (its check interval), Disconnect sends them
// elsewhere. GET /healthz is unchanged: the process is still up.
func (s *Server) Drain() {
	s.mu.Lock()
	already := s.draining
	s.draining = true
	s.mu.Unlock()
	if !already {
		s.log.Info("draining: not ready, refusing new signalling connections")
	}
}

// drainReason closes clients at Disconnect: WebSocket status 1001 (going
// away) tells them to connect again, and the load balancer picks a node
// that is ready.
const drainReason = "server shutting down: connect again"

// Disconnect closes every signalling client with status 1001 ("going
// away"), so that each connects again, through the load balancer, to
// another node: novices register again, waiting experts join again.
// Sessions already set up between a novice and an expert do not depend
// on the server and go on. Other nodes' experts handled here are told the
// same through their node.
func (s *Server) Disconnect() {
	s.mu.Lock()
	n := len(s.clients)
	for c := range s.clients {
		c.closeWith(websocket.StatusGoingAway, drainReason)
	}
	if s.mesh != nil {
		for _, rc := range s.mesh.remotes {
			rc.closeWith(websocket.StatusGoingAway, drainReason)
		}
	}
	s.mu.Unlock()
	s.log.Info("draining: told the connected clients to connect again", "count", n)
}

// serveReady answers GET /readyz for a load balancer: 200 when this node
// should get new clients (the store and the mesh answer, every
// ReadyChecks passes, and it is not draining), 503 naming what fails.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	s.mu.Lock()
	draining := s.draining || s.closed
	s.mu.Unlock()
	if draining {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]func(context.Context) error{"store": s.cfg.Store.Ping}
	if s.cfg.Mesh != nil {
		checks["bus"] = s.cfg.Mesh.Ready
	}
	for name, f := range s.cfg.ReadyChecks {
		checks[name] = f
	}
	names := make([]string, 0, len(checks))
	for name := range checks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := checks[name](ctx); err != nil {
			s.log.Warn("not ready", "check", name, "err", err)
			http.Error(w, name+" unavailable", http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}
