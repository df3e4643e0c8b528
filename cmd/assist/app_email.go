package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/mailer"
	"github.com/assist-project/assist/noviceapp"
)

// appEmail sends inv by e-mail for the app's Send by e-mail, as assist
// invite --email does (emailPlan): to the address typed, by the user's mail
// server when mail.json names one, else through the invitation's server
// when this device is logged in to it, else in the user's mail program;
// with no address, in the mail program, which asks for one. It returns
// what to tell the novice.
func appEmail(ctx context.Context, stdout io.Writer, inv *invitation.Invitation, to string) string {
	p := &emailPlan{}
	if to != "" {
		addr, err := mailer.ParseAddress(to)
		if err != nil {
			return fmt.Sprintf("%q does not look like an e-mail address: check it and try again.", to)
		}
		p.to = addr
	}
	settings, err := loadMailSettings()
	if err != nil {
		return "Your mail settings cannot be read (" + err.Error() + "). Click Save as file and attach the file to an e-mail yourself."
	}
	switch {
	case p.to == "":
		p.program = true
	case settings.Host != "":
		// The flags' defaults: mail.json and $ASSIST_SMTP_PASSWORD.
		if p.smtp, err = addSMTPFlags(flag.NewFlagSet("", flag.ContinueOnError), "").account(settings); err != nil {
			return "Your mail server is not set up right (" + err.Error() + "). Click Save as file and attach the file to an e-mail yourself."
		}
	case inv.Server != "" && loggedInTo(inv.Server):
		p.server = true
	default:
		p.program = true
	}
	if err := p.deliver(ctx, stdout, inv, ""); err != nil {
		return "The e-mail was not sent: " + noviceapp.Sentence(err.Error()) + " Click Save as file and attach the file to an e-mail yourself, or Copy the link."
	}
	secret := "the password"
	if inv.Server != "" {
		secret = "the code"
	}
	if p.program {
		return "Your mail program is open with the invitation attached: check the address and press Send. Then read out " + secret + " to them: the e-mail does not have it."
	}
	return "The invitation is sent to " + p.to + ". Read out " + secret + " to them: the e-mail does not have it."
}

// loggedInTo reports whether this device is logged in to server.
func loggedInTo(server string) bool {
	dir, err := identity.DefaultDir()
	if err != nil {
		return false
	}
	d, err := identity.Open(dir)
	if err != nil {
		return false
	}
	cfg, err := d.LoadConfig()
	return err == nil && cfg.Server != "" && strings.TrimRight(cfg.Server, "/") == strings.TrimRight(server, "/")
}
