package lab

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"
)

// HAProxy is Debian's haproxy in front of several backends, as an
// operator would put it in front of several `assist serve` nodes: TCP mode
// (TLS passes through, so every node presents the certificate clients
// pin, and WebSockets are just bytes), round robin, health checks over
// HTTPS on a path of the nodes, and a failed connection to a backend
// retried on another. It listens on a free loopback port.
type HAProxy struct {
	// Addr is the front's loopback address, HOST:PORT.
	Addr string
	// Backends are the backends' names in the stats, in the order given.
	Backends []string

	sock string
	proc *Proc
}

// HAProxyOptions say what StartHAProxy puts behind the front.
type HAProxyOptions struct {
	// Backends are the nodes' loopback addresses, HOST:PORT; the stats
	// name them n1, n2, ... in this order.
	Backends []string
	// HealthPath is the HTTPS path a backend must answer with 200 to take
	// connections, e.g. /readyz.
	HealthPath string
	// MaxConn bounds the front's connections (default 2,000; HAProxy needs two descriptors for each).
	MaxConn int
	// SendProxy opens every connection to a backend, health checks too,
	// with a PROXY protocol v2 header naming the client (send-proxy-v2).
	SendProxy bool
	// FrontHost is the address the front listens on (default 127.0.0.1).
	FrontHost string
	// Source is the address HAProxy connects to the backends from, e.g.
	// ProxySource; empty: the kernel's choice.
	Source string
}

// haproxyConfig is the configuration StartHAProxy writes. The checks are
// fast (every 500 ms, two failures mark a node down, two successes up)
// so that tests of a lost node run in seconds; an operator would use the
// defaults (2 s). Timeouts are long because a signalling or messenger
// connection lives as long as its client, and the nodes ping their
// clients themselves.
var haproxyConfig = template.Must(template.New("haproxy").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(`global
    stats socket {{.Sock}} mode 600 level admin
    maxconn {{.MaxConn}}
    nbthread 1

defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout check 2s
    retries 2
    option redispatch

frontend assist
    bind {{.Front}}
    default_backend nodes

backend nodes
    balance roundrobin
{{- if .Source}}
    source {{.Source}}
{{- end}}
    option httpchk
    http-check send meth GET uri {{.Health}} ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server check check-ssl verify none inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2
{{- range $i, $b := .Backends}}
    server n{{inc $i}} {{$b}}{{if $.SendProxy}} send-proxy-v2{{end}}
{{- end}}
`))

// StartHAProxy runs haproxy in front of the backends and waits until it
// answers on its stats socket (not until the backends are up: see
// WaitBackend). Cleanup stops it.
func StartHAProxy(t testing.TB, o HAProxyOptions) *HAProxy {
	t.Helper()
	Need(t, "haproxy")
	if len(o.Backends) == 0 || o.HealthPath == "" {
		t.Fatal("lab: StartHAProxy needs backends and a health path")
	}
	if o.MaxConn == 0 {
		o.MaxConn = 2000
	}
	dir := t.TempDir()
	if o.FrontHost == "" {
		o.FrontHost = "127.0.0.1"
	}
	h := &HAProxy{Addr: net.JoinHostPort(o.FrontHost, strconv.Itoa(freePort(t))), sock: filepath.Join(dir, "stats.sock")}
	for i := range o.Backends {
		h.Backends = append(h.Backends, fmt.Sprintf("n%d", i+1))
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	f, err := os.Create(cfg)
	if err != nil {
		t.Fatalf("lab: haproxy config: %v", err)
	}
	err = haproxyConfig.Execute(f, map[string]any{
		"Sock": h.sock, "MaxConn": o.MaxConn, "Front": h.Addr, "Health": o.HealthPath, "Backends": o.Backends, "SendProxy": o.SendProxy, "Source": o.Source})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("lab: haproxy config: %v", err)
	}
	// -db: stay in the foreground, so the harness owns the process.
	h.proc = Start(t, nil, "haproxy", "-db", "-f", cfg)
	if !waitFor(20*time.Second, func() bool {
		if exited, _ := h.proc.Exited(); exited {
			return true
		}
		_, err := h.command("show info")
		return err == nil
	}) {
		t.Fatalf("lab: haproxy's stats socket did not answer in 20 s: %s", h.proc.Output())
	}
	if exited, err := h.proc.Exited(); exited {
		t.Fatalf("lab: haproxy exited (%v): %s", err, h.proc.Output())
	}
	return h
}

// Output is what haproxy printed (warnings, alerts).
func (h *HAProxy) Output() string { return h.proc.Output() }

// command sends one command to the stats socket and returns the answer.
func (h *HAProxy) command(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", h.sock, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(bufio.NewReader(c))
	return string(b), err
}

// BackendStat is one backend as HAProxy sees it.
type BackendStat struct {
	Name string
	// Status is HAProxy's: "UP", "DOWN", "UP 1/2" (going down), "DOWN
	// 1/2" (coming up), "MAINT", "no check".
	Status string
	// Current is the connections open now, Total all it was given.
	Current, Total int
}

// Stats reads the backends' states from the stats socket.
func (h *HAProxy) Stats(t testing.TB) map[string]BackendStat {
	t.Helper()
	out, err := h.command("show stat")
	if err != nil {
		t.Fatalf("lab: haproxy show stat: %v", err)
	}
	st, err := parseHAProxyStat(out)
	if err != nil {
		t.Fatalf("lab: haproxy show stat: %v\n%s", err, out)
	}
	return st
}

// parseHAProxyStat reads the servers of backend "nodes" from "show stat"
// CSV (the header line starts with "# ").
func parseHAProxyStat(out string) (map[string]BackendStat, error) {
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no header")
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, name := range []string{"pxname", "svname", "scur", "stot", "status"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("no column %q", name)
		}
	}
	st := map[string]BackendStat{}
	for _, row := range rows[1:] {
		if len(row) < len(rows[0]) || row[col["pxname"]] != "nodes" {
			continue
		}
		name := row[col["svname"]]
		if name == "BACKEND" || name == "FRONTEND" {
			continue
		}
		cur, err1 := strconv.Atoi(row[col["scur"]])
		tot, err2 := strconv.Atoi(row[col["stot"]])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("server %s: scur %q, stot %q", name, row[col["scur"]], row[col["stot"]])
		}
		st[name] = BackendStat{Name: name, Status: row[col["status"]], Current: cur, Total: tot}
	}
	return st, nil
}

// WaitBackend waits up to d until HAProxy's health checks see backend
// name up (status "UP") or down (status "DOWN"), and fails the test
// otherwise. Its stats are the signal: they change when a check does.
func (h *HAProxy) WaitBackend(t testing.TB, name string, up bool, d time.Duration) {
	t.Helper()
	want := "DOWN"
	if up {
		want = "UP"
	}
	var last BackendStat
	if !waitFor(d, func() bool {
		last = h.Stats(t)[name]
		return last.Status == want
	}) {
		t.Fatalf("lab: haproxy: backend %s is %q after %v, want %s; haproxy: %s", name, last.Status, d, want, h.proc.Output())
	}
}
