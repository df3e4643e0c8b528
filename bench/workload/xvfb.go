package workload

import (
	"bufio"
	"fmt"
	"image"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Xvfb is a virtual X server started for the benchmark.
type Xvfb struct {
	// Display is the X display name, such as ":3".
	Display string
	cmd     *exec.Cmd
	done    chan struct{}
}

// StartXvfb starts Xvfb on a free display number (chosen by Xvfb itself
// through -displayfd) with a 24-bit screen of the given size, and waits
// until it accepts connections.
func StartXvfb(size image.Point) (*Xvfb, error) {
	path, err := exec.LookPath("Xvfb")
	if err != nil {
		return nil, fmt.Errorf("workload: xvfb: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("workload: xvfb: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(path, "-displayfd", "3",
		"-screen", "0", fmt.Sprintf("%dx%dx24", size.X, size.Y),
		"+extension", "MIT-SHM", "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("workload: xvfb: start: %w", err)
	}
	w.Close()
	x := &Xvfb{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(x.done) }()

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s == "" {
			x.Close()
			return nil, fmt.Errorf("workload: xvfb: exited without reporting a display")
		}
		x.Display = ":" + s
	case <-time.After(10 * time.Second):
		x.Close()
		return nil, fmt.Errorf("workload: xvfb: no display reported within 10 s")
	}
	return x, nil
}

// PID is the process id of the X server, for CPU accounting.
func (x *Xvfb) PID() int { return x.cmd.Process.Pid }

// Close stops the X server and waits for it to exit.
func (x *Xvfb) Close() error {
	x.cmd.Process.Kill()
	<-x.done
	return nil
}
