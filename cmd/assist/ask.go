package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/assist-project/assist/account"
	"github.com/assist-project/assist/messenger"
)

func runAsk(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("ask", os.Stderr)
	so := sessionOptions{novice: addNoviceFlags(fs)}
	return askOrOffer(ctx, fs, so, messenger.KindHelp, args, stdout)
}

func runOffer(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("offer", os.Stderr)
	so := sessionOptions{expert: addExpertFlags(fs)}
	fs.Bool("list", false, "list the machines of the organisations you help, with their presence (lines: MACHINE ORG STATE \"NAME\" \"USER\")")
	if slices.Contains(args, "--list") || slices.Contains(args, "-list") {
		lfs := newFlagSet("offer", os.Stderr)
		lfs.Bool("list", true, "list the machines")
		server := messengerServerFlag(lfs)
		if err := parseFlags(lfs, args); err != nil {
			return err
		}
		return listMachines(ctx, *server, stdout)
	}
	return askOrOffer(ctx, fs, so, messenger.KindOffer, args, stdout)
}

// listMachines prints the machines of the organisations this account
// helps. Their names and users are what agents reported: quoted, so that
// nothing in them passes for another field or line.
func listMachines(ctx context.Context, server string, stdout io.Writer) error {
	_, c, err := connectAccount(ctx, server)
	if err != nil {
		return err
	}
	defer c.Close()
	ms, err := c.Machines(ctx)
	if messenger.IsCode(err, messenger.CodeUnauthorized) {
		return errors.New("you help no organisation on this server: ask its admin to add you as a helper (assist org add ORG USER --role helper)")
	}
	if err != nil {
		return err
	}
	for _, m := range ms {
		fmt.Fprintf(stdout, "%s %s %s %q %q\n", m.User, m.Org, m.State, m.Name, m.Display)
	}
	return nil
}

// findMachine returns the machine to among those of the organisations this
// account helps (nil if it is none, or the account helps none).
func findMachine(ctx context.Context, c *messenger.Client, to string) (*messenger.Machine, error) {
	ms, err := c.Machines(ctx)
	if messenger.IsCode(err, messenger.CodeUnauthorized) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.User == to {
			return &m, nil
		}
	}
	return nil, nil
}

// askOrOffer sends a request to a contact and waits for the answer; on
// accept it starts the session (this side is the novice for "ask", the
// expert for "offer"). Ctrl-C before the answer cancels the request.
func askOrOffer(ctx context.Context, fs *flag.FlagSet, so sessionOptions, kind string, args []string, stdout io.Writer) error {
	server := messengerServerFlag(fs)
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s NAME [flags]\n", fs.Name())
		return errUsage
	}
	to := positional[0]
	dev, c, err := connectAccount(ctx, *server)
	if err != nil {
		return err
	}
	// c changes when the server goes away and it connects again.
	defer func() { c.Close() }()
	// Machines and people share the server's one name space of accounts,
	// so a name is a machine of an organisation this account helps, or a
	// contact, never both.
	var machine *messenger.Machine
	if kind == messenger.KindOffer {
		if machine, err = findMachine(ctx, c, to); err != nil {
			return err
		}
	}
	if machine != nil {
		return offerMachine(ctx, dev, c, *machine, *server, so, stdout)
	}
	asked, err := c.Ask(ctx, to, kind)
	if err != nil {
		if messenger.IsCode(err, messenger.CodeUnauthorized) || messenger.IsCode(err, messenger.CodeNotFound) {
			return fmt.Errorf("%s is not one of your contacts (or one of you blocked the other): add them first with assist contacts invite / add", to)
		}
		return err
	}
	fmt.Fprintf(stdout, "asked: %s\n", to)
	answer, err := account.WaitAnswer(ctx, c, asked.Request, nil)
	for err != nil && ctx.Err() == nil {
		// A restart, or a draining node of several: the server withdrew
		// the request with the connection, so connect again and ask again.
		c.Close()
		again, aerr := connectAgain(ctx, err, reconnector(dev, *server))
		if again == nil {
			if aerr == nil { // Ctrl-C while connecting again
				return errors.New("interrupted")
			}
			return aerr
		}
		c = again
		if asked, err = c.Ask(ctx, to, kind); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "asked %s again\n", to)
		answer, err = account.WaitAnswer(ctx, c, asked.Request, nil)
	}
	if err != nil {
		if ctx.Err() != nil {
			// Ctrl-C: withdraw the request, with a little time of its own.
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if cerr := c.Cancel(cctx, asked.Request); cerr != nil {
				return fmt.Errorf("interrupted, and the request could not be cancelled: %w", cerr)
			}
			fmt.Fprintln(stdout, "cancelled")
			return errors.New("interrupted: request cancelled")
		}
		return err
	}
	switch answer.Type {
	case messenger.TypeDeclined:
		fmt.Fprintf(stdout, "declined by %s\n", answer.By)
		return nil
	case messenger.TypeRequestClosed:
		switch answer.Reason {
		case messenger.ReasonExpired:
			fmt.Fprintf(stdout, "expired: %s did not answer within 5 minutes\n", to)
			return errors.New("no answer")
		case messenger.ReasonDeclined:
			fmt.Fprintf(stdout, "declined by %s\n", to)
			return nil
		}
		fmt.Fprintf(stdout, "closed: %s\n", answer.Reason)
		return fmt.Errorf("the request was closed (%s)", answer.Reason)
	}
	fmt.Fprintf(stdout, "accepted by %s\n", answer.By)
	if err := account.CheckRole(answer, kind, true); err != nil {
		return err
	}
	return runAccepted(ctx, dev, c, answer, *server, so, os.Stdin, stdout)
}

// offerMachine offers help to an organisation's machine and, once its
// user accepts, joins it as assist join does.
func offerMachine(ctx context.Context, dev *account.Device, c *messenger.Client, m messenger.Machine, server string, so sessionOptions, stdout io.Writer) error {
	asked, err := c.Ask(ctx, m.User, messenger.KindOffer)
	if messenger.IsCode(err, messenger.CodeNotFound) {
		return fmt.Errorf("%s is offline: its agent is not running (the machine is off, or nobody is logged in); try again later", m.User)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "offered: %s\n", m.User)
	answer, err := account.WaitAnswer(ctx, c, asked.Request, nil)
	if err != nil {
		if ctx.Err() != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if cerr := c.Cancel(cctx, asked.Request); cerr != nil {
				return fmt.Errorf("interrupted, and the offer could not be withdrawn: %w", cerr)
			}
			fmt.Fprintln(stdout, "cancelled")
			return errors.New("interrupted: offer withdrawn")
		}
		return err
	}
	// The user as the agent reported them, quoted when odd.
	user := plainText(m.Display)
	switch {
	case answer.Type == messenger.TypeDeclined || answer.Type == messenger.TypeRequestClosed && answer.Reason == messenger.ReasonDeclined:
		fmt.Fprintf(stdout, "declined by %s\n", user)
		return nil
	case answer.Type == messenger.TypeRequestClosed:
		fmt.Fprintf(stdout, "closed: %s\n", answer.Reason)
		return fmt.Errorf("the offer was closed (%s)", answer.Reason)
	}
	fmt.Fprintf(stdout, "accepted by %s\n", user)
	if err := account.CheckRole(answer, messenger.KindOffer, true); err != nil {
		return err
	}
	// This side asked a machine its organisation listed; the answer must
	// come from that very machine, under an organisation.
	if answer.Peer == nil || answer.Peer.User != m.User || answer.Org == nil || answer.Org.Name != m.Org {
		return fmt.Errorf("the server's acceptance does not come from %s of %s: refusing the session", m.User, m.Org)
	}
	so.org = true
	return runAccepted(ctx, dev, c, answer, server, so, os.Stdin, stdout)
}

func runRequests(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("requests", os.Stderr)
	server := messengerServerFlag(fs)
	so := addBothSessionFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	so.syncName()
	dev, c, err := connectAccount(ctx, *server)
	if err != nil {
		return err
	}
	// c changes when the server goes away and it connects again.
	defer func() { c.Close() }()
	interactive := term.IsTerminal(int(os.Stdin.Fd()))
	if !interactive {
		fmt.Fprintln(os.Stderr, "waiting for requests; answer with lines: accept ID | decline ID")
	}
	// On a terminal a line is read only while a question is asked, so the
	// novice's session can take the terminal over after the answer; from
	// a script lines are read as they come.
	input := newLineReader(os.Stdin)
	defer input.close()
	open := map[string]messenger.Message{} // requests not yet answered, by id
	var queue []string                     // interactive: requests not asked yet
	prompting := ""                        // interactive: the request being asked about
	prompt := func() {
		for prompting == "" && len(queue) > 0 {
			id := queue[0]
			queue = queue[1:]
			r, ok := open[id]
			if !ok {
				continue
			}
			prompting = id
			if r.Kind == messenger.KindOffer {
				fmt.Fprintf(os.Stderr, "%s offers to help you. Accept? [y/N] ", r.Display)
			} else {
				fmt.Fprintf(os.Stderr, "%s asks for your help. Accept? [y/N] ", r.Display)
			}
		}
	}
	for {
		var lines <-chan string
		// A read still out after its question closed is taken too, and
		// its answer dropped: it must not answer the next question.
		if !interactive || prompting != "" || input.pending {
			lines = input.ask()
		}
		select {
		case m, ok := <-c.Events():
			if !ok {
				// A restart, or a draining node of several: connect
				// again; the server sends the open requests again.
				ended := fmt.Errorf("the connection to the server ended: %w", c.Err())
				c.Close()
				again, err := connectAgain(ctx, ended, reconnector(dev, *server))
				if again == nil {
					return err
				}
				c = again
				continue
			}
			switch m.Type {
			case messenger.TypeRequest:
				if _, seen := open[m.Request]; seen {
					break // sent again after connecting again
				}
				open[m.Request] = m
				fmt.Fprintf(stdout, "request: %s from %s\n", m.Request, m.From)
				if m.Kind == messenger.KindOffer && !interactive {
					fmt.Fprintf(os.Stderr, "%s offers to help you\n", m.Display)
				}
				queue = append(queue, m.Request)
			case messenger.TypeRequestClosed:
				if _, ok := open[m.Request]; ok {
					delete(open, m.Request)
					fmt.Fprintf(stdout, "closed: %s %s\n", m.Request, m.Reason)
					if prompting == m.Request {
						prompting = ""
						fmt.Fprintln(os.Stderr)
					}
				}
			}
		case l, ok := <-lines:
			input.got(ok)
			if !ok {
				continue // end of input: keep listening until Ctrl-C
			}
			l = strings.TrimSpace(l)
			if interactive && prompting == "" && !strings.Contains(l, " ") {
				fmt.Fprintln(os.Stderr, "no request is waiting for an answer")
				continue
			}
			id, accept, ok := parseAnswer(l, prompting, interactive)
			if !ok {
				fmt.Fprintln(os.Stderr, "answer with: accept ID | decline ID")
				continue
			}
			prompting = ""
			r, found := open[id]
			if !found {
				fmt.Fprintf(os.Stderr, "no open request %s\n", id)
				break
			}
			delete(open, id)
			reply, err := c.Answer(ctx, id, accept)
			switch {
			case messenger.IsCode(err, messenger.CodeNotFound):
				fmt.Fprintf(stdout, "closed: %s answered\n", id) // another device was first
			case err != nil:
				return err
			case !accept:
				fmt.Fprintf(stdout, "declined: %s\n", id)
			default:
				fmt.Fprintf(stdout, "accepted: %s from %s\n", id, r.From)
				if err := account.CheckRole(reply, r.Kind, false); err != nil {
					return err
				}
				stdin := os.Stdin
				if !interactive && reply.Role == messenger.RoleNovice {
					// The script's next lines answer the novice's
					// consent questions.
					if stdin, err = input.pipe(); err != nil {
						return err
					}
					defer stdin.Close()
				}
				return runAccepted(ctx, dev, c, reply, *server, so, stdin, stdout)
			}
		case <-ctx.Done():
			return nil
		}
		if interactive {
			prompt()
		}
	}
}

// parseAnswer reads "accept ID" / "decline ID", or on a terminal "y" / "n"
// (empty: no) for the request being asked about.
func parseAnswer(l, prompting string, interactive bool) (id string, accept, ok bool) {
	if interactive && prompting != "" {
		switch strings.ToLower(l) {
		case "y", "yes":
			return prompting, true, true
		case "", "n", "no":
			return prompting, false, true
		}
	}
	f := strings.Fields(l)
	if len(f) != 2 || (f[0] != "accept" && f[0] != "decline") {
		return "", false, false
	}
	return f[1], f[0] == "accept", true
}
