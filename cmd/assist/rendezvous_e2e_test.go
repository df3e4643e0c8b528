package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
)

// The end-to-end test of the rendezvous path: `assist serve`, `assist
// invite --server` and `assist join CODE` on loopback. The server is on
// loopback, so both ends gather loopback candidates and WebRTC finds the
// host-to-host path ("path: direct").

// serverNovice is a running `assist invite --server`.
type serverNovice struct {
	*lab.LineProc
	Code     string // "N-word-word"
	Lookup   int
	Words    [2]string
	File     string
	Password string // "word-word"
	// BrowserURL is the "browser:" line: the page that joins with Code.
	BrowserURL string
	// Link is the "link:" line: the invitation as an assist:// link.
	Link string
}

func startServerInvite(t *testing.T, display string, srv *servedProc) *serverNovice {
	t.Helper()
	n := &serverNovice{File: filepath.Join(t.TempDir(), "help.assist")}
	n.LineProc = lab.StartLines(t, nil, lab.AssistBinary(t), "invite", "--server", srv.URL,
		"--server-fingerprint", srv.Fingerprint, "--file", n.File, "--display", display, "--name", noviceName,
		"--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view")
	m := n.WaitLine(t, `^code: (([0-9]+)-([a-z]+)-([a-z]+))$`, lineTimeout)
	n.Code, n.Words = m[1], [2]string{m[3], m[4]}
	n.Lookup, _ = strconv.Atoi(m[2])
	n.Password = n.Words[0] + "-" + n.Words[1]
	if got := n.WaitLine(t, `^password: (.*)$`, lineTimeout)[1]; got != n.Password {
		t.Errorf("password line %q, want the code's words %q", got, n.Password)
	}
	n.Link = n.WaitLine(t, `^link: (assist://invite\?d=\S+)$`, lineTimeout)[1]
	n.WaitLine(t, `^server: `+regexp.QuoteMeta(srv.URL)+`$`, lineTimeout)
	n.BrowserURL = n.WaitLine(t, `^browser: (\S+)$`, lineTimeout)[1]
	n.WaitLine(t, `^waiting for your helper`, lineTimeout)
	return n
}

// joinCodeFails runs `assist join` with args, which must fail with exit
// status 1, nothing on stdout, and a last stderr line "assist join: ...",
// which it returns.
func joinCodeFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	p := lab.StartLines(t, env, lab.AssistBinary(t), append([]string{"join", "--no-browser", "--name", expertName}, args...)...)
	if code := p.WaitExit(t, 60*time.Second); code != 1 {
		t.Fatalf("assist join exited with %d, want 1\noutput:\n%s", code, p.Output())
	}
	if out := p.Stdout(); out != "" {
		t.Errorf("failed assist join printed on stdout: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(p.Stderr()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "assist join: ") {
		t.Fatalf("assist join's last line of stderr is %q, want \"assist join: ...\"\nstderr:\n%s", last, p.Stderr())
	}
	return last
}

// otherWord returns a code word other than w.
func otherWord(w string) string {
	if w == "acorn" {
		return "actor"
	}
	return "acorn"
}

// TestRendezvousJoin: a novice and an expert meet through `assist serve`
// with a short code; wrong and unknown codes fail clearly and leave the
// novice waiting; a file whose addresses are dead falls back to the
// server.
func TestRendezvousJoin(t *testing.T) {
	e2e(t)
	t.Parallel()
	d := newDesktop(t)
	srv := startServe(t, t.TempDir(), "--turn-listen", "127.0.0.1:0", "--turns-listen", "127.0.0.1:0")
	nov := startServerInvite(t, d.Display, srv)
	serverFlags := []string{"--server", srv.URL, "--server-fingerprint", srv.Fingerprint}

	t.Run("wrong code", func(t *testing.T) {
		bad := fmt.Sprintf("%d-%s-%s", nov.Lookup, nov.Words[0], otherWord(nov.Words[1]))
		msg := joinCodeFails(t, nil, append(serverFlags, bad)...)
		wantContains(t, "wrong code", msg, "wrong password")
		(&novice{LineProc: nov.LineProc}).stillWaiting(t)
	})
	t.Run("unknown number", func(t *testing.T) {
		unknown := fmt.Sprintf("%d-%s-%s", nov.Lookup%9999+1, nov.Words[0], nov.Words[1])
		msg := joinCodeFails(t, nil, append(serverFlags, unknown)...)
		wantContains(t, "unknown number", msg, "no invitation is waiting under this number", "ask for a new one")
		(&novice{LineProc: nov.LineProc}).stillWaiting(t)
	})
	t.Run("code without a server", func(t *testing.T) {
		msg := joinCodeFails(t, nil, nov.Code)
		wantContains(t, "no server", msg, "--server", "ASSIST_SERVER")
	})

	t.Run("code", func(t *testing.T) {
		// The server from the environment, as ASSIST_SERVER documents;
		// the code typed loosely.
		env := []string{"ASSIST_SERVER=" + srv.URL, "ASSIST_SERVER_FINGERPRINT=" + srv.Fingerprint}
		typed := fmt.Sprintf("%d %s %s", nov.Lookup, strings.ToUpper(nov.Words[0]), nov.Words[1])
		p := lab.StartLines(t, env, lab.AssistBinary(t), "join", "--no-browser", "--name", expertName, typed)
		p.WaitLine(t, `^path: direct$`, lineTimeout)
		rfbAddr := p.WaitLine(t, `^rfb on (\S+)$`, lineTimeout)[1]
		p.WaitLine(t, `^state: viewing`, lineTimeout)
		// Only the expert's "path:" line is checked: the novice may name a
		// peer-reflexive candidate (a check that beat the candidate's
		// signalling) "punched" on the same host-to-host path.
		nov.WaitLine(t, `^`+expertName+` connected from \S+ through the Assist server$`, lineTimeout)
		lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)
		stop(t, p, "assist join")
		nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
		for _, proc := range []*lab.LineProc{nov.LineProc, p} {
			if strings.Contains(proc.Stderr(), nov.Password) {
				t.Errorf("the password appears in a log line:\n%s", proc.Stderr())
			}
		}
	})

	t.Run("file with dead addresses", func(t *testing.T) {
		data, err := os.ReadFile(nov.File)
		if err != nil {
			t.Fatal(err)
		}
		dead := regexp.MustCompile(`"127\.0\.0\.1:\d+"`).ReplaceAll(data, []byte(`"127.0.0.1:1"`))
		file := filepath.Join(t.TempDir(), "dead.assist")
		if err := os.WriteFile(file, dead, 0o600); err != nil {
			t.Fatal(err)
		}
		// The server comes from the file; the words typed with a space.
		pw := writePassword(t, strings.ToUpper(nov.Words[0])+" "+nov.Words[1])
		p := lab.StartLines(t, nil, lab.AssistBinary(t), "join", "--no-browser", "--name", expertName,
			"--server-fingerprint", srv.Fingerprint, "--password-file", pw, file)
		p.WaitLine(t, `^connected to `+noviceName+` via the rendezvous server \(direct\)$`, lineTimeout)
		p.WaitLine(t, `^path: direct$`, lineTimeout)
		p.WaitLine(t, `^state: viewing`, lineTimeout)
		stop(t, p, "assist join")
		nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	})

	// The two links assist invite prints work as assist join's argument:
	// the browser's link carries the server and the code, the
	// invitation's link the same as the file.
	t.Run("browser link", func(t *testing.T) {
		p := lab.StartLines(t, nil, lab.AssistBinary(t), "join", "--no-browser", "--name", expertName,
			"--server-fingerprint", srv.Fingerprint, nov.BrowserURL)
		p.WaitLine(t, `^path: direct$`, lineTimeout)
		p.WaitLine(t, `^state: viewing`, lineTimeout)
		stop(t, p, "assist join")
		nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	})
	t.Run("invitation link", func(t *testing.T) {
		pw := writePassword(t, nov.Password)
		p := lab.StartLines(t, nil, lab.AssistBinary(t), "join", "--no-browser", "--name", expertName,
			"--server-fingerprint", srv.Fingerprint, "--password-file", pw, nov.Link)
		p.WaitLine(t, `^path: direct$`, lineTimeout)
		p.WaitLine(t, `^state: viewing`, lineTimeout)
		stop(t, p, "assist join")
		nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	})

	stop(t, nov.LineProc, "assist invite")
}
