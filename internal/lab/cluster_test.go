package lab

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/server"
)

func TestMain(m *testing.M) {
	os.Exit(Main(m))
}

// TestCluster checks the harness with today's single-node serve: two
// nodes behind HAProxy share one certificate; a connection through the
// front reaches one of them; killing that node cuts the connection, and
// the next one reaches the other node at once (HAProxy retries another
// backend when one refuses), before the checks have even marked it down;
// then they do, and a restart brings it back into rotation.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts assist serve and haproxy")
	}
	c := StartCluster(t, ClusterOptions{Nodes: 2})
	if c.Nodes[0].Data == c.Nodes[1].Data {
		t.Fatal("the nodes share a --data directory")
	}
	for _, n := range c.Nodes {
		if _, err := os.Stat(filepath.Join(n.Data, "key.pem")); err != nil {
			t.Errorf("node %s has no key.pem: %v", n.Name, err)
		}
	}
	if code, body := c.Get(t, "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz through haproxy: %d %q", code, body)
	}

	// One held connection through the front: which node took it?
	held, err := tls.Dial("tcp", c.Proxy.Addr, server.PinnedTLSConfig(c.Fingerprint))
	if err != nil {
		t.Fatalf("TLS through haproxy, pinned: %v", err)
	}
	defer held.Close()
	owner := -1
	if !waitFor(10*time.Second, func() bool {
		st := c.Proxy.Stats(t)
		for i, n := range c.Nodes {
			if st[n.Name].Current == 1 {
				owner = i
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no node holds the connection: %+v", c.Proxy.Stats(t))
	}
	other := 1 - owner
	t.Logf("the connection reached %s", c.Nodes[owner].Name)

	c.Kill(t, owner)
	if c.Nodes[owner].Running() {
		t.Fatal("the killed node runs")
	}
	_ = held.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("the held connection survived its node's death: read %v", err)
	}

	// Every new connection reaches the survivor, at once and afterwards.
	before := c.Proxy.Stats(t)
	for range 4 {
		if code, _ := c.Get(t, "/healthz"); code != 200 {
			t.Fatalf("/healthz through haproxy with %s dead: %d", c.Nodes[owner].Name, code)
		}
	}
	after := c.Proxy.Stats(t)
	if got := after[c.Nodes[other].Name].Total - before[c.Nodes[other].Name].Total; got != 4 {
		t.Errorf("the survivor %s took %d of 4 connections; stats %+v", c.Nodes[other].Name, got, after)
	}
	c.Proxy.WaitBackend(t, c.Nodes[owner].Name, false, 10*time.Second)

	// Back: same address, same certificate, in rotation again.
	c.Restart(t, owner)
	before = c.Proxy.Stats(t)
	for range 4 {
		if code, _ := c.Get(t, "/healthz"); code != 200 {
			t.Fatalf("/healthz through haproxy after the restart: %d", code)
		}
	}
	after = c.Proxy.Stats(t)
	for _, n := range c.Nodes {
		if got := after[n.Name].Total - before[n.Name].Total; got == 0 {
			t.Errorf("node %s took none of 4 connections after the restart (round robin); stats %+v", n.Name, after)
		}
	}

	// A graceful stop exits with status 0, and HAProxy notices.
	if err := c.Stop(t, other, 30*time.Second); err != nil {
		t.Errorf("node %s after SIGTERM: %v; output: %s", c.Nodes[other].Name, err, c.Nodes[other].Output())
	}
	c.Proxy.WaitBackend(t, c.Nodes[other].Name, false, 10*time.Second)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestParseHAProxyStat reads the servers of backend "nodes" from the
// stats socket's CSV, and refuses output without the columns it needs.
func TestParseHAProxyStat(t *testing.T) {
	out := "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,status,\n" +
		"assist,FRONTEND,,,3,5,20000,9,0,0,OPEN,\n" +
		"nodes,n1,0,0,2,3,,7,0,0,UP,\n" +
		"nodes,n2,0,0,0,1,,2,0,0,DOWN 1/2,\n" +
		"nodes,BACKEND,0,0,2,3,,9,0,0,UP,\n"
	st, err := parseHAProxyStat(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]BackendStat{
		"n1": {Name: "n1", Status: "UP", Current: 2, Total: 7},
		"n2": {Name: "n2", Status: "DOWN 1/2", Current: 0, Total: 2},
	}
	if len(st) != len(want) || st["n1"] != want["n1"] || st["n2"] != want["n2"] {
		t.Errorf("got %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "# pxname,svname\nnodes,n1\n", strings.Replace(out, "scur,", "", 1) + "\n"} {
		if _, err := parseHAProxyStat(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
