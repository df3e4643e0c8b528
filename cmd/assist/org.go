package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/assist-project/assist/internal/sqldb"
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
	retention := fs.String("retention", "", "policy: how long the server keeps the organisation's audit trail, in days (90d) or forever; applied hourly")
	timeout := fs.Duration("timeout", 0, "policy: how long users have to answer an offer (and each consent question) before it counts as no; 5s to 10m")
	issuer := fs.String("issuer", "", "oidc: the organisation's OpenID Connect issuer URL (https://login.example.com/realm)")
	clientID := fs.String("client-id", "", "oidc: this server's client id at the provider")
	secretFile := fs.String("client-secret-file", "", "oidc: the file holding the client secret (read at each sign-in; keep it 0600)")
	claim := fs.String("claim", "email", "oidc: the ID token's claim that names the person in messages (never who is who: the subject decides)")
	subject := fs.String("subject", "", "link, unlink: the provider's subject (sub) of the person's company account")
	storeURL := fs.String("store", "", "assist serve's --store: a postgres:// URL when the servers keep their state in PostgreSQL (then --data is not read)")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	usage := func() error {
		fmt.Fprintln(os.Stderr, "usage: assist org create ORG | add ORG USER [--role ROLE] | remove ORG USER | token ORG | policy ORG [--rights LIST] [--record yes|no] [--audit-key age1...|none] [--timeout D] [--retention Nd|forever] | machines ORG | oidc ORG --issuer URL --client-id ID --client-secret-file F [--claim C] | link ORG USER --subject SUB | unlink ORG --subject SUB   [--data DIR | --store postgres://...]")
		return errUsage
	}
	if len(positional) < 2 {
		return usage()
	}
	verb, org := positional[0], positional[1]
	if !messenger.ValidUser(org) {
		return fmt.Errorf("organisation id %q: use 1 to 32 of a-z 0-9 . _ -, starting with a letter or digit", org)
	}
	want := map[string]int{"create": 2, "add": 3, "remove": 3, "token": 2, "policy": 2, "machines": 2, "oidc": 2, "link": 3, "unlink": 2}
	if n, ok := want[verb]; !ok || len(positional) != n {
		return usage()
	}
	if verb == "token" && *remote {
		return remoteToken(ctx, org, *uses, stdout)
	}
	if err := checkStore(*storeURL); err != nil {
		return err
	}
	if !sqldb.IsPostgres(*storeURL) {
		if _, err := os.Stat(filepath.Join(*dataDir, "messenger.sqlite")); err != nil {
			return fmt.Errorf("no messenger database in %s: give assist serve's --data directory, or its --store (%w)", *dataDir, err)
		}
	}
	st, err := openHubStore(ctx, *storeURL, *dataDir)
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
		if *retention != "" {
			keep, err := parseRetention(*retention)
			if err != nil {
				return err
			}
			if err := st.SetRetention(ctx, org, keep); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "retention: %s %s\n", org, retentionWords(keep))
		}
	case "oidc":
		return setOIDC(ctx, st, org, hub.OIDC{Issuer: *issuer, ClientID: *clientID, SecretFile: *secretFile, Claim: *claim}, stdout)
	case "link", "unlink":
		return linkOIDC(ctx, st, org, positional[2:], *subject, stdout)
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

// parseRetention reads --retention: a number of days ("90d") or
// "forever" (0).
func parseRetention(s string) (time.Duration, error) {
	if s == "forever" {
		return 0, nil
	}
	days, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
	if err != nil || !strings.HasSuffix(s, "d") || days < 1 || days > 36500 {
		return 0, fmt.Errorf("--retention %q: a number of days such as 90d, or forever", s)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

func retentionWords(d time.Duration) string {
	if d == 0 {
		return "forever"
	}
	return fmt.Sprintf("%dd", d/(24*time.Hour))
}

// setOIDC sets org's OpenID Connect provider. Only the secret file's path
// is stored: the secret stays in a file only the server's user reads.
func setOIDC(ctx context.Context, st *hub.SQLiteStore, org string, o hub.OIDC, stdout io.Writer) error {
	u, err := url.Parse(o.Issuer)
	if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) || u.Host == "" {
		return fmt.Errorf("--issuer %q: the provider's https URL, as its discovery document names it", o.Issuer)
	}
	if o.ClientID == "" || o.SecretFile == "" {
		return errors.New("--client-id and --client-secret-file are required (register https://SERVER/v1/oidc/callback as the redirect URI at the provider)")
	}
	abs, err := filepath.Abs(o.SecretFile)
	if err != nil {
		return fmt.Errorf("--client-secret-file: %w", err)
	}
	o.SecretFile = abs
	if _, err := os.ReadFile(abs); err != nil {
		return fmt.Errorf("--client-secret-file: %w (the server reads it at each sign-in)", err)
	}
	if err := st.SetOIDC(ctx, org, o); errors.Is(err, hub.ErrNotFound) {
		return fmt.Errorf("no organisation %s: create it with assist org create %s", org, org)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "oidc: %s issuer=%s client-id=%s\n", org, o.Issuer, o.ClientID)
	fmt.Fprintf(os.Stderr, "link each helper's company account: assist org link %s USER --subject SUB (the refusal page names SUB)\n", org)
	return nil
}

// linkOIDC links (or unlinks) a subject of org's provider to an account.
func linkOIDC(ctx context.Context, st *hub.SQLiteStore, org string, user []string, subject string, stdout io.Writer) error {
	if subject == "" {
		return errors.New("--subject: the provider's subject (sub) of the company account")
	}
	o, err := st.OIDC(ctx, org)
	if errors.Is(err, hub.ErrNotFound) {
		return fmt.Errorf("%s has no OpenID provider: set one with assist org oidc %s --issuer URL --client-id ID --client-secret-file F", org, org)
	} else if err != nil {
		return err
	}
	name := ""
	if len(user) == 1 {
		name = user[0]
		if !messenger.ValidUser(name) {
			return fmt.Errorf("user %q: not an account name", name)
		}
	}
	if err := st.LinkOIDC(ctx, org, o.Issuer, subject, name); errors.Is(err, hub.ErrNotFound) {
		return fmt.Errorf("%s: no link for subject %s", org, subject)
	} else if err != nil {
		return err
	}
	if name == "" {
		fmt.Fprintf(stdout, "%s: subject %s unlinked\n", org, subject)
		return nil
	}
	fmt.Fprintf(stdout, "%s: subject %s is %s\n", org, subject, name)
	roles, err := st.Roles(ctx, name)
	if err != nil {
		return err
	}
	if r := roles[org]; r != messenger.OrgAdmin && r != messenger.OrgHelper {
		fmt.Fprintf(os.Stderr, "%s is not a helper or admin of %s yet, so signing in is refused: assist org add %s %s --role helper\n", name, org, org, name)
	}
	return nil
}

// isLoopbackHost reports whether host is a loopback address or localhost
// (a provider on the same machine, e.g. in tests, may use http).
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
