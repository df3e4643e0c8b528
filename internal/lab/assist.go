package lab

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Main runs a test binary's tests and then removes what the harness built
// for them. Use it from TestMain: os.Exit(lab.Main(m)).
//
// Unless the run sets them, the programs the tests start keep their
// config (device keys, logins) and state (logs, audit trails) in a
// directory of this run, removed afterwards, not in the home directory of
// whoever runs the tests. Tests that need their own set them per process;
// the last value of a variable in a process's environment wins.
func Main(m *testing.M) int {
	var home string
	if os.Getenv("ASSIST_CONFIG_DIR") == "" || os.Getenv("ASSIST_STATE_DIR") == "" {
		var err error
		if home, err = os.MkdirTemp("", "assist-e2e-home-"); err != nil {
			fmt.Fprintln(os.Stderr, "lab:", err)
			return 1
		}
		for _, v := range []string{"ASSIST_CONFIG_DIR", "ASSIST_STATE_DIR"} {
			if os.Getenv(v) == "" {
				os.Setenv(v, filepath.Join(home, strings.ToLower(strings.TrimPrefix(v, "ASSIST_"))))
			}
		}
	}
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	if home != "" {
		os.RemoveAll(home)
	}
	return code
}

// ModuleRoot returns the directory of the project's go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		t.Fatalf("lab: cannot find the module root (go env GOMOD: %q, %v)", mod, err)
	}
	return filepath.Dir(mod)
}

// AssistBinary builds ./cmd/assist once per test process (with the build
// tags in $ASSIST_BUILD_TAGS, e.g. "turbojpeg") and returns its path. Call
// lab.Main from TestMain so the build is removed afterwards.
func AssistBinary(t testing.TB) string {
	t.Helper()
	Need(t, "go")
	root := ModuleRoot(t)
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "assist-e2e-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "assist")
		args := []string{"build", "-o", build.path}
		if tags := os.Getenv("ASSIST_BUILD_TAGS"); tags != "" {
			args = append(args, "-tags", tags)
		}
		cmd := exec.Command("go", append(args, "./cmd/assist")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("lab: go build ./cmd/assist: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// StartAssistVNC runs `assist vnc --display DISPLAY --listen 127.0.0.1:0
// ARGS...`, waits for its "listening on HOST:PORT" line and returns the
// address. On cleanup it sends SIGTERM and checks that the server exits
// with status 0.
//
// For developing the harness and comparing with reference servers only,
// ASSIST_E2E_SERVER=x11vnc or ASSIST_E2E_SERVER=X0tigervnc runs that
// server with the same meaning instead; its exit status is not checked.
// Tests run against assist unless that is set.
func StartAssistVNC(t testing.TB, display string, args ...string) (addr string) {
	t.Helper()
	switch os.Getenv("ASSIST_E2E_SERVER") {
	case "":
	case "x11vnc":
		return startX11VNC(t, display, args...)
	case "X0tigervnc":
		return startX0TigerVNC(t, display, args...)
	default:
		t.Fatalf("lab: ASSIST_E2E_SERVER=%q: want empty (assist), x11vnc or X0tigervnc", os.Getenv("ASSIST_E2E_SERVER"))
	}
	bin := AssistBinary(t)
	p := newProc(nil, bin, append([]string{"vnc", "--display", display, "--listen", "127.0.0.1:0"}, args...)...)
	stdout, err := p.Cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("lab: assist vnc: %v", err)
	}
	p.Cmd.Stderr = &p.out
	if err := p.start(); err != nil {
		t.Fatalf("lab: start assist vnc: %v", err)
	}
	t.Cleanup(func() {
		if exited, err := p.Exited(); exited {
			t.Errorf("lab: assist vnc exited early (%v): %s", err, p.Output())
			return
		}
		_ = p.Signal(syscall.SIGTERM)
		err, ok := p.Wait(10 * time.Second)
		if !ok {
			t.Errorf("lab: assist vnc still running 10 s after SIGTERM; killing it")
			p.Stop()
			return
		}
		if err != nil {
			t.Errorf("lab: assist vnc after SIGTERM: %v (want exit status 0): %s", err, p.Output())
		}
		p.Stop() // anything left in its process group
	})

	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		// Keep draining so the server never blocks on a full pipe.
		_, _ = io.Copy(&p.out, r)
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
		if !ok {
			t.Fatalf("lab: assist vnc printed %q, want \"listening on HOST:PORT\"; stderr: %s", line, p.Output())
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			t.Fatalf("lab: assist vnc: bad address in %q: %v", line, err)
		}
		return addr
	case <-time.After(30 * time.Second):
		t.Fatalf("lab: assist vnc did not print its address in 30 s: %s", p.Output())
	}
	return ""
}

func startX11VNC(t testing.TB, display string, args ...string) string {
	t.Helper()
	Need(t, "x11vnc")
	var extra []string
	for _, a := range args {
		switch a {
		case "--view-only":
			extra = append(extra, "-viewonly")
		default:
			t.Fatalf("lab: x11vnc stand-in does not know %q", a)
		}
	}
	return StartVNCServer(t, "x11vnc", func(port int) []string {
		return append([]string{"-display", display, "-rfbport", strconv.Itoa(port), "-localhost",
			"-nopw", "-shared", "-forever", "-noxdamage"}, extra...)
	})
}

func startX0TigerVNC(t testing.TB, display string, args ...string) string {
	t.Helper()
	Need(t, "X0tigervnc")
	var extra []string
	for _, a := range args {
		switch a {
		case "--view-only":
			extra = append(extra, "-AcceptKeyEvents=0", "-AcceptPointerEvents=0")
		default:
			t.Fatalf("lab: X0tigervnc stand-in does not know %q", a)
		}
	}
	return StartVNCServer(t, "X0tigervnc", func(port int) []string {
		return append([]string{"-display", display, "-rfbport", strconv.Itoa(port), "-localhost",
			"-SecurityTypes", "None", "-AlwaysShared"}, extra...)
	})
}

// StartVNCServer runs a reference VNC server (x11vnc, X0tigervnc) with
// args(port) for the rest of the test and returns its loopback address
// once it accepts connections. The port was free a moment before the
// server tried it, but another test may have taken it since: a server that
// exits before listening is started again on another port, twice at most,
// and what it printed is logged. A server that neither listens nor exits
// within 30 s fails the test. Give x11vnc no -quiet: its reason for
// exiting (such as "shmget: No space left on device" once killed x11vncs
// have used up the machine's System V segments) is then in the failure.
func StartVNCServer(t testing.TB, name string, args func(port int) []string) string {
	t.Helper()
	const tries = 3
	for try := 1; ; try++ {
		port := freePort(t)
		p := Start(t, nil, name, args(port)...)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		listening := waitFor(30*time.Second, func() bool {
			exited, _ := p.Exited()
			return exited || accepts(addr)
		})
		exited, err := p.Exited()
		switch {
		case listening && !exited:
			return addr
		case !exited:
			t.Fatalf("lab: %s did not listen on %s in 30 s: %s", name, addr, p.Output())
		case try == tries:
			t.Fatalf("lab: %s exited before listening, %d times (%v): %s", name, tries, err, p.Output())
		}
		t.Logf("lab: %s exited before listening on %s (%v), trying another port: %s", name, addr, err, p.Output())
	}
}

// waitListening waits until a stand-in server accepts connections.
func waitListening(t testing.TB, p *Proc, port int) string {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if !waitFor(30*time.Second, func() bool { return accepts(addr) }) {
		t.Fatalf("lab: %s did not listen on %s: %s", p.name, addr, p.Output())
	}
	return addr
}

// accepts reports whether a TCP connection to addr succeeds now.
func accepts(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("lab: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// HostPort splits a server address into host and port for viewers' own
// address syntaxes.
func HostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("lab: address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("lab: address %q: %v", addr, err)
	}
	return h, n
}
