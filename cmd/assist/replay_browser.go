package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/assist-project/assist/recording"
	"github.com/assist-project/assist/replaypage"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/web"
)

// replayer plays one recording for the browser page (replaypage.Player).
// A seek forwards decodes up to the target at once; a seek backwards
// replays from the start to the target as quickly (a new run, a new
// epoch: the page connects again).
type replayer struct {
	path     string
	ids      []age.Identity
	length   time.Duration
	recorded string
	ctx      context.Context // the owner's: every run ends with it
	wg       sync.WaitGroup

	mu     sync.Mutex
	cur    *replayRun
	epoch  uint64
	paused bool
}

// replayRun is the recording played once from its start.
type replayRun struct {
	p      *recording.Player
	srv    *rfb.Server
	ctx    context.Context
	cancel context.CancelFunc
}

// startLocked decrypts the file again and plays it from the start; r.mu held.
func (r *replayer) startLocked() error {
	p, f, err := openRecording(r.path, r.ids)
	if err != nil {
		return err
	}
	if r.recorded == "" {
		r.recorded = recordedAt(p)
	}
	ctx, cancel := context.WithCancel(r.ctx)
	if r.paused {
		p.Pause()
	}
	srv := replayServer(ctx, &r.wg, p)
	r.wg.Go(func() {
		defer f.Close()
		if err := p.Run(ctx); err != nil && ctx.Err() == nil {
			slog.Warn("replay: the recording stopped", "err", err)
		}
	})
	if r.cur != nil {
		r.cur.cancel()
	}
	r.cur = &replayRun{p: p, srv: srv, ctx: ctx, cancel: cancel}
	r.epoch++
	return nil
}

// OpenDisplay implements replaypage.Player.
func (r *replayer) OpenDisplay(ctx context.Context) (net.Conn, error) {
	r.mu.Lock()
	run := r.cur
	r.mu.Unlock()
	a, b := net.Pipe()
	r.wg.Go(func() {
		stop := context.AfterFunc(ctx, func() { a.Close() })
		defer stop()
		_ = run.srv.ServeConn(run.ctx, a)
		a.Close()
	})
	return b, nil
}

// State implements replaypage.Player.
func (r *replayer) State() replaypage.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := min(r.cur.p.Position(), r.length)
	return replaypage.State{At: at, Length: r.length, Playing: !r.paused && at < r.length, Epoch: r.epoch, Recorded: r.recorded}
}

// Play implements replaypage.Player.
func (r *replayer) Play() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur.p.Position() >= r.length {
		// Play at the end plays again from the start.
		r.paused = false
		if err := r.startLocked(); err != nil {
			slog.Warn("replay: cannot start again", "err", err)
		}
		return
	}
	r.paused = false
	r.cur.p.Resume()
}

// Pause implements replaypage.Player.
func (r *replayer) Pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paused = true
	r.cur.p.Pause()
}

// Seek implements replaypage.Player.
func (r *replayer) Seek(at time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at = min(at, r.length)
	pos := r.cur.p.Position()
	if at < pos {
		if err := r.startLocked(); err != nil {
			slog.Warn("replay: cannot seek", "err", err)
			return
		}
		pos = 0
	}
	r.cur.p.Skip(at - pos)
}

// close stops every run and waits for them.
func (r *replayer) close() {
	r.mu.Lock()
	if r.cur != nil {
		r.cur.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// replayInBrowser is assist replay --browser: the recording on a loopback
// page with noVNC, Play, Pause and a seek bar, until quit or ctx ends.
func replayInBrowser(ctx context.Context, path string, ids []age.Identity, listen string, stdout io.Writer) error {
	if !web.HasNoVNC() {
		return errors.New(web.NoVNCMissing)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &replayer{path: path, ids: ids, ctx: ctx}
	defer r.close()
	// Open first: its errors say what is wrong with the key or the file.
	r.mu.Lock()
	err := r.startLocked()
	r.mu.Unlock()
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	length, err := recording.Length(f, ids...)
	f.Close()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.length = length
	r.mu.Unlock()
	page, err := replaypage.New(r, slog.Default())
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", listen, err)
	}
	url := page.URL(ln)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		if err := page.Serve(ctx, ln); err != nil {
			slog.Warn("replay: the page stopped", "err", err)
		}
	})
	fmt.Fprintf(stdout, "recorded: %s\n", r.recorded)
	fmt.Fprintf(stdout, "length: %s\n", length.Round(time.Second))
	fmt.Fprintf(stdout, "page: %s\n", url)
	fmt.Fprintln(stdout, "commands: quit (play, pause and seek on the page)")
	openInBrowser(stdout, url)
	lines := stdinLines()
	for {
		select {
		case <-ctx.Done():
			return nil
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			if l == "quit" || l == "q" {
				return nil
			}
		}
	}
}
