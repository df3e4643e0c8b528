package mailer

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/assist-project/assist/invitation"
)

// Letter is an invitation e-mail, ready to send: the words and the file.
type Letter struct {
	// Subject is the e-mail's subject line.
	Subject string
	// Body is the plain-text body.
	Body string
	// FileName is the attachment's name: "Invitation from NAME.assist",
	// with NAME reduced to letters, digits, spaces, dots, dashes and
	// underscores.
	FileName string
	// File is the invitation file (invitation.Invitation.Marshal).
	File []byte
	// Name is the novice's name, for the From line's display name.
	Name string
}

// Options are the optional parts of Compose.
type Options struct {
	// Note is a line from the sender put at the top of the body ("Hi Bob,
	// the printer again!"). Control characters are dropped.
	Note string
	// Location is the time zone the expiry is written in; nil is the
	// computer's own (time.Local). The zone's offset is always written
	// too, since the reader may live elsewhere.
	Location *time.Location
}

// maxNote bounds Options.Note: a line or two, not a letter.
const maxNote = 1000

// Compose writes the e-mail that carries inv. It holds the file, the link
// (assist://…, which holds no password either) and, for an invitation
// through a rendezvous server, the server's address for a browser; never a
// password or a code.
func Compose(inv *invitation.Invitation, o Options) (*Letter, error) {
	if inv == nil {
		return nil, errors.New("mailer: no invitation to send")
	}
	file, err := inv.Marshal()
	if err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	link := inv.URL()
	if link == "" {
		return nil, errors.New("mailer: the invitation cannot be written as a link")
	}
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	name := inv.Name
	if name == "" {
		name = "Someone"
	}
	fileName := FileName(inv.Name)
	note := cleanNote(o.Note)

	var b strings.Builder
	if note != "" {
		b.WriteString(note)
		b.WriteString("\n\n")
	}
	fmt.Fprintf(&b, "%s is asking for your help with their computer, using Assist.\n\n", name)
	b.WriteString("How to help:\n\n")
	fmt.Fprintf(&b, "- With Assist installed: open the attached file \"%s\",\n", fileName)
	fmt.Fprintf(&b, "  or run:  assist join \"%s\"\n", fileName)
	b.WriteString("  or open this link (it holds the same invitation):\n")
	fmt.Fprintf(&b, "  %s\n", link)
	if inv.Server != "" {
		web := strings.TrimRight(inv.Server, "/") + "/"
		fmt.Fprintf(&b, "\n- Without Assist: open %s in your web browser\n", web)
		fmt.Fprintf(&b, "  and type the code %s reads out to you.\n", name)
	}
	fmt.Fprintf(&b, "\nCall %s when you are ready: %s will read you a code (and, without a\n", name, name)
	b.WriteString("server, a password) to type. It is not in this e-mail on purpose: whoever\n")
	b.WriteString("reads this e-mail alone cannot see the computer. Nothing is shown to you\n")
	fmt.Fprintf(&b, "until %s says yes, and %s can end it at any moment.\n", name, name)
	fmt.Fprintf(&b, "\nThis invitation is valid until %s.\n", formatExpiry(inv.Expires, loc))

	return &Letter{
		Subject:  fmt.Sprintf("%s is asking for your help (Assist invitation)", name),
		Body:     b.String(),
		FileName: fileName,
		File:     file,
		Name:     inv.Name,
	}, nil
}

// FileName is the name the invitation file gets in an e-mail: "Invitation
// from NAME.assist", NAME kept to characters that every mail program and
// file system take as they are; "invitation.assist" when nothing is left.
func FileName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == ' ', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		}
	}
	// Dots only inside: no hidden files, no "..".
	n := strings.Join(strings.Fields(b.String()), " ")
	for strings.Contains(n, "..") {
		n = strings.ReplaceAll(n, "..", ".")
	}
	if len([]rune(n)) > invitation.MaxNameRunes {
		n = string([]rune(n)[:invitation.MaxNameRunes])
	}
	n = strings.Trim(n, ". ")
	if n == "" {
		return "invitation" + invitation.FileExtension
	}
	return "Invitation from " + n + invitation.FileExtension
}

// cleanNote keeps a note's printable characters and line breaks, bounded.
func cleanNote(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || unicode.IsPrint(r) {
			b.WriteRune(r)
		}
	}
	out := strings.TrimSpace(b.String())
	if len([]rune(out)) > maxNote {
		out = string([]rune(out)[:maxNote])
	}
	return out
}

// formatExpiry writes t for a reader who may live in another time zone:
// "Monday 7 December 2026 at 18:53 (UTC+01:00)".
func formatExpiry(t time.Time, loc *time.Location) string {
	t = t.In(loc)
	_, off := t.Zone()
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("%s at %s (UTC%c%02d:%02d)", t.Format("Monday 2 January 2006"), t.Format("15:04"), sign, off/3600, off%3600/60)
}
