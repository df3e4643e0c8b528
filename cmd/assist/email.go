package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/mailer"
	"github.com/assist-project/assist/mailer/relay"
)

// envSMTPPassword holds the SMTP password when no file is given: a flag's
// value would show in the process list and in shell history.
const envSMTPPassword = "ASSIST_SMTP_PASSWORD"

// emailTimeout bounds sending one invitation.
const emailTimeout = 90 * time.Second

// smtpFlags are the flags of a mail account, shared by assist invite (the
// novice's own account) and assist serve (the server's relay).
type smtpFlags struct {
	host, security, user, from, passwordFile *string
	port                                     *int
}

func addSMTPFlags(fs *flag.FlagSet, whose string) *smtpFlags {
	return &smtpFlags{
		host:         fs.String("smtp-host", "", whose+" SMTP server, such as smtp.example.com (default: host in "+mailer.SettingsFile+" of the Assist config folder)"),
		port:         fs.Int("smtp-port", 0, "the SMTP server's port (default 587 for starttls, 465 for tls)"),
		security:     fs.String("smtp-security", "", "starttls (default), tls (implicit, usually port 465) or none (only for a mail server on this computer)"),
		user:         fs.String("smtp-user", "", "user name on the SMTP server (often the e-mail address)"),
		from:         fs.String("smtp-from", "", "the sender's e-mail address (default: --smtp-user)"),
		passwordFile: fs.String("smtp-password-file", "", "read the SMTP password from this file's first line (or set $"+envSMTPPassword+"; never on the command line)"),
	}
}

// set reports whether any of the flags was given.
func (f *smtpFlags) set() bool {
	return *f.host != "" || *f.port != 0 || *f.security != "" || *f.user != "" || *f.from != "" || *f.passwordFile != ""
}

// account lays the flags over settings (from mail.json, or empty),
// field by field, reads the password and checks the result.
func (f *smtpFlags) account(settings *mailer.Settings) (*mailer.SMTP, error) {
	if *f.host != "" {
		settings.Host = *f.host
	}
	if *f.port != 0 {
		settings.Port = *f.port
	}
	if *f.security != "" {
		settings.Security = *f.security
	}
	if *f.user != "" {
		settings.User = *f.user
	}
	if *f.from != "" {
		settings.From = *f.from
	}
	if *f.passwordFile != "" {
		settings.PasswordFile, settings.Password = *f.passwordFile, ""
	} else if pw := os.Getenv(envSMTPPassword); pw != "" {
		settings.PasswordFile, settings.Password = "", pw
	}
	a, err := settings.SMTP()
	if err != nil {
		return nil, err
	}
	if a.Username != "" && a.Password == "" {
		return nil, fmt.Errorf("no password for the SMTP user %s: give --smtp-password-file FILE or set $%s", a.Username, envSMTPPassword)
	}
	if err := a.Check(); err != nil {
		return nil, err
	}
	return a, nil
}

// emailOptions are assist invite's flags for sending the invitation by
// e-mail.
type emailOptions struct {
	to, via, note *string
	smtp          *smtpFlags
}

func addEmailFlags(fs *flag.FlagSet) *emailOptions {
	return &emailOptions{
		to:   fs.String("email", "", "send the invitation to this e-mail address (the file attached, the link in the text; never the password or code)"),
		via:  fs.String("email-via", "auto", "how to send it: smtp (your mail server: --smtp-host or "+mailer.SettingsFile+"), program (your own mail program, to check and send), server (the --server's mail relay; needs assist login), or auto (smtp if a mail server is set, else program)"),
		note: fs.String("email-note", "", "a line of your own at the top of the e-mail (not with --email-via server)"),
		smtp: addSMTPFlags(fs, "your mail provider's"),
	}
}

// emailPlan is a checked way of sending the invitation, made before the
// invitation exists so that a mistake is reported at once.
type emailPlan struct {
	to      string
	program bool         // the user's mail program
	server  bool         // the rendezvous server's relay
	smtp    *mailer.SMTP // else this account
	note    string
}

// plan checks the e-mail flags: nil when no e-mail was asked for.
func (o *emailOptions) plan() (*emailPlan, error) {
	setSMTP := o.smtp.set()
	if *o.to == "" && *o.via != "program" {
		if setSMTP || *o.note != "" || (*o.via != "auto" && *o.via != "") {
			return nil, errors.New("--smtp-…, --email-via and --email-note need --email ADDRESS (or --email-via program, to address it in your mail program)")
		}
		return nil, nil
	}
	p := &emailPlan{note: *o.note}
	if *o.to != "" {
		to, err := mailer.ParseAddress(*o.to)
		if err != nil {
			return nil, fmt.Errorf("--email: %w", err)
		}
		p.to = to
	}
	switch *o.via {
	case "program", "server":
		if setSMTP {
			return nil, fmt.Errorf("--email-via %s does not use your mail server: leave out the --smtp-… flags", *o.via)
		}
		p.program, p.server = *o.via == "program", *o.via == "server"
		if p.server && p.note != "" {
			return nil, errors.New("--email-note does not go with --email-via server: the server sends its own words only")
		}
		return p, nil
	case "smtp", "auto", "":
	default:
		return nil, fmt.Errorf("--email-via %q: use smtp, program, server or auto", *o.via)
	}
	settings, err := loadMailSettings()
	if err != nil {
		return nil, err
	}
	if *o.via != "smtp" && *o.smtp.host == "" && settings.Host == "" {
		p.program = true
		return p, nil
	}
	if p.smtp, err = o.smtp.account(settings); err != nil {
		return nil, err
	}
	return p, nil
}

// loadMailSettings reads mail.json from the user's Assist config folder.
func loadMailSettings() (*mailer.Settings, error) {
	dir, err := identity.DefaultDir()
	if err != nil {
		return &mailer.Settings{}, nil // no config folder: flags only
	}
	return mailer.LoadSettings(filepath.Join(dir, mailer.SettingsFile))
}

// send sends inv as planned and says how it went on stdout; file is the
// invitation's file if the novice saved one. A failure is reported and not
// fatal: the invitation stands, and its code can still be read out.
func (p *emailPlan) send(ctx context.Context, stdout io.Writer, inv *invitation.Invitation, file string) {
	if err := p.deliver(ctx, stdout, inv, file); err != nil {
		fmt.Fprintf(stdout, "email: not sent: %v\n", err)
	}
}

func (p *emailPlan) deliver(ctx context.Context, stdout io.Writer, inv *invitation.Invitation, file string) error {
	l, err := mailer.Compose(inv, mailer.Options{Note: p.note})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, emailTimeout)
	defer cancel()
	if p.program {
		path := file
		if path == "" {
			if path, err = mailer.SaveAttachment("", l); err != nil {
				return err
			}
		}
		if err := mailer.MailProgram(ctx, p.to, l, path); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "email: written in your mail program, with the invitation attached: check it and press Send")
		return nil
	}
	if p.server {
		return p.viaServer(ctx, stdout, inv, l)
	}
	if err := p.smtp.Send(ctx, p.to, l); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "email: sent to %s\n", p.to)
	return nil
}

// viaServer asks the invitation's rendezvous server to send it, signed
// with this device's messenger key (assist login).
func (p *emailPlan) viaServer(ctx context.Context, stdout io.Writer, inv *invitation.Invitation, l *mailer.Letter) error {
	if inv.Server == "" {
		return errors.New("--email-via server needs an invitation through a server: add --server URL")
	}
	dir, err := identity.DefaultDir()
	if err != nil {
		return err
	}
	d, err := identity.Open(dir)
	if err != nil {
		return err
	}
	cfg, err := d.LoadConfig()
	if err != nil {
		return err
	}
	if cfg.Server == "" || strings.TrimRight(cfg.Server, "/") != strings.TrimRight(inv.Server, "/") {
		return fmt.Errorf("this device is not logged in to %s: run assist login %s first", inv.Server, inv.Server)
	}
	key, err := d.DeviceKey()
	if err != nil {
		return err
	}
	if err := relay.Send(ctx, inv.Server, cfg.Fingerprint, key, p.to, l.File); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "email: sent to %s by the server\n", p.to)
	return nil
}
