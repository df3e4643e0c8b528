package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/shadow"
)

func runVNC(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("vnc", os.Stderr)
	display := fs.String("display", os.Getenv("DISPLAY"), "X display to share")
	listen := fs.String("listen", "127.0.0.1:5900", "loopback address to serve RFB on (port 0 picks a free one)")
	viewOnly := fs.Bool("view-only", false, "drop all keyboard, pointer and clipboard input from viewers")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkLoopback(*listen); err != nil {
		return err
	}
	d, err := openDisplay(*display)
	if err != nil {
		return err
	}
	defer d.Close()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (pick another port with --listen 127.0.0.1:PORT, or 0 for any)", *listen, err)
	}
	defer ln.Close()

	sh := shadow.New(d, shadow.Options{DetectScroll: true})
	host, _ := os.Hostname()
	srv := &rfb.Server{
		Screen: sh,
		Name:   fmt.Sprintf("%s:%s", host, *display),
		Logger: slog.Default(),
		// The viewers are the local user's own (loopback only): the
		// desktop's clipboard is theirs, view only or not.
		ClipboardOut: func(time.Time) bool { return true },
	}
	if *viewOnly {
		slog.Info("view only: input from viewers is dropped")
	} else {
		srv.Input = d
		srv.Clipboard = d
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := sh.Run(ctx); err != nil {
			cancel(fmt.Errorf("capture stopped: %w", err))
		}
	})
	if err := srv.Serve(ctx, ln); err != nil {
		cancel(err)
	}
	cancel(nil)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// checkLoopback refuses addresses other processes on the network could
// reach: assist vnc has no password.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s: assist vnc has no password, so it only serves loopback (127.0.0.1 or ::1); to let someone help you across a network, send them an invitation (assist invite) instead", addr)
}
