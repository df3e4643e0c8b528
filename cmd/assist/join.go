package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/filetransfer"
	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/rendezvous"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/webview"
	"golang.org/x/term"
)

// expertOptions are the flags of the expert's side of a session, shared by
// assist join and the messenger's keyed sessions (runKeyedExpert).
type expertOptions struct {
	// RFB is the loopback address for local VNC viewers.
	RFB string
	// NoBrowser: do not open the browser viewer (its address is printed).
	NoBrowser bool
	// Machine, in an organisation's session, is the machine's account
	// (not a flag): the audit log names it, so the organisation's trail
	// holds this session and none of the helper's others.
	Machine string
	// RequestControl asks for control as soon as viewing starts.
	RequestControl bool
	// RequestClipboard asks for the clipboard as soon as viewing starts.
	RequestClipboard bool
	// Name is the expert's name as the novice's agent receives it.
	Name string
	// RequestFiles asks to exchange files as soon as viewing starts.
	RequestFiles bool
	// FilesDir is where files from the novice go once accepted.
	FilesDir string
	// Send is the files to send once the novice allows files.
	Send pathsFlag
}

// addExpertFlags adds the flags of expertOptions to fs, with the defaults
// of assist join; the options are filled in when fs is parsed.
func addExpertFlags(fs *flag.FlagSet) *expertOptions {
	o := &expertOptions{}
	fs.StringVar(&o.RFB, "rfb", "127.0.0.1:0", "loopback address for local VNC viewers (port 0 picks a free one)")
	fs.BoolVar(&o.NoBrowser, "no-browser", false, "do not open the browser viewer (its address is still printed)")
	fs.BoolVar(&o.RequestControl, "request-control", false, "ask for control as soon as viewing starts")
	fs.BoolVar(&o.RequestClipboard, "request-clipboard", false, "ask the novice to share clipboards as soon as viewing starts")
	fs.StringVar(&o.Name, "name", defaultName(), "your name, as the novice sees it")
	fs.BoolVar(&o.RequestFiles, "request-files", false, "ask the novice to allow files as soon as viewing starts")
	fs.StringVar(&o.FilesDir, "files-dir", filetransfer.DownloadDir(), "folder where files the novice sends you are saved (each one once you accept it)")
	fs.Var(&o.Send, "send", "send this file once the novice allows files (repeat for more; asks for files if needed)")
	return o
}

func runJoin(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("join", os.Stderr)
	passwordFile := fs.String("password-file", "", "read the invitation's password from this file instead of asking")
	opts := addExpertFlags(fs)
	name := &opts.Name
	srv := addServerFlags(fs)
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		fmt.Fprintln(os.Stderr, "usage: assist join FILE|LINK|CODE [--password-file F] [--server URL] [--server-fingerprint sha256:HEX] [--rfb 127.0.0.1:PORT] [--no-browser] [--request-control] [--request-clipboard]")
		return errUsage
	}
	if err := checkLoopback(opts.RFB); err != nil {
		return fmt.Errorf("--rfb: %w", err)
	}
	var (
		paths  []rendezvous.Path
		novice string // the novice's name, for the expert's eyes
	)
	target, err := parseJoinTarget(positional[0])
	if err != nil {
		return err
	}
	if target.lanCode != "" {
		// The code of an invitation without a server: the novice's
		// agent announces it on the local network. A server (--server,
		// ASSIST_SERVER) does not know this code, so it is not asked.
		return joinLAN(ctx, stdout, target, *passwordFile, *opts)
	}
	if target.isCode {
		// A short code: only the rendezvous server can find the novice.
		// --server wins over the server of a browser link.
		serverURL := *srv.url
		if serverURL == "" {
			serverURL = target.server
		}
		code := target.code
		if serverURL == "" {
			// No server named: the novice may be on this network, whose
			// agent announces the code's number there too.
			target.lanCode, target.lanPassword = code.LookupID(), code.Password()
			return joinLAN(ctx, stdout, target, "", *opts)
		}
		novice = "the novice"
		paths = append(paths, rendezvous.ServerPath(rendezvous.JoinConfig{
			URL: serverURL, Fingerprint: *srv.fingerprint, LookupID: code.LookupID(), InvitationID: code.LookupID(),
			Password: invitation.NormalizePassword(code.Password()), Name: *name,
		}))
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
		// The direct addresses and the server race (rendezvous.Race); their
		// password attempts take turns, so a mistyped password costs one
		// attempt, not two.
		if len(inv.Addrs) > 0 {
			paths = append(paths, rendezvous.DirectPath(inv.Addrs, inv.ID, password, *name))
		}
		if serverURL != "" {
			paths = append(paths, rendezvous.ServerPath(rendezvous.JoinConfig{
				URL: serverURL, Fingerprint: *srv.fingerprint, LookupID: inv.ID, InvitationID: inv.ID,
				Password: password, Name: *name,
			}))
		}
	}
	return serveExpert(ctx, stdout, paths, novice, *opts)
}

// serveExpert reaches the novice by the first of paths to authenticate
// (rendezvous.Race) and runs the expert's side of the session: the local
// RFB port, the browser viewer and the session's events, until the session
// ends. novice is the novice's name for the expert's eyes.
func serveExpert(ctx context.Context, stdout io.Writer, paths []rendezvous.Path, novice string, opts expertOptions) error {
	start := time.Now()
	j, err := rendezvous.Race(ctx, slog.Default(), paths)
	if err != nil {
		if msg, ok := rendezvous.NoviceRefusal(err); ok {
			return errors.New(msg)
		}
		return err
	}
	conn, path, pathChanges := j.Conn, j.Path, j.Paths
	endPairing := func() {}
	if j.End != nil {
		endPairing = j.End
	}
	fmt.Fprintf(stdout, "connected to %s via %s\n", novice, j.Via)
	defer endPairing()
	slog.Info("authenticated", "novice", novice, "path", path, "after", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "path: %s\n", path)

	// The expert's own audit trail of the session: what the novice's
	// side reported, each file, the end.
	rec := sessionRecorder(auditLogOrWarn(os.Stderr), audit.PartyExpert)
	rec.Start(novice, opts.Name, opts.Machine, fmt.Sprintf("%s (path %s)", j.Via, path))
	exp := session.StartExpertConfig(conn, slog.Default(), session.ExpertConfig{FilesDir: opts.FilesDir,
		Audit:     func(ev session.ExpertEvent) { expertStateAudit(rec, ev) },
		FileAudit: func(ev filetransfer.Event) { fileAudit(rec, false, ev) },
	})
	defer exp.Leave("the expert left")

	rfbLn, err := net.Listen("tcp", opts.RFB)
	if err != nil {
		return fmt.Errorf("--rfb %s: %w", opts.RFB, err)
	}
	defer rfbLn.Close()
	webLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("browser viewer: %w", err)
	}
	defer webLn.Close()
	pageReqs := make(pageFiles, 8)
	upDir, err := os.MkdirTemp("", "assist-upload-")
	if err != nil {
		return fmt.Errorf("browser viewer: %w", err)
	}
	defer os.RemoveAll(upDir)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	// The page's noVNC is a local viewer like any other: its display
	// streams go through the relay too.
	backend := &relayedBackend{Backend: exp, ctx: ctx, wg: &wg}
	web, err := webview.New(backend, webview.Options{NovicesName: novice, Logger: slog.Default(),
		Files: pageReqs, UploadDir: upDir})
	if err != nil {
		return err
	}
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
	warnNoVNC(os.Stderr)
	if !opts.NoBrowser {
		openBrowser(url)
	}
	// The page's state: the last one published, sent again with the new
	// path when ICE moves to another pair.
	pageEv := webview.Event{Type: "state", State: "connecting", Path: string(path), Time: time.Now()}
	web.Publish(pageEv)

	// The terminal: chat and requests, as the browser viewer has them.
	con := newConsole(os.Stdin, stdout)
	defer con.restore()
	stdout = con.out
	fmt.Fprintf(stdout, "keys: m to write to %s, r to ask for control, c to ask to share the clipboard, q to leave\n", novice)

	asked, askedClipboard, clipboard := false, false, false
	askedFiles := false
	files := newExpertFiles(exp, stdout, novice, opts)
	files.publish = func(f webview.FileEvent) { web.Publish(webview.Event{Type: webview.EventFile, File: &f}) }
	fileEvents := exp.FileEvents()
	fmt.Fprintln(stdout, joinHelp)
	for {
		select {
		case <-ctx.Done():
			return nil
		case k := <-con.keys:
			if c, ok := files.fromKey(k); ok {
				files.command(ctx, c)
				continue
			}
			if expertKey(ctx, stdout, exp, k) {
				return nil
			}
		case pc, ok := <-pathChanges:
			if !ok {
				pathChanges = nil
				continue
			}
			if !pc.Restart {
				// ICE moved to a better pair.
				slog.Info("rendezvous: path changed", "path", pc.Path)
				rec.Path(string(pc.Path))
				fmt.Fprintf(stdout, "path changed: %s\n", pc.Path)
				pageEv.Path, pageEv.Time = string(pc.Path), time.Now()
				web.Publish(pageEv)
				continue
			}
			p := pc.Path
			rec.Path(fmt.Sprintf("%s (ICE restart)", p))
			// For the audit trail as well as for the user.
			slog.Info("rendezvous: connection resumed after an ICE restart", "path", p)
			fmt.Fprintf(stdout, "resumed: path %s (ICE restart)\n", p)
			pageEv.Path, pageEv.Time = string(p), time.Now()
			web.Publish(pageEv)
		case o := <-exp.FileOffers():
			files.offered(o)
		case fe, ok := <-fileEvents:
			if !ok {
				fileEvents = nil
				continue
			}
			files.event(fe)
		case c := <-pageReqs:
			files.command(ctx, c)
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
				files.progress.ended()
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
			pageEv = webview.Event{Type: "state", State: pageState(ev.State), Text: ev.Reason, Time: time.Now(), Clipboard: clipboard, Files: ev.Rights.Has(session.RightFiles), Path: pageEv.Path}
			web.Publish(pageEv)
			pageEv.Text = "" // a reason is told once
			if ev.Rights.Has(session.RightView) && opts.RequestClipboard && !askedClipboard {
				askedClipboard = true
				if err := exp.RequestClipboard(ctx); err != nil {
					fmt.Fprintf(os.Stderr, "clipboard request not sent: %v\n", err)
				}
			}
			files.rights(ctx, ev.Rights)
			if ev.Rights.Has(session.RightView) && (opts.RequestFiles || len(opts.Send) > 0) && !askedFiles && !ev.Rights.Has(session.RightFiles) {
				askedFiles = true
				if err := exp.RequestFiles(ctx); err != nil {
					fmt.Fprintf(os.Stderr, "files request not sent: %v\n", err)
				}
			}
			if ev.State == session.Viewing && opts.RequestControl && !asked {
				asked = true
				if err := exp.RequestControl(ctx); err != nil {
					fmt.Fprintf(os.Stderr, "control request not sent: %v\n", err)
				}
			}
		}
	}
}

// serveLocalViewers bridges every local VNC viewer to its own RFB stream
// to the novice's desktop through relayViewer.
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
			relayViewer(ctx, rfb.NewRelay(), c, st)
		})
	}
}

// relayViewer relays between a local viewer and its display stream st
// through an rfb.Relay until either ends or ctx is done, then closes
// both. The viewer's messages go to the novice's server, which is asked
// to push updates to viewers that do not ask for continuous updates
// themselves, so no update waits for a request to cross the link (the
// session stream paces them), and is offered the private encodings (a
// scaled one for large changing areas on slow links, a lossless one for
// refinement). The novice's updates are copied to the viewer as they
// come, private rectangles turned into Raw, except those rl passes.
func relayViewer(ctx context.Context, rl *rfb.Relay, c, st net.Conn) {
	stop := context.AfterFunc(ctx, func() { c.Close(); st.Close() })
	defer stop()
	fromViewer, toViewer := rl.Run(c, st)
	if fromViewer != nil {
		slog.Info("local viewer: relay ended", "err", fromViewer)
	}
	if toViewer != nil {
		slog.Warn("local viewer: relay ended", "err", toViewer)
	}
}

// relayedBackend is the session as the browser viewer sees it: each
// display stream the page opens is relayed (relayViewer) like a local
// viewer's, in a goroutine wg waits for, ended by ctx at the latest,
// except that scaled rectangles go to the page as they are: its noVNC
// draws them scaled up itself (web/session/scaled.js), on the GPU,
// where decoding and scaling them here cost `assist join` a third of a
// core on a slow link.
type relayedBackend struct {
	webview.Backend
	ctx context.Context
	wg  *sync.WaitGroup
}

func (b *relayedBackend) OpenDisplay(ctx context.Context) (net.Conn, error) {
	st, err := b.Backend.OpenDisplay(ctx)
	if err != nil {
		return nil, err
	}
	page, viewer := net.Pipe()
	b.wg.Go(func() { relayViewer(b.ctx, rfb.NewRelay().PassingScaled(), viewer, st) })
	return page, nil
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
	// One byte at a time: what follows the password is the console's.
	line, err := readLine(os.Stdin)
	if err != nil && line == "" {
		return "", errors.New("no password: type it when asked, or pass --password-file")
	}
	return normalizeJoinPassword(strings.TrimRight(line, "\r\n"), inv), nil
}

// readLine reads up to and including the next newline, and not a byte
// further.
func readLine(r io.Reader) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 1 {
			line = append(line, b[0])
			if b[0] == '\n' {
				return string(line), nil
			}
		}
		if err != nil {
			return string(line), err
		}
	}
}

// expertKey carries out one command of the expert at the terminal and
// reports whether the expert leaves.
func expertKey(ctx context.Context, out io.Writer, exp *session.Expert, k key) (leave bool) {
	switch k.kind {
	case 'q':
		fmt.Fprintln(out, "you left the session")
		exp.Leave("the expert left")
		return true
	case 'r':
		if st, _ := exp.State(); st != session.Viewing {
			fmt.Fprintf(out, "control can be asked for while you see the screen (now: %s)\n", st)
			return false
		}
		if err := exp.RequestControl(ctx); err != nil {
			fmt.Fprintf(out, "control request not sent: %v\n", err)
			return false
		}
		fmt.Fprintln(out, "asked for control")
	case 'c':
		if err := exp.RequestClipboard(ctx); err != nil {
			fmt.Fprintf(out, "clipboard request not sent: %v\n", err)
			return false
		}
		fmt.Fprintln(out, "asked to share the clipboard")
	case 'm':
		if strings.TrimSpace(k.text) == "" {
			return false
		}
		if err := exp.SendChat(ctx, k.text); err != nil {
			fmt.Fprintf(out, "message not sent: %v\n", err)
			return false
		}
		fmt.Fprintf(out, "you: %s\n", k.text)
	}
	return false
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
