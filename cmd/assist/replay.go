package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/internal/logfile"
	"github.com/assist-project/assist/recording"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/shadow"
)

// sessionRecording records one session's display while the expert may
// view, into DIR/assist-TIME-SESSION.rec, encrypted to the audit key.
type sessionRecording struct {
	dir string
	to  age.Recipient
	sh  *shadow.Screen
	rec *audit.Recorder
	// done is noviceOptions.Recorded.
	done func(path string, start time.Time)

	mu    sync.Mutex
	f     *os.File
	r     *recording.Recorder
	path  string
	start time.Time
}

// newSessionRecording prepares the recording of one session (nil when
// the novice's options ask for none).
func newSessionRecording(o noviceOptions, sh *shadow.Screen, rec *audit.Recorder) (*sessionRecording, error) {
	if o.RecordTo == "" {
		return nil, nil
	}
	to, err := recording.ParseRecipient(o.RecordTo)
	if err != nil {
		return nil, err
	}
	return &sessionRecording{dir: o.RecordDir, to: to, sh: sh, rec: rec, done: o.Recorded}, nil
}

// viewing starts the recording the first time the expert may view. It
// runs in the consent's audit hook, before the expert sees anything.
func (s *sessionRecording) viewing() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		return
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		slog.Warn("recording: no folder for recordings", "err", err)
		return
	}
	name := fmt.Sprintf("assist-%s-%s.rec", time.Now().Format("20060102-150405"), s.rec.Session())
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		slog.Warn("recording: cannot create the recording", "err", err)
		return
	}
	r, err := recording.Start(s.sh, f, recording.Header{Session: s.rec.Session()}, slog.Default(), s.to)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		slog.Warn("recording: cannot start", "err", err)
		return
	}
	s.f, s.r, s.path, s.start = f, r, f.Name(), time.Now()
}

// finish ends the recording and enters it in the audit log with the
// SHA-256 of the encrypted file, which binds the file to the log.
func (s *sessionRecording) finish() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return
	}
	err := errors.Join(s.r.Close(), s.f.Sync(), s.f.Close())
	if err != nil {
		slog.Warn("recording: not finished", "err", err)
	}
	f, err := os.Open(s.path)
	if err != nil {
		slog.Warn("recording: cannot read it back", "err", err)
		return
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		slog.Warn("recording: cannot read it back", "err", err)
		return
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	s.rec.Recorded(audit.File{Name: filepath.Base(s.path), Size: uint64(n), SHA256: sum, Result: "recorded"})
	s.f = nil
	if s.done != nil {
		s.done(s.path, s.start)
	}
}

func runReplay(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("replay", os.Stderr)
	idFile := fs.String("identity", "", "the audit key's identity file (AGE-SECRET-KEY-1..., from assist audit keygen)")
	listen := fs.String("listen", "127.0.0.1:0", "loopback address for the VNC viewer, or the page with --browser (port 0 picks a free one)")
	browser := fs.Bool("browser", false, "play the recording on a page in your browser (noVNC, with play, pause and seek) instead of for a VNC viewer")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 || *idFile == "" {
		fmt.Fprintln(os.Stderr, "usage: assist replay FILE --identity KEYFILE [--listen 127.0.0.1:PORT] [--browser]")
		return errUsage
	}
	if err := checkLoopback(*listen); err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	kf, err := os.Open(*idFile)
	if err != nil {
		return fmt.Errorf("the identity: %w", err)
	}
	ids, err := age.ParseIdentities(kf)
	kf.Close()
	if err != nil {
		return fmt.Errorf("the identity %s is not an age identity file: %w", *idFile, err)
	}
	if *browser {
		return replayInBrowser(ctx, positional[0], ids, *listen, stdout)
	}
	p, f, err := openRecording(positional[0], ids)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	srv := replayServer(ctx, &wg, p)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", *listen, err)
	}
	defer ln.Close()
	wg.Go(func() {
		if err := srv.Serve(ctx, ln); err != nil && ctx.Err() == nil {
			slog.Warn("replay: server stopped", "err", err)
		}
	})
	fmt.Fprintf(stdout, "recorded: %s\n", p.Header().Started.Local().Format(time.RFC1123))
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	fmt.Fprintln(stdout, "commands: pause, play, skip SECONDS, quit (the recording plays from the start)")
	ended := make(chan error, 1)
	wg.Go(func() { ended <- p.Run(ctx) })
	lines := stdinLines()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-ended:
			if err != nil && ctx.Err() == nil {
				return err
			}
			fmt.Fprintf(stdout, "end of the recording at %s; the last picture stays (quit to stop)\n", p.Position().Round(time.Second))
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			verb, arg, _ := strings.Cut(l, " ")
			switch verb {
			case "pause", "p":
				p.Pause()
				fmt.Fprintf(stdout, "paused at %s\n", p.Position().Round(time.Second))
			case "play":
				p.Resume()
				fmt.Fprintln(stdout, "playing")
			case "skip":
				n, err := strconv.Atoi(arg)
				if err != nil || n <= 0 {
					fmt.Fprintln(stdout, "skip how many seconds? e.g. skip 30")
					continue
				}
				p.Skip(time.Duration(n) * time.Second)
				fmt.Fprintf(stdout, "at %s\n", p.Position().Round(time.Second))
			case "quit", "q":
				return nil
			}
		}
	}
}

// openRecording opens the recording at path with the audit key's
// identities; the caller closes the file when playback has ended.
func openRecording(path string, ids []age.Identity) (*recording.Player, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := recording.Open(f, ids...)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return p, f, nil
}

// recordedAt is when p's session was recorded, as the viewer's title and
// the page show it.
func recordedAt(p *recording.Player) string {
	return p.Header().Started.Local().Format("2006-01-02 15:04")
}

// replayServer returns an RFB server (not yet serving) of p's replayed
// desktop; the desktop's shadow copy runs on wg until ctx ends.
func replayServer(ctx context.Context, wg *sync.WaitGroup, p *recording.Player) *rfb.Server {
	sh := shadow.New(p.Capturer(), shadow.Options{TileSize: 64})
	wg.Go(func() { sh.Run(ctx) })
	return &rfb.Server{Screen: sh, Name: "Assist recording " + recordedAt(p)}
}

// stdinLines returns the lines typed on stdin, trimmed, and is closed at
// the end of stdin. Its reader blocks on stdin for the life of the
// process, like the console's.
func stdinLines() <-chan string {
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
		close(lines)
	}()
	return lines
}

// auditKeygen makes an organisation's audit key: the identity file
// (0600, never leaves the admin's machine) and the public key to give
// every agent (--record-to).
func auditKeygen(stdout io.Writer, path string) error {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("the identity file: %w (it is never overwritten)", err)
	}
	_, werr := fmt.Fprintf(f, "# assist audit key, made %s\n# public key: %s\n%s\n", time.Now().Format(time.RFC3339), id.Recipient(), id)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("the identity file: %w", err)
	}
	fmt.Fprintf(stdout, "identity: %s (keep it secret: it opens every recording)\n", path)
	fmt.Fprintf(stdout, "audit key: %s\n", id.Recipient())
	return nil
}

// defaultRecordDir is where recordings go: the state directory's
// recordings folder.
func defaultRecordDir() string {
	dir, err := logfile.StateDir()
	if err != nil {
		return "recordings"
	}
	return filepath.Join(dir, "recordings")
}
