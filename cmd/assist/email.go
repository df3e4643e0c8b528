package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/mailer"
)

// envSMTPPassword holds the SMTP password when no file is given: a flag's
// value would show in the process list and in shell history.
const envSMTPPassword = "ASSIST_SMTP_PASSWORD"

// emailTimeout bounds sending one invitation.
const emailTimeout = 90 * time.Second

// emailOptions are assist invite's flags for sending the invitation by
// e-mail.
type emailOptions struct {
	to, via, note                            *string
	host, security, user, from, passwordFile *string
	port                                     *int
}

func addEmailFlags(fs *flag.FlagSet) *emailOptions {
	return &emailOptions{
		to:           fs.String("email", "", "send the invitation to this e-mail address (the file attached, the link in the text; never the password or code)"),
		via:          fs.String("email-via", "auto", "how to send it: smtp (the mail server in --smtp-host or "+mailer.SettingsFile+"), program (your own mail program, to check and send), or auto (smtp if a mail server is set, else program)"),
		note:         fs.String("email-note", "", "a line of your own at the top of the e-mail"),
		host:         fs.String("smtp-host", "", "your mail provider's SMTP server (default: host in "+mailer.SettingsFile+" of your Assist config folder)"),
		port:         fs.Int("smtp-port", 0, "the SMTP server's port (default 587 for starttls, 465 for tls)"),
		security:     fs.String("smtp-security", "", "starttls (default), tls (implicit, usually port 465) or none (only for a mail server on this computer)"),
		user:         fs.String("smtp-user", "", "user name on the SMTP server (often your e-mail address)"),
		from:         fs.String("smtp-from", "", "your e-mail address, the sender (default: --smtp-user)"),
		passwordFile: fs.String("smtp-password-file", "", "read the SMTP password from this file's first line (or set $"+envSMTPPassword+")"),
	}
}

// emailPlan is a checked way of sending the invitation, made before the
// invitation exists so that a mistake is reported at once.
type emailPlan struct {
	to      string
	program bool         // the user's mail program, else smtp
	smtp    *mailer.SMTP // for smtp
	note    string
}

// plan checks the e-mail flags: nil when no e-mail was asked for.
func (o *emailOptions) plan() (*emailPlan, error) {
	setSMTP := *o.host != "" || *o.port != 0 || *o.security != "" || *o.user != "" || *o.from != "" || *o.passwordFile != ""
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
	settings, err := loadMailSettings()
	if err != nil {
		return nil, err
	}
	switch *o.via {
	case "program":
		if setSMTP {
			return nil, errors.New("--email-via program sends through your own mail program: leave out the --smtp-… flags")
		}
		p.program = true
		return p, nil
	case "smtp", "auto", "":
	default:
		return nil, fmt.Errorf("--email-via %q: use smtp, program or auto", *o.via)
	}
	if *o.via != "smtp" && *o.host == "" && settings.Host == "" {
		p.program = true
		return p, nil
	}
	// Flags override the settings file, field by field.
	if *o.host != "" {
		settings.Host = *o.host
	}
	if *o.port != 0 {
		settings.Port = *o.port
	}
	if *o.security != "" {
		settings.Security = *o.security
	}
	if *o.user != "" {
		settings.User = *o.user
	}
	if *o.from != "" {
		settings.From = *o.from
	}
	if *o.passwordFile != "" {
		settings.PasswordFile, settings.Password = *o.passwordFile, ""
	} else if pw := os.Getenv(envSMTPPassword); pw != "" {
		settings.PasswordFile, settings.Password = "", pw
	}
	if p.smtp, err = settings.SMTP(); err != nil {
		return nil, err
	}
	if p.smtp.Username != "" && p.smtp.Password == "" {
		return nil, fmt.Errorf("no password for the SMTP user %s: give --smtp-password-file FILE or set $%s", p.smtp.Username, envSMTPPassword)
	}
	if err := p.smtp.Check(); err != nil {
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
	if err := p.smtp.Send(ctx, p.to, l); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "email: sent to %s\n", p.to)
	return nil
}
