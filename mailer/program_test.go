package mailer_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/mailer"
)

// fakeMailProgram registers, in a temporary HOME, a shell script as the
// desktop's handler of mailto: links (the XDG way: a .desktop file and
// mimeapps.list), and returns the file it writes its arguments to.
func fakeMailProgram(t *testing.T, exit int) (argsFile string) {
	t.Helper()
	if _, err := exec.LookPath("xdg-email"); err != nil {
		t.Skip("xdg-email is not installed (Debian package xdg-utils)")
	}
	home := t.TempDir()
	data := filepath.Join(home, "share")
	config := filepath.Join(home, "config")
	apps := filepath.Join(data, "applications")
	for _, d := range []string{apps, config} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	argsFile = filepath.Join(home, "args")
	script := filepath.Join(home, "fakemail")
	body := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argsFile + "\nexit " + string(rune('0'+exit)) + "\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	desktop := "[Desktop Entry]\nType=Application\nName=Fake mail\nExec=" + script + " %u\nMimeType=x-scheme-handler/mailto;\n"
	if err := os.WriteFile(filepath.Join(apps, "fakemail.desktop"), []byte(desktop), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(config, "mimeapps.list"), []byte("[Default Applications]\nx-scheme-handler/mailto=fakemail.desktop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", config)
	t.Setenv("XDG_DATA_HOME", data)
	t.Setenv("XDG_DATA_DIRS", data)
	t.Setenv("XDG_CONFIG_DIRS", config)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	// A plain desktop: xdg-email then asks xdg-mime for the handler.
	for _, v := range []string{"XDG_CURRENT_DESKTOP", "DESKTOP_SESSION", "KDE_FULL_SESSION", "GNOME_DESKTOP_SESSION_ID",
		"MATE_DESKTOP_SESSION_ID", "XDG_SESSION_DESKTOP", "MAILER", "BROWSER", "WAYLAND_DISPLAY"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	// xdg-open looks for a link's handler only on a desktop; it never
	// connects to the display, nor does the script.
	t.Setenv("DISPLAY", ":199")
	return argsFile
}

// TestMailProgram hands an invitation to the "user's mail program" (a
// script registered for mailto: links) through xdg-email and checks what
// it got: the address, subject and body, and an attachment that is the
// invitation file, in the user's cache.
func TestMailProgram(t *testing.T) {
	argsFile := fakeMailProgram(t, 0)
	inv := newInvitation(t, "Grandma", "https://help.example.org")
	l, err := mailer.Compose(inv, mailer.Options{Note: "Hi Bob & Co: 100% thanks?"})
	if err != nil {
		t.Fatal(err)
	}
	path, err := mailer.SaveAttachment("", l)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, filepath.Join(os.Getenv("XDG_CACHE_HOME"), "assist", "mail")) || filepath.Base(path) != "Invitation from Grandma.assist" {
		t.Errorf("attachment saved at %s", path)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("attachment mode: %v %v", fi.Mode(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := mailer.MailProgram(ctx, "Bob <bob@example.com>", l, path); err != nil {
		t.Fatal(err)
	}
	args, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatalf("the mail program did not run: %v", err)
	}
	u, err := url.Parse(strings.TrimSpace(string(args)))
	if err != nil || u.Scheme != "mailto" {
		t.Fatalf("the mail program got %q, not a mailto: link (%v)", args, err)
	}
	if u.Opaque != "bob@example.com" {
		t.Errorf("to %q", u.Opaque)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("subject") != l.Subject {
		t.Errorf("subject %q, want %q", q.Get("subject"), l.Subject)
	}
	// RFC 6068 writes line breaks as CRLF; xdg-email drops the last one.
	if strings.ReplaceAll(q.Get("body"), "\r\n", "\n") != strings.TrimSpace(l.Body) {
		t.Errorf("body %q, want %q", q.Get("body"), l.Body)
	}
	att := q.Get("attach")
	file, err := os.ReadFile(att)
	if err != nil {
		t.Fatalf("attachment %q: %v", att, err)
	}
	if !bytes.Equal(file, l.File) {
		t.Error("the attachment is not the invitation file")
	}
	if back, err := invitation.Parse(file); err != nil || back.ID != inv.ID {
		t.Errorf("the attachment does not parse as the invitation: %v", err)
	}
}

// TestMailProgramFails checks the words when the mail program fails or
// the address is not one.
func TestMailProgramFails(t *testing.T) {
	fakeMailProgram(t, 3)
	l, err := mailer.Compose(newInvitation(t, "Grandma", ""), mailer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path, err := mailer.SaveAttachment(t.TempDir(), l)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := mailer.MailProgram(ctx, "", l, path); err == nil || !strings.Contains(err.Error(), "mail program could not be opened") {
		t.Errorf("failing mail program: %v", err)
	}
	if err := mailer.MailProgram(ctx, "--help", l, path); err == nil || !strings.Contains(err.Error(), "not an e-mail address") {
		t.Errorf("bad address: %v", err)
	}
	if err := mailer.MailProgram(ctx, "", l, filepath.Join(t.TempDir(), "gone.assist")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if err := mailer.MailProgram(ctx, "", l, path); err != mailer.ErrNoMailProgram {
		t.Errorf("no xdg-email: %v", err)
	}
}

// TestSaveAttachmentPrunes checks that files older than any invitation
// are removed and new ones kept.
func TestSaveAttachmentPrunes(t *testing.T) {
	dir := t.TempDir()
	l, err := mailer.Compose(newInvitation(t, "Grandma", ""), mailer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old, err := mailer.SaveAttachment(dir, l)
	if err != nil {
		t.Fatal(err)
	}
	recent, err := mailer.SaveAttachment(dir, l)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-invitation.MaxTTL - time.Hour)
	if err := os.Chtimes(filepath.Dir(old), past, past); err != nil {
		t.Fatal(err)
	}
	if _, err := mailer.SaveAttachment(dir, l); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); err == nil {
		t.Error("an attachment older than any invitation was kept")
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("a recent attachment was removed: %v", err)
	}
}
