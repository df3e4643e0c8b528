package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/account"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/novicepage"
)

// The novice's app: `assist` with no arguments (or `assist app`, which
// takes flags) serves the novice's page in app mode on loopback and opens
// it in the browser. It offers Get help (an invitation as assist invite
// makes, through the server of assist login when there is one) and the
// messenger's contacts with Ask for help (as assist ask); a running
// invitation or session is shown as assist invite's page shows it, by the
// same code (serveNovice with the app's page).

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

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
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

	a := &app{page: page, stdout: stdout, answers: make(chan messenger.Message, 16)}
	a.params = inviteParams{
		expires: *expires, listen: *listen, listenAny: true, noPortmap: *noPortmap, opts: *opts,
		server: *srv.url, fingerprint: *srv.fingerprint, again: "click Get help for a new one",
	}
	a.params.opts.Page = page
	dev, err := account.Open("")
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "note: no contacts (%v)\n", err)
	case dev.Config().Server != "" && dev.Config().User != "":
		a.dev = dev
		a.state.Account, a.state.Server = dev.Config().User, dev.Config().Server
		if a.params.server == "" {
			// Invitations go through the server this device logged in
			// to, with its pinned certificate.
			a.params.server, a.params.fingerprint = dev.Config().Server, dev.Config().Fingerprint
		}
		wg.Go(func() { a.feed(ctx) })
	}
	a.publish()

	fmt.Fprintf(stdout, "app: %s\n", url)
	if !*noBrowser {
		openApp(url)
	}
	return a.loop(ctx)
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

// app is the state of one run of the app. Its loop goroutine runs the
// invitations and sessions; feed keeps the contacts up to date meanwhile.
type app struct {
	page    *novicepage.Server
	stdout  io.Writer
	params  inviteParams
	dev     *account.Device // nil when not logged in
	answers chan messenger.Message

	mu     sync.Mutex
	state  novicepage.App
	client *messenger.Client // nil while not connected
}

func (a *app) publish() {
	a.mu.Lock()
	st := a.state
	st.Contacts = slices.Clone(st.Contacts)
	a.mu.Unlock()
	a.page.SetApp(st)
}

// update changes the app's state under its lock and shows it.
func (a *app) update(f func(*novicepage.App)) {
	a.mu.Lock()
	f(&a.state)
	a.mu.Unlock()
	a.publish()
}

func (a *app) currentClient() *messenger.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.client
}

// loop answers the page's clicks while nothing runs, until ctx ends.
func (a *app) loop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case act := <-a.page.Actions():
			switch act.Kind {
			case novicepage.ActGetHelp:
				a.getHelp(ctx)
			case novicepage.ActAsk:
				a.ask(ctx, act)
			case novicepage.ActWithdraw:
				act.Reply("Nothing is open: there is nothing to stop.")
			case novicepage.ActEmail:
				act.Reply("Click Get help first: then you can send the invitation.")
			default:
				idleAction(act)
			}
		case <-a.answers:
			// The answer to a request no longer waited for.
		}
	}
}

// stdinForApp is the app's stand-in for a terminal: nobody types on it.
// The returned func closes it.
func stdinForApp() (*os.File, func(), error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	return r, func() { w.Close(); r.Close() }, nil
}

// getHelp makes an invitation and serves it until it is over.
func (a *app) getHelp(ctx context.Context) {
	a.update(func(s *novicepage.App) { s.Busy, s.Last = true, "" })
	ready := false
	p := a.params
	p.ready = func() { ready = true }
	err := a.run(func(stdin *os.File) error {
		p.stdin = stdin
		return invite(ctx, a.stdout, p)
	})
	if err != nil && !ready && p.server != "" && ctx.Err() == nil {
		// The server cannot be reached: a direct invitation still
		// works on this network, or with the router's port forwarded.
		slog.Warn("no invitation through the server; making a direct one", "server", p.server, "err", err)
		note := "Could not reach " + p.server + ", so this invitation works without it: give the person who helps you the link or the file, and the password."
		a.update(func(s *novicepage.App) { s.Last = note })
		p.server, p.fingerprint = "", ""
		err = a.run(func(stdin *os.File) error {
			p.stdin = stdin
			return invite(ctx, a.stdout, p)
		})
	}
	last := "Your invitation is over. Click Get help when you need help again."
	if err != nil && ctx.Err() == nil {
		slog.Info("the invitation ended", "err", err)
		last = "Your invitation is over: " + sentence(err.Error())
	}
	a.update(func(s *novicepage.App) { s.Busy, s.Last = false, last })
}

// run calls f with a stdin of its own.
func (a *app) run(f func(stdin *os.File) error) error {
	stdin, done, err := stdinForApp()
	if err != nil {
		return err
	}
	defer done()
	return f(stdin)
}

// sentence makes an error message a sentence for the page.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// ask asks a contact for help, as assist ask does, and on accept runs the
// session on the app's page.
func (a *app) ask(ctx context.Context, act novicepage.Action) {
	c := a.currentClient()
	if c == nil {
		act.Reply("Not connected to the server right now, so your contacts cannot be asked. Click Get help instead, or try again in a moment.")
		return
	}
	name := a.displayName(act.User)
	asked, err := c.Ask(ctx, act.User, messenger.KindHelp)
	if err != nil {
		if messenger.IsCode(err, messenger.CodeUnauthorized) || messenger.IsCode(err, messenger.CodeNotFound) {
			act.Reply(name + " is not one of your contacts any more.")
		} else {
			act.Reply("Could not ask " + name + ": " + sentence(err.Error()))
		}
		return
	}
	a.update(func(s *novicepage.App) { s.Asking, s.Last = act.User, "" })
	answer, last := a.waitAnswer(ctx, c, asked.Request, name)
	a.update(func(s *novicepage.App) { s.Asking, s.Last = "", last })
	if answer.Type != messenger.TypeAccepted {
		return
	}
	if err := account.CheckRole(answer, messenger.KindHelp, true); err != nil {
		a.update(func(s *novicepage.App) { s.Last = sentence(err.Error()) })
		return
	}
	a.update(func(s *novicepage.App) { s.Busy = true })
	err = a.run(func(stdin *os.File) error {
		so := sessionOptions{novice: &a.params.opts}
		return runAccepted(ctx, a.dev, c, answer, "", so, stdin, a.stdout)
	})
	last = "The session with " + name + " is over. Click Get help or Ask for help when you need help again."
	if err != nil && ctx.Err() == nil {
		last = "The session with " + name + " ended: " + sentence(err.Error())
	}
	a.update(func(s *novicepage.App) { s.Busy, s.Last = false, last })
}

// waitAnswer waits for the answer to request rid, or for the novice to
// stop asking; it returns the answer (Type "" if there is none) and what
// the page says about it.
func (a *app) waitAnswer(ctx context.Context, c *messenger.Client, rid, name string) (messenger.Message, string) {
	withdraw := func(why string) string {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := c.Cancel(cctx, rid); err != nil && !errors.Is(err, messenger.ErrClosed) {
			slog.Warn("cancelling a request failed", "err", err)
		}
		return why
	}
	for {
		select {
		case <-ctx.Done():
			return messenger.Message{}, withdraw("")
		case <-c.Done():
			return messenger.Message{}, "The connection to the server broke before " + name + " answered. Ask again in a moment, or click Get help."
		case act := <-a.page.Actions():
			if act.Kind == novicepage.ActWithdraw {
				fmt.Fprintf(a.stdout, "stopped asking %s\n", name)
				return messenger.Message{}, withdraw("You stopped asking " + name + ".")
			}
			act.Reply("Waiting for " + name + " to answer. Click Stop asking to ask someone else.")
		case m := <-a.answers:
			if m.Request != rid {
				continue
			}
			switch m.Type {
			case messenger.TypeAccepted:
				fmt.Fprintf(a.stdout, "accepted by %s\n", m.By)
				return m, ""
			case messenger.TypeDeclined:
				fmt.Fprintf(a.stdout, "declined by %s\n", m.By)
				return m, name + " cannot help right now. Ask someone else, or click Get help."
			}
			if m.Reason == messenger.ReasonExpired {
				return m, name + " did not answer within 5 minutes. Ask someone else, or click Get help."
			}
			if m.Reason == messenger.ReasonDeclined {
				return m, name + " cannot help right now. Ask someone else, or click Get help."
			}
			return m, "Your request to " + name + " was closed (" + m.Reason + ")."
		}
	}
}

// displayName is a contact's name as this device paired with them.
func (a *app) displayName(user string) string {
	if a.dev != nil {
		if ct, ok := a.dev.Config().Contacts[user]; ok && ct.Display != "" {
			return ct.Display
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.state.Contacts {
		if c.User == user && c.Display != "" {
			return c.Display
		}
	}
	return user
}

// feedRetry bounds the wait before connecting to the server again.
const feedRetry = 30 * time.Second

// feed keeps a connection to the messenger, the contacts and their
// presence on the page, and hands the answers to requests to the loop,
// until ctx ends. It is the only reader of the connection's events.
func (a *app) feed(ctx context.Context) {
	wait := time.Second
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		c, err := a.dev.Connect(dctx, "")
		cancel()
		if err == nil {
			wait = time.Second
			err = a.follow(ctx, c)
			c.Close()
		}
		a.mu.Lock()
		a.client, a.state.Online = nil, false
		a.mu.Unlock()
		a.publish()
		if ctx.Err() != nil {
			return
		}
		slog.Info("not connected to the messenger; trying again", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, feedRetry)
	}
}

// follow lists the contacts on c and follows their presence until c or
// ctx ends.
func (a *app) follow(ctx context.Context, c *messenger.Client) error {
	list := func() error {
		contacts, _, err := c.Contacts(ctx)
		if err != nil {
			return err
		}
		out := make([]novicepage.Contact, 0, len(contacts))
		for _, ct := range contacts {
			display := ct.Display
			if pinned, ok := a.dev.Config().Contacts[ct.User]; ok && pinned.Display != "" {
				display = pinned.Display
			}
			out = append(out, novicepage.Contact{User: ct.User, Display: display, State: ct.State})
		}
		a.mu.Lock()
		a.client, a.state.Online, a.state.Contacts = c, true, out
		a.mu.Unlock()
		a.publish()
		return nil
	}
	if err := list(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-c.Events():
			if !ok {
				return c.Err()
			}
			switch m.Type {
			case messenger.TypePresence:
				a.update(func(s *novicepage.App) {
					for i := range s.Contacts {
						if s.Contacts[i].User == m.User {
							s.Contacts[i].State = m.State
						}
					}
				})
			case messenger.TypeContactAdded, messenger.TypeRemoved, messenger.TypeBlocked, messenger.TypeUnblocked:
				if err := list(); err != nil {
					return err
				}
			case messenger.TypeAccepted, messenger.TypeDeclined, messenger.TypeRequestClosed:
				select {
				case a.answers <- m:
				default:
					slog.Warn("dropped the answer to a request nobody waits for")
				}
			}
		}
	}
}
