package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	requestClipboard := fs.Bool("request-clipboard", false, "ask the novice to share clipboards as soon as viewing starts")
	name := fs.String("name", defaultName(), "your name, as the novice sees it")
	srv := addServerFlags(fs)
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		fmt.Fprintln(os.Stderr, "usage: assist join FILE|LINK|CODE [--password-file F] [--server URL] [--server-fingerprint sha256:HEX] [--rfb 127.0.0.1:PORT] [--no-browser] [--request-control] [--request-clipboard]")
		return errUsage
	}
	if err := checkLoopback(*rfbAddr); err != nil {
		return fmt.Errorf("--rfb: %w", err)
	}
	start := time.Now()
	var (
		paths  []joinPath
		novice string // the novice's name, for the expert's eyes
	)
	target, err := parseJoinTarget(positional[0])
	if err != nil {
		return err
	}
	if target.isCode {
		// A short code: only the rendezvous server can find the novice.
		// --server wins over the server of a browser link.
		serverURL := *srv.url
		if serverURL == "" {
			serverURL = target.server
		}
		if serverURL == "" {
			return errors.New("a short code needs the rendezvous server: pass --server URL (as the novice's assist invite shows), or set ASSIST_SERVER")
		}
		code := target.code
		novice = "the novice"
		paths = append(paths, serverPath(serverURL, *srv.fingerprint, code.LookupID(), code.LookupID(),
			invitation.NormalizePassword(code.Password()), *name))
	} else {
		inv := target.inv
		if err := inv.Validate(time.Now()); err != nil {
			return err
		}
		password, err := joinPassword(*passwordFile, inv)
		if err != nil {
			return err
		}
		novice = inv.Name
		serverURL := *srv.url
		if serverURL == "" {
			serverURL = inv.Server
		}
		// The direct addresses and the server race (race.go); their
		// password attempts take turns, so a mistyped password costs one
		// attempt, not two.
		if len(inv.Addrs) > 0 {
			paths = append(paths, directPath(inv.Addrs, inv.ID, password, *name))
		}
		if serverURL != "" {
			paths = append(paths, serverPath(serverURL, *srv.fingerprint, inv.ID, inv.ID, password, *name))
		}
	}
	j, err := racePaths(ctx, slog.Default(), paths)
	if err != nil {
		if msg, ok := noviceRefusal(err); ok {
			return errors.New(msg)
		}
		return err
	}
	conn, path, pathChanges := j.conn, j.path, j.paths
	endPairing := func() {}
	if j.end != nil {
		endPairing = j.end
	}
	fmt.Fprintf(stdout, "connected to %s via %s\n", novice, j.via)
	defer endPairing()
	slog.Info("authenticated", "novice", novice, "path", path, "after", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "path: %s\n", path)

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
	web, err := webview.New(exp, webview.Options{NovicesName: novice, Logger: slog.Default()})
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

	asked, askedClipboard, clipboard := false, false, false
	for {
		select {
		case <-ctx.Done():
			return nil
		case pc, ok := <-pathChanges:
			if !ok {
				pathChanges = nil
				continue
			}
			if !pc.Restart {
				// ICE moved to a better pair.
				slog.Info("rendezvous: path changed", "path", pc.Path)
				fmt.Fprintf(stdout, "path changed: %s\n", pc.Path)
				continue
			}
			p := pc.Path
			// For the audit trail as well as for the user.
			slog.Info("rendezvous: connection resumed after an ICE restart", "path", p)
			fmt.Fprintf(stdout, "resumed: path %s (ICE restart)\n", p)
		case ev, ok := <-exp.Events():
			if !ok {
				return nil
			}
			if ev.IsChat {
				fmt.Fprintf(stdout, "%s: %s\n", novice, ev.Chat)
				web.Publish(webview.Event{Type: "chat", From: novice, Text: ev.Chat, Time: time.Now()})
				continue
			}
			fmt.Fprintf(stdout, "state: %s%s\n", ev.State, reasonSuffix(ev.Reason))
			if ev.State == session.Ended {
				web.Publish(webview.Event{Type: "ended", State: "ended", Text: ev.Reason, Time: time.Now()})
				return nil
			}
			if shared := ev.Rights.Has(session.RightClipboard); shared != clipboard {
				clipboard = shared
				if shared {
					fmt.Fprintf(stdout, "clipboard: shared by %s: copy and paste work both ways in your viewer\n", novice)
				} else {
					fmt.Fprintln(stdout, "clipboard: not shared")
				}
			}
			web.Publish(webview.Event{Type: "state", State: pageState(ev.State), Text: ev.Reason, Time: time.Now(), Clipboard: clipboard})
			if ev.Rights.Has(session.RightView) && *requestClipboard && !askedClipboard {
				askedClipboard = true
				if err := exp.RequestClipboard(ctx); err != nil {
					fmt.Fprintf(os.Stderr, "clipboard request not sent: %v\n", err)
				}
			}
			if ev.State == session.Viewing && *requestControl && !asked {
				asked = true
				if err := exp.RequestControl(ctx); err != nil {
					fmt.Fprintf(os.Stderr, "control request not sent: %v\n", err)
				}
			}
		}
	}
}

// directBudget bounds the direct path: TCP and TLS on each address (at most
// transport.DefaultPerAddressTimeout each, all at once) and the PAKE.
const directBudget = 30 * time.Second

// directPath is the way to the novice through the invitation's addresses.
func directPath(addrs []string, invitationID, password, name string) joinPath {
	return joinPath{
		name: "direct",
		what: "the invitation's addresses",
		dial: func(ctx context.Context, beforeAuth authHook) (*joined, error) {
			ctx, cancel := context.WithTimeout(ctx, directBudget)
			defer cancel()
			tc, err := transport.Dial(ctx, addrs, transport.DialConfig{
				InvitationID: invitationID, Password: password, Name: name, Logger: slog.Default(),
				BeforeAuth: beforeAuth,
			})
			if err != nil {
				return nil, err
			}
			return &joined{conn: tc, via: tc.Path(), path: "direct"}, nil
		},
	}
}

// serverPath is the way to the novice through the rendezvous server.
func serverPath(serverURL, fingerprint, lookupID, invitationID, password, name string) joinPath {
	return joinPath{
		name: "server",
		what: "the rendezvous server",
		dial: func(ctx context.Context, beforeAuth authHook) (*joined, error) {
			rc, end, err := joinViaServer(ctx, serverURL, fingerprint, lookupID, invitationID, password, name, beforeAuth)
			if err != nil {
				return nil, err
			}
			return &joined{conn: rc, via: "the rendezvous server (" + rc.Path() + ")", path: rc.Path(),
				end: end, paths: rc.PathChanges()}, nil
		},
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
		return normalizeJoinPassword(strings.TrimRight(string(b), "\r\n"), inv), nil
	}
	fd := int(os.Stdin.Fd())
	fmt.Fprintf(os.Stderr, "password for %s's invitation: ", inv.Name)
	if term.IsTerminal(fd) {
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return normalizeJoinPassword(string(b), inv), nil
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password: type it when asked, or pass --password-file")
	}
	return normalizeJoinPassword(strings.TrimRight(line, "\r\n"), inv), nil
}

// normalizeJoinPassword maps a typed password to the PAKE's input as the
// novice's side does. An invitation with a server has a two-word password
// (the words of its short code): their case and separators are folded
// first. Other invitations' passwords are left to NormalizePassword alone,
// so a chosen password that happens to be two code words stays as typed.
func normalizeJoinPassword(typed string, inv *invitation.Invitation) string {
	if inv.Server != "" {
		if p, ok := invitation.NormalizeWordPassword(typed); ok {
			typed = p
		}
	}
	return invitation.NormalizePassword(typed)
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

// turnPin turns the pinned fingerprint of the rendezvous server
// ("sha256:HEX", --server-fingerprint) into the certificate hash its TURN
// server over TLS may present (rtc.Config.TURNPin): the embedded TURN
// server shares the HTTPS certificate, self-signed unless the operator
// gave one. Without a valid pin TURN over TLS relies on the system's
// certificate authorities (a malformed one has already failed the
// connection to the server itself).
func turnPin(fingerprint string) []byte {
	hexSum, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(fingerprint)), "sha256:")
	if !ok {
		return nil
	}
	sum, err := hex.DecodeString(hexSum)
	if err != nil || len(sum) != sha256.Size {
		return nil
	}
	return sum
}

// noviceRefusal is, for a join the novice's agent turned away because the
// novice said no (transport.ErrDenied: wait; transport.ErrClosed: over),
// the agent's own words for the expert, by either path. Only texts that
// are the agent's refusals pass; anything else gets our generic words.
func noviceRefusal(err error) (string, bool) {
	var kind error
	switch {
	case errors.Is(err, transport.ErrClosed):
		kind = transport.ErrClosed
	case errors.Is(err, transport.ErrDenied):
		kind = transport.ErrDenied
	default:
		return "", false
	}
	var msg string
	var he *transport.HandshakeError
	var pe *peerEndedError
	switch {
	case errors.As(err, &he):
		msg = he.PeerMessage
	case errors.As(err, &pe):
		msg = pe.reason
	}
	if !strings.HasPrefix(msg, transport.DeniedPrefix) && !strings.HasPrefix(msg, closedPrefix) {
		msg = kind.Error()
	}
	return printable(msg), true
}
