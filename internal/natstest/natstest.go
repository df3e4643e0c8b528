// Package natstest runs real NATS servers for tests: the nats-server
// module started in the test's process, with JetStream, on loopback, one
// alone or several as a cluster. Debian's nats-server (2.9) lacks the
// per-key TTLs the bus needs, so tests use the module instead.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

// readyTimeout bounds a server's start and a cluster's first leader.
const readyTimeout = 30 * time.Second

// Server is one running NATS server. URL stays the same across Restart.
type Server struct {
	URL  string
	opts *server.Options
	srv  *server.Server
}

// Start runs one NATS server with JetStream until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	opts := baseOptions(t, "assist-test-0")
	s := &Server{opts: opts}
	s.start(t)
	t.Cleanup(s.Stop)
	return s
}

// Cluster runs n NATS servers routed to each other as one JetStream
// cluster, and waits until JetStream has a leader.
func Cluster(t testing.TB, n int) []*Server {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	servers := make([]*Server, n)
	for i := range servers {
		opts := baseOptions(t, fmt.Sprintf("assist-test-%d", i))
		opts.Cluster = server.ClusterOpts{Name: "assist-test", Host: "127.0.0.1", Port: ports[i]}
		for j, p := range ports {
			if j != i {
				opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
			}
		}
		servers[i] = &Server{opts: opts}
	}
	for _, s := range servers {
		s.start(t)
		t.Cleanup(s.Stop)
	}
	WaitJetStream(t, servers[0].URL)
	return servers
}

// WaitJetStream waits until the JetStream at url answers (in a cluster:
// until it has a meta leader).
func WaitJetStream(t testing.TB, url string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", url, err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		_, err := js.AccountInfo()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: JetStream at %s not ready after %v: %v", url, readyTimeout, err)
		}
		// No event tells a client that a leader was elected; poll.
		time.Sleep(50 * time.Millisecond)
	}
}

func baseOptions(t testing.TB, name string) *server.Options {
	return &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       freePort(t),
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoSigs:     true,
		NoLog:      true,
	}
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	srv, err := server.NewServer(s.opts)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		t.Fatalf("natstest: server %s not ready after %v", s.opts.ServerName, readyTimeout)
	}
	s.srv = srv
	s.URL = srv.ClientURL()
}

// Stop shuts the server down and waits for it; stopping a stopped server
// does nothing.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Name is the server's name, as JetStream names a stream's leader.
func (s *Server) Name() string { return s.opts.ServerName }

// Clients is how many client connections the server has (0 when stopped).
func (s *Server) Clients() int {
	if s.srv == nil {
		return 0
	}
	return s.srv.NumClients()
}

// Restart stops the server and starts it again on the same ports with the
// same JetStream store, as an operator's restart would.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}

// freePort returns a loopback TCP port that was free a moment ago. The
// nats-server picks its own with -1, but a cluster's routes and a restart
// need the port before the server exists.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// LeakOptions are the goleak options for a package whose tests run NATS
// servers: the nats-server module keeps a process-wide clock goroutine,
// and a file store's flush loop ends a moment after its server.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
	}
}
