package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

// lineProc is a child process (assist invite, assist join) whose stdout
// lines are read as they come.
type lineProc struct {
	name   string
	cmd    *exec.Cmd
	lines  chan string // stdout lines; closed once the process has exited
	stderr *tailBuffer
	exited chan struct{} // closed after Wait
}

// startProc starts name with args, stdin from /dev/null.
func startProc(name string, args ...string) (*lineProc, error) {
	cmd := exec.Command(name, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &lineProc{name: name, cmd: cmd, lines: make(chan string, 256), stderr: &tailBuffer{max: 8 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		defer close(p.exited)
		defer close(p.lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			select {
			case p.lines <- s.Text():
			default: // nobody waits for more lines than fit
			}
		}
		cmd.Wait() // its error says no more than the output does
	}()
	return p, nil
}

// waitLine returns the submatches of the first stdout line matching re, or
// an error when the process exits first (its last line of stderr) or ctx
// ends.
func (p *lineProc) waitLine(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				return nil, fmt.Errorf("exited: %s", p.stderr.lastLine())
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// stop interrupts the process as Ctrl-C would, kills it if it is still
// there after 5 s, and waits for it.
func (p *lineProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.cmd.Process.Kill()
	}
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, b...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(b), nil
}

// lastLine is the last non-empty line written, or "(nothing on stderr)".
func (t *tailBuffer) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := bytes.Split(bytes.TrimSpace(t.b), []byte("\n"))
	if last := strings.TrimSpace(string(lines[len(lines)-1])); last != "" {
		return last
	}
	return "(nothing on stderr)"
}
