package lab

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Need skips t unless every named program is on PATH.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("lab: %s is not installed (see internal/lab/doc.go for the packages)", tool)
		}
	}
}

// Proc is a background process started by Start. Its output is kept for
// failure messages.
type Proc struct {
	Cmd  *exec.Cmd
	name string
	out  lockedBuffer

	done    chan struct{}
	waitErr error
}

// lockedBuffer lets the exec package's copying goroutines and the test
// read output at the same time.
type lockedBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	more chan struct{} // closed (and replaced) on every write; nil until waited on
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.more != nil {
		close(l.more)
		l.more = nil
	}
	return l.b.Write(p)
}

// waitMatch waits until what was written matches re, and returns the
// match, or "" and false after timeout.
func (l *lockedBuffer) waitMatch(re *regexp.Regexp, timeout time.Duration) (string, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		if m := re.FindString(l.b.String()); m != "" {
			l.mu.Unlock()
			return m, true
		}
		if l.more == nil {
			l.more = make(chan struct{})
		}
		more := l.more
		l.mu.Unlock()
		select {
		case <-more:
		case <-deadline.C:
			return "", false
		}
	}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs a program in its own process group with env added to the
// test's environment. On cleanup the whole group gets SIGTERM, then
// SIGKILL if it is still there after a few seconds, so shells and their
// children go too.
func Start(t testing.TB, env []string, name string, args ...string) *Proc {
	t.Helper()
	p := newProc(env, name, args...)
	p.Cmd.Stdout = &p.out
	p.Cmd.Stderr = &p.out
	if err := p.start(); err != nil {
		t.Fatalf("lab: start %s: %v", name, err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

func newProc(env []string, name string, args ...string) *Proc {
	cmd := exec.Command(name, args...)
	cmd.Env = append(procEnv(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return &Proc{Cmd: cmd, name: name, done: make(chan struct{})}
}

func (p *Proc) start() error {
	if err := p.Cmd.Start(); err != nil {
		return err
	}
	go func() {
		p.waitErr = p.Cmd.Wait()
		close(p.done)
	}()
	return nil
}

// Output is what the process printed so far (stdout and stderr, unless
// the caller redirected them).
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Signal sends sig to the process (not its group).
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Wait waits up to d for the process to exit and returns its exit error;
// ok is false if it was still running.
func (p *Proc) Wait(d time.Duration) (err error, ok bool) {
	select {
	case <-p.done:
		return p.waitErr, true
	case <-time.After(d):
		return nil, false
	}
}

// Stop ends the process group: SIGTERM, then SIGKILL after 5 s. It is safe
// to call more than once and after the process exited.
func (p *Proc) Stop() {
	pgid := p.Cmd.Process.Pid
	select {
	case <-p.done:
		// The leader is gone; children it left in the group may remain.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// ExitCode returns the exit status carried by err (0 for nil, -1 when the
// process died from a signal or never ran).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Run runs a program to completion with env added and returns its stdout;
// it fails the test with stderr when the program fails.
func Run(t testing.TB, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(procEnv(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lab: %s %q: %v: %s", name, args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out
}

// waitFor polls cond every 50 ms until it returns true or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procEnv is the test's environment for a started program, with
// ASSIST_LOG=info unless the test run sets it: assist writes its log to a
// file in the user's state directory by default, and the tests read the
// log lines from stderr. It also has ASSIST_INDICATOR=off unless the run
// sets it: the novice's frame appears a moment into a session, which
// races every test that compares the expert's first picture with the
// desktop; tests of the indicator pass ASSIST_INDICATOR=on.
func procEnv() []string {
	env := os.Environ()
	if os.Getenv("ASSIST_LOG") == "" {
		env = append(env, "ASSIST_LOG=info")
	}
	if os.Getenv("ASSIST_INDICATOR") == "" {
		env = append(env, "ASSIST_INDICATOR=off")
	}
	return env
}
