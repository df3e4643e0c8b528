package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The servers a run across links knows besides the VNC servers of specs:
// the session paths, `assist invite` in the novice's namespace and `assist
// join` in the expert's, the viewer on join's loopback port.
const (
	// serverSession is the direct path: join dials invite's address
	// (TLS over TCP), no rendezvous server.
	serverSession = "session"
	// serverWebRTC goes through assist serve with a short code; WebRTC
	// then connects the two ends directly.
	serverWebRTC = "webrtc"
	// serverRelay is serverWebRTC with every direct packet between the
	// ends dropped, so WebRTC relays through the server's TURN.
	serverRelay = "relay"
)

// linkServers are every server a run across links knows, in the order
// the table lists them.
var linkServers = []string{"assist", "x11vnc", "tigervnc", serverSession, serverWebRTC, serverRelay}

// benchPassword is the direct session's invitation password.
const benchPassword = "correct-horse-battery"

// lineProc is a program whose stdout is read line by line.
type lineProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	out  *tailBuffer // stdout and stderr, for error messages

	mu    sync.Mutex
	lines []string
	next  int
	more  chan struct{}
}

// startLines starts cmd with env, its stdin an open pipe that nothing
// writes to (assist invite ends when stdin closes).
func startLines(name string, cmd *exec.Cmd, env []string) (*lineProc, error) {
	p := &lineProc{name: name, cmd: cmd, done: make(chan struct{}), out: &tailBuffer{max: 8192}, more: make(chan struct{})}
	cmd.Env = env
	cmd.Stderr = p.out
	// Its own process group, so that Stop ends whatever it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if _, err := cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", name, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.out.Write([]byte(sc.Text() + "\n"))
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	go func() {
		<-read // Wait closes stdout: read it all first
		cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitLine waits for a line of stdout after the last one matched that
// matches pattern and returns its submatches.
func (p *lineProc) waitLine(ctx context.Context, pattern string, timeout time.Duration) ([]string, error) {
	re := regexp.MustCompile(pattern)
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		for i := p.next; i < len(p.lines); i++ {
			if m := re.FindStringSubmatch(p.lines[i]); m != nil {
				p.next = i + 1
				p.mu.Unlock()
				return m, nil
			}
		}
		more := p.more
		p.mu.Unlock()
		select {
		case <-more:
		case <-p.done:
			return nil, fmt.Errorf("%s exited before printing %q: %s", p.name, pattern, p.out)
		case <-deadline:
			return nil, fmt.Errorf("%s did not print %q within %v: %s", p.name, pattern, timeout, p.out)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// PID is the program's process id (ip netns exec execs it).
func (p *lineProc) PID() int { return p.cmd.Process.Pid }

// Stop ends the program's process group: SIGTERM, SIGKILL after 5 s.
func (p *lineProc) Stop() { terminate(-p.cmd.Process.Pid, p.done) }

// terminate sends pid (a process group if negative) SIGTERM, then SIGKILL
// if done is not closed within 5 s, and waits for done.
func terminate(pid int, done <-chan struct{}) {
	syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-done:
		return
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(pid, syscall.SIGKILL)
	<-done
}

// lineTimeout bounds every wait for a program's line.
const lineTimeout = 30 * time.Second

// assistEnv is the environment of the assist processes: their own home,
// config, state (log) and data folders under dir, no indicator on the
// desktop (it would be part of the picture), and logs at info.
func assistEnv(dir string) ([]string, error) {
	env := os.Environ()
	for _, v := range []string{"HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"} {
		d := filepath.Join(dir, strings.ToLower(v))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		env = append(env, v+"="+d)
	}
	return append(env, "ASSIST_INDICATOR=off", "ASSIST_LOG=info", "ASSIST_SERVER=", "ASSIST_SERVER_FINGERPRINT="), nil
}

// rendezvous is a running assist serve in the internet namespace.
type rendezvous struct {
	proc        *lineProc
	url, finger string
}

// startServe runs assist serve on the internet's address with its TURN.
func startServe(ctx context.Context, t *topology, assist, dir string) (*rendezvous, error) {
	env, err := assistEnv(filepath.Join(dir, "serve"))
	if err != nil {
		return nil, err
	}
	host := inetAddr.Addr().String()
	https, turn := net.JoinHostPort(host, "8443"), net.JoinHostPort(host, "3478")
	cmd := t.command(t.inet, assist, "serve", "--listen", https, "--data", filepath.Join(dir, "serve-data"),
		"--public-url", "https://"+https, "--turn-listen", turn,
		"--max-invitations-per-address", "1000", "--max-relays-per-address", "100",
		"--ice-server", "stun:"+turn,
		"--ice-server", "turn:"+turn+"?transport=udp",
		"--ice-server", "turn:"+turn+"?transport=tcp")
	p, err := startLines("assist serve", cmd, env)
	if err != nil {
		return nil, err
	}
	r := &rendezvous{proc: p}
	m, err := p.waitLine(ctx, `^listening on (https://\S+)$`, lineTimeout)
	if err == nil {
		r.url = m[1]
		m, err = p.waitLine(ctx, `^fingerprint: (sha256:[0-9a-f]{64})$`, lineTimeout)
	}
	if err != nil {
		p.Stop()
		return nil, err
	}
	r.finger = m[1]
	return r, nil
}

// session is a running pair of assist invite and assist join.
type session struct {
	invite, join *lineProc
	rfb          string // join's loopback address for viewers
	path         string // the path join reports
}

// startSession connects assist invite (novice) and assist join (expert)
// on display, directly or through srv (webrtc and relay), and waits until
// join offers the desktop to viewers.
func startSession(ctx context.Context, t *topology, kind, assist, display, dir string, srv *rendezvous) (_ *session, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	envN, err := assistEnv(filepath.Join(dir, "novice"))
	if err != nil {
		return nil, err
	}
	envE, err := assistEnv(filepath.Join(dir, "expert"))
	if err != nil {
		return nil, err
	}
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte(benchPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "help.assist")
	args := []string{"invite", "--file", file, "--display", display, "--name", "Novice",
		"--allow", "view", "--no-page", "--no-indicator", "--no-portmap"}
	var serverArgs []string
	if kind == serverSession {
		args = append(args, "--password-file", pw, "--listen", net.JoinHostPort(noviceAddr.Addr().String(), "0"))
	} else {
		serverArgs = []string{"--server", srv.url, "--server-fingerprint", srv.finger}
		args = append(append(args, serverArgs...), "--listen", "127.0.0.1:0")
	}
	s := &session{}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if s.invite, err = startLines("assist invite", t.command(t.novice, assist, args...), envN); err != nil {
		return nil, err
	}
	m, err := s.invite.waitLine(ctx, `^code: (\S+)$`, lineTimeout)
	if err != nil {
		return nil, err
	}
	code := m[1]
	if _, err := s.invite.waitLine(ctx, `^waiting for (your helper|the expert)`, lineTimeout); err != nil {
		return nil, err
	}
	join := []string{"join", "--no-browser", "--name", "Expert"}
	if kind == serverSession {
		join = append(join, "--password-file", pw, file)
	} else {
		join = append(append(join, serverArgs...), code)
	}
	if s.join, err = startLines("assist join", t.command(t.expert, assist, join...), envE); err != nil {
		return nil, err
	}
	if kind == serverSession {
		m, err = s.join.waitLine(ctx, `^connected to \S+ via (.+)$`, lineTimeout)
	} else {
		m, err = s.join.waitLine(ctx, `^path: (\S+)$`, lineTimeout)
	}
	if err != nil {
		return nil, err
	}
	s.path = strings.Fields(m[1])[0]
	if m, err = s.join.waitLine(ctx, `^rfb on (\S+)$`, lineTimeout); err != nil {
		return nil, err
	}
	s.rfb = m[1]
	want := map[string]string{serverSession: "direct", serverWebRTC: "direct", serverRelay: "relay-udp"}[kind]
	if s.path != want {
		fmt.Fprintf(os.Stderr, "rfbbench: %s: assist join took path %s, expected %s\n", kind, s.path, want)
	}
	return s, nil
}

// Stop ends both programs, the expert first.
func (s *session) Stop() {
	for _, p := range []*lineProc{s.join, s.invite} {
		if p != nil {
			p.Stop()
		}
	}
}
