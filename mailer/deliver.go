package mailer

import (
	"context"
	"errors"
)

// Way is how Deliver sent a letter.
type Way string

const (
	// BySMTP: sent through the user's mail server (mail.json).
	BySMTP Way = "smtp"
	// ByProgram: written in the user's mail program, for them to send.
	ByProgram Way = "program"
)

// Deliver sends l to to the way the user has set up, for a "Send by
// e-mail" button: over SMTP with the settings file at settingsPath
// (SettingsFile in the Assist config folder) if it names a host, else
// through the user's mail program with the file saved by SaveAttachment
// (to may then be empty: the user fills it in there). It says which way
// it went.
func Deliver(ctx context.Context, settingsPath, to string, l *Letter) (Way, error) {
	s, err := LoadSettings(settingsPath)
	if err != nil {
		return "", err
	}
	if s.Host == "" {
		path, err := SaveAttachment("", l)
		if err != nil {
			return "", err
		}
		return ByProgram, MailProgram(ctx, to, l, path)
	}
	if to == "" {
		return "", errors.New("no address to send the invitation to: type the helper's e-mail address")
	}
	a, err := s.SMTP()
	if err != nil {
		return "", err
	}
	return BySMTP, a.Send(ctx, to, l)
}
