package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/recording"
)

// runOrg is the operator's administration of organisations: it works on
// the server's own database (--data of assist serve), so it runs on the
// server's host, as the user assist serve runs as. SQLite lets it run
// while the server does.
func runOrg(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("org", os.Stderr)
	dataDir := fs.String("data", defaultStateDir(), "assist serve's --data directory (the messenger's database is there)")
	display := fs.String("display-name", "", "create: the organisation's name as users read it (\"ACME IT\"); default the id")
	role := fs.String("role", messenger.OrgHelper, "add: admin, helper or member")
	uses := fs.Int("uses", 1, "token: how many machines the token may enrol")
	expires := fs.Duration("expires", 24*time.Hour, "token: how long the token stays valid")
	rights := fs.String("rights", "", "policy: the rights helpers may ask for, comma-separated from view, control, clipboard, files (view is required)")
	record := fs.String("record", "", "policy: yes or no: whether sessions are recorded (users are told before they accept)")
	auditKey := fs.String("audit-key", "", "policy: the organisation's audit key (age1..., from assist audit keygen) that recordings are encrypted to on the machines; \"none\" removes it")
	remote := fs.Bool("remote", false, "token: make the token as an admin of the organisation, with the account this device logged in to (assist login), from any machine; valid 24 h")
	timeout := fs.Duration("timeout", 0, "policy: how long users have to answer an offer (and each consent question) before it counts as no; 5s to 10m")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	usage := func() error {
		fmt.Fprintln(os.Stderr, "usage: assist org create ORG | add ORG USER [--role ROLE] | remove ORG USER | token ORG | policy ORG [--rights LIST] [--record yes|no] [--audit-key age1...|none] [--timeout D] | machines ORG   [--data DIR]")
		return errUsage
	}
	if len(positional) < 2 {
		return usage()
	}
	verb, org := positional[0], positional[1]
	if !messenger.ValidUser(org) {
		return fmt.Errorf("organisation id %q: use 1 to 32 of a-z 0-9 . _ -, starting with a letter or digit", org)
	}
	want := map[string]int{"create": 2, "add": 3, "remove": 3, "token": 2, "policy": 2, "machines": 2}
	if n, ok := want[verb]; !ok || len(positional) != n {
		return usage()
	}
	if verb == "token" && *remote {
		return remoteToken(ctx, org, *uses, stdout)
	}
	path := filepath.Join(*dataDir, "messenger.sqlite")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no messenger database in %s: give assist serve's --data directory (%w)", *dataDir, err)
	}
	st, err := hub.OpenSQLite(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	switch verb {
	case "create":
		d := *display
		if d == "" {
			d = org
		}
		if !messenger.ValidText(d, 64) {
			return errors.New("--display-name: 1 to 64 printable characters")
		}
		if err := st.CreateOrg(ctx, hub.Org{Name: org, Display: d, Policy: hub.DefaultPolicy(), Created: time.Now()}); errors.Is(err, hub.ErrTaken) {
			return fmt.Errorf("organisation %s exists already", org)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created: %s\n", org)
	case "add", "remove":
		user := positional[2]
		if !messenger.ValidUser(user) {
			return fmt.Errorf("user %q: not an account name", user)
		}
		r := *role
		if verb == "remove" {
			r = ""
		} else if !hub.ValidRole(r) {
			return fmt.Errorf("--role %q: want admin, helper or member", r)
		}
		if err := st.SetRole(ctx, org, user, r); errors.Is(err, hub.ErrNotFound) {
			return fmt.Errorf("no organisation %s (or %s is not in it): create it with assist org create %s", org, user, org)
		} else if err != nil {
			return err
		}
		if verb == "add" {
			fmt.Fprintf(stdout, "%s: %s %s\n", org, user, r)
		} else {
			fmt.Fprintf(stdout, "%s: %s removed\n", org, user)
		}
	case "token":
		if *uses < 1 || *expires <= 0 {
			return errors.New("--uses must be at least 1 and --expires positive")
		}
		tok := hub.NewToken()
		now := time.Now()
		if err := st.AddToken(ctx, org, hub.TokenHash(tok), *uses, now.Add(*expires), now); errors.Is(err, hub.ErrNotFound) {
			return fmt.Errorf("no organisation %s: create it with assist org create %s", org, org)
		} else if err != nil {
			return err
		}
		// The token is a secret: it goes to stdout for the admin, never to
		// the log.
		fmt.Fprintf(stdout, "token: %s\n", tok)
		fmt.Fprintf(os.Stderr, "on each machine, as the user who sits at it: assist agent enroll https://SERVER %s\n", tok)
	case "policy":
		o, err := st.Org(ctx, org)
		if errors.Is(err, hub.ErrNotFound) {
			return fmt.Errorf("no organisation %s: create it with assist org create %s", org, org)
		} else if err != nil {
			return err
		}
		p := o.Policy
		changed := false
		if *rights != "" {
			p.Rights = strings.Split(*rights, ",")
			changed = true
		}
		switch *record {
		case "":
		case "yes":
			p.Record, changed = true, true
		case "no":
			p.Record, changed = false, true
		default:
			return errors.New("--record: yes or no")
		}
		switch *auditKey {
		case "":
		case "none":
			p.AuditKey, changed = "", true
		default:
			if _, err := recording.ParseRecipient(*auditKey); err != nil {
				return fmt.Errorf("--audit-key: %w; make one with assist audit keygen", err)
			}
			p.AuditKey, changed = *auditKey, true
		}
		if p.Record && p.AuditKey == "" && changed {
			fmt.Fprintln(os.Stderr, "note: sessions are recorded only once the organisation has an audit key: assist org policy "+org+" --audit-key age1... (from assist audit keygen)")
		}
		if *timeout != 0 {
			p.Timeout = int(timeout.Round(time.Second) / time.Second)
			changed = true
		}
		if changed {
			if err := st.SetPolicy(ctx, org, p); err != nil {
				return err
			}
		}
		key := ""
		if p.AuditKey != "" {
			key = " audit-key=" + p.AuditKey
		}
		fmt.Fprintf(stdout, "policy: %s rights=%s record=%t timeout=%ds%s\n", org, strings.Join(p.Rights, ","), p.Record, p.Timeout, key)
	case "machines":
		ms, err := st.Machines(ctx, org)
		if err != nil {
			return err
		}
		for _, m := range ms {
			fmt.Fprintf(stdout, "%s %q %q\n", m.User, m.Name, m.Display)
		}
	}
	return nil
}

// remoteToken asks the server, as an admin of org, for an enrolment token.
func remoteToken(ctx context.Context, org string, uses int, stdout io.Writer) error {
	_, c, err := connectAccount(ctx, "")
	if err != nil {
		return err
	}
	defer c.Close()
	tok, expires, err := c.EnrolToken(ctx, org, uses)
	if messenger.IsCode(err, messenger.CodeUnauthorized) {
		return fmt.Errorf("you are not an admin of %s: ask the server's operator (assist org add %s YOU --role admin)", org, org)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "token: %s\n", tok)
	fmt.Fprintf(os.Stderr, "valid until %s; on each machine: assist agent enroll https://SERVER %s\n", expires.Local().Format(time.RFC1123), tok)
	return nil
}
