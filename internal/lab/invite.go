package lab

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// LineProc is a command-line program driven the way a script drives it:
// commands written to its stdin one per line, its stdout read line by
// line. Its stderr is kept apart so tests can check the error messages a
// person would read.
type LineProc struct {
	*Proc
	stdin  io.WriteCloser
	stderr lockedBuffer

	mu    sync.Mutex
	lines []string
	next  int           // the first line WaitLine looks at
	more  chan struct{} // closed (and replaced) when a line arrives or stdout ends
	eof   bool
}

// StartLines runs a program with env added to the test's environment, in
// its own process group, with pipes on stdin and stdout. Like Start, it
// stops the whole group on cleanup.
func StartLines(t testing.TB, env []string, name string, args ...string) *LineProc {
	t.Helper()
	p := &LineProc{Proc: newProc(env, name, args...), more: make(chan struct{})}
	// An os.Pipe rather than StdoutPipe: exec's Wait (which Proc calls as
	// soon as the program starts) would close StdoutPipe under the reader
	// and lose the last lines of a program that exits.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("lab: %s: pipe: %v", name, err)
	}
	p.Cmd.Stdout = w
	p.Cmd.Stderr = io.MultiWriter(&p.out, &p.stderr)
	if p.stdin, err = p.Cmd.StdinPipe(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("lab: %s: stdin: %v", name, err)
	}
	if err := p.start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("lab: start %s: %v", name, err)
	}
	w.Close()
	t.Cleanup(p.Stop)
	go p.read(r)
	return p
}

func (p *LineProc) read(r *os.File) {
	defer r.Close()
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		p.out.Write([]byte(line + "\n"))
		p.mu.Lock()
		p.lines = append(p.lines, line)
		close(p.more)
		p.more = make(chan struct{})
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.eof = true
	close(p.more)
	p.mu.Unlock()
}

// Send writes one line to the program's stdin.
func (p *LineProc) Send(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatalf("lab: %s: write %q to stdin: %v\noutput:\n%s", p.name, line, err, p.Output())
	}
}

// WaitLine waits up to timeout for a line of stdout that matches the
// regular expression pattern and returns its submatches. It looks only at
// lines after the one the previous WaitLine matched, so a test reads the
// program's output in order; lines it passes over are not seen again.
func (p *LineProc) WaitLine(t testing.TB, pattern string, timeout time.Duration) []string {
	t.Helper()
	m, err := p.waitLine(regexp.MustCompile(pattern), timeout)
	if err != nil {
		t.Fatalf("lab: %s: %v\noutput:\n%s", p.name, err, p.Output())
	}
	return m
}

func (p *LineProc) waitLine(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for i := p.next; i < len(p.lines); i++ {
			if m := re.FindStringSubmatch(p.lines[i]); m != nil {
				p.next = i + 1
				p.mu.Unlock()
				return m, nil
			}
		}
		eof, more := p.eof, p.more
		p.mu.Unlock()
		if eof {
			return nil, fmt.Errorf("no line matching %q: stdout ended", re)
		}
		select {
		case <-more:
		case <-deadline.C:
			return nil, fmt.Errorf("no line matching %q after %v", re, timeout)
		}
	}
}

// WaitLines is WaitLine for several patterns whose lines may come in any
// order (a program that prints from several goroutines): each must match
// a different line. Later waits look after the last of those lines.
func (p *LineProc) WaitLines(t testing.TB, timeout time.Duration, patterns ...string) {
	t.Helper()
	res := make([]*regexp.Regexp, len(patterns))
	for i, pat := range patterns {
		res[i] = regexp.MustCompile(pat)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		used := make(map[int]bool)
		last := -1
		for _, re := range res {
			found := -1
			for i := p.next; i < len(p.lines); i++ {
				if !used[i] && re.MatchString(p.lines[i]) {
					found = i
					break
				}
			}
			if found < 0 {
				last = -1
				break
			}
			used[found] = true
			last = max(last, found)
		}
		if last >= 0 {
			p.next = last + 1
			p.mu.Unlock()
			return
		}
		eof, more := p.eof, p.more
		p.mu.Unlock()
		if eof {
			t.Fatalf("lab: %s: no lines matching all of %q: stdout ended\noutput:\n%s", p.name, patterns, p.Output())
		}
		select {
		case <-more:
		case <-deadline.C:
			t.Fatalf("lab: %s: no lines matching all of %q after %v\noutput:\n%s", p.name, patterns, timeout, p.Output())
		}
	}
}

// Lines returns every line of stdout so far.
func (p *LineProc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Stdout returns stdout so far, one line after the other.
func (p *LineProc) Stdout() string {
	return strings.Join(p.Lines(), "\n")
}

// Stderr returns what the program wrote to stderr so far.
func (p *LineProc) Stderr() string { return p.stderr.String() }

// WaitStderr waits until the program's standard error (its log) matches
// pattern and returns the match: a program may log what it did after the
// other side has already seen it.
func (p *LineProc) WaitStderr(t testing.TB, pattern string, timeout time.Duration) string {
	t.Helper()
	m, ok := p.stderr.waitMatch(regexp.MustCompile(pattern), timeout)
	if !ok {
		t.Fatalf("lab: %s did not log %q within %v; its log:\n%s", p.Cmd.Path, pattern, timeout, p.Stderr())
	}
	return m
}

// WaitExit waits up to timeout for the program to exit and returns its
// exit status; it fails t if the program is still running then.
func (p *LineProc) WaitExit(t testing.TB, timeout time.Duration) int {
	t.Helper()
	err, ok := p.Wait(timeout)
	if !ok {
		t.Fatalf("lab: %s still running after %v\noutput:\n%s", p.name, timeout, p.Output())
	}
	return ExitCode(err)
}

// DialRFB is DialRFB from inside namespace ns, for a server that listens
// on a loopback address there.
func (n *Net) DialRFB(t testing.TB, ns, addr string) *RawClient {
	t.Helper()
	var c *RawClient
	err := InNetns(ns, func() error {
		var err error
		c, err = dialRFB(addr)
		return err
	})
	if err != nil {
		t.Fatalf("lab: from %s: %v", ns, err)
	}
	t.Cleanup(func() { c.Conn.Close() })
	return c
}

// VNCSnapshot is VNCSnapshot run inside namespace ns.
func (n *Net) VNCSnapshot(t testing.TB, ns, addr string, args ...string) *screen.Image {
	t.Helper()
	return vncSnapshot(t, "vncsnapshot in "+ns, func(a ...string) *Proc { return n.Start(t, ns, nil, "vncsnapshot", a...) }, addr, args)
}
