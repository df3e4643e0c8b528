package main

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
)

// assistOnly skips tests of assist's own command line when the harness
// runs against the x11vnc stand-in.
func assistOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("ASSIST_E2E_SERVER") != "" {
		t.Skip("tests assist's own command line")
	}
}

// runAssist runs the binary to completion and returns its exit code,
// stdout and stderr.
func runAssist(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(lab.AssistBinary(t), args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return lab.ExitCode(err), stdout.String(), stderr.String()
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("assist %q still running after 30 s; stdout %q, stderr %q", args, stdout.String(), stderr.String())
		return 0, "", ""
	}
}

// oneLine checks that s is exactly one non-empty line.
func oneLine(t *testing.T, what, s string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") || strings.TrimSpace(s) == "" {
		t.Errorf("%s is %q, want exactly one line", what, s)
	}
}

func TestVNCCommandLine(t *testing.T) {
	e2e(t)
	assistOnly(t)
	t.Parallel()

	t.Run("no such display", func(t *testing.T) {
		if _, err := os.Stat("/tmp/.X11-unix/X999"); err == nil {
			t.Skip("display :999 exists on this machine")
		}
		code, stdout, stderr := runAssist(t, "vnc", "--display", ":999", "--listen", "127.0.0.1:0")
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		oneLine(t, "stderr", stderr)
		if strings.Contains(stdout, "listening on") {
			t.Errorf("it listened anyway: %q", stdout)
		}
	})

	x := lab.StartXvfb(t, 320, 240)
	t.Run("non-loopback address", func(t *testing.T) {
		code, stdout, stderr := runAssist(t, "vnc", "--display", x.Display, "--listen", "0.0.0.0:0")
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		oneLine(t, "stderr", stderr)
		if !strings.Contains(strings.ToLower(stderr), "invitation") {
			t.Errorf("refusal %q does not point to invitations", stderr)
		}
		if strings.Contains(stdout, "listening on") {
			t.Errorf("it listened anyway: %q", stdout)
		}
	})

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(lab.AssistBinary(t), "vnc", "--display", x.Display, "--listen", "127.0.0.1:0")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
			})
			line, _ := bufio.NewReader(out).ReadString('\n')
			go func() { _, _ = io.Copy(io.Discard, out); done <- cmd.Wait() }()
			addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
			if !ok {
				t.Fatalf("first line %q, want \"listening on HOST:PORT\"; stderr %q", line, stderr.String())
			}
			// A connected viewer must not keep the server from exiting.
			c := lab.DialRFB(t, addr)
			if _, _, err := c.Screen(); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if code := lab.ExitCode(err); code != 0 {
					t.Errorf("exit status %d after %v, want 0; stderr %q", code, sig, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10 s after %v", sig)
			}
		})
	}
}

// TestVNCHostileClients sends malformed input after the handshake and
// checks that the server drops that client and keeps serving others.
func TestVNCHostileClients(t *testing.T) {
	e2e(t)
	t.Parallel()
	x := lab.StartXvfb(t, 320, 240)
	x.ShowImage(t, lab.TestPattern(320, 240))
	addr := lab.StartAssistVNC(t, x.Display)
	good := lab.DialRFB(t, addr)

	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	// 66 is no client message type RFC 6143 or its registry knows.
	garbage[0] = 66

	pixelFormat := func(bpp, depth, trueColour byte, max uint16) []byte {
		m := []byte{0, 0, 0, 0, bpp, depth, 0, trueColour, byte(max >> 8), byte(max), byte(max >> 8), byte(max), byte(max >> 8), byte(max), 16, 8, 0, 0, 0, 0}
		return m
	}
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"random bytes", garbage},
		{"huge ClientCutText", []byte{6, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 'a', 'b'}},
		{"24 bits per pixel", pixelFormat(24, 24, 1, 255)},
		{"colour map", pixelFormat(8, 8, 0, 255)},
		{"depth over bpp", pixelFormat(16, 24, 1, 255)},
		{"colour max not 2^n-1", pixelFormat(32, 24, 1, 200)},
		{"zero bpp", pixelFormat(0, 0, 1, 255)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := lab.DialRFB(t, addr)
			if _, err := c.Conn.Write(tc.msg); err != nil && !isDisconnect(err) {
				t.Fatal(err)
			}
			// The server may still send what it had queued; then it must
			// close the connection.
			_ = c.Conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, err := io.Copy(io.Discard, c.Conn)
			if err != nil && !isDisconnect(err) {
				t.Fatalf("server kept the connection open: %v", err)
			}
			if _, _, err := good.Screen(); err != nil {
				t.Fatalf("well-behaved viewer lost its service: %v", err)
			}
			fresh := lab.DialRFB(t, addr)
			if _, _, err := fresh.Screen(); err != nil {
				t.Fatalf("new viewer not served: %v", err)
			}
		})
	}
	lab.WaitMatch(t, x, good.Screen, 0, matchTimeout)
}

// isDisconnect reports whether err means the peer closed or reset.
func isDisconnect(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
