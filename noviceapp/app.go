package noviceapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/account"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/novicepage"
)

// Config wires the app to what it runs: the page it shows, the device's
// messenger account, and the invitation and the session, which the caller
// serves on the same page (cmd/assist: its invite and runAccepted).
type Config struct {
	// Page is the app's page (novicepage.Options.App), served by the
	// caller; Run reads its Actions while nothing else runs.
	Page *novicepage.Server
	// Stdout takes the lines a script reads: "accepted by NAME",
	// "declined by NAME", "stopped asking NAME".
	Stdout io.Writer
	// Device is this installation logged in to a messenger server, for
	// the contacts; nil without one (Get help still works).
	Device *account.Device
	// Server and Fingerprint are where Get help's invitations go; ""
	// makes direct ones.
	Server, Fingerprint string
	// Invite makes an invitation through server ("" for a direct one),
	// calls ready once it is made and shown, and serves it on the page
	// until it is over. stdin stands in for the terminal.
	Invite func(ctx context.Context, stdin *os.File, server, fingerprint string, ready func()) error
	// Session runs the session of a request the contact accepted, on the
	// page, until it is over.
	Session func(ctx context.Context, c *messenger.Client, accepted messenger.Message, stdin *os.File) error
	// Idle answers a click that means nothing while nothing runs.
	Idle func(novicepage.Action)
	// DialTimeout bounds each connection to the messenger.
	DialTimeout time.Duration
}

// Run runs the app on cfg.Page until ctx ends: Get help and Ask for help,
// one at a time, and the contacts and their presence meanwhile. It
// returns once everything it started has stopped.
func Run(ctx context.Context, cfg Config) error {
	a := &app{cfg: cfg, page: cfg.Page, stdout: cfg.Stdout, answers: make(chan messenger.Message, 16)}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if dev := cfg.Device; dev != nil && dev.Config().Server != "" && dev.Config().User != "" {
		a.dev = dev
		a.state.Account, a.state.Server = dev.Config().User, dev.Config().Server
		wg.Go(func() { a.feed(ctx) })
	}
	a.publish()
	return a.loop(ctx)
}

// app is the state of one run of the app. Its loop goroutine runs the
// invitations and sessions; feed keeps the contacts up to date meanwhile.
type app struct {
	cfg     Config
	page    *novicepage.Server
	stdout  io.Writer
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
				a.cfg.Idle(act)
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
	server, fingerprint := a.cfg.Server, a.cfg.Fingerprint
	err := a.run(func(stdin *os.File) error {
		return a.cfg.Invite(ctx, stdin, server, fingerprint, func() { ready = true })
	})
	if err != nil && !ready && server != "" && ctx.Err() == nil {
		// The server cannot be reached: a direct invitation still
		// works on this network, or with the router's port forwarded.
		slog.Warn("no invitation through the server; making a direct one", "server", server, "err", err)
		note := "Could not reach " + server + ", so this invitation works without it: give the person who helps you the link or the file, and the password."
		a.update(func(s *novicepage.App) { s.Last = note })
		err = a.run(func(stdin *os.File) error {
			return a.cfg.Invite(ctx, stdin, "", "", func() {})
		})
	}
	last := "Your invitation is over. Click Get help when you need help again."
	if err != nil && ctx.Err() == nil {
		slog.Info("the invitation ended", "err", err)
		last = "Your invitation is over: " + Sentence(err.Error())
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

// Sentence makes an error message a sentence for the page: capitalised,
// with a full stop.
func Sentence(s string) string {
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
			act.Reply("Could not ask " + name + ": " + Sentence(err.Error()))
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
		a.update(func(s *novicepage.App) { s.Last = Sentence(err.Error()) })
		return
	}
	a.update(func(s *novicepage.App) { s.Busy = true })
	err = a.run(func(stdin *os.File) error {
		return a.cfg.Session(ctx, c, answer, stdin)
	})
	last = "The session with " + name + " is over. Click Get help or Ask for help when you need help again."
	if err != nil && ctx.Err() == nil {
		last = "The session with " + name + " ended: " + Sentence(err.Error())
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
		dctx, cancel := context.WithTimeout(ctx, a.cfg.DialTimeout)
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
