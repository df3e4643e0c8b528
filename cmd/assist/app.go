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

	"github.com/assist-project/assist/account"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/noviceapp"
	"github.com/assist-project/assist/novicepage"
)

// The novice's app: `assist` with no arguments (or `assist app`, which
// takes flags) serves the novice's page in app mode on loopback, opens it
// in the browser and runs package noviceapp on it. It offers Get help (an
// invitation as assist invite makes, through the server of assist login
// when there is one) and the messenger's contacts with Ask for help (as
// assist ask); a running invitation or session is shown as assist
// invite's page shows it, by the same code (invite and runAccepted, with
// the app's page, handed to noviceapp).

func runApp(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("app", os.Stderr)
	noBrowser := fs.Bool("no-browser", false, "do not open the app in the browser (its address is still printed)")
	expires := fs.Duration("expires", time.Hour, "how long an invitation made with Get help stays valid")
	listen := fs.String("listen", ":"+fmt.Sprint(defaultInvitePort), "address a direct invitation waits for the expert on (if it is taken, any free port)")
	noPortmap := fs.Bool("no-portmap", false, "do not ask the home router to forward the port of a direct invitation")
	opts := addNoviceFlags(fs)
	srv := addServerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *expires <= 0 {
		return fmt.Errorf("--expires %v: must be positive", *expires)
	}
	if opts.NoPage {
		return errors.New("--no-page: the app is its page; for the terminal alone run assist invite --no-page")
	}
	// Files the novice picks on the page wait here to be sent (and sent
	// again, to resume); only this user can read them.
	upDir, err := os.MkdirTemp("", "assist-send-")
	if err != nil {
		return fmt.Errorf("a folder for files to send: %w", err)
	}
	defer os.RemoveAll(upDir)
	page, err := novicepage.New(novicepage.Options{Logger: slog.Default(), App: true, UploadDir: upDir})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on loopback: %w", err)
	}
	url := page.URL(ln)

	// The page outlives the app's loop by a moment: it must still say
	// that the app stopped.
	pctx, pcancel := context.WithCancel(context.WithoutCancel(ctx))
	var pwg sync.WaitGroup
	pwg.Go(func() {
		if err := page.Serve(pctx, ln); err != nil {
			slog.Warn("the app's page stopped", "err", err)
		}
	})
	defer pwg.Wait()
	defer pcancel()

	params := inviteParams{
		expires: *expires, listen: *listen, listenAny: true, noPortmap: *noPortmap, opts: *opts,
		again: "click Get help for a new one",
	}
	params.opts.Page = page
	cfg := noviceapp.Config{
		Page: page, Stdout: stdout, Server: *srv.url, Fingerprint: *srv.fingerprint,
		Invite: func(ctx context.Context, stdin *os.File, server, fingerprint string, ready func()) error {
			p := params
			p.server, p.fingerprint, p.stdin, p.ready = server, fingerprint, stdin, ready
			return invite(ctx, stdout, p)
		},
		Idle:        idleAction,
		DialTimeout: dialTimeout,
	}
	dev, err := account.Open("")
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "note: no contacts (%v)\n", err)
	case dev.Config().Server != "" && dev.Config().User != "":
		cfg.Device = dev
		if cfg.Server == "" {
			// Invitations go through the server this device logged in
			// to, with its pinned certificate.
			cfg.Server, cfg.Fingerprint = dev.Config().Server, dev.Config().Fingerprint
		}
		cfg.Session = func(ctx context.Context, c *messenger.Client, accepted messenger.Message, stdin *os.File) error {
			so := sessionOptions{novice: &params.opts}
			return runAccepted(ctx, dev, c, accepted, "", so, stdin, stdout)
		}
	}

	fmt.Fprintf(stdout, "app: %s\n", url)
	if !*noBrowser {
		openApp(url)
	}
	return noviceapp.Run(ctx, cfg)
}

// openApp shows the app in the desktop's browser: unlike the pages of
// assist invite and join, also when started from a desktop launcher, with
// no terminal.
func openApp(url string) {
	c := browserCommand(url) // browser_*.go
	if c == nil {
		fmt.Fprintf(os.Stderr, "open this address in your browser: %s\n", url)
		return
	}
	c.Stdout, c.Stderr = nil, nil
	if err := c.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "could not open the browser (%v): open this address in it: %s\n", err, url)
		return
	}
	go c.Wait()
}
