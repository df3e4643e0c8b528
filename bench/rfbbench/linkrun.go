package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"net"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/assist-project/assist/bench/workload"
)

// linkConfig is a run across emulated links.
type linkConfig struct {
	links     []linkSpec
	servers   []string // names from linkServers
	workloads []string
	assist    string // the assist binary
	size      image.Point
	repeat    int
	set       settings
	lossless  time.Duration
	probe     bool
	// step, when set, changes the link's rate during each workload.
	step *linkStep
}

// runLinks builds the network of topology, starts an X desktop and, for
// every round, link and server in turn, connects the viewer in the
// expert's namespace to the desktop in the novice's and runs every
// workload. A server that cannot be measured (not installed, failed to
// start) is reported on stderr and left out.
func runLinks(ctx context.Context, cfg linkConfig) ([]Result, error) {
	if len(cfg.links) == 0 {
		return nil, errors.New("no links to run")
	}
	topo, err := newTopology(cfg.links[0])
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := topo.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "rfbbench:", err)
		}
	}()
	dir, err := os.MkdirTemp("", "rfbbench-links-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	x, err := workload.StartXvfb(cfg.size)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	desk, err := openDesktop(x.Display)
	if err != nil {
		return nil, err
	}
	defer desk.Close()
	var wls []workload.Workload
	for _, w := range workload.All(desk.Size()) {
		if slices.Contains(cfg.workloads, w.Name()) {
			wls = append(wls, w)
		}
	}
	if len(wls) == 0 {
		return nil, fmt.Errorf("no known workload in %q", cfg.workloads)
	}

	lr := &linkRunner{cfg: cfg, topo: topo, x: x, desk: desk, wls: wls, dir: dir}
	defer lr.close()
	var results []Result
	for round := 1; round <= cfg.repeat; round++ {
		for _, l := range cfg.links {
			if err := topo.setLink(l); err != nil {
				return results, err
			}
			for _, name := range linkServers {
				if !slices.Contains(cfg.servers, name) {
					continue
				}
				fmt.Fprintf(os.Stderr, "rfbbench: %s over %s (round %d of %d)\n", name, l, round, cfg.repeat)
				rs, err := lr.bench(ctx, name, l)
				for i := range rs {
					rs[i].Link, rs[i].Round = l.String(), round
					if cfg.step != nil {
						rs[i].Link = cfg.step.name(l)
					}
				}
				results = append(results, rs...)
				if err != nil {
					if ctx.Err() != nil {
						return results, err
					}
					fmt.Fprintf(os.Stderr, "rfbbench: %s over %s: %v\n", name, l, err)
				}
			}
		}
	}
	return results, nil
}

// linkRunner holds what the servers of a run across links share.
type linkRunner struct {
	cfg  linkConfig
	topo *topology
	x    *workload.Xvfb
	desk *workload.Desktop
	wls  []workload.Workload
	dir  string
	srv  *rendezvous // started for the first server path
	n    int         // sessions started, for their folders
}

func (lr *linkRunner) close() {
	if lr.srv != nil {
		lr.srv.proc.Stop()
	}
}

// bench measures server name under every workload across link l.
func (lr *linkRunner) bench(ctx context.Context, name string, l linkSpec) ([]Result, error) {
	blank := image.Rectangle{Max: lr.desk.Size()}
	lr.desk.Fill(blank, 0x3a6ea5)
	if err := lr.desk.Sync(); err != nil {
		return nil, err
	}
	toExpert := dialer(lr.topo.expert)
	r := &run{desk: lr.desk, xPID: lr.x.PID(), warmup: lr.cfg.set.warmup, duration: lr.cfg.set.duration,
		trace: lr.cfg.set.trace, name: name, linkBytes: lr.topo.linkBytes, lossless: lr.cfg.lossless, probe: lr.cfg.probe}
	var conn net.Conn
	var path string
	switch name {
	case serverSession, serverWebRTC, serverRelay:
		if err := lr.topo.blockDirect(name == serverRelay); err != nil {
			return nil, err
		}
		defer lr.topo.blockDirect(false)
		if name != serverSession && lr.srv == nil {
			srv, err := startServe(ctx, lr.topo, lr.cfg.assist, lr.dir)
			if err != nil {
				return nil, err
			}
			lr.srv = srv
		}
		lr.n++
		s, err := startSession(ctx, lr.topo, name, lr.cfg.assist, lr.x.Display, fmt.Sprintf("%s/session%d", lr.dir, lr.n), lr.srv)
		if err != nil {
			return nil, err
		}
		defer s.Stop()
		r.serverPID, r.expertPID, path = s.invite.PID(), s.join.PID(), s.path
		if conn, err = toExpert(ctx, s.rfb); err != nil {
			return nil, fmt.Errorf("connect to assist join: %w", err)
		}
	default:
		i := slices.IndexFunc(specs(lr.cfg.assist), func(s serverSpec) bool { return s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown server %q", name)
		}
		spec := specs(lr.cfg.assist)[i]
		if _, err := exec.LookPath(spec.Binary); err != nil {
			return nil, fmt.Errorf("skipped: %s not found", spec.Binary)
		}
		srv, err := startServerIn(ctx, spec, lr.x.Display, lr.topo.novice)
		if err != nil {
			return nil, err
		}
		defer srv.Stop()
		probe, err := srv.Dial(ctx, name) // waits until it listens
		if err != nil {
			return nil, err
		}
		probe.Close()
		fwd, err := startForwarder(lr.topo.novice, srv.Addr)
		if err != nil {
			return nil, err
		}
		defer fwd.Close()
		r.serverPID = srv.PID()
		if conn, err = toExpert(ctx, fwd.Addr()); err != nil {
			return nil, fmt.Errorf("connect across the link: %w", err)
		}
	}
	view, err := newViewer(conn, lr.cfg.set.viewer)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer view.Close()
	r.view = view
	var results []Result
	for _, w := range lr.wls {
		fmt.Fprintf(os.Stderr, "rfbbench:   %s\n", w.Name())
		before, _ := lr.topo.link.Stats()
		if st := lr.cfg.step; st != nil {
			r.step = &step{at: st.At, do: func() error { return lr.topo.setLink(st.after(l)) }}
		}
		res, err := r.measure(ctx, w)
		if r.step != nil {
			// Back to the link's own rate for the next workload, so that
			// each starts from the same link.
			if serr := lr.topo.setLink(l); serr != nil && err == nil {
				err = serr
			}
		}
		if err != nil {
			return results, fmt.Errorf("%s: %w", name, err)
		}
		// The emulator's own accuracy: a packet is never early, but a
		// loaded machine can make it late (linkem.Stats.Late).
		after, _ := lr.topo.link.Stats()
		if n := after.Delivered - before.Delivered; n > 0 {
			fmt.Fprintf(os.Stderr, "rfbbench:   the link delivered %d packets towards the expert %.2f ms late on average (the most so far %.1f ms); they waited %.2f ms on average in the bottleneck's queue\n",
				n, float64(after.Late-before.Late)/float64(n)/1e6, float64(after.MaxLate)/1e6, float64(after.Queued-before.Queued)/float64(n)/1e6)
		}
		res.Server, res.Path = name, path
		results = append(results, res)
	}
	return results, nil
}
