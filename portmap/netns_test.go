package portmap_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/portmap"
)

// helperEnv makes the test binary act as the novice's agent (see
// TestHelperProcess) when it is run inside the lab's novice namespace.
const helperEnv = "ASSIST_PORTMAP_HELPER"

// TestMapInLab runs Map inside the novice's namespace behind a real
// router (miniupnpd on a cone NAT) and checks from the internet side that
// the port it reports is open, and closed again after Close.
func TestMapInLab(t *testing.T) {
	for _, tc := range []struct {
		name   string
		router *lab.MiniUPnPdConfig // nil: no miniupnpd at all
		method string               // "" with a router: either
	}{
		{name: "upnp", router: &lab.MiniUPnPdConfig{UPnP: true}, method: "upnp"},
		{name: "natpmp", router: &lab.MiniUPnPdConfig{NATPMP: true}, method: "natpmp"},
		{name: "both", router: &lab.MiniUPnPdConfig{UPnP: true, NATPMP: true}},
		{name: "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := lab.NewNet(t)
			if tc.router != nil {
				n.StartMiniUPnPd(t, n.NAT1, *tc.router)
			}
			h := startHelper(t, n)
			line := h.line(t, 30*time.Second)
			if tc.router == nil {
				checkNoRouterError(t, line)
				return
			}
			f := strings.Fields(line)
			if len(f) != 4 || f[0] != "MAPPED" {
				t.Fatalf("helper: %q, want MAPPED method addr:port duration\n%s", line, h.stderr())
			}
			method, ext := f[1], f[2]
			t.Logf("Map: %s after %s", method, f[3])
			if tc.method != "" && method != tc.method {
				t.Errorf("Method() = %s, want %s", method, tc.method)
			}
			external, err := netip.ParseAddrPort(ext)
			if err != nil || external.Addr() != netip.MustParseAddr(lab.NAT1WANAddr) {
				t.Fatalf("External() = %s, want %s:port", ext, lab.NAT1WANAddr)
			}
			if rules := n.PortMappings(t, n.NAT1); len(rules) != 1 {
				t.Errorf("router has %d forwardings, want 1: %q", len(rules), rules)
			}

			// A host on the internet reaches the novice through the mapping.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := n.Dial(ctx, n.Internet, "tcp", external.String())
			if err != nil {
				t.Fatalf("dial %s from the internet: %v\n%s", external, err, h.stderr())
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "hello from the internet\n")
			got, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if want := "novice heard: hello from the internet\n"; got != want || err != nil {
				t.Fatalf("reply %q, %v; want %q", got, err, want)
			}

			h.send(t, "close")
			if line := h.line(t, 30*time.Second); line != "CLOSED <nil> <nil>" {
				t.Fatalf("helper: %q, want CLOSED <nil> <nil> (Close twice)\n%s", line, h.stderr())
			}
			if rules := n.PortMappings(t, n.NAT1); len(rules) != 0 {
				t.Errorf("router still forwards after Close: %q", rules)
			}
			// The novice still listens, so only the router can stop this.
			dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
			defer dcancel()
			if c, err := n.Dial(dctx, n.Internet, "tcp", external.String()); err == nil {
				c.Close()
				t.Fatalf("%s still reaches the novice after Close", external)
			}
		})
	}
}

// checkNoRouterError checks the error a user sees when no router maps
// ports: fast, and saying what was tried and what helps.
func checkNoRouterError(t *testing.T, line string) {
	t.Helper()
	f := strings.SplitN(line, " ", 3)
	if len(f) != 3 || f[0] != "ERROR" {
		t.Fatalf("helper: %q, want ERROR duration message", line)
	}
	msg := f[2]
	t.Logf("Map failed after %s: %s", f[1], msg)
	for _, want := range []string{"UPnP IGD", "SSDP", "NAT-PMP", "gateway " + lab.NAT1LANAddr, "assist serve"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	// The helper gives Map 60 s: an error about that deadline would mean
	// Map did not bound its own discovery.
	if strings.Contains(msg, "deadline") {
		t.Errorf("Map waited for the caller's deadline: %s", msg)
	}
}

// helper is the test binary running TestHelperProcess in the novice's
// namespace.
type helper struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	mu    sync.Mutex
	errb  strings.Builder
}

func (h *helper) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errb.Write(p)
}

func (h *helper) stderr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errb.String()
}

func startHelper(t *testing.T, n *lab.Net) *helper {
	t.Helper()
	h := &helper{lines: make(chan string, 16)}
	h.cmd = n.Command(n.Novice, os.Args[0], "-test.run=^TestHelperProcess$")
	h.cmd.Env = append(os.Environ(), helperEnv+"=1")
	h.cmd.Stderr = h
	var err error
	if h.in, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start helper in %s: %v", n.Novice, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "MAPPED ") || strings.HasPrefix(l, "ERROR ") || strings.HasPrefix(l, "CLOSED ") {
				h.lines <- l
			}
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		h.in.Close() // the helper exits at end of input
		done := make(chan struct{})
		go func() { h.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			h.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("helper's log:\n%s", h.stderr())
		}
	})
	return h
}

func (h *helper) line(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			t.Fatalf("helper exited:\n%s", h.stderr())
		}
		return l
	case <-time.After(d):
		t.Fatalf("helper said nothing in %v:\n%s", d, h.stderr())
	}
	return ""
}

func (h *helper) send(t *testing.T, cmd string) {
	t.Helper()
	if _, err := fmt.Fprintln(h.in, cmd); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

// TestHelperProcess is the novice's side of TestMapInLab; it does nothing
// in a normal test run. It listens on a TCP port, maps it with Map and
// prints "MAPPED method addr:port duration" (or "ERROR duration message"), answers
// each line a client sends, and on "close" from stdin closes the mapping
// twice and prints "CLOSED err1 err2". It exits at the end of stdin.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("only runs inside the lab, started by TestMapInLab")
	}
	os.Exit(helperMain())
}

func helperMain() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := net.Listen("tcp4", ":0")
	if err != nil {
		fmt.Printf("ERROR 0s portmap-helper: %v\n", err)
		return 1
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "novice heard: %s", s)
			}()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	m, err := portmap.Map(ctx, "tcp", port, portmap.Options{Logger: log, Description: "assist test"})
	if err != nil {
		var pe *portmap.Error
		if !errors.As(err, &pe) {
			log.Error("Map did not return a *portmap.Error", "err", err)
		}
		fmt.Printf("ERROR %v %v\n", time.Since(start).Round(time.Millisecond), err)
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	fmt.Printf("MAPPED %s %s %v\n", m.Method(), m.External(), time.Since(start).Round(time.Millisecond))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "close" {
			err1 := m.Close()
			err2 := m.Close()
			fmt.Printf("CLOSED %v %v\n", err1, err2)
		}
	}
	m.Close()
	return 0
}
