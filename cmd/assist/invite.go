package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/filetransfer"
	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/lan"
	"github.com/assist-project/assist/novicepage"
	"github.com/assist-project/assist/portmap"
	"github.com/assist-project/assist/recording"
	"github.com/assist-project/assist/rendezvous"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/shadow"
	"github.com/assist-project/assist/transport"
	"github.com/assist-project/assist/transport/rtc"
)

// defaultInvitePort is where assist invite listens unless told otherwise:
// fixed, so that a router's port forwarding can be set up once by hand.
const defaultInvitePort = 5820

// noviceOptions are the flags of the novice's side of a session, shared
// by assist invite and the messenger's keyed sessions (runKeyedNovice).
type noviceOptions struct {
	// Name is the novice's name as the expert sees it (the desktop's name).
	Name string
	// Machine names this computer in the desktop's name and the audit
	// trail: the agent's enrolled machine; "" for the hostname.
	Machine string
	// Allow answers consent questions in advance: ask, view or control.
	Allow string
	// Display is the X display to share.
	Display string
	// AnswerTimeout: a question left unanswered this long counts as no.
	AnswerTimeout time.Duration
	// DenyCooldown: after a no, every expert is turned away this long.
	DenyCooldown time.Duration
	// NoPage: no local page, the terminal only.
	NoPage bool
	// CheckEvery: after this long of sharing, ask the novice whether to
	// go on (and again after each yes); 0 never asks.
	CheckEvery time.Duration
	// NoIndicator: no frame and bar on the shared desktop.
	NoIndicator bool
	// Page, if set, is the novice's app's page, which shows this session
	// instead of a page of its own (not a flag).
	Page *novicepage.Server
	// FilesDir is where files the expert sends are saved.
	FilesDir string
	// Agent: the session of assist agent, shown on its page (not a flag).
	Agent bool
	// Forbid: rights an organisation's policy forbids (not a flag; the
	// agent sets it from the offer).
	Forbid session.Rights
	// RecordTo, if set, is the audit key (an age X25519 recipient) that
	// each session's display recording is encrypted to; RecordDir is
	// where the recordings go.
	RecordTo, RecordDir string
	// Recorded, if set, is told of each finished recording: its file
	// and when it started (the agent uploads it to the organisation's
	// server).
	Recorded func(path string, start time.Time)
	// AuditLog, if set, is the audit log sessions are recorded in (not a
	// flag: the agent's own, signed with the machine's key, which it
	// uploads to its organisation's server); nil: this user's.
	AuditLog *audit.FileLog
}

// addNoviceFlags adds the flags of noviceOptions to fs, with the defaults
// of assist invite; the options are filled in when fs is parsed.
func addNoviceFlags(fs *flag.FlagSet) *noviceOptions {
	o := &noviceOptions{}
	fs.StringVar(&o.Name, "name", defaultName(), "your name, as the expert sees it")
	fs.StringVar(&o.Allow, "allow", "ask", "answer consent questions in advance: ask, view or control")
	fs.StringVar(&o.Display, "display", os.Getenv("DISPLAY"), "X display to share")
	fs.DurationVar(&o.AnswerTimeout, "answer-timeout", session.DefaultAnswerTimeout, "a question you leave unanswered this long counts as no")
	fs.DurationVar(&o.DenyCooldown, "deny-cooldown", transport.DefaultDenyCooldown, "after you say no, turn every expert away this long (the third no closes the invitation)")
	fs.DurationVar(&o.CheckEvery, "check-every", DefaultCheckEvery, "after this long of sharing, ask \"Still sharing with NAME?\" and end the session if nobody answers within --answer-timeout; 0 never asks")
	fs.BoolVar(&o.NoIndicator, "no-indicator", false, "do not show the coloured frame and the bar that tell you, on your screen, that someone sees or controls it")
	fs.StringVar(&o.FilesDir, "files-dir", filetransfer.DownloadDir(), "folder where files the expert sends you are saved (only once you allow files)")
	fs.StringVar(&o.RecordTo, "record-to", "", "record every session's display, encrypted to this audit key (age1..., from assist audit keygen); you are told before anyone views")
	fs.StringVar(&o.RecordDir, "record-dir", defaultRecordDir(), "folder for the encrypted recordings (with --record-to)")
	fs.BoolVar(&o.NoPage, "no-page", false, "do not serve the local page (code, who is connected, Allow/Deny, chat); use the terminal only")
	return o
}

func runInvite(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fs := newFlagSet("invite", os.Stderr)
	file := fs.String("file", "", "write the invitation to this file (extension "+invitation.FileExtension+")")
	expires := fs.Duration("expires", time.Hour, "how long the invitation stays valid")
	passwordFile := fs.String("password-file", "", "read the password from this file instead of generating one")
	listen := fs.String("listen", ":"+strconv.Itoa(defaultInvitePort), "address to wait for the expert on (port 0 picks a free one)")
	noPortmap := fs.Bool("no-portmap", false, "do not ask the home router to forward the port (UPnP IGD / NAT-PMP)")
	opts := addNoviceFlags(fs)
	srv := addServerFlags(fs)
	emailFlags := addEmailFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	email, err := emailFlags.plan()
	if err != nil {
		return err
	}
	return invite(ctx, stdout, inviteParams{
		file: *file, expires: *expires, passwordFile: *passwordFile, listen: *listen, noPortmap: *noPortmap,
		opts: *opts, server: *srv.url, fingerprint: *srv.fingerprint, email: email,
	})
}

// inviteParams make one invitation: assist invite's flags, or the app's
// Get help.
type inviteParams struct {
	file         string // write the invitation file here ("" for none)
	expires      time.Duration
	passwordFile string
	listen       string
	// listenAny: if listen is taken, wait on any free port instead (the
	// app, whose user cannot pick another).
	listenAny   bool
	noPortmap   bool
	opts        noviceOptions
	server      string // "" for a direct invitation
	fingerprint string
	// again says how to get a new invitation once this one expired ("":
	// assist invite's words).
	again string
	// stdin is where the terminal's answers come from (nil: os.Stdin).
	stdin *os.File
	// email, if set, sends the invitation once it is made.
	email *emailPlan
	// ready, if set, is called once the invitation is made and printed,
	// before the first expert is awaited.
	ready func()
}

// invite makes an invitation, prints it, and serves the novice's side of
// it until it is withdrawn, expires or is closed.
func invite(ctx context.Context, stdout io.Writer, p inviteParams) (err error) {
	file, expires, passwordFile, listen, noPortmap, opts := &p.file, &p.expires, &p.passwordFile, &p.listen, &p.noPortmap, &p.opts
	srv := serverOptions{url: &p.server, fingerprint: &p.fingerprint}
	serverURL := *srv.url
	if serverURL != "" && *passwordFile != "" {
		return errors.New("--password-file and --server do not go together: with a server, the short code carries the password")
	}
	policy, err := session.ParsePolicy(opts.Allow)
	if err != nil {
		return fmt.Errorf("--allow: %w", err)
	}
	if *expires <= 0 {
		return fmt.Errorf("--expires %v: must be positive", *expires)
	}
	var code invitation.WordCode
	var password string
	if serverURL != "" {
		// The code's number is drawn when registering; its words are
		// the password, for the direct port too.
		if code, err = invitation.NewWordCode(); err != nil {
			return err
		}
		password = code.Password()
	} else if password, err = invitePassword(*passwordFile); err != nil {
		return err
	}
	d, err := openDisplay(opts.Display)
	if err != nil {
		return err
	}
	defer d.Close()

	ln, err := net.Listen("tcp", *listen)
	if err != nil && p.listenAny {
		ln, err = net.Listen("tcp", ":0")
	}
	if err != nil {
		return fmt.Errorf("listen on %s: %w (pick another port with --listen :PORT, or :0 for any)", *listen, err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	addrs := localAddrs(ln.Addr().(*net.TCPAddr))
	if !*noPortmap && !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
		m, err := portmap.Map(ctx, "tcp", port, portmap.Options{Description: "assist invitation", Logger: slog.Default()})
		if err != nil {
			fmt.Fprintf(os.Stderr, "note: %v\n", err)
		} else {
			defer m.Close()
			addrs = append(addrs, m.External().String())
			fmt.Fprintf(os.Stderr, "the router forwards %s to this computer (%s)\n", m.External(), m.Method())
		}
	}

	now := time.Now()
	inv, err := invitation.New(opts.Name, *expires, addrs, now)
	if err != nil {
		return err
	}
	inv.Server = serverURL
	if err := inv.Validate(now); err != nil {
		return fmt.Errorf("--server: %w", err)
	}
	l := transport.NewListener(ln, transport.ListenerConfig{
		InvitationID: inv.ID,
		Password:     invitation.NormalizePassword(password),
		Expires:      inv.Expires,
		Logger:       slog.Default(),
		DenyCooldown: opts.DenyCooldown,
	})
	defer l.Close()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	// Before the Wait: the rendezvous goroutines run until ctx ends.
	defer cancel(nil)
	var viaServer <-chan *rendezvous.Expert
	if serverURL != "" {
		rv, err := rendezvous.NewNovice(rendezvous.NoviceConfig{
			URL: serverURL, Fingerprint: *srv.fingerprint, Expires: inv.Expires,
			Password: invitation.NormalizePassword(password), Attempts: l,
		})
		if err != nil {
			return err
		}
		viaServer = rv.Experts()
		// Two registrations: the short code's number, for experts who
		// type the code, and the invitation's id, for experts who have
		// the file (which holds no number).
		codeReg, err := rv.RegisterCode(ctx, func() (string, error) {
			n, err := invitation.NewLookup()
			code.Lookup = n
			return code.LookupID(), err
		})
		if err != nil {
			return err
		}
		idReg, err := rv.Register(ctx, inv.ID)
		if err != nil {
			codeReg.Close()
			return err
		}
		wg.Go(func() { rv.Serve(ctx, codeReg) })
		wg.Go(func() { rv.Serve(ctx, idReg) })
	}
	if !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
		// The code is also found on the local network, with no server:
		// assist join CODE asks for it there (package lan). Announced
		// under what the novice reads out: the short code without a
		// server, the word code's number (drawn above) with one.
		lanCode := inv.ShortCode()
		if serverURL != "" {
			lanCode = code.LookupID()
		}
		a, err := lan.Announce(inv, lanCode, port, slog.Default())
		if err != nil {
			note := "the code works only with the invitation file or link on this computer"
			if serverURL != "" {
				note = "the code works only through the server on this computer"
			}
			fmt.Fprintf(os.Stderr, "note: %s: %v\n", note, err)
		} else {
			defer a.Close()
		}
	}
	if *file != "" {
		if err := invitation.WriteFile(*file, inv); err != nil {
			return err
		}
	}
	if serverURL != "" {
		fmt.Fprintf(stdout, "code: %s\n", code)
	} else {
		fmt.Fprintf(stdout, "code: %s\n", inv.ShortCode())
	}
	if *passwordFile != "" {
		// The novice chose it and has it already: printing it would only
		// leave it in the terminal's scrollback and in captured output.
		fmt.Fprintf(stdout, "password: (from %s)\n", *passwordFile)
	} else {
		// Generated: the novice must read it out to the expert.
		fmt.Fprintf(stdout, "password: %s\n", password)
	}
	if *file != "" {
		fmt.Fprintf(stdout, "invitation: %s\n", *file)
	}
	// The same invitation as a link, for chat and e-mail: assist join
	// takes it instead of the file. It holds no password.
	fmt.Fprintf(stdout, "link: %s\n", inv.URL())
	fmt.Fprintf(stdout, "expires: %s\n", inv.Expires.Local().Format(time.RFC3339))
	fmt.Fprintf(stdout, "The invitation is valid %s.\n", plainUntil(time.Now(), inv.Expires))
	fmt.Fprintf(stdout, "addresses: %s\n", strings.Join(addrs, " "))
	if serverURL != "" {
		fmt.Fprintf(stdout, "server: %s\n", serverURL)
		// An expert with nothing installed opens this in a browser.
		fmt.Fprintf(stdout, "browser: %s/#%s\n", strings.TrimRight(serverURL, "/"), code)
	}
	if email := p.email; email != nil {
		// Before the session starts: the expert needs the e-mail to
		// come at all. The e-mail holds neither password nor code.
		email.send(ctx, stdout, inv, *file)
	}
	status := novicepage.Status{
		Expires: inv.Expires, Server: serverURL, Addresses: addrs, State: session.Waiting,
	}
	if serverURL != "" {
		status.Code = code.String()
	} else {
		// The short code of a direct invitation does not carry the
		// password.
		status.Code, status.Password = inv.ShortCode(), password
	}
	// The link the page shows, with its QR code: the server's browser
	// address (nothing to install), else the assist:// link.
	status.Link = inv.URL()
	if serverURL != "" {
		status.Link = strings.TrimRight(serverURL, "/") + "/#" + code.String()
	}
	var email func(novicepage.Action)
	if page := opts.Page; page != nil {
		data, err := inv.Marshal()
		if err != nil {
			return err
		}
		page.SetFile(data)
		defer page.SetFile(nil)
		// Send by e-mail runs beside the session (an SMTP server may
		// take its time), one at a time, and stops with the invitation.
		mctx, mcancel := context.WithCancel(ctx)
		var mail sync.WaitGroup
		defer mail.Wait()
		defer mcancel()
		var sending atomic.Bool
		email = func(a novicepage.Action) {
			if !sending.CompareAndSwap(false, true) {
				a.Reply("Still sending the last e-mail: wait a moment.")
				return
			}
			mail.Go(func() {
				defer sending.Store(false)
				a.Reply(appEmail(mctx, stdout, inv, a.To))
			})
		}
	}
	if p.ready != nil {
		p.ready()
	}
	return serveNovice(ctx, stdout, noviceSide{
		opts: *opts, policy: policy, display: d, listener: l, viaServer: viaServer,
		expires: inv.Expires, status: status, again: p.again, stdin: p.stdin, email: email,
	})
}

// noviceSide is an invitation ready to be served: the listener counting
// its attempts (and its direct port, if any), the experts authenticated
// through the server, and what the page shows. assist invite and the
// messenger's keyed sessions set it up differently and serve it alike.
type noviceSide struct {
	opts      noviceOptions
	policy    session.Policy
	display   sharedDesktop
	listener  *transport.Listener
	viaServer <-chan *rendezvous.Expert // nil without a server
	expires   time.Time
	status    novicepage.Status
	// email answers the app's Send by e-mail (nil: not the app's page).
	email func(novicepage.Action)
	// expert, if not "", is the expert's name as the novice knows it (a
	// contact's), shown instead of the name the expert sends.
	expert string
	// once ends the invitation with its first session, however it ends:
	// a keyed session's expert cannot come back without a new request.
	once bool
	// again says how to get a new invitation once this one expired
	// ("" for assist invite's words).
	again string
	// stdin is the terminal (or script) the novice answers on; nil is
	// os.Stdin.
	stdin *os.File
}

// serveNovice serves the novice's side of an invitation: the terminal and
// the page, the desktop's capture, and one expert after another (each
// asked for consent) until the invitation is withdrawn, expires, or is
// closed by the novice's noes.
func serveNovice(ctx context.Context, stdout io.Writer, ns noviceSide) (err error) {
	d, l := ns.display, ns.listener
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	ui := &noviceUI{status: ns.status, email: ns.email, checkEvery: ns.opts.CheckEvery, answerTimeout: ns.opts.AnswerTimeout, filesDir: ns.opts.FilesDir}
	ui.ind = openIndicator(ns.opts)
	defer ui.ind.Close()
	if ns.opts.Page != nil {
		ui.page = ns.opts.Page
		ui.publish()
		defer func() { ui.closePage(err) }()
	} else if !ns.opts.NoPage {
		url, perr := ui.startPage(ctx)
		if perr != nil {
			fmt.Fprintf(os.Stderr, "note: no local page (%v); answer in this terminal\n", perr)
		} else {
			defer func() { ui.closePage(err) }()
			fmt.Fprintf(stdout, "page: %s\n", url)
			openInBrowser(stdout, url)
		}
	}
	switch ns.policy {
	case session.PolicyView:
		fmt.Fprintln(os.Stderr, "WARNING: --allow view: anyone with the password sees your screen without being asked")
	case session.PolicyControl:
		fmt.Fprintln(os.Stderr, "WARNING: --allow control: anyone with the password sees your screen AND controls your mouse and keyboard without being asked")
	}

	sh := shadow.New(d, shadow.Options{DetectScroll: true})
	wg.Go(func() {
		if err := sh.Run(ctx); err != nil {
			cancel(fmt.Errorf("capture stopped: %w", err))
		}
	})
	defer cancel(nil)

	stdin := ns.stdin
	if stdin == nil {
		stdin = os.Stdin
	}
	con := newConsole(stdin, stdout)
	defer con.restore()
	out := con.out
	ui.con, ui.out = con, out
	ui.triesLeft = l.AttemptsLeft()
	host, _ := os.Hostname()
	if ns.opts.Machine != "" {
		host = ns.opts.Machine
	}
	if ns.opts.RecordTo != "" {
		if _, err := recording.ParseRecipient(ns.opts.RecordTo); err != nil {
			return fmt.Errorf("--record-to: %w", err)
		}
	}
	auditLog := ns.opts.AuditLog
	if auditLog == nil {
		auditLog = auditLogOrWarn(os.Stderr)
	}
	fmt.Fprintln(out, waitingLine)
	for {
		actx, acancel := context.WithDeadline(ctx, ns.expires)
		conn, err := acceptOrQuit(actx, l, ns.viaServer, ui)
		acancel()
		switch {
		case errors.Is(err, errQuit):
			fmt.Fprintln(out, "stopped: the invitation is withdrawn")
			ui.withdrawn = true
			return nil
		case errors.Is(err, errVoid):
			return err
		case err != nil && ctx.Err() != nil:
			if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
				return cause
			}
			return nil
		case err != nil && time.Now().After(ns.expires):
			again := ns.again
			if again == "" {
				again = "run assist invite again for a new one"
			}
			return fmt.Errorf("the invitation expired at %s without anyone joining; %s", ns.expires.Local().Format(time.Kitchen), again)
		case err != nil:
			return err
		}
		expert := conn.PeerName()
		if ns.expert != "" {
			expert = ns.expert
		}
		var paths <-chan rtc.PathChange
		path := "direct"
		// The novice reads how in plain words; the technical path goes
		// to the log and to the page's Details.
		if rc, ok := conn.(*rendezvous.Expert); ok {
			path = rc.Path()
			paths = rc.PathChanges()
			// Where the server says the expert is (the question says
			// it too); a server that says nothing usable is no reason
			// to drop "connected from", which scripts count.
			from := " from an unknown address"
			if a, err := netip.ParseAddr(rc.From()); err == nil {
				from = " from " + a.String()
			}
			fmt.Fprintf(out, "%s connected%s through the Assist server\n", expert, from)
			ui.status.Path = "through the Assist server"
			ui.status.Detail = serverPathDetail(path)
			slog.Info("expert connected", "via", "server", "path", path, "remote", conn.RemoteAddr().String())
		} else {
			fmt.Fprintf(out, "%s connected from %s\n", expert, conn.RemoteAddr())
			ui.status.Path = fmt.Sprintf("directly, from %s", conn.RemoteAddr())
			ui.status.Detail = fmt.Sprintf("direct connection (TLS over TCP) from %s", conn.RemoteAddr())
			slog.Info("expert connected", "via", "direct", "path", path, "remote", conn.RemoteAddr().String())
		}
		ui.status.Expert, ui.status.Reason = expert, ""
		ui.publish()
		// The expert reads whether a no now would close the invitation.
		denyNote := ""
		if n, limit := l.Denials(); n+1 >= limit {
			denyNote = "; " + closedNote
		}
		via := ""
		if rc, ok := conn.(*rendezvous.Expert); ok {
			via = session.ViaServer(rc.From())
		} else if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil {
			via = session.ViaDirect(ap.Addr())
		}
		// Every session is recorded in this machine's audit log: who,
		// from where, each consent transition, each file, the end.
		rec := sessionRecorder(auditLog, audit.PartyNovice)
		// The audit trail keeps the technical path (the page's Details).
		auditPath := ui.status.Path
		if ui.status.Detail != "" {
			auditPath = ui.status.Detail
		}
		rec.Start(ns.opts.Name, expert, host, auditPath)
		ui.audit = rec
		srec, err := newSessionRecording(ns.opts, sh, rec)
		if err != nil {
			conn.Close()
			rec.End("not recorded: " + err.Error())
			return err
		}
		if srec != nil {
			fmt.Fprintf(out, "recording: this session's screen is recorded, encrypted to your organisation's audit key, in %s\n", ns.opts.RecordDir)
		}
		nov, err := session.StartNovice(ctx, conn, expert, session.NoviceConfig{
			Screen: sh, Input: d, Clipboard: d, Policy: ns.policy, Forbid: ns.opts.Forbid,
			DesktopName: fmt.Sprintf("%s (%s)", ns.opts.Name, host),
			Logger:      slog.Default(),
			HotKey:      func(inj func() bool, on func()) (func(), error) { return d.WatchHotKey(0xff1b, inj, on) },
			Audit: func(ev session.Event) {
				// The audit trail: who, what, and over which path.
				slog.Info("consent", "action", ev.Action, "from", ev.From, "to", ev.To, "expert", ev.Expert, "reason", ev.Reason, "auto", ev.Auto, "path", path)
				if ev.Rights.Has(session.RightView) {
					srec.viewing()
				}
				if ev.To == session.Ended {
					srec.finish() // entered in the log before the end
				}
				noviceConsentAudit(rec, ev)
				showBeforeView(ui.indicator(), sh, expert, ev)
			},
			FileAudit:     func(ev filetransfer.Event) { fileAudit(rec, true, ev) },
			Via:           via,
			AnswerTimeout: ns.opts.AnswerTimeout,
			DenyNote:      denyNote,
			FilesDir:      ns.opts.FilesDir,
		})
		if err != nil {
			rec.End("session refused: " + err.Error())
			conn.Close()
			fmt.Fprintf(out, "session refused: %v\n", err)
			if ns.once {
				return fmt.Errorf("session refused: %w", err)
			}
			ui.waiting("the last helper was refused: " + err.Error())
			continue
		}
		ui.deniedView = false
		quit := ui.runSession(nov, expert, paths)
		// Before the connection frees the invitation, so that no expert
		// gets in between the no and its cooldown.
		closed := ui.deniedView && l.Denied()
		conn.Close()
		if quit {
			ui.withdrawn = true
			return nil
		}
		if l.Void() {
			return errVoid
		}
		if closed {
			n, _ := l.Denials()
			return closedByNovice(n) // main prints it; the page shows it
		}
		if ns.once {
			return nil
		}
		if ui.deniedView {
			n, limit := l.Denials()
			note := fmt.Sprintf("you said no: for %s nobody can ask again (the invitation closes at the %s no; this was no %d)",
				session.Duration(ns.opts.DenyCooldown), ordinal(limit), n)
			fmt.Fprintln(out, note)
			ui.waiting(note)
			fmt.Fprintln(out, waitingLine)
			continue
		}
		ui.waiting("the last session ended: " + ui.status.Reason)
		fmt.Fprintln(out, waitingLine)
	}
}

var (
	errQuit = errors.New("quit")
	errVoid = errors.New("the invitation is void after too many wrong passwords; run assist invite again for a new one")
)

// waitingLine is what the terminal says while nobody is connected.
const waitingLine = "waiting for your helper (press q to stop)"

// serverPathDetail is the page's Details line for a session through the
// server on path (transport/rtc's names: direct, punched, relay-udp, ...).
func serverPathDetail(path string) string {
	return "through the server (WebRTC), path " + path
}

// expertConn is an authenticated expert's connection, direct
// (*transport.Conn) or through the rendezvous server (*rendezvous.Expert).
type expertConn interface {
	net.Conn
	PeerName() string
}

// acceptOrQuit waits for an authenticated expert, on the direct port or
// through the rendezvous server (viaServer; nil without a server), or for
// the novice to press q or withdraw the invitation on the page.
func acceptOrQuit(ctx context.Context, l *transport.Listener, viaServer <-chan *rendezvous.Expert, ui *noviceUI) (expertConn, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type result struct {
		c   *transport.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := l.Accept(ctx)
		res <- result{c, err}
	}()
	// The listener voids the invitation after too many wrong passwords
	// without returning from Accept; check so the novice hears of it now.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-res:
			if r.c == nil {
				return nil, r.err
			}
			return r.c, r.err
		case e := <-viaServer:
			// The rendezvous expert holds the invitation, so no direct
			// one can have authenticated too.
			cancel(errQuit)
			if r := <-res; r.c != nil {
				r.c.Close()
			}
			return e, nil
		case <-tick.C:
			ui.wrongCodes(l.AttemptsLeft())
			if l.Void() {
				cancel(errVoid)
				if r := <-res; r.c != nil {
					return r.c, nil
				}
				return nil, errVoid
			}
		case k := <-ui.con.keys:
			if k.kind == 'q' {
				cancel(errQuit)
				if r := <-res; r.c != nil {
					r.c.Close()
				}
				return nil, errQuit
			}
		case a := <-ui.pageActions():
			if appOnly(a.Kind) {
				ui.appAction(a)
				continue
			}
			if a.Kind != novicepage.ActWithdraw {
				idleAction(a)
				continue
			}
			cancel(errQuit)
			if r := <-res; r.c != nil {
				r.c.Close()
			}
			return nil, errQuit
		}
	}
}

// wrongCodes tells the novice, on the terminal and the page, when an
// expert's password (or code) was wrong, and how many tries are left:
// left is the listener's count, for the direct port and the server alike.
func (ui *noviceUI) wrongCodes(left int) {
	if ui.triesLeft == 0 || left >= ui.triesLeft {
		ui.triesLeft = left
		return
	}
	ui.triesLeft = left
	if left == 0 {
		return // void: acceptOrQuit says so and ends
	}
	note := fmt.Sprintf("Someone tried a wrong code: %s, then this invitation stops working.", triesLeft(left))
	fmt.Fprintln(ui.out, note)
	ui.status.Reason = note
	ui.publish()
}

// triesLeft says "1 try left", "3 tries left".
func triesLeft(n int) string {
	if n == 1 {
		return "1 try left"
	}
	return fmt.Sprintf("%d tries left", n)
}

// closedNote ends the reason of the no that closes the invitation, as the
// expert reads it (web/expert/refusal.js looks for it).
const closedNote = "this invitation is now closed"

// closedByNovice is the end of an invitation the novice's noes (this many)
// closed, in words for the novice.
type closedByNovice int

func (n closedByNovice) Error() string {
	return "You said no " + times(int(n)) + ", so this invitation is closed. Make a new one when you want help."
}

// times says n times in words: "once", "twice", "three times", "4 times".
func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	case 3:
		return "three times"
	}
	return fmt.Sprintf("%d times", n)
}

// ordinal says n as an ordinal for small n: "first", "second", "third", "4th".
func ordinal(n int) string {
	if n >= 1 && n <= 3 {
		return [...]string{"first", "second", "third"}[n-1]
	}
	return fmt.Sprintf("%dth", n)
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

func invitePassword(file string) (string, error) {
	if file == "" {
		return invitation.NewPassword()
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read --password-file: %w", err)
	}
	p := strings.TrimSpace(strings.TrimRight(string(b), "\r\n"))
	if p == "" {
		return "", fmt.Errorf("--password-file %s is empty: put the password on its first line", file)
	}
	return p, nil
}

func defaultName() string {
	if u, err := user.Current(); err == nil {
		if u.Name != "" {
			return strings.SplitN(u.Name, ",", 2)[0]
		}
		return u.Username
	}
	return "someone"
}

// localAddrs lists the addresses an expert on the LAN can reach l on.
func localAddrs(l *net.TCPAddr) []string {
	port := l.Port
	if !l.IP.IsUnspecified() {
		return []string{netip.AddrPortFrom(netip.MustParseAddr(l.IP.String()), uint16(port)).String()}
	}
	var out []string
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			out = append(out, net.JoinHostPort(ipn.IP.String(), strconv.Itoa(port)))
		}
	}
	if len(out) == 0 {
		out = append(out, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	if len(out) > 8 {
		out = out[:8]
	}
	return out
}

// appOnly reports whether k is one of the app's own buttons.
func appOnly(k novicepage.ActionKind) bool {
	return k == novicepage.ActEmail || k == novicepage.ActGetHelp || k == novicepage.ActAsk
}
