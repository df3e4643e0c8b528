package mailer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/assist-project/assist/invitation"
)

// HandOffWait is how long MailProgram waits for xdg-email to return. Most
// mail programs take the message and let xdg-email go at once; Thunderbird
// started afresh keeps it until Thunderbird closes, so past this wait the
// message counts as handed over.
const HandOffWait = 15 * time.Second

// ErrNoMailProgram means this computer has no way to open the user's mail
// program (no xdg-email).
var ErrNoMailProgram = errors.New("no mail program can be opened on this computer (xdg-email, from the xdg-utils package, is missing); save the invitation as a file and attach it to an e-mail yourself")

// MailProgram opens a new message in the user's own mail program, the one
// set for mailto: links, addressed to to (which may be empty: the user
// types it there), with l's subject and body and the file at path
// attached, for the user to check and send. path must stay in place until
// the message is sent: use SaveAttachment. It returns once the mail
// program has the message (or after HandOffWait), or when ctx ends.
func MailProgram(ctx context.Context, to string, l *Letter, path string) error {
	if to != "" {
		a, err := ParseAddress(to)
		if err != nil {
			return err
		}
		to = a
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("mailer: the invitation file %s is missing; save it again", abs)
	}
	bin, err := exec.LookPath("xdg-email")
	if err != nil {
		return ErrNoMailProgram
	}
	args := []string{"--utf8", "--subject", l.Subject, "--body", l.Body, "--attach", abs}
	if to != "" {
		args = append(args, to)
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mailer: starting xdg-email: %w", err)
	}
	done := make(chan error, 1)
	// Owned by the process: it ends when xdg-email does, also after a
	// hand-off that outlives this call.
	go func() { done <- cmd.Wait() }()
	t := time.NewTimer(HandOffWait)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			msg := lastLine(stderr.String())
			if msg == "" {
				msg = err.Error()
			}
			return fmt.Errorf("your mail program could not be opened (%s); set one for e-mail links in your desktop's settings, or save the invitation as a file and attach it yourself", msg)
		}
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AttachmentDir is where SaveAttachment keeps files for mail programs:
// "assist/mail" in the user's cache directory.
func AttachmentDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("mailer: no cache directory for the attachment: %w", err)
	}
	return filepath.Join(d, "assist", "mail"), nil
}

// keepAttachments is how long SaveAttachment keeps older files: no
// invitation lives longer.
const keepAttachments = invitation.MaxTTL

// SaveAttachment writes l's file under dir (AttachmentDir when "") in a
// directory of its own, under l.FileName, readable by the owner only, and
// returns its path. A mail program reads it when the message is sent, so it
// stays; files older than any invitation can live are removed.
func SaveAttachment(dir string, l *Letter) (string, error) {
	if dir == "" {
		var err error
		if dir, err = AttachmentDir(); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("mailer: %w", err)
	}
	prune(dir, time.Now().Add(-keepAttachments))
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("mailer: %w", err)
	}
	sub := filepath.Join(dir, hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(sub, 0o700); err != nil {
		return "", fmt.Errorf("mailer: %w", err)
	}
	p := filepath.Join(sub, l.FileName)
	if err := os.WriteFile(p, l.File, 0o600); err != nil {
		return "", fmt.Errorf("mailer: saving the invitation for the mail program: %w", err)
	}
	return p, nil
}

// prune removes the subdirectories of dir last changed before cutoff.
// Failures are left for the next time: the files are small.
func prune(dir string, cutoff time.Time) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// lastLine is the last non-empty line of a program's error output, cut
// short: xdg-email repeats the whole mailto: link, body and all.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if r := []rune(l); len(r) > 160 {
		l = string(r[:160]) + "…"
	}
	return l
}
