package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/launcher"
)

// runAssistEnv runs the binary to completion with the test's environment
// minus ASSIST_LOG and ASSIST_SERVER*, plus env, and returns its exit code,
// stdout and stderr.
func runAssistEnv(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(lab.AssistBinary(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ASSIST_LOG=") && !strings.HasPrefix(kv, "ASSIST_SERVER") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
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
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("assist %q still running after 60 s; stdout %q, stderr %q", args, stdout.String(), stderr.String())
		return 0, "", ""
	}
}

// splitExample splits an example command line as a shell would, for the
// quoting the examples use ('...' and "...").
func splitExample(line string) []string {
	var (
		out   []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// TestHelpEveryCommand: every command's --help shows a synopsis with its
// arguments, each flag, and at least two examples, and every example's
// flags are ones the command has (each example is run with --help
// appended: an unknown flag is a usage error, exit status 2).
func TestHelpEveryCommand(t *testing.T) {
	env := []string{"ASSIST_STATE_DIR=" + t.TempDir()}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runAssistEnv(t, env, c.name, "--help")
			if code != 0 || stdout != "" {
				t.Fatalf("exit status %d, stdout %q; want 0 and the help on stderr", code, stdout)
			}
			h, ok := helps[c.name]
			if !ok {
				t.Fatal("no help text")
			}
			if !strings.HasPrefix(stderr, "usage: assist "+c.name) || !strings.HasPrefix(h.synopsis, "assist "+c.name) {
				t.Errorf("help starts %q, want the synopsis", firstLine(stderr))
			}
			flags, examples, ok := strings.Cut(stderr, "\nexamples:\n")
			if !ok || !strings.Contains(flags, "\nflags:\n") || !strings.Contains(flags, "\n  --verbose\n") {
				t.Fatalf("help %q lacks the flags or the examples", stderr)
			}
			// Every flag the synopsis names is listed.
			for _, m := range regexp.MustCompile(`--[a-z-]+`).FindAllString(h.synopsis, -1) {
				if !strings.Contains(flags, "\n  "+m+"\n") && !strings.Contains(flags, "\n  "+m+" ") {
					t.Errorf("the synopsis names %s, the flags do not", m)
				}
			}
			lines := strings.Split(strings.TrimSpace(examples), "\n")
			if len(lines) < 2 {
				t.Errorf("%d examples, want two or three", len(lines))
			}
			for _, l := range lines {
				args := splitExample(strings.TrimSpace(l))
				if len(args) < 2 || args[0] != "assist" || (args[1] != c.name && !(c.name == "version" && args[1] == "--version")) {
					t.Errorf("example %q is not an assist %s command", l, c.name)
					continue
				}
				if code, _, stderr := runAssistEnv(t, env, append(args[1:], "--help")...); code != 0 {
					t.Errorf("example %q: exit status %d with --help; stderr %q", l, code, firstLine(stderr))
				}
			}
			// A wrong flag shows the same help, and exit status 2.
			code, _, stderr = runAssistEnv(t, env, c.name, "--no-such-flag")
			if code != 2 || !strings.Contains(stderr, "usage: "+h.synopsis) {
				t.Errorf("a wrong flag: exit status %d, stderr %q; want 2 and the help", code, firstLine(stderr))
			}
		})
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestVersion: assist version and assist --version print one line with
// the version, the Go version and the platform; -ldflags -X main.version
// sets it.
func TestVersion(t *testing.T) {
	want := regexp.MustCompile(`^assist \S+ \(go\S+, [a-z0-9]+/[a-z0-9]+\)\n$`)
	var outs []string
	for _, args := range [][]string{{"version"}, {"--version"}, {"--verbose", "version"}} {
		code, stdout, stderr := runAssistEnv(t, nil, args...)
		if code != 0 || !want.MatchString(stdout) || stderr != "" {
			t.Errorf("assist %q: exit status %d, stdout %q, stderr %q; want one line like %q", args, code, stdout, stderr, "assist v1.2.3 (go1.26.0, linux/amd64)")
		}
		outs = append(outs, stdout)
	}
	if outs[0] != outs[1] || outs[0] != outs[2] {
		t.Errorf("the forms disagree: %q", outs)
	}
	old := version
	defer func() { version = old }()
	version = "1.2.3"
	if got := versionString(); got != "1.2.3" {
		t.Errorf("with -X main.version=1.2.3 the version is %q", got)
	}
}

// closedServer returns an https URL on a loopback port nobody listens on.
func closedServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "https://" + ln.Addr().String()
	ln.Close()
	return u
}

// TestLogToFile: the session commands keep their log out of the terminal:
// it goes to assist.log in the state directory, whose path is printed
// once; --verbose and ASSIST_LOG bring it back to stderr.
func TestLogToFile(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret words\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	server := closedServer(t)
	join := []string{"join", "7-crayon-harbor", "--server", server, "--password-file", pw}
	levelRE := regexp.MustCompile(`(?m)^time=\S+ level=`)

	t.Run("default", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		code, _, stderr := runAssistEnv(t, []string{"ASSIST_STATE_DIR=" + dir}, join...)
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		path := filepath.Join(dir, "assist.log")
		if strings.Count(stderr, path) != 1 || !strings.HasPrefix(stderr, "Details for a helper are written to "+path) {
			t.Errorf("stderr %q does not name the log file once, first", stderr)
		}
		if levelRE.MatchString(stderr) {
			t.Errorf("log lines on the terminal: %q", stderr)
		}
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(b, []byte(`level=ERROR msg="command failed" command=join`)) {
			t.Errorf("the log file holds %q (%v), want the failure", b, err)
		}
		if bytes.Contains(b, []byte("secret words")) {
			t.Error("the password reached the log")
		}
	})
	for _, tt := range []struct {
		name string
		env  []string
		args []string
	}{
		{"--verbose", nil, append([]string{"--verbose"}, join...)},
		{"--verbose after the arguments", nil, append(append([]string{}, join...), "--verbose")},
		{"ASSIST_LOG=debug", []string{"ASSIST_LOG=debug"}, join},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			code, _, stderr := runAssistEnv(t, append(tt.env, "ASSIST_STATE_DIR="+dir), tt.args...)
			if code != 1 || !levelRE.MatchString(stderr) || strings.Contains(stderr, "Details for a helper") {
				t.Errorf("exit status %d, stderr %q; want 1 and the log lines, no file named", code, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "assist.log")); err == nil {
				t.Error("a log file was written as well")
			}
		})
	}
}

// TestLogOutRaw: while the console holds the terminal raw, log lines end
// in \r\n, so --verbose lines start at the left edge, not in a staircase.
func TestLogOutRaw(t *testing.T) {
	var b bytes.Buffer
	w := logOut{&b}
	rawTerminal.Store(true)
	_, _ = w.Write([]byte("time=1 level=INFO msg=a\ntime=2 level=INFO msg=b\n"))
	rawTerminal.Store(false)
	_, _ = w.Write([]byte("cooked\n"))
	if got, want := b.String(), "time=1 level=INFO msg=a\r\ntime=2 level=INFO msg=b\r\ncooked\n"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}

// TestNewcomerErrors: the errors everyone meets first say what to do.
func TestNewcomerErrors(t *testing.T) {
	e2e(t)
	srv := startServe(t, t.TempDir())
	closed := closedServer(t)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret words\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noDisplay := ":999"
	if _, err := os.Stat("/tmp/.X11-unix/X999"); err == nil {
		t.Skip("display :999 exists on this machine")
	}
	home := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"join, server not running", []string{"join", "7-crayon-harbor", "--server", closed, "--password-file", pw}, "is `assist serve` running at " + closed + "?"},
		{"invite, server not running", []string{"invite", "--server", closed, "--no-page", "--display", "$X"}, "is `assist serve` running at " + closed + "?"},
		{"login, server not running", []string{"login", closed, "--user", "ann"}, "is `assist serve` running at " + closed + "?"},
		{"join, unknown certificate", []string{"join", "7-crayon-harbor", "--server", srv.URL, "--password-file", pw}, "run `assist login " + srv.URL + "`, or pass --server-fingerprint"},
		{"invite, no such display", []string{"invite", "--display", noDisplay, "--no-page"}, "is a desktop running? set DISPLAY or pass --display"},
		{"invite, no display at all", []string{"invite", "--display", "", "--no-page"}, "is a desktop running? set DISPLAY or pass --display"},
		{"vnc, no such display", []string{"vnc", "--display", noDisplay}, "is a desktop running? set DISPLAY or pass --display"},
	}
	x := lab.StartXvfb(t, 320, 240)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, a := range tt.args {
				if a == "$X" {
					tt.args[i] = x.Display
				}
			}
			env := []string{"ASSIST_STATE_DIR=" + t.TempDir(), "HOME=" + home, identity.EnvConfigDir + "=" + t.TempDir(), "DISPLAY="}
			code, _, stderr := runAssistEnv(t, env, tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit status %d, stderr %q; want 1 and %q", code, stderr, tt.want)
			}
		})
	}
}

// repoRoot is the repository's top directory (the tests run in cmd/assist).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestThirdPartyLicenses: THIRD_PARTY_LICENSES lists what the binary
// contains today: scripts/licenses.sh --check regenerates it from the
// module cache and web/node_modules and compares.
func TestThirdPartyLicenses(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	if _, err := os.Stat(filepath.Join(repoRoot(t), "web/node_modules/@novnc/novnc")); err != nil {
		t.Skip("web/node_modules is missing: run npm ci --prefix web")
	}
	cmd := exec.Command("scripts/licenses.sh", "--check")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestDebianPackage builds the package with scripts/deb.sh (around the
// binary the tests built), installs it with dpkg -i, checks the binary,
// the menu entry and the assist:// handler are where the desktop looks,
// and removes it with dpkg -r. It needs root and dpkg-dev.
func TestDebianPackage(t *testing.T) {
	e2e(t)
	if os.Geteuid() != 0 {
		t.Skip("dpkg -i needs root")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-shlibdeps"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian: dpkg-dev)", tool)
		}
	}
	if out, _ := exec.Command("dpkg-query", "-W", "-f", "${Status}", "assist").Output(); strings.Contains(string(out), "installed") {
		t.Skip("a package named assist is installed on this machine already")
	}
	dir := t.TempDir()
	build := exec.Command("scripts/deb.sh", "0.0.1~test", dir)
	build.Dir = repoRoot(t)
	build.Env = append(os.Environ(), "ASSIST_DEB_BINARY="+lab.AssistBinary(t))
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/deb.sh: %v\n%s", err, out)
	}
	deb := strings.TrimSpace(string(out))
	if filepath.Base(deb) != "assist_0.0.1~test_"+debArch(t)+".deb" {
		t.Fatalf("scripts/deb.sh printed %q, want the package's path", deb)
	}
	control, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version", "Depends").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(control), "Version: 0.0.1~test") || !strings.Contains(string(control), "libc6") {
		t.Errorf("control fields %q", control)
	}

	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "-r", "assist").CombinedOutput(); err != nil {
			t.Logf("cleanup: dpkg -r assist: %v\n%s", err, out)
		}
		// The MIME cache forgets the handler too.
		if u, err := exec.LookPath("update-desktop-database"); err == nil {
			_ = exec.Command(u, "/usr/share/applications").Run()
		}
	})
	if out, err := exec.Command("dpkg", "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	code, stdout, stderr := runAssistPath(t, "/usr/bin/assist", "version")
	if code != 0 || !strings.HasPrefix(stdout, "assist ") {
		t.Errorf("the installed assist version: exit status %d, %q %q", code, stdout, stderr)
	}
	link, err := os.ReadFile("/usr/share/applications/assist-link.desktop")
	if err != nil || !strings.Contains(string(link), "MimeType=x-scheme-handler/assist;") || !strings.Contains(string(link), "Exec=/usr/bin/assist join %u") {
		t.Errorf("the assist:// handler: %q, %v", link, err)
	}
	if _, err := os.Stat("/usr/share/applications/assist.desktop"); err != nil {
		t.Errorf("the menu entry: %v", err)
	}
	if _, err := os.Stat("/usr/share/doc/assist/copyright"); err != nil {
		t.Errorf("the copyright file: %v", err)
	}
	if v, err := exec.LookPath("desktop-file-validate"); err == nil {
		if out, err := exec.Command(v, "/usr/share/applications/assist.desktop", "/usr/share/applications/assist-link.desktop").CombinedOutput(); err != nil {
			t.Errorf("desktop-file-validate: %v\n%s", err, out)
		}
	}
	// The desktop's own way to find the handler: the MIME cache that
	// update-desktop-database (dpkg's trigger, or the test) writes.
	if u, err := exec.LookPath("update-desktop-database"); err == nil {
		_ = exec.Command(u, "/usr/share/applications").Run()
		cache, err := os.ReadFile("/usr/share/applications/mimeinfo.cache")
		if err != nil || !regexp.MustCompile(`(?m)^x-scheme-handler/assist=.*assist-link\.desktop;`).Match(cache) {
			t.Errorf("mimeinfo.cache does not name the assist:// handler (%v)", err)
		}
	}

	if out, err := exec.Command("dpkg", "-r", "assist").CombinedOutput(); err != nil {
		t.Fatalf("dpkg -r: %v\n%s", err, out)
	}
	for _, f := range []string{"/usr/bin/assist", "/usr/share/applications/assist-link.desktop", "/usr/share/applications/assist.desktop"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s is still there after dpkg -r", f)
		}
	}
}

func debArch(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// runAssistPath runs an assist binary at path with a clean log setting.
func runAssistPath(t *testing.T, path string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "ASSIST_STATE_DIR="+t.TempDir())
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return lab.ExitCode(err), stdout.String(), stderr.String()
}

// TestBuildWithoutNodeModules builds assist as go install does: from the
// tracked files only (a module zip has no web/node_modules and no
// scripts/setup.sh outputs), with -tags nonovnc. The binary runs, and
// says once that the browser viewer is missing; without the tag the
// build fails on the embed pattern, which is why the README gives the tag.
func TestBuildWithoutNodeModules(t *testing.T) {
	e2e(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	root := repoRoot(t)
	files, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	src := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the work tree
			}
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list := exec.Command("go", "list", "-e", "-f", "{{with .Error}}{{.}}{{end}}", "./web")
	list.Dir = src
	if out, _ := list.CombinedOutput(); !strings.Contains(string(out), "node_modules") {
		t.Errorf("without the tag, go list ./web says %q; want the missing node_modules (is noVNC committed now? then drop the tag from README)", out)
	}
	bin := filepath.Join(t.TempDir(), "assist")
	build := exec.Command("go", "build", "-tags", "nonovnc", "-o", bin, "./cmd/assist")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nonovnc from the tracked files: %v\n%s", err, out)
	}
	if code, stdout, stderr := runAssistPath(t, bin, "version"); code != 0 || !strings.HasPrefix(stdout, "assist ") {
		t.Errorf("assist version: exit status %d, %q %q", code, stdout, stderr)
	}
	// serve says what is missing, and still serves.
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--turn-listen", "127.0.0.1:0", "--turns-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "ASSIST_LOG=warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if line, err := bufioLine(stdout); !strings.HasPrefix(line, "listening on https://") {
		t.Fatalf("first line %q (%v)", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	note := make(chan string, 1)
	go func() {
		for {
			l, err := bufioLine(stderr)
			if strings.Contains(l, "built without the browser viewer") || err != nil {
				note <- l
				return
			}
		}
	}()
	select {
	case l := <-note:
		if !strings.Contains(l, "scripts/setup.sh") {
			t.Errorf("the note %q does not say what to do", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no note about the missing browser viewer")
	}
}

// bufioLine reads one line from r.
func bufioLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := r.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}

// TestPackagingDesktopFiles: the Debian package's menu entry and link
// handler (packaging/linux) are the entries assist install-desktop writes,
// for /usr/bin/assist; a change to one must reach the other.
func TestPackagingDesktopFiles(t *testing.T) {
	for file, want := range map[string]string{
		"assist.desktop":       launcher.AppEntry("/usr/bin/assist"),
		"assist-link.desktop":  launcher.LinkEntry("/usr/bin/assist"),
		"assist-agent.desktop": launcher.AgentAutostartEntry("/usr/bin/assist"),
		"assist-agent.service": launcher.AgentUnit("/usr/bin/assist"),
	} {
		got, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging/linux", file))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("packaging/linux/%s differs from what assist install-desktop writes:\n%s\nwant:\n%s", file, got, want)
		}
	}
}
