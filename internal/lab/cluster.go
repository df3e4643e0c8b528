package lab

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cluster is several real `assist serve` processes (nodes) on loopback
// with HAProxy in front of them, as issue 14 runs them: the nodes share
// the certificate clients pin (and the other secrets of --data, see
// StartCluster), and the caller gives each node the flags that make them
// one service (--store, --bus, --node). Cleanup stops everything, also
// when the test fails half-way.
type Cluster struct {
	// URL is the front (HAProxy), https://127.0.0.1:PORT.
	URL string
	// Fingerprint is the certificate every node presents.
	Fingerprint string
	// Nodes are the nodes, Nodes[i] being HAProxy's backend n(i+1).
	Nodes []*Node
	// Proxy is the HAProxy in front.
	Proxy *HAProxy
	// HealthPath is what HAProxy checks: /readyz when the nodes serve
	// it, else /healthz.
	HealthPath string

	env []string
}

// Node is one `assist serve` of a Cluster.
type Node struct {
	// Name is its HAProxy backend name, n1, n2, ...
	Name string
	// Addr is its own loopback address, HOST:PORT; it keeps it across
	// restarts.
	Addr string
	// URL is https://Addr: a client that must reach this node and no
	// other dials it directly (it presents the cluster's certificate).
	URL string
	// Data is its --data directory.
	Data string

	args []string

	mu   sync.Mutex
	proc *Proc
	fp   string
	ice  []string
}

// ClusterOptions say how StartCluster runs the nodes.
type ClusterOptions struct {
	// Nodes is how many `assist serve` processes run (at least 1).
	Nodes int
	// Args, if set, returns node i's (0-based) own flags. They follow the
	// harness's (--listen, --data, and the embedded TURN off), and a
	// flag given twice takes its last value, so they may override those.
	Args func(i int, n *Node) []string
	// Env is added to every node's environment.
	Env []string
	// HealthPath is what HAProxy checks; empty: /readyz if the first node
	// serves it, else /healthz.
	HealthPath string
	// MaxConn bounds HAProxy's front (default 2,000).
	MaxConn int
	// Host is the address the nodes and HAProxy's front listen on
	// (default 127.0.0.1), e.g. a HostLink's Addr so that a lab's ends
	// reach them.
	Host string
	// SendProxy makes HAProxy open every connection to a node with a
	// PROXY protocol v2 header (send-proxy-v2), which names the client,
	// and connect from ProxySource, so that the nodes can tell it from
	// the harness's own direct connections (from 127.0.0.1, no header):
	// give them --proxy-protocol --proxy-from ProxySource.
	SendProxy bool
}

// ProxySource is the address HAProxy connects to the nodes from with
// ClusterOptions.SendProxy (Linux routes all of 127/8 to lo).
const ProxySource = "127.0.0.2"

var (
	nodeListening   = regexp.MustCompile(`^listening on (https://[0-9.:\[\]a-f]+)$`)
	nodeFingerprint = regexp.MustCompile(`^fingerprint: (sha256:[0-9a-f]{64})$`)
)

// StartCluster builds assist, starts the nodes one after the other, then
// HAProxy, and waits until HAProxy sees every node up.
//
// Node 1 creates the secrets that live in --data (the TLS certificate
// and key, the audit key); the harness copies those files (*.pem, *.key)
// into every other node's --data before starting it, as an operator
// copies them to each machine, and fails if a node then presents another
// certificate.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	Need(t, "haproxy")
	if o.Nodes < 1 {
		t.Fatal("lab: StartCluster needs at least one node")
	}
	bin := AssistBinary(t)
	c := &Cluster{env: o.Env}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	for i := 0; i < o.Nodes; i++ {
		n := &Node{Name: fmt.Sprintf("n%d", i+1), Data: filepath.Join(t.TempDir(), "data")}
		n.Addr = net.JoinHostPort(o.Host, strconv.Itoa(freePort(t)))
		n.URL = "https://" + n.Addr
		n.args = []string{"serve", "--listen", n.Addr, "--data", n.Data, "--turn-listen", "off", "--turns-listen", "off"}
		if o.Args != nil {
			n.args = append(n.args, o.Args(i, n)...)
		}
		if i > 0 {
			copySecrets(t, c.Nodes[0].Data, n.Data)
		}
		n.start(t, bin, o.Env)
		if i == 0 {
			c.Fingerprint = n.Fingerprint()
		} else if fp := n.Fingerprint(); fp != c.Fingerprint {
			t.Fatalf("lab: node %s presents %s, node n1 %s: the nodes must share the certificate", n.Name, fp, c.Fingerprint)
		}
		c.Nodes = append(c.Nodes, n)
	}
	c.HealthPath = o.HealthPath
	if c.HealthPath == "" {
		c.HealthPath = "/healthz"
		if code, _ := c.Nodes[0].Get(t, "/readyz"); code != http.StatusNotFound {
			c.HealthPath = "/readyz"
		}
	}
	var backends []string
	for _, n := range c.Nodes {
		backends = append(backends, n.Addr)
	}
	c.Proxy = StartHAProxy(t, HAProxyOptions{Backends: backends, HealthPath: c.HealthPath, MaxConn: o.MaxConn, SendProxy: o.SendProxy, Source: proxySource(o.SendProxy), FrontHost: o.Host})
	c.URL = "https://" + c.Proxy.Addr
	for _, n := range c.Nodes {
		c.Proxy.WaitBackend(t, n.Name, true, 30*time.Second)
	}
	return c
}

func proxySource(send bool) string {
	if send {
		return ProxySource
	}
	return ""
}

// copySecrets copies the files of --data that every node must share
// (certificate, keys) from one node's directory to another's.
func copySecrets(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatalf("lab: %v", err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || (!strings.HasSuffix(e.Name(), ".pem") && !strings.HasSuffix(e.Name(), ".key")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatalf("lab: %v", err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatalf("lab: %v", err)
		}
	}
}

// start runs the node and waits for its "listening on" and "fingerprint:"
// lines and for /healthz to answer.
func (n *Node) start(t testing.TB, bin string, env []string) {
	t.Helper()
	p := newProc(env, bin, n.args...)
	stdout, err := p.Cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("lab: node %s: %v", n.Name, err)
	}
	p.Cmd.Stderr = &p.out
	if err := p.start(); err != nil {
		t.Fatalf("lab: start node %s: %v", n.Name, err)
	}
	t.Cleanup(p.Stop)
	type seen struct{ url, fp string }
	first := make(chan seen, 1)
	go func() {
		// Reads stdout to its end (the process's exit), so the node
		// never blocks on a full pipe; ends with the process.
		sc := bufio.NewScanner(stdout)
		var s seen
		sent := false
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			fmt.Fprintln(&p.out, l)
			if m := nodeListening.FindStringSubmatch(l); m != nil {
				s.url = m[1]
			}
			if m := nodeFingerprint.FindStringSubmatch(l); m != nil {
				s.fp = m[1]
			}
			if ice, ok := strings.CutPrefix(l, "ice: "); ok {
				n.mu.Lock()
				n.ice = strings.Fields(ice)
				n.mu.Unlock()
			}
			if !sent && s.url != "" && s.fp != "" {
				first <- s
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		if !sent {
			close(first)
		}
	}()
	var s seen
	var ok bool
	select {
	case s, ok = <-first:
		if !ok {
			<-p.done
			t.Fatalf("lab: node %s exited (%v) before printing its address: %s", n.Name, p.waitErr, p.Output())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("lab: node %s printed no address in 60 s: %s", n.Name, p.Output())
	}
	if s.url != n.URL {
		t.Fatalf("lab: node %s listens on %s, want %s", n.Name, s.url, n.URL)
	}
	n.mu.Lock()
	n.proc, n.fp = p, s.fp
	n.mu.Unlock()
	if !waitFor(30*time.Second, func() bool {
		code, err := n.get("/healthz")
		return err == nil && code == http.StatusOK
	}) {
		t.Fatalf("lab: node %s: /healthz did not answer 200 in 30 s: %s", n.Name, p.Output())
	}
}

// Fingerprint is the certificate fingerprint the node printed.
func (n *Node) Fingerprint() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fp
}

// ICE is the node's "ice:" line (empty with the embedded relay off).
func (n *Node) ICE() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.ice...)
}

// Output is what the node printed so far: stdout and its log (stderr).
func (n *Node) Output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc.Output()
}

// Pid is the node's process id.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc.Cmd.Process.Pid
}

// Running reports whether the node's process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	exited, _ := n.proc.Exited()
	return !exited
}

// Get fetches path from this node directly, pinned to its certificate,
// and returns the status and body.
func (n *Node) Get(t testing.TB, path string) (int, string) {
	t.Helper()
	return getPinnedURL(t, n.URL+path, n.Fingerprint())
}

func (n *Node) get(path string) (int, error) {
	code, _, err := GetPinned(n.URL+path, n.Fingerprint())
	return code, err
}

// Get fetches path through HAProxy, pinned to the cluster's certificate.
func (c *Cluster) Get(t testing.TB, path string) (int, string) {
	t.Helper()
	return getPinnedURL(t, c.URL+path, c.Fingerprint)
}

func getPinnedURL(t testing.TB, url, fp string) (int, string) {
	t.Helper()
	code, body, err := GetPinned(url, fp)
	if err != nil {
		t.Fatalf("lab: GET %s: %v", url, err)
	}
	return code, body
}

// Kill ends node i at once (SIGKILL to its process group), as a crash or
// a pulled plug would, and waits until it is gone.
func (c *Cluster) Kill(t testing.TB, i int) {
	t.Helper()
	n := c.Nodes[i]
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	if _, ok := p.Wait(20 * time.Second); !ok {
		t.Fatalf("lab: node %s still running 20 s after SIGKILL", n.Name)
	}
}

// Stop sends node i SIGTERM (a graceful drain) and waits up to d for it
// to exit; it returns the exit error (nil for status 0) and fails the
// test if the node is still running after d.
func (c *Cluster) Stop(t testing.TB, i int, d time.Duration) error {
	t.Helper()
	n := c.Nodes[i]
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("lab: SIGTERM to node %s: %v", n.Name, err)
	}
	err, ok := p.Wait(d)
	if !ok {
		t.Fatalf("lab: node %s still running %v after SIGTERM: %s", n.Name, d, p.Output())
	}
	return err
}

// Restart starts node i again, on the same address with the same flags
// and --data, after a Kill or Stop, and waits until HAProxy sees it up.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	n := c.Nodes[i]
	if n.Running() {
		t.Fatalf("lab: Restart of node %s, which is running", n.Name)
	}
	n.mu.Lock()
	old := n.proc
	n.mu.Unlock()
	old.Stop() // whatever it left in its process group
	n.start(t, AssistBinary(t), c.env)
	if fp := n.Fingerprint(); fp != c.Fingerprint {
		t.Fatalf("lab: node %s came back with certificate %s, want %s", n.Name, fp, c.Fingerprint)
	}
	c.Proxy.WaitBackend(t, n.Name, true, 30*time.Second)
}
