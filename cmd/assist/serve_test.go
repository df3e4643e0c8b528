package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/pion/stun/v4"
)

// servedProc is a running "assist serve".
type servedProc struct {
	cmd         *exec.Cmd
	URL         string
	Fingerprint string
	ICE         []string // the embedded relay's STUN/TURN URLs
	stderr      *syncBuffer
	done        chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	listeningLine   = regexp.MustCompile(`^listening on (https://127\.0\.0\.1:[0-9]+)$`)
	fingerprintLine = regexp.MustCompile(`^fingerprint: (sha256:[0-9a-f]{64})$`)
)

// startServe runs "assist serve" on a free loopback port with this data
// directory and reads its two stdout lines. Cleanup kills it if the test
// has not stopped it.
func startServe(t *testing.T, data string, args ...string) *servedProc {
	t.Helper()
	bin := lab.AssistBinary(t)
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", data,
		"--turn-listen", "127.0.0.1:0", "--turns-listen", "127.0.0.1:0"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &servedProc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start assist serve: %v", err)
	}
	lines := make(chan []string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		var got []string
		for range 3 { // listening, fingerprint, ice
			l, err := r.ReadString('\n')
			if err != nil {
				break
			}
			got = append(got, strings.TrimSpace(l))
		}
		lines <- got
		_, _ = io.Copy(io.Discard, r)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	var got []string
	select {
	case got = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatalf("assist serve printed nothing in 30 s; stderr: %s", p.stderr)
	}
	if len(got) != 3 {
		t.Fatalf("assist serve printed %q, want three lines; stderr: %s", got, p.stderr)
	}
	ice, ok := strings.CutPrefix(got[2], "ice: ")
	if !ok {
		t.Fatalf("assist serve's third line is %q, want \"ice: URL...\"", got[2])
	}
	p.ICE = strings.Fields(ice)
	m1, m2 := listeningLine.FindStringSubmatch(got[0]), fingerprintLine.FindStringSubmatch(got[1])
	if m1 == nil || m2 == nil {
		t.Fatalf("assist serve printed %q, want \"listening on https://HOST:PORT\" and \"fingerprint: sha256:HEX\"", got)
	}
	p.URL, p.Fingerprint = m1[1], m2[1]
	return p
}

// stop sends SIGTERM and checks for exit status 0.
func (p *servedProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("assist serve after SIGTERM: %v (want exit status 0); stderr: %s", err, p.stderr)
		}
		p.done <- err // for the cleanup
	case <-time.After(20 * time.Second):
		t.Errorf("assist serve still running 20 s after SIGTERM; stderr: %s", p.stderr)
	}
}

func TestServe(t *testing.T) {
	data := filepath.Join(t.TempDir(), "state")
	p := startServe(t, data)
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("--data directory: %v, %v; want mode 0700", fi, err)
	}
	code, body, err := lab.GetPinned(p.URL+"/healthz", p.Fingerprint)
	if err != nil || code != 200 || body != "ok\n" {
		t.Errorf("/healthz pinned to %s: %d %q %v", p.Fingerprint, code, body, err)
	}
	if _, _, err := lab.GetPinned(p.URL+"/healthz", "sha256:"+strings.Repeat("0", 64)); err == nil {
		t.Error("/healthz with a wrong pin succeeded")
	}
	p.stop(t)

	// The certificate, so the fingerprint clients pinned, survives a restart.
	p2 := startServe(t, data)
	if p2.Fingerprint != p.Fingerprint {
		t.Errorf("fingerprint after restart %s, want %s", p2.Fingerprint, p.Fingerprint)
	}
	p2.stop(t)
}

// TestServeDataDirMode: assist serve warns about a --data directory that
// other users can open (it holds the TLS key and the TURN secret).
func TestServeDataDirMode(t *testing.T) {
	data := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, data)
	if !strings.Contains(p.stderr.String(), "open to other users") {
		t.Errorf("no warning about a --data directory of mode 0755; stderr:\n%s", p.stderr)
	}
	p.stop(t)
}

func TestServeUsage(t *testing.T) {
	bin := lab.AssistBinary(t)
	for _, args := range [][]string{
		{"serve", "--tls-cert", "x.pem"},
		{"serve", "extra"},
		{"serve", "--bogus"},
		{"serve", "--max-conns-per-address", "0"},
	} {
		err := exec.Command(bin, args...).Run()
		if code := lab.ExitCode(err); code != 2 {
			t.Errorf("assist %q: exit %d (%v), want 2", args, code, err)
		}
	}
	out, err := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--public-url", "ftp://x").CombinedOutput()
	if code := lab.ExitCode(err); code != 1 || !strings.Contains(string(out), "--public-url") {
		t.Errorf("bad --public-url: exit %d, output %q", code, out)
	}
}

// TestServeRelay checks that the embedded STUN server named on the "ice:"
// line answers a binding request with the client's own address.
func TestServeRelay(t *testing.T) {
	p := startServe(t, t.TempDir())
	var stunURL string
	for _, u := range p.ICE {
		if strings.HasPrefix(u, "stun:") {
			stunURL = u
		}
	}
	if stunURL == "" {
		t.Fatalf("no stun: URL in %q", p.ICE)
	}
	c, err := net.Dial("udp", strings.TrimPrefix(stunURL, "stun:"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err := c.Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no STUN answer from %s: %v", stunURL, err)
	}
	res := &stun.Message{Raw: buf[:n]}
	if err := res.Decode(); err != nil {
		t.Fatal(err)
	}
	var addr stun.XORMappedAddress
	if err := addr.GetFrom(res); err != nil {
		t.Fatalf("STUN answer without XOR-MAPPED-ADDRESS: %v", err)
	}
	if local := c.LocalAddr().(*net.UDPAddr); addr.Port != local.Port || !addr.IP.Equal(local.IP) {
		t.Errorf("STUN says we are %v, we are %v", addr, local)
	}
}
