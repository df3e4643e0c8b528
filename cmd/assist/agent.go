package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/term"

	"github.com/assist-project/assist/account"
	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/indicator"
	"github.com/assist-project/assist/launcher"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/novicepage"
	"github.com/assist-project/assist/session"
)

// agentDir is the agent's own config directory (its device key is the
// machine's, apart from any account the user logs in to with assist
// login): "agent" in the config directory.
func agentDir() (string, error) {
	d, err := identity.DefaultDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "agent"), nil
}

// runAgent is assist agent: "enroll" enrols this machine; with no
// arguments it runs in the user's graphical session, keeps presence with
// the server and asks the user about each offer of help.
func runAgent(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "enroll" {
		return runAgentEnroll(ctx, args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "install" {
		return runAgentInstall(ctx, args[1:], stdout)
	}
	fs := newFlagSet("agent", os.Stderr)
	server := messengerServerFlag(fs)
	notify := fs.String("notify", "auto", "auto: also ask on the desktop with a notification where a notification daemon runs (D-Bus org.freedesktop.Notifications); off: only the terminal")
	opts := addNoviceFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *notify != "auto" && *notify != "off" {
		return errors.New("--notify: auto or off")
	}
	dir, err := agentDir()
	if err != nil {
		return err
	}
	dev, err := account.Open(dir)
	if err != nil {
		return err
	}
	if dev.Config().User == "" {
		return errors.New("this machine is not enrolled: run assist agent enroll https://SERVER TOKEN with the token your organisation's admin gave you")
	}
	a := &agent{dev: dev, server: *server, opts: *opts, stdout: stdout}
	// The machine's own audit log, signed with its key: what its
	// organisation's server accepts from it after each session.
	if a.opts.AuditLog, err = openAgentAuditLog(dir); err != nil {
		fmt.Fprintf(os.Stderr, "note: sessions are not recorded in the machine's audit log (%v)\n", err)
	}
	if *notify == "auto" {
		a.notifier = openNotifier()
		if a.notifier != nil {
			defer a.notifier.Close()
		}
	}
	if !opts.NoPage {
		stop, err := a.startPage(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "note: no local page (%v); offers are asked in this terminal\n", err)
		} else {
			defer stop()
		}
	}
	a.input = newLineReader(os.Stdin)
	defer a.input.close()
	a.interactive = term.IsTerminal(int(os.Stdin.Fd()))
	// The agent stays: a lost connection is retried, more slowly each
	// time, up to a minute apart.
	backoff := time.Second
	for {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		c, err := dev.Connect(dctx, *server)
		cancel()
		if err == nil {
			backoff = time.Second
			fmt.Fprintf(stdout, "agent: %s online\n", dev.Config().User)
			a.catchUpAudit(ctx, c)
			err = a.serve(ctx, c)
			c.Close()
		}
		if ctx.Err() != nil {
			return nil
		}
		slog.Warn("agent: connection to the server lost; trying again", "err", err, "in", backoff)
		fmt.Fprintf(os.Stderr, "agent: %v; trying again in %v\n", err, backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(backoff*2, time.Minute)
	}
}

func runAgentEnroll(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("agent", os.Stderr)
	host, _ := os.Hostname()
	id := fs.String("id", machineID(host), "this machine's account on the server (a-z, 0-9, '.', '_', '-'; up to 32): what helpers type in assist offer")
	name := fs.String("name", host, "this machine's name as helpers see it")
	user := fs.String("user", defaultName(), "the person who uses this machine, as helpers see it")
	fingerprint := fs.String("server-fingerprint", "", "pin this server certificate (sha256:HEX, as assist serve prints) instead of trusting the one shown on first use")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 2 {
		fmt.Fprintln(os.Stderr, "usage: assist agent enroll https://SERVER[:PORT] TOKEN [--id ID] [--name NAME] [--user NAME] [--server-fingerprint sha256:HEX]")
		return errUsage
	}
	if !messenger.ValidToken(positional[1]) {
		return errors.New("that is not an enrolment token: copy the whole token: line that assist org token printed")
	}
	dir, err := agentDir()
	if err != nil {
		return err
	}
	dev, err := account.Open(dir)
	if err != nil {
		return err
	}
	if dev.Config().User != "" {
		return fmt.Errorf("this machine is enrolled already as %s on %s: to enrol it again, remove %s first", dev.Config().User, dev.Config().Server, dir)
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	w, err := dev.Login(ctx, account.LoginOptions{
		Server: positional[0], Fingerprint: *fingerprint, User: *id, Display: *user, DeviceName: *name, Token: positional[1],
		FirstUse: func(fp string) {
			fmt.Fprintf(stdout, "server fingerprint: %s\n", fp)
			fmt.Fprintln(os.Stderr, "first connection to this server: its certificate is now pinned; compare the fingerprint above with the one `assist serve` printed")
		},
	})
	if messenger.IsCode(err, messenger.CodeNotFound) {
		return errors.New("the server refused the token: it is unknown, used up or expired; ask your organisation's admin for a new one")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled: %s on %s\n", w.User, dev.Config().Server)
	fmt.Fprintln(os.Stderr, "start the agent with your desktop session: assist agent install (or assist agent install --systemd), or run assist agent now")
	return nil
}

// runAgentInstall makes the agent start with the user's graphical
// session: an XDG autostart entry, or with --systemd a systemd user unit,
// which it enables and starts.
func runAgentInstall(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("agent", os.Stderr)
	systemd := fs.Bool("systemd", false, "install a systemd user unit bound to graphical-session.target (and enable it) instead of an XDG autostart entry")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the assist binary: %w", err)
	}
	path, err := launcher.InstallAgent(launcher.AgentOptions{Binary: bin, Systemd: *systemd})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "installed: %s\n", path)
	if !*systemd {
		fmt.Fprintln(os.Stderr, "the agent starts at your next login; to start it now: assist agent")
		return nil
	}
	for _, args := range [][]string{{"--user", "daemon-reload"}, {"--user", "enable", "--now", launcher.AgentUnitFile}} {
		if out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl %s: %v: %s; the unit is installed: enable it with systemctl --user enable --now %s",
				strings.Join(args, " "), err, strings.TrimSpace(string(out)), launcher.AgentUnitFile)
		}
	}
	fmt.Fprintf(stdout, "enabled: %s\n", launcher.AgentUnitFile)
	return nil
}

// machineID turns a host name into an account name.
func machineID(host string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(host) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case (r == '.' || r == '-' || r == '_') && b.Len() > 0:
			b.WriteRune(r)
		}
		if b.Len() == 32 {
			break
		}
	}
	if b.Len() == 0 {
		return "machine"
	}
	return b.String()
}

// agent is a running assist agent.
type agent struct {
	dev         *account.Device
	server      string
	opts        noviceOptions
	stdout      io.Writer
	notifier    notifier // nil: no notification daemon
	input       *lineReader
	interactive bool
	// page is the agent's own page, which asks each offer and shows the
	// sessions; nil with --no-page.
	page *novicepage.Server
	// openIndicator opens the bar that asks an offer on the desktop
	// (openIndicator; tests replace it).
	openIndicator func(noviceOptions) indicator.Indicator
}

// catchUpAudit uploads the entries of the machine's audit log that the
// organisation's server does not hold yet: a session whose server went
// away before it ended (a node killed) could not upload them then, and
// the trail must not wait for the next session to have them. A failure
// is only noted: the entries stay in the log and go with the next upload.
func (a *agent) catchUpAudit(ctx context.Context, c *messenger.Client) {
	if a.opts.AuditLog == nil {
		return
	}
	uctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	held, err := c.AuditUpload(uctx, "")
	if err == nil {
		var pending []audit.Entry
		if pending, _, err = a.opts.AuditLog.Since(held); err == nil && len(pending) == 0 {
			return
		}
	}
	var seq uint64
	if err == nil {
		seq, err = uploadAudit(uctx, c, a.opts.AuditLog)
	}
	if err != nil {
		slog.Warn("agent: the audit log's latest entries were not uploaded", "err", err)
		fmt.Fprintf(os.Stderr, "note: the audit log was not uploaded to your organisation's server (%v); it is tried again after the next session\n", err)
		return
	}
	fmt.Fprintf(a.stdout, "audit: uploaded to entry %d\n", seq)
}

// idleStatus is what the agent's page shows between offers.
var idleStatus = novicepage.Status{Agent: true, State: session.Waiting, Reason: "offers of help from your organisation are asked here"}

// historyLines is the most history the agent's page shows.
const historyLines = 100

// idle is idleStatus with this machine's history from its audit log, so
// that its user sees who helped them and what happened, as assist audit
// prints it.
func (a *agent) idle() novicepage.Status {
	st := idleStatus
	if a.opts.AuditLog == nil {
		return st
	}
	entries, err := a.opts.AuditLog.Entries()
	if err != nil {
		slog.Warn("the machine's audit log could not be read for its page", "err", err)
		return st
	}
	st.History = sessionHistory(entries, historyLines)
	return st
}

// sessionHistory sums up the sessions in a machine's audit entries for
// the person at it, newest first, one line each, in the page's words:
// who helped, what they could do, how it ended ("Sun 6 Dec 2026 22:40:
// Dana (ACME IT) saw your screen. Dana (ACME IT) left."). The entries
// themselves, in the auditors' words, stay in assist audit.
func sessionHistory(entries []audit.Entry, limit int) []string {
	type sum struct {
		start             time.Time
		helper, end       string
		saw, controlled   bool
		filesIn, filesOut int
	}
	var order []string
	byID := map[string]*sum{}
	for _, e := range entries {
		s := byID[e.Session]
		if s == nil {
			s = &sum{start: e.Time}
			byID[e.Session] = s
			order = append(order, e.Session)
		}
		if e.Expert != "" {
			s.helper = e.Expert
		}
		switch e.Kind {
		case audit.KindConsent:
			switch e.To {
			case "viewing":
				s.saw = true
			case "controlling":
				s.saw, s.controlled = true, true
			}
		case audit.KindFile:
			if e.File != nil && e.File.Direction == audit.ToNovice {
				s.filesIn++
			} else {
				s.filesOut++
			}
		case audit.KindEnd:
			s.end = e.Reason
		}
	}
	var lines []string
	for i := len(order) - 1; i >= 0 && len(lines) < limit; i-- {
		s := byID[order[i]]
		name := s.helper
		if name == "" {
			name = "A helper"
		}
		var b strings.Builder
		b.WriteString(s.start.Local().Format("Mon 2 Jan 2006 15:04") + ": ")
		switch {
		case s.controlled:
			b.WriteString(name + " saw your screen and used your mouse and keyboard.")
		case s.saw:
			b.WriteString(name + " saw your screen.")
		default:
			b.WriteString(name + " connected but saw nothing.")
		}
		if s.filesIn+s.filesOut > 0 {
			fmt.Fprintf(&b, " Files: %d received, %d sent.", s.filesIn, s.filesOut)
		}
		if s.end != "" {
			end := novicepage.Reason(s.end, s.helper)
			b.WriteString(" " + strings.ToUpper(end[:1]) + end[1:] + ".")
		}
		lines = append(lines, b.String())
	}
	return lines
}

// startPage serves the agent's page on a free loopback port, prints its
// address (page: URL) and returns what stops it.
func (a *agent) startPage(ctx context.Context) (func(), error) {
	page, err := novicepage.New(novicepage.Options{Logger: slog.Default()})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	url := page.URL(ln)
	page.SetStatus(a.idle())
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := page.Serve(ctx, ln); err != nil {
			slog.Warn("the agent's page stopped", "err", err)
		}
	})
	a.page = page
	fmt.Fprintf(a.stdout, "page: %s\n", url)
	return func() { cancel(); wg.Wait() }, nil
}

// offerAnswer is the user's answer to one offer, from the terminal or the
// desktop notification.
type offerAnswer struct {
	request string
	accept  bool
}

// serve handles c's offers until the connection ends (its error) or ctx
// does (nil). One offer is asked at a time; others wait their turn.
func (a *agent) serve(ctx context.Context, c *messenger.Client) error {
	var queue []messenger.Message
	var current *messenger.Message // the offer being asked about
	var timer <-chan time.Time
	var stopTimer func() bool
	closeNote := func() {}
	answers := make(chan offerAnswer, 4)
	// The offer is asked in the terminal, the notification, the page and
	// on the indicator's bar at once: the first answer anywhere counts.
	var ind indicator.Indicator
	var clicks <-chan indicator.Click
	var question uint64 // the page's Question.ID of current
	var pageActions <-chan novicepage.Action
	if a.page != nil {
		pageActions = a.page.Actions()
	}
	ask := func() {
		for current == nil && len(queue) > 0 {
			r := queue[0]
			queue = queue[1:]
			current = &r
			text := offerText(r)
			fmt.Fprintf(a.stdout, "offer: %s from %s\n", r.Request, r.From)
			fmt.Fprintf(a.stdout, "question: %s\n", text)
			fmt.Fprintf(os.Stderr, "answer y or n (or: accept %s | decline %s) [y/N]\n", r.Request, r.Request)
			t := time.NewTimer(time.Duration(r.Org.Policy.Timeout) * time.Second)
			timer, stopTimer = t.C, t.Stop
			if a.notifier != nil {
				id := r.Request
				closeNote = a.notifier.Ask(ctx, text, func(accept bool) {
					select {
					case answers <- offerAnswer{id, accept}:
					default:
					}
				})
			}
			if a.page != nil {
				question++
				st := a.idle()
				st.State = session.Asking
				st.Question = &novicepage.Question{ID: question, Right: "offer", Text: text,
					Deadline: time.Now().Add(time.Duration(r.Org.Policy.Timeout) * time.Second)}
				a.page.SetStatus(st)
			}
			open := a.openIndicator
			if open == nil {
				open = openIndicator
			}
			ind = open(a.opts)
			if err := ind.Show(indicator.State{Mode: indicator.Offer, Expert: r.Display, Org: r.Org.Display}); err != nil {
				slog.Warn("agent: the offer on the indicator", "err", err)
			}
			clicks = ind.Clicks()
		}
	}
	settle := func() {
		current, timer = nil, nil
		if stopTimer != nil {
			stopTimer()
		}
		closeNote()
		closeNote = func() {}
		if ind != nil {
			ind.Close()
			ind, clicks = nil, nil
		}
		if a.page != nil {
			a.page.SetStatus(a.idle())
		}
	}
	defer settle()
	answer := func(id string, accept bool) error {
		if current == nil || current.Request != id {
			fmt.Fprintf(os.Stderr, "no offer %s is waiting for an answer\n", id)
			return nil
		}
		r := *current
		settle()
		reply, err := c.Answer(ctx, id, accept)
		switch {
		case messenger.IsCode(err, messenger.CodeNotFound):
			fmt.Fprintf(a.stdout, "closed: %s\n", id)
			return nil
		case err != nil:
			return err
		case !accept:
			fmt.Fprintf(a.stdout, "declined: %s\n", id)
			return nil
		}
		fmt.Fprintf(a.stdout, "accepted: %s from %s\n", id, r.From)
		if err := account.CheckRole(reply, messenger.KindOffer, false); err != nil {
			return err
		}
		// The session is with the helper the user said yes to.
		if reply.Peer == nil || reply.Peer.User != r.From {
			fmt.Fprintf(os.Stderr, "the server's acceptance names another helper than %s: no session\n", plainText(r.Display))
			return nil
		}
		return a.session(ctx, c, reply, r)
	}
	for {
		ask()
		var lines <-chan string
		if current != nil || a.input.pending {
			lines = a.input.ask()
		}
		select {
		case m, ok := <-c.Events():
			if !ok {
				return fmt.Errorf("the connection to the server ended: %w", c.Err())
			}
			switch m.Type {
			case messenger.TypeRequest:
				// Only an organisation's offer, with its policy, is asked
				// about; anything else is not for an agent.
				if m.Kind != messenger.KindOffer || m.Org == nil {
					slog.Info("agent: ignoring a request that is not an organisation's offer", "from", m.From)
					continue
				}
				queue = append(queue, m)
			case messenger.TypeRequestClosed:
				if current != nil && current.Request == m.Request {
					settle()
					fmt.Fprintf(a.stdout, "closed: %s %s\n", m.Request, m.Reason)
				}
				for i, q := range queue {
					if q.Request == m.Request {
						queue = append(queue[:i], queue[i+1:]...)
						break
					}
				}
			}
		case l, ok := <-lines:
			a.input.got(ok)
			if !ok {
				continue
			}
			id := ""
			if current != nil {
				id = current.Request
			}
			id, accept, ok := parseAnswer(strings.TrimSpace(l), id, true)
			if !ok {
				fmt.Fprintln(os.Stderr, "answer with: y | n | accept ID | decline ID")
				continue
			}
			if err := answer(id, accept); err != nil {
				return err
			}
		case x := <-answers:
			if err := answer(x.request, x.accept); err != nil {
				return err
			}
		case c, ok := <-clicks:
			if !ok {
				clicks = nil
				continue
			}
			if current != nil && (c == indicator.Accept || c == indicator.Decline) {
				fmt.Fprintf(a.stdout, "answered on the bar: %s\n", c)
				if err := answer(current.Request, c == indicator.Accept); err != nil {
					return err
				}
			}
		case act := <-pageActions:
			if act.Kind != novicepage.ActAnswer || current == nil || act.Question != question {
				act.Reply("there is no offer of help to answer now")
				continue
			}
			fmt.Fprintf(a.stdout, "answered on the page: %t\n", act.Allow)
			if err := answer(current.Request, act.Allow); err != nil {
				return err
			}
		case <-timer:
			// No answer is a no.
			id, wait := current.Request, current.Org.Policy.Timeout
			settle()
			if _, err := c.Answer(ctx, id, false); err != nil && !messenger.IsCode(err, messenger.CodeNotFound) {
				return err
			}
			fmt.Fprintf(a.stdout, "declined: %s (no answer within %v)\n", id, time.Duration(wait)*time.Second)
		case <-ctx.Done():
			return nil
		}
	}
}

// session runs the novice's side of an accepted offer under the
// organisation's policy: the rights it forbids are refused on this
// machine, whatever the server or the helper's client says, and its
// timeout bounds each consent question.
func (a *agent) session(ctx context.Context, c *messenger.Client, accepted, offer messenger.Message) error {
	o := a.opts
	// The audit trail and the helper name the enrolled machine and its
	// user, as the server does, not the OS account and the hostname.
	if cfg := a.dev.Config(); cfg.User != "" {
		o.Machine = cfg.User
		if cfg.Display != "" {
			o.Name = cfg.Display
		}
	}
	o.Forbid = forbidden(offer.Org.Policy)
	o.AnswerTimeout = time.Duration(offer.Org.Policy.Timeout) * time.Second
	// The organisation's policy decides recording, not the agent's flags:
	// the user was told before accepting.
	o.RecordTo = ""
	if p := offer.Org.Policy; p.Record {
		if p.AuditKey == "" {
			fmt.Fprintln(os.Stderr, "note: the organisation's policy records sessions but it has no audit key: this session is not recorded; its admin sets one with assist org policy --audit-key")
		} else {
			o.RecordTo = p.AuditKey
		}
	}
	if a.page != nil {
		// The session shows on the agent's page, which stays after it.
		o.Page, o.Agent = a.page, true
		// In a closure: the history is read once the session is over.
		defer func() { a.page.SetStatus(a.idle()) }()
	}
	// The policy of the offer the user read, not of the acceptance.
	accepted.Org = offer.Org
	stdin := os.Stdin
	var stop func()
	if !a.interactive {
		// The script's next lines answer the consent questions.
		var err error
		if stdin, stop, err = a.input.forward(); err != nil {
			return err
		}
	}
	err := runAccepted(ctx, a.dev, c, accepted, a.server, sessionOptions{novice: &o, org: true}, stdin, a.stdout)
	if stop != nil {
		stop()
	}
	fmt.Fprintf(a.stdout, "session ended: %s\n", offer.Request)
	if err != nil && ctx.Err() == nil {
		// A failed session is reported; the agent keeps waiting for
		// offers.
		fmt.Fprintf(os.Stderr, "the session ended with an error: %v\n", err)
		slog.Warn("agent: session", "err", err)
	}
	return nil
}

// forbidden is the complement of a policy's rights.
func forbidden(p messenger.Policy) session.Rights {
	var f session.Rights
	for _, r := range []struct {
		name  string
		right session.Rights
	}{{messenger.RightControl, session.RightControl}, {messenger.RightClipboard, session.RightClipboard}, {messenger.RightFiles, session.RightFiles}} {
		if !p.Allows(r.name) {
			f |= r.right
		}
	}
	return f
}

// offerText is the question the user is asked: who offers, from which
// organisation, and whether the session would be recorded.
func offerText(r messenger.Message) string {
	s := fmt.Sprintf("%s from %s offers to help you. Accept?", plainText(r.Display), plainText(r.Org.Display))
	if r.Org.Policy.Record {
		s += " This session will be recorded."
	}
	return s
}

// orgPeerName is how one side of an organisation's session names the
// other: the helper and their organisation for the machine's user, the
// machine's name for the helper.
func orgPeerName(accepted messenger.Message) string {
	if accepted.Role == messenger.RoleNovice && accepted.Org != nil {
		return plainText(accepted.Peer.Display) + " (" + plainText(accepted.Org.Display) + ")"
	}
	return plainText(accepted.Peer.Device.Name)
}

// plainText drops control and bidi characters from text the server or a
// peer chose, before it reaches a terminal or a notification.
func plainText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, s)
}

// forward hands the input's lines to a new pipe until stop is called,
// for the consent questions of a scripted session; after stop the reader
// is the agent's again (a line asked for meanwhile comes to it).
func (lr *lineReader) forward() (*os.File, func(), error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer w.Close()
		for {
			ch := lr.ask()
			if ch == nil {
				return
			}
			select {
			case l, ok := <-ch:
				lr.got(ok)
				if !ok {
					return
				}
				if _, err := fmt.Fprintln(w, l); err != nil {
					return
				}
			case <-quit:
				return
			}
		}
	}()
	return r, func() {
		close(quit)
		<-done
		r.Close()
	}, nil
}
