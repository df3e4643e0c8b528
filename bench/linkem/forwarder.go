package linkem

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A link's forwarding in a process of its own.
//
// A benchmark that runs the link in its own process (rfbbench decodes the
// viewer's video there) delays the link: once its goroutines hold both
// cores, the forwarding goroutines wait for the runtime to schedule them.
// Measured with UDP probes across the link during session video at 20
// Mbit/s on a loaded 2-core machine, packets left the link 0.45-0.8 ms
// late at the median and 2-9 ms at the 95th percentile (up to 50 ms once),
// and were read from the device late as well. A router is a box of its
// own, so NewProcess forwards in a child process: 0.15 ms late at the
// median, 1.5 ms at the 95th percentile under the same load.
//
// Rejected: the child's threads at a real-time priority (SCHED_FIFO).
// Packets then left at most 0.3 ms late at the 95th percentile, but the
// programs measured lost their cores to it (most likely to the runtime's
// threads spinning for work, which no normal process preempts): a small
// change during video took 38-42 ms instead of 30-33 at 20 Mbit/s.

// forwarderEnv marks a process started by NewProcess; its value is the
// protocol's version.
const forwarderEnv = "ASSIST_LINKEM_FORWARDER"

// RunForwarder turns this process into a link's forwarder if NewProcess
// started it, and returns otherwise. Programs that use NewProcess call it
// first thing in main (and tests in TestMain): NewProcess starts the
// program's own executable again.
func RunForwarder() {
	if os.Getenv(forwarderEnv) != "1" {
		forwarderReady.Store(true)
		return
	}
	if err := serveForwarder(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "linkem forwarder:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// forwarderReady says RunForwarder was called: started again, this program
// would become a forwarder, not run its main a second time.
var forwarderReady atomic.Bool

// command is one request to the forwarder, one JSON object a line; each
// gets one reply.
type command struct {
	Set        bool
	AToB, BToA Direction
}

type reply struct {
	AToB, BToA Stats
	Err        string
}

// serveForwarder forwards between the devices it inherited (descriptors 3
// and 4) and answers commands until in ends.
func serveForwarder(in io.Reader, out io.Writer) error {
	// Passing them made them blocking; non-blocking, the runtime's
	// poller serves them and Close interrupts a pending Read.
	for _, fd := range []int{3, 4} {
		if err := unix.SetNonblock(fd, true); err != nil {
			return fmt.Errorf("no devices inherited: %w", err)
		}
	}
	fa, fb := os.NewFile(3, "a"), os.NewFile(4, "b")
	// A writer sleeping its last stretch in the kernel (sleepUntil)
	// holds its P meanwhile; with only as many Ps as cores, both writers
	// asleep would leave none to run a reader whose device has a packet
	// until the runtime's monitor takes one back (up to 10 ms later: 4.5
	// ms read lag at the 90th percentile, measured). Two writers and two
	// readers need four.
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 4))
	dec := json.NewDecoder(in)
	enc := json.NewEncoder(out)
	var first command
	if err := dec.Decode(&first); err != nil {
		fa.Close()
		fb.Close()
		return fmt.Errorf("read settings: %w", err)
	}
	l := forward(fa, fb, first.AToB, first.BToA, "a->b", "b->a")
	defer l.Close()
	for {
		var c command
		if err := dec.Decode(&c); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // NewProcess's Close
			}
			return fmt.Errorf("read command: %w", err)
		}
		var r reply
		if c.Set {
			if err := l.Set(c.AToB, c.BToA); err != nil {
				r.Err = err.Error()
			}
		}
		r.AToB, r.BToA = l.Stats()
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("reply: %w", err)
		}
	}
}

// forwarder is the parent's side of a forwarding process.
type forwarder struct {
	cmd  *exec.Cmd
	ctl  io.WriteCloser
	mu   sync.Mutex // one request at a time
	enc  *json.Encoder
	dec  *json.Decoder
	last [2]Stats // the counters of the last reply, for after Close
}

// NewProcess is New with the forwarding in a child process: the running
// executable started again, which must call RunForwarder first thing. The
// devices are made here; they go when the child ends (Close, or when this
// process dies and the child's input ends).
func NewProcess(a, b Endpoint, aToB, bToA Direction) (*Link, error) {
	if err := validate(aToB, bToA); err != nil {
		return nil, err
	}
	if !forwarderReady.Load() {
		return nil, errors.New("linkem: NewProcess needs linkem.RunForwarder called first in main")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("linkem: find this program to start its forwarder: %w", err)
	}
	fa, fb, err := openTUNs(a, b)
	if err != nil {
		return nil, err
	}
	// The child holds the devices now; it needs no copy of ours.
	defer fa.Close()
	defer fb.Close()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), forwarderEnv+"=1")
	cmd.ExtraFiles = []*os.File{fa, fb}
	cmd.Stderr = os.Stderr
	ctl, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("linkem: forwarder: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("linkem: forwarder: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("linkem: start forwarder: %w", err)
	}
	f := &forwarder{cmd: cmd, ctl: ctl, enc: json.NewEncoder(ctl), dec: json.NewDecoder(bufio.NewReader(out))}
	// The first settings, then a request for the counters: its reply
	// says the child is forwarding.
	if err := f.enc.Encode(command{AToB: aToB, BToA: bToA}); err != nil {
		return nil, errors.Join(fmt.Errorf("linkem: forwarder: %w", err), f.close())
	}
	if _, err := f.request(command{}); err != nil {
		return nil, errors.Join(err, f.close())
	}
	return &Link{proc: f}, nil
}

// request sends c and returns the reply.
func (f *forwarder) request(c command) (reply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r reply
	if err := f.enc.Encode(c); err != nil {
		return r, fmt.Errorf("linkem: forwarder: %w", err)
	}
	if err := f.dec.Decode(&r); err != nil {
		return r, fmt.Errorf("linkem: forwarder stopped: %w", err)
	}
	f.last = [2]Stats{r.AToB, r.BToA}
	if r.Err != "" {
		return r, errors.New(r.Err)
	}
	return r, nil
}

func (f *forwarder) set(aToB, bToA Direction) error {
	_, err := f.request(command{Set: true, AToB: aToB, BToA: bToA})
	return err
}

func (f *forwarder) stats() (Stats, Stats) {
	r, err := f.request(command{})
	if err != nil {
		slog.Error("linkem: counters", "err", err)
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.last[0], f.last[1]
	}
	return r.AToB, r.BToA
}

// close ends the child's input, which stops it, and waits for it.
func (f *forwarder) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.ctl.Close()
	if werr := f.cmd.Wait(); werr != nil {
		err = errors.Join(err, fmt.Errorf("linkem: forwarder: %w", werr))
	}
	return err
}
