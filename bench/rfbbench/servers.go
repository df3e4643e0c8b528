package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// serverSpec says how to start one VNC server on an X display.
type serverSpec struct {
	// Name is what the report calls the server.
	Name string
	// Binary is the program, looked up in PATH unless it has a slash.
	Binary string
	// Args returns the arguments for display; port is a free loopback
	// port, or 0 when the server picks its own and prints it.
	Args func(display string, port int) []string
	// PrintsAddress is set when the server picks its port and prints
	// "listening on HOST:PORT" on stdout.
	PrintsAddress bool
}

// specs returns the servers the benchmark knows, assist's binary being
// assistPath.
func specs(assistPath string) []serverSpec {
	return []serverSpec{
		{
			Name: "assist", Binary: assistPath, PrintsAddress: true,
			Args: func(display string, _ int) []string {
				return []string{"vnc", "--display", display, "--listen", "127.0.0.1:0"}
			},
		},
		{
			Name: "x11vnc", Binary: "x11vnc",
			Args: func(display string, port int) []string {
				return []string{"-display", display, "-rfbport", fmt.Sprint(port),
					"-nopw", "-localhost", "-shared", "-forever", "-quiet"}
			},
		},
		{
			Name: "tigervnc", Binary: "X0tigervnc",
			Args: func(display string, port int) []string {
				return []string{"-display", display, "-rfbport", fmt.Sprint(port),
					"-SecurityTypes", "None", "-localhost", "-FrameRate=120"}
			},
		},
	}
}

// serverProc is a running VNC server.
type serverProc struct {
	Addr   string
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *tailBuffer
	// dial connects to Addr from where the server runs.
	dial func(ctx context.Context, addr string) (net.Conn, error)
}

// startServer starts spec on display and waits until it accepts
// connections.
func startServer(ctx context.Context, spec serverSpec, display string) (*serverProc, error) {
	return startServerIn(ctx, spec, display, "")
}

// startServerIn is startServer inside network namespace ns, or in this
// process's when ns is empty.
func startServerIn(ctx context.Context, spec serverSpec, display, ns string) (*serverProc, error) {
	path, err := exec.LookPath(spec.Binary)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	port := 0
	if !spec.PrintsAddress {
		if port, err = freePort(); err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Name, err)
		}
	}
	cmd := exec.Command(path, spec.Args(display, port)...)
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
	}
	if ns != "" {
		// ip netns exec execs the program: the process keeps its id,
		// which the CPU accounting reads.
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, path}, spec.Args(display, port)...)...)
		dial = dialer(ns)
	}
	p := &serverProc{cmd: cmd, done: make(chan struct{}), stderr: &tailBuffer{max: 4096}, dial: dial}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", spec.Name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if a, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "listening on "); ok && !sent {
				addr <- a
				sent = true
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	if spec.PrintsAddress {
		select {
		case p.Addr = <-addr:
		case <-p.done:
			return nil, fmt.Errorf("%s: exited before listening: %s", spec.Name, p.stderr)
		case <-time.After(15 * time.Second):
			p.Stop()
			return nil, fmt.Errorf("%s: did not print its address within 15 s: %s", spec.Name, p.stderr)
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		}
	} else {
		p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	return p, nil
}

// PID is the server's process id, for CPU accounting.
func (p *serverProc) PID() int { return p.cmd.Process.Pid }

// Dial connects to the server, retrying until it listens or 15 s pass.
func (p *serverProc) Dial(ctx context.Context, name string) (net.Conn, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := p.dial(ctx, p.Addr)
		if err == nil {
			return conn, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s: exited: %s", name, p.stderr)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: connect %s: %w", name, p.Addr, err)
		}
	}
}

// Stop ends the server and waits for it to exit: SIGTERM, then SIGKILL
// after 5 s. A server killed outright leaves its System V shared memory
// behind (x11vnc holds about 40 segments), and after about a hundred such
// runs the machine's 4096 are gone: shmget fails for every X client,
// x11vnc exits at start and the next benchmark or test finds no server.
func (p *serverProc) Stop() { terminate(p.cmd.Process.Pid, p.done) }

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.TrimSpace(b.buf))
}
