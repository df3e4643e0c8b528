package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/account"
	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/pairing"
)

// dialTimeout bounds connecting and logging in to the messenger.
const dialTimeout = 20 * time.Second

// pairWait bounds waiting for the other side of a pairing: a code is valid
// 10 minutes.
const pairWait = 10 * time.Minute

// connectAccount opens the config directory and connects with the saved
// server and pin (server, if set, overrides the URL).
func connectAccount(ctx context.Context, server string) (*account.Device, *messenger.Client, error) {
	dev, err := account.Open("")
	if err != nil {
		return nil, nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := dev.Connect(dctx, server)
	if err != nil {
		return nil, nil, err
	}
	return dev, c, nil
}

// reconnector connects dev again as connectAccount did, for connectAgain.
func reconnector(dev *account.Device, server string) func(context.Context) (*messenger.Client, error) {
	return func(ctx context.Context) (*messenger.Client, error) {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		return dev.Connect(dctx, server)
	}
}

// messengerServerFlag is the --server override of the commands after login.
func messengerServerFlag(fs *flag.FlagSet) *string {
	return fs.String("server", "", "use this server URL instead of the one saved by assist login (the saved certificate pin still applies)")
}

func runLogin(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("login", os.Stderr)
	user := fs.String("user", "", "account name to create (a-z, 0-9, '.', '_', '-'; up to 32), or to join with --code")
	display := fs.String("display-name", "", "your name as contacts see it (default: the account name)")
	fingerprint := fs.String("server-fingerprint", "", "pin this server certificate (sha256:HEX, as assist serve prints) instead of trusting the one shown on first use")
	code := fs.String("code", "", "device code from `assist devices add` on a device already signed in: adds this device to that account")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		fmt.Fprintln(os.Stderr, `usage: assist login https://SERVER[:PORT] [--user NAME] [--display-name "Full Name"] [--server-fingerprint sha256:HEX] [--code CODE]`)
		return errUsage
	}
	dev, err := account.Open("")
	if err != nil {
		return err
	}
	wait := dialTimeout
	if *code != "" {
		// A device link runs the pairing exchange with the old device.
		wait = pairWait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	w, err := dev.Login(ctx, account.LoginOptions{
		Server: positional[0], Fingerprint: *fingerprint, User: *user, Display: *display, Code: *code,
		FirstUse: func(fp string) {
			fmt.Fprintf(stdout, "server fingerprint: %s\n", fp)
			fmt.Fprintln(os.Stderr, "first connection to this server: its certificate is now pinned; compare the fingerprint above with the one `assist serve` printed")
		},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "logged in: %s on %s\n", w.User, dev.Config().Server)
	return nil
}

func runContacts(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("contacts", os.Stderr)
	watch := fs.Bool("watch", false, "keep running and print presence: NAME STATE as contacts' states change")
	server := messengerServerFlag(fs)
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	usage := func() error {
		fmt.Fprintln(os.Stderr, "usage: assist contacts [--watch] | invite | add CODE | remove NAME | block NAME | unblock NAME")
		return errUsage
	}
	sub := ""
	if len(positional) > 0 {
		sub = positional[0]
	}
	want := map[string]int{"": 0, "invite": 0, "add": 1, "remove": 1, "block": 1, "unblock": 1}
	n, ok := want[sub]
	valid := sub == "" && len(positional) == 0 || ok && sub != "" && len(positional) == n+1
	if !valid || *watch && sub != "" {
		return usage()
	}
	dev, c, err := connectAccount(ctx, *server)
	if err != nil {
		return err
	}
	defer c.Close()
	switch sub {
	case "":
		if *watch {
			return watchContacts(ctx, c, reconnector(dev, *server), stdout)
		}
		contacts, _, err := c.Contacts(ctx)
		if err != nil {
			return err
		}
		for _, ct := range sortContacts(contacts) {
			fmt.Fprintf(stdout, "%s %s\n", ct.User, ct.State)
		}
		return nil
	case "invite", "add":
		ctx, cancel := context.WithTimeout(ctx, pairWait)
		defer cancel()
		var peer pairing.Info
		if sub == "invite" {
			peer, err = dev.Invite(ctx, c, func(code string) {
				fmt.Fprintf(stdout, "contact code: %s\n", code)
				fmt.Fprintln(os.Stderr, "give this code to your contact; they run: assist contacts add CODE (valid 10 minutes)")
			})
		} else {
			peer, err = dev.AddContact(ctx, c, positional[1])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "contact added: %s (key %s)\n", peer.User, identity.Fingerprint(peer.Key))
		return nil
	case "remove", "block":
		name := positional[1]
		if sub == "remove" {
			err = c.Remove(ctx, name)
		} else {
			err = c.Block(ctx, name)
		}
		if err != nil {
			if messenger.IsCode(err, messenger.CodeNotFound) {
				// They may have removed us: their keys go all the same.
				return errors.Join(fmt.Errorf("%s is not one of your contacts (see assist contacts)", name), dev.Forget(name))
			}
			return err
		}
		if err := dev.Forget(name); err != nil {
			return err
		}
		done := map[string]string{"remove": "removed", "block": "blocked"}[sub]
		fmt.Fprintf(stdout, "%s: %s\n", done, name)
		return nil
	case "unblock":
		if err := c.Unblock(ctx, positional[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "unblocked: %s\n", positional[1])
		return nil
	}
	return usage()
}

// sortContacts orders contacts by name, for stable output.
func sortContacts(cs []messenger.Contact) []messenger.Contact {
	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b messenger.Contact) int { return strings.Compare(a.User, b.User) })
	return cs
}

// watchAgainMax caps the wait between tries to connect again after the
// server went away: a restart or an upgrade takes about that long.
const watchAgainMax = 30 * time.Second

// watchContacts prints every contact's state, then each change, until ctx
// ends (Ctrl-C). When the server goes away (WebSocket status 1001: it
// restarts, or it is one of several nodes and drains on SIGTERM) it
// connects again with connect, through a load balancer to another node,
// and prints every state again, since changes in between were missed.
// Any other end of the connection ends the watch with its error.
func watchContacts(ctx context.Context, c *messenger.Client, connect func(context.Context) (*messenger.Client, error), stdout io.Writer) error {
	for {
		err := watchConnection(ctx, c, stdout)
		c.Close()
		if c, err = connectAgain(ctx, err, connect); c == nil {
			return err
		}
	}
}

// connectAgain connects again with connect when a messenger connection
// ended because the server went away (WebSocket status 1001: a restart, or
// a node of several draining), trying until it works or ctx ends, and
// saying so on stderr. It returns a nil client with the error to end with
// otherwise (nil when ctx ended).
func connectAgain(ctx context.Context, ended error, connect func(context.Context) (*messenger.Client, error)) (*messenger.Client, error) {
	if ctx.Err() != nil {
		return nil, nil
	}
	if websocket.CloseStatus(ended) != websocket.StatusGoingAway {
		return nil, ended
	}
	slog.Info("messenger: the server went away; connecting again", "err", ended)
	fmt.Fprintln(os.Stderr, "the server went away (restarting or draining); connecting again")
	backoff := time.Second
	for {
		c, err := connect(ctx)
		if err == nil {
			fmt.Fprintln(os.Stderr, "connected again")
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		fmt.Fprintf(os.Stderr, "cannot connect yet (%v); trying again in %v\n", err, backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, nil
		}
		backoff = min(backoff*2, watchAgainMax)
	}
}

// watchConnection is watchContacts on one connection: it returns nil when
// ctx ends, else why the connection ended.
func watchConnection(ctx context.Context, c *messenger.Client, stdout io.Writer) error {
	contacts, _, err := c.Contacts(ctx)
	if err != nil {
		return err
	}
	for _, ct := range sortContacts(contacts) {
		fmt.Fprintf(stdout, "presence: %s %s\n", ct.User, ct.State)
	}
	for {
		select {
		case m, ok := <-c.Events():
			if !ok {
				return fmt.Errorf("the connection to the server ended: %w", c.Err())
			}
			switch m.Type {
			case messenger.TypePresence:
				fmt.Fprintf(stdout, "presence: %s %s\n", m.User, m.State)
			case messenger.TypeContactAdded:
				// A new contact (paired from another device or command):
				// its state is in the list, not in the push.
				contacts, _, err := c.Contacts(ctx)
				if err != nil && ctx.Err() == nil {
					return err
				}
				for _, ct := range contacts {
					if ct.User == m.User {
						fmt.Fprintf(stdout, "presence: %s %s\n", ct.User, ct.State)
					}
				}
			case messenger.TypeRemoved:
				fmt.Fprintf(stdout, "removed: %s\n", m.User)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func runDevices(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("devices", os.Stderr)
	server := messengerServerFlag(fs)
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	sub := ""
	if len(positional) > 0 {
		sub = positional[0]
	}
	if !(sub == "" && len(positional) == 0 || sub == "add" && len(positional) == 1 || sub == "remove" && len(positional) == 2) {
		fmt.Fprintln(os.Stderr, "usage: assist devices | add | remove ID")
		return errUsage
	}
	dev, c, err := connectAccount(ctx, *server)
	if err != nil {
		return err
	}
	defer c.Close()
	switch sub {
	case "":
		devices, err := c.Devices(ctx)
		if err != nil {
			return err
		}
		for _, d := range devices {
			state := "offline"
			if d.Online {
				state = "online"
			}
			self := ""
			if d.Self {
				self = " (this device)"
			}
			fmt.Fprintf(stdout, "%s %s %s%s\n", d.ID, state, d.Name, self)
		}
		return nil
	case "add":
		ctx, cancel := context.WithTimeout(ctx, pairWait)
		defer cancel()
		id, peer, err := dev.LinkDevice(ctx, c, func(code string) {
			fmt.Fprintf(stdout, "device code: %s\n", code)
			fmt.Fprintf(os.Stderr, "on the new device run: assist login %s --user %s --code CODE (valid 10 minutes)\n", dev.Config().Server, dev.Config().User)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "device added: %s (key %s)\n", id, identity.Fingerprint(peer.Key))
		return nil
	default:
		if err := c.RemoveDevice(ctx, positional[1]); err != nil {
			if messenger.IsCode(err, messenger.CodeNotFound) {
				return fmt.Errorf("no device %s in your account (see assist devices)", positional[1])
			}
			return err
		}
		fmt.Fprintf(stdout, "device removed: %s\n", positional[1])
		return nil
	}
}
