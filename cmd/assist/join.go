package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/transport"
	"github.com/assist-project/assist/webview"
	"golang.org/x/term"
)

func runJoin(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("join", os.Stderr)
	passwordFile := fs.String("password-file", "", "read the invitation's password from this file instead of asking")
	rfbAddr := fs.String("rfb", "127.0.0.1:0", "loopback address for local VNC viewers (port 0 picks a free one)")
	noBrowser := fs.Bool("no-browser", false, "do not open the browser viewer (its address is still printed)")
	requestControl := fs.Bool("request-control", false, "ask for control as soon as viewing starts")
	name := fs.String("name", defaultName(), "your name, as the novice sees it")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		fmt.Fprintln(os.Stderr, "usage: assist join INVITATION [--password-file F] [--rfb 127.0.0.1:PORT] [--no-browser] [--request-control]")
		return errUsage
	}
	if err := checkLoopback(*rfbAddr); err != nil {
		return fmt.Errorf("--rfb: %w", err)
	}
	inv, err := invitation.ReadFile(positional[0])
	if err != nil {
		return err
	}
	if err := inv.Validate(time.Now()); err != nil {
		return err
	}
	password, err := joinPassword(*passwordFile, inv)
	if err != nil {
		return err
	}

	start := time.Now()
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	conn, err := transport.Dial(dctx, inv.Addrs, transport.DialConfig{
		InvitationID: inv.ID, Password: password, Name: *name, Logger: slog.Default(),
	})
	dcancel()
	if err != nil {
		return err
	}
	slog.Info("authenticated", "novice", inv.Name, "path", conn.Path(), "after", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "connected to %s via %s\n", inv.Name, conn.Path())

	exp := session.StartExpert(conn, slog.Default())
	defer exp.Leave("the expert left")

	rfbLn, err := net.Listen("tcp", *rfbAddr)
	if err != nil {
		return fmt.Errorf("--rfb %s: %w", *rfbAddr, err)
	}
	defer rfbLn.Close()
	webLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("browser viewer: %w", err)
	}
	defer webLn.Close()
	web, err := webview.New(exp, webview.Options{NovicesName: inv.Name, Logger: slog.Default()})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { serveLocalViewers(ctx, rfbLn, exp) })
	wg.Go(func() {
		if err := web.Serve(ctx, webLn); err != nil {
			slog.Warn("browser viewer stopped", "err", err)
		}
	})
	defer cancel()

	fmt.Fprintf(stdout, "rfb on %s\n", rfbLn.Addr())
	url := web.URL(webLn)
	fmt.Fprintf(stdout, "browser viewer: %s\n", url)
	if !*noBrowser {
		openBrowser(url)
	}
	web.Publish(webview.Event{Type: "state", State: "connecting", Time: time.Now()})

	asked := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-exp.Events():
			if !ok {
				return nil
			}
			if ev.IsChat {
				fmt.Fprintf(stdout, "%s: %s\n", inv.Name, ev.Chat)
				web.Publish(webview.Event{Type: "chat", From: inv.Name, Text: ev.Chat, Time: time.Now()})
				continue
			}
			fmt.Fprintf(stdout, "state: %s%s\n", ev.State, reasonSuffix(ev.Reason))
			if ev.State == session.Ended {
				web.Publish(webview.Event{Type: "ended", State: "ended", Text: ev.Reason, Time: time.Now()})
				return nil
			}
			web.Publish(webview.Event{Type: "state", State: pageState(ev.State), Text: ev.Reason, Time: time.Now()})
			if ev.State == session.Viewing && *requestControl && !asked {
				asked = true
				if err := exp.RequestControl(ctx); err != nil {
					fmt.Fprintf(os.Stderr, "control request not sent: %v\n", err)
				}
			}
		}
	}
}

// serveLocalViewers bridges every local VNC viewer to its own RFB stream
// to the novice's desktop.
func serveLocalViewers(ctx context.Context, ln net.Listener, exp *session.Expert) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer c.Close()
			st, err := exp.OpenDisplay(ctx)
			if err != nil {
				slog.Warn("local viewer refused: no display stream", "err", err)
				return
			}
			defer st.Close()
			stopBoth := context.AfterFunc(ctx, func() { c.Close(); st.Close() })
			defer stopBoth()
			done := make(chan struct{}, 2)
			go func() { io.Copy(st, c); st.Close(); done <- struct{}{} }()
			go func() { io.Copy(c, st); c.Close(); done <- struct{}{} }()
			<-done
			c.Close()
			st.Close()
			<-done
		})
	}
}

func joinPassword(file string, inv *invitation.Invitation) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read --password-file: %w", err)
		}
		return invitation.NormalizePassword(strings.TrimRight(string(b), "\r\n")), nil
	}
	fd := int(os.Stdin.Fd())
	fmt.Fprintf(os.Stderr, "password for %s's invitation: ", inv.Name)
	if term.IsTerminal(fd) {
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return invitation.NormalizePassword(string(b)), nil
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password: type it when asked, or pass --password-file")
	}
	return invitation.NormalizePassword(strings.TrimRight(line, "\r\n")), nil
}

// openBrowser shows url in the desktop's browser, if there is one.
func openBrowser(url string) {
	for _, cmd := range []string{"xdg-open", "sensible-browser"} {
		if p, err := exec.LookPath(cmd); err == nil {
			c := exec.Command(p, url)
			if err := c.Start(); err == nil {
				go c.Wait()
				return
			}
		}
	}
	fmt.Fprintln(os.Stderr, "no browser found: open the browser viewer's address yourself")
}

// pageState names a session state the way the browser viewer does: until
// the novice allows viewing, the expert is still connecting.
func pageState(s session.State) string {
	switch s {
	case session.Waiting, session.Asking:
		return "connecting"
	default:
		return s.String()
	}
}
