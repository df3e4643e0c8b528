package main

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/invitation"
)

// TestInviteByEmail sends the invitation by e-mail from a real `assist
// invite` through a real SMTP server (mailpit, STARTTLS with a login),
// takes the received MIME message apart, saves its attachment, and joins
// with it through a real `assist join`: the session works from nothing but
// the e-mail and the password read out. Neither the invitation's password
// (nor, through a server, its code) nor the SMTP password is anywhere in the
// message.
func TestInviteByEmail(t *testing.T) {
	e2e(t)
	const smtpUser, smtpPass = "nova", "smtp-s3cret-pass"
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	lab.AssistBinary(t)

	for _, viaServer := range []bool{false, true} {
		name := "direct"
		if viaServer {
			name = "through a server"
		}
		t.Run(name, func(t *testing.T) {
			m := lab.StartMailpit(t, lab.MailpitOptions{TLS: "starttls", User: smtpUser, Password: smtpPass})
			host, port := lab.HostPort(t, m.SMTP)
			dir := t.TempDir()
			pwFile := filepath.Join(dir, "smtp-password")
			if err := os.WriteFile(pwFile, []byte(smtpPass+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"invite", "--display", x.Display, "--name", noviceName,
				"--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view", "--no-page",
				"--email", "Max <max@example.com>", "--email-note", "Hello Max, the printer again.",
				"--smtp-host", host, "--smtp-port", strconv.Itoa(port), "--smtp-user", smtpUser,
				"--smtp-password-file", pwFile, "--smtp-from", "nova@example.net"}
			var srv *servedProc
			if viaServer {
				srv = startServe(t, t.TempDir())
				args = append(args, "--server", srv.URL, "--server-fingerprint", srv.Fingerprint)
			}
			// The test's certificate authority, as a mail provider's
			// would be in the system's store; no config of the user's.
			env := []string{"SSL_CERT_FILE=" + m.CertFile(), "ASSIST_CONFIG_DIR=" + t.TempDir()}
			nov := lab.StartLines(t, env, lab.AssistBinary(t), args...)
			code := nov.WaitLine(t, `^code: (\S+)$`, lineTimeout)[1]
			pw := nov.WaitLine(t, `^password: (\S+)$`, lineTimeout)[1]
			nov.WaitLine(t, `^email: sent to max@example\.com$`, lineTimeout)
			nov.WaitLine(t, `^waiting for your helper`, lineTimeout)

			secrets := []string{pw, strings.ReplaceAll(pw, "-", ""), smtpPass}
			want := []string{"Hello Max, the printer again."}
			if viaServer {
				secrets = append(secrets, code, strings.SplitN(code, "-", 2)[1])
				want = append(want, "open "+srv.URL+"/ in your web browser")
			}
			joinFromMail(t, m, nov, pw, viaServer, secrets, want...)
			if out := nov.Output(); strings.Contains(out, smtpPass) {
				t.Error("assist invite printed the SMTP password")
			}
		})
	}
}

// joinFromMail reads the invitation e-mail that reached m, checks that it
// holds none of secrets and all of want, saves its attachment and joins
// with it and the password pw, as an expert would.
func joinFromMail(t *testing.T, m *lab.Mailpit, nov *lab.LineProc, pw string, viaServer bool, secrets []string, want ...string) {
	t.Helper()
	raw := m.WaitMessage(t, lineTimeout)
	for _, s := range secrets {
		if bytes.Contains(bytes.ToLower(raw), []byte(strings.ToLower(s))) {
			t.Errorf("the e-mail holds the secret %q:\n%s", s, raw)
		}
	}
	mail := lab.ParseMail(t, raw)
	wantContains(t, "the e-mail's text", mail.Text, append(want, noviceName+" is asking for your help", "assist://invite?d=")...)
	wantContains(t, "the e-mail's subject", mail.Subject, noviceName)
	for _, s := range secrets { // decoded text too (base64 or quoted-printable)
		if strings.Contains(strings.ToLower(mail.Text), strings.ToLower(s)) {
			t.Errorf("the e-mail's text holds the secret %q", s)
		}
	}
	att, ok := mail.Attachments["Invitation from "+noviceName+".assist"]
	if !ok {
		t.Fatalf("no invitation attached:\n%s", raw)
	}
	inv, err := invitation.Parse(att)
	if err != nil {
		t.Fatalf("the attachment is not an invitation: %v", err)
	}
	if viaServer != (inv.Server != "") {
		t.Errorf("the attached invitation's server is %q", inv.Server)
	}
	link := regexp.MustCompile(`assist://invite\?d=\S+`).FindString(mail.Text)
	if fromLink, err := invitation.ParseURL(link); err != nil || fromLink.ID != inv.ID {
		t.Errorf("the link in the text is not the attached invitation: %v", err)
	}

	// The expert saves the attachment and joins with it and the
	// password the novice reads out.
	file := filepath.Join(t.TempDir(), "from-mail.assist")
	if err := os.WriteFile(file, att, 0o600); err != nil {
		t.Fatal(err)
	}
	e := startJoin(t, nil, file, writePassword(t, pw))
	e.WaitLine(t, `^connected to `+noviceName+` via `, lineTimeout)
	e.WaitLine(t, `^state: viewing`, lineTimeout)
	nov.WaitLine(t, `connected from`, lineTimeout)
	stop(t, e, "assist join")
	stop(t, nov, "assist invite")
}

// TestInviteByEmailServerRelay: `assist serve` with a mail server sends
// the invitation for a logged-in novice (assist invite --email-via
// server); the e-mail reaches the SMTP server and the expert joins with
// its attachment.
func TestInviteByEmailServerRelay(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	m := lab.StartMailpit(t, lab.MailpitOptions{})
	host, port := lab.HostPort(t, m.SMTP)
	srv := startServe(t, t.TempDir(), "--smtp-host", host, "--smtp-port", strconv.Itoa(port),
		"--smtp-security", "none", "--smtp-from", "help@assist.example")
	nova := newCLIUser(t, "nova")
	nova.login(t, srv, "--server-fingerprint", srv.Fingerprint)
	env := []string{"ASSIST_CONFIG_DIR=" + nova.dir}

	// A device the server does not know is refused, and says what to do.
	stranger := lab.StartLines(t, []string{"ASSIST_CONFIG_DIR=" + t.TempDir()}, lab.AssistBinary(t), "invite",
		"--display", x.Display, "--name", noviceName, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page",
		"--server", srv.URL, "--server-fingerprint", srv.Fingerprint, "--email", "max@example.com", "--email-via", "server")
	stranger.WaitLine(t, `^email: not sent: .*assist login`, lineTimeout)
	stop(t, stranger, "assist invite")

	nov := lab.StartLines(t, env, lab.AssistBinary(t), "invite",
		"--display", x.Display, "--name", noviceName, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page", "--allow", "view",
		"--server", srv.URL, "--server-fingerprint", srv.Fingerprint, "--email", "max@example.com", "--email-via", "server")
	code := nov.WaitLine(t, `^code: (\S+)$`, lineTimeout)[1]
	pw := nov.WaitLine(t, `^password: (\S+)$`, lineTimeout)[1]
	nov.WaitLine(t, `^email: sent to max@example\.com by the server$`, lineTimeout)
	joinFromMail(t, m, nov, pw, true, []string{pw, code, strings.SplitN(code, "-", 2)[1]}, "open "+srv.URL+"/ in your web browser")
	if n := len(m.Messages(t)); n != 1 {
		t.Errorf("%d messages sent, want 1", n)
	}
}

// TestInviteEmailFlags checks that mistakes in the e-mail flags are
// reported before any invitation is made, in words that say what to do.
func TestInviteEmailFlags(t *testing.T) {
	bin := lab.AssistBinary(t)
	cfg := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"bad address", []string{"--email", "max"}, nil, "not an e-mail address"},
		{"smtp flags alone", []string{"--smtp-host", "smtp.example.com"}, nil, "need --email ADDRESS"},
		{"no password", []string{"--email", "max@example.com", "--smtp-host", "smtp.example.com", "--smtp-user", "nova@example.com"}, nil, "ASSIST_SMTP_PASSWORD"},
		{"plain off loopback", []string{"--email", "max@example.com", "--smtp-host", "smtp.example.com", "--smtp-security", "none", "--smtp-from", "nova@example.com"}, nil, "without TLS"},
		{"bad via", []string{"--email", "max@example.com", "--email-via", "pigeon"}, nil, "use smtp, program, server or auto"},
		{"smtp without host", []string{"--email", "max@example.com", "--email-via", "smtp"}, nil, "--smtp-host"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"ASSIST_CONFIG_DIR=" + cfg, "DISPLAY="}, tt.env...)
			p := lab.StartLines(t, env, bin, append([]string{"invite", "--no-page", "--no-portmap", "--listen", "127.0.0.1:0"}, tt.args...)...)
			if code := p.WaitExit(t, lineTimeout); code == 0 {
				t.Fatalf("assist invite %v succeeded", tt.args)
			}
			if !strings.Contains(p.Stderr(), tt.want) {
				t.Errorf("stderr %q lacks %q", p.Stderr(), tt.want)
			}
			if strings.Contains(p.Stdout(), "code:") {
				t.Error("an invitation was made before the e-mail flags were checked")
			}
		})
	}
}

// TestInviteByMailProgram: assist invite --email-via program hands the
// invitation to the user's own mail program (here a script registered for
// mailto: links in a temporary HOME, the XDG way) with the invitation
// file attached.
func TestInviteByMailProgram(t *testing.T) {
	e2e(t)
	lab.Need(t, "xdg-email")
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	home := t.TempDir()
	apps, config := filepath.Join(home, "share", "applications"), filepath.Join(home, "config")
	for _, d := range []string{apps, config} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	argsFile, script := filepath.Join(home, "args"), filepath.Join(home, "fakemail")
	files := map[string]string{
		script:                                  "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argsFile + "\n",
		filepath.Join(apps, "fakemail.desktop"): "[Desktop Entry]\nType=Application\nName=Fake mail\nExec=" + script + " %u\nMimeType=x-scheme-handler/mailto;\n",
		filepath.Join(config, "mimeapps.list"):  "[Default Applications]\nx-scheme-handler/mailto=fakemail.desktop\n",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + config, "XDG_DATA_HOME=" + filepath.Join(home, "share"),
		"XDG_DATA_DIRS=" + filepath.Join(home, "share"), "XDG_CONFIG_DIRS=" + config, "XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
		"XDG_CURRENT_DESKTOP=", "DESKTOP_SESSION=", "KDE_FULL_SESSION=", "GNOME_DESKTOP_SESSION_ID=", "MAILER=", "BROWSER=",
		"DISPLAY=" + x.Display, "ASSIST_CONFIG_DIR=" + filepath.Join(home, "assist")}
	file := filepath.Join(t.TempDir(), "help.assist")
	nov := lab.StartLines(t, env, lab.AssistBinary(t), "invite", "--display", x.Display, "--name", noviceName,
		"--listen", "127.0.0.1:0", "--no-portmap", "--no-page", "--file", file,
		"--email", "max@example.com", "--email-via", "program")
	pw := nov.WaitLine(t, `^password: (\S+)$`, lineTimeout)[1]
	nov.WaitLine(t, `^email: written in your mail program`, lineTimeout)
	args, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatalf("the mail program did not run: %v\n%s", err, nov.Output())
	}
	u, err := url.Parse(strings.TrimSpace(string(args)))
	if err != nil || u.Scheme != "mailto" || u.Opaque != "max@example.com" {
		t.Fatalf("the mail program got %q", args)
	}
	q, _ := url.ParseQuery(u.RawQuery)
	if q.Get("attach") != file {
		t.Errorf("attached %q, want the invitation file %s", q.Get("attach"), file)
	}
	wantContains(t, "the e-mail's text", q.Get("body"), noviceName+" is asking for your help", "assist://invite?d=")
	if strings.Contains(string(args), pw) {
		t.Error("the password went to the mail program")
	}
	stop(t, nov, "assist invite")
}
