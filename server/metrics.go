package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, in a registry of its own so
// several servers (tests) can live in one process.
type metrics struct {
	reg             *prometheus.Registry
	conns           *prometheus.GaugeVec
	sessions        prometheus.Gauge
	pairings        prometheus.Counter
	relayedBytes    prometheus.Counter
	relayedMessages prometheus.Counter
	failedAuth      prometheus.Counter
	errors          *prometheus.CounterVec
	queued          prometheus.Gauge
	refused         *prometheus.CounterVec
	remote          prometheus.Gauge
}

// Roles of a signalling connection, as the "role" label of
// assist_signal_connections.
const (
	rolePending = "pending" // neither registered nor joined yet
	roleNovice  = "novice"
	roleExpert  = "expert"
)

// newMetrics returns the metrics, labelled node="NAME" unless node is "".
func newMetrics(node string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "assist_signal_connections",
			Help: "Connected signalling clients by role: novice (registered an invitation), expert (joined one) or pending.",
		}, []string{"role"}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "assist_sessions",
			Help: "Novice-expert pairs currently paired.",
		}),
		pairings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "assist_pairings_total",
			Help: "Pairings made since the server started.",
		}),
		relayedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "assist_relayed_signal_bytes_total",
			Help: "Bytes of relay message data forwarded between peers.",
		}),
		relayedMessages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "assist_relayed_signal_messages_total",
			Help: "Relay messages forwarded between peers.",
		}),
		failedAuth: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "assist_failed_authentications_total",
			Help: "Pairings ended with bye reason \"auth-failed\": the clients' PAKE failed (the server cannot see it otherwise).",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assist_signal_errors_total",
			Help: "Error messages sent to signalling clients, by code.",
		}, []string{"code"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "assist_queued_experts",
			Help: "Experts waiting in line for a novice who is paired with another expert.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assist_signal_refused_connections_total",
			Help: "Signalling connections refused before the WebSocket upgrade: per-address (HTTP 429, Config.MaxConnsPerAddress), server-full or draining (HTTP 503, Server.Drain).",
		}, []string{"reason"}),
		remote: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "assist_signal_remote_clients",
			Help: "Experts connected to another node whose signalling that node forwards here, the invitation's home (also counted in assist_signal_connections).",
		}),
	}
	for _, r := range []string{"per-address", "server-full", "draining"} {
		m.refused.WithLabelValues(r)
	}
	for _, r := range []string{rolePending, roleNovice, roleExpert} {
		m.conns.WithLabelValues(r)
	}
	var reg prometheus.Registerer = m.reg
	if node != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"node": node}, m.reg)
	}
	reg.MustRegister(m.conns, m.sessions, m.pairings, m.relayedBytes, m.relayedMessages, m.failedAuth, m.errors, m.queued, m.refused, m.remote,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
