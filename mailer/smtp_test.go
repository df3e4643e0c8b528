package mailer_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/mailer"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// smtpFor points an SMTP account at the test server m.
func smtpFor(t testing.TB, m *lab.Mailpit, sec mailer.Security, user, pass string) *mailer.SMTP {
	host, port := lab.HostPort(t, m.SMTP)
	s := &mailer.SMTP{Host: host, Port: port, Security: sec, Username: user, Password: pass,
		From: "grandma@example.net", Timeout: 10 * time.Second}
	if m.Roots != nil {
		s.TLSConfig = &tls.Config{RootCAs: m.Roots, ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return s
}

// TestSMTPSend sends an invitation through a real SMTP server (mailpit)
// in each kind of security, logged in, and takes apart what arrived: the
// attachment is the invitation file, the body has the link, and the SMTP
// password is nowhere in the message.
func TestSMTPSend(t *testing.T) {
	const user, pass = "grandma", "s3cret-smtp-pass"
	for _, tt := range []struct {
		name string
		tls  string
		sec  mailer.Security
	}{
		{"starttls", "starttls", mailer.StartTLS},
		{"implicit tls", "tls", mailer.ImplicitTLS},
		{"plain on loopback", "", mailer.Plain},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := lab.StartMailpit(t, lab.MailpitOptions{TLS: tt.tls, User: user, Password: pass})
			inv := newInvitation(t, "Grandma Jones", "https://help.example.org")
			l, err := mailer.Compose(inv, mailer.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s := smtpFor(t, m, tt.sec, user, pass)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.Send(ctx, "Bob <bob@example.com>", l); err != nil {
				t.Fatalf("send: %v\nmailpit:\n%s", err, m.Output())
			}
			raw := m.WaitMessage(t, 10*time.Second)
			if bytes.Contains(raw, []byte(pass)) {
				t.Error("the SMTP password is in the message")
			}
			got := lab.ParseMail(t, raw)
			if got.Subject != l.Subject {
				t.Errorf("subject %q, want %q", got.Subject, l.Subject)
			}
			if to := got.Header.Get("To"); !strings.Contains(to, "bob@example.com") {
				t.Errorf("To: %q", to)
			}
			if from := got.Header.Get("From"); !strings.Contains(from, "grandma@example.net") || !strings.Contains(from, "Grandma Jones") {
				t.Errorf("From: %q", from)
			}
			if !strings.Contains(got.Text, inv.URL()) || !strings.Contains(got.Text, "https://help.example.org/") {
				t.Errorf("the body lacks the link or the browser address:\n%s", got.Text)
			}
			file, ok := got.Attachments["Invitation from Grandma Jones.assist"]
			if !ok {
				t.Fatalf("no invitation attached; attachments: %v", keys(got.Attachments))
			}
			if got.Types["Invitation from Grandma Jones.assist"] != string(mailer.ContentType) {
				t.Errorf("attachment type %q", got.Types["Invitation from Grandma Jones.assist"])
			}
			back, err := invitation.Parse(file)
			if err != nil || back.ID != inv.ID {
				t.Fatalf("the attachment is not the invitation: %v", err)
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSMTPErrors checks what the user reads when sending fails: what to
// do next, and never the password.
func TestSMTPErrors(t *testing.T) {
	const pass = "wrong-pass-123"
	m := lab.StartMailpit(t, lab.MailpitOptions{TLS: "starttls", User: "grandma", Password: "right"})
	l, err := mailer.Compose(newInvitation(t, "Grandma", ""), mailer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	wrong := smtpFor(t, m, mailer.StartTLS, "grandma", pass)
	err = wrong.Send(ctx, "bob@example.com", l)
	if err == nil || !strings.Contains(err.Error(), "user name or password") || strings.Contains(err.Error(), pass) {
		t.Errorf("wrong password: %v", err)
	}

	untrusted := smtpFor(t, m, mailer.StartTLS, "grandma", "right")
	untrusted.TLSConfig = nil // the system's authorities do not know mailpit's certificate
	err = untrusted.Send(ctx, "bob@example.com", l)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}

	// A server without TLS: STARTTLS is required, so nothing is sent.
	plain := lab.StartMailpit(t, lab.MailpitOptions{})
	noTLS := smtpFor(t, plain, mailer.StartTLS, "grandma", pass)
	err = noTLS.Send(ctx, "bob@example.com", l)
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") || strings.Contains(err.Error(), pass) {
		t.Errorf("no STARTTLS: %v", err)
	}
	if n := len(plain.Messages(t)); n != 0 {
		t.Errorf("%d messages went out without TLS", n)
	}
	if n := len(m.Messages(t)); n != 0 {
		t.Errorf("%d messages went out with a wrong login", n)
	}
}

func TestSMTPCheck(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    mailer.SMTP
		want string
	}{
		{"no host", mailer.SMTP{From: "a@b.c"}, "--smtp-host"},
		{"plain off loopback", mailer.SMTP{Host: "smtp.example.com", Security: mailer.Plain, From: "a@b.c"}, "without TLS"},
		{"no sender", mailer.SMTP{Host: "smtp.example.com"}, "--smtp-from"},
		{"bad sender", mailer.SMTP{Host: "smtp.example.com", Username: "grandma"}, "not an e-mail address"},
		{"bad port", mailer.SMTP{Host: "smtp.example.com", Port: 70000, From: "a@b.c"}, "port"},
		{"ok", mailer.SMTP{Host: "smtp.example.com", Username: "grandma@example.com"}, ""},
		{"plain on loopback", mailer.SMTP{Host: "127.0.0.1", Security: mailer.Plain, From: "a@b.c"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Check()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseSecurity(t *testing.T) {
	for in, want := range map[string]mailer.Security{"": mailer.StartTLS, "STARTTLS": mailer.StartTLS, "tls": mailer.ImplicitTLS, "ssl": mailer.ImplicitTLS, "none": mailer.Plain} {
		got, err := mailer.ParseSecurity(in)
		if err != nil || got != want {
			t.Errorf("ParseSecurity(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := mailer.ParseSecurity("maybe"); err == nil {
		t.Error("no error for maybe")
	}
}
