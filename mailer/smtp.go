package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Security is how an SMTP connection is protected.
type Security int

const (
	// StartTLS connects in plain text and must upgrade with STARTTLS before
	// anything else (submission, port 587). A server that does not offer it
	// is refused: a password must not cross the network in the clear.
	StartTLS Security = iota
	// ImplicitTLS speaks TLS from the first byte (port 465).
	ImplicitTLS
	// Plain uses no TLS at all. Only for a mail server on this computer
	// (loopback), such as a local relay: Send refuses any other host.
	Plain
)

// ParseSecurity reads a Security from its name: "starttls", "tls" (or
// "ssl", "implicit"), or "none".
func ParseSecurity(s string) (Security, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "starttls":
		return StartTLS, nil
	case "tls", "ssl", "implicit":
		return ImplicitTLS, nil
	case "none", "plain":
		return Plain, nil
	}
	return 0, fmt.Errorf("%q is not a kind of SMTP security: use starttls, tls or none", s)
}

func (s Security) String() string {
	switch s {
	case StartTLS:
		return "starttls"
	case ImplicitTLS:
		return "tls"
	case Plain:
		return "none"
	}
	return "Security(" + strconv.Itoa(int(s)) + ")"
}

// DefaultPort is the usual port for sec: 587 for STARTTLS, 465 for
// implicit TLS, 25 for a local relay.
func (s Security) DefaultPort() int {
	switch s {
	case ImplicitTLS:
		return 465
	case Plain:
		return 25
	}
	return 587
}

// DefaultTimeout bounds each step of an SMTP exchange when SMTP.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// SMTP is a mail server to send through and the account to use.
type SMTP struct {
	// Host is the server's name or address.
	Host string
	// Port is the server's port; 0 is Security.DefaultPort.
	Port int
	// Security is how the connection is protected.
	Security Security
	// Username and Password log in to the server; no Username, no login.
	// The password is never logged or put in an error.
	Username, Password string
	// From is the sender's address. Empty means Username, if that is an
	// address.
	From string
	// TLSConfig, if not nil, replaces the default (the system's
	// certificate authorities, ServerName = Host). Tests set it.
	TLSConfig *tls.Config
	// Timeout bounds each step; 0 is DefaultTimeout.
	Timeout time.Duration
}

// Check reports whether the settings can be used, in words for the user.
func (s *SMTP) Check() error {
	if s.Host == "" {
		return errors.New("no mail server: give --smtp-host (your provider's SMTP server, such as smtp.example.com)")
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("SMTP port %d is not a port number", s.Port)
	}
	if s.Security == Plain && !isLoopback(s.Host) {
		return fmt.Errorf("sending to %s without TLS would show your mail and password to the network: use --smtp-security starttls or tls (security none is only for a mail server on this computer)", s.Host)
	}
	if _, err := s.from(); err != nil {
		return err
	}
	return nil
}

// from is the sender's address.
func (s *SMTP) from() (string, error) {
	from := s.From
	if from == "" {
		from = s.Username
	}
	if from == "" {
		return "", errors.New("no sender address: give --smtp-from YOU@EXAMPLE.COM")
	}
	a, err := mail.ParseAddress(from)
	if err != nil || a.Name != "" {
		return "", fmt.Errorf("sender %q is not an e-mail address: give --smtp-from YOU@EXAMPLE.COM", from)
	}
	return a.Address, nil
}

// ParseAddress checks a recipient address typed by the user and returns
// it bare ("bob@example.com" from "Bob <bob@example.com>" too).
func ParseAddress(s string) (string, error) {
	a, err := mail.ParseAddress(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%q is not an e-mail address (like bob@example.com)", s)
	}
	return a.Address, nil
}

// Message builds the MIME message for l, from the account in s to to: the
// plain-text body and the invitation file attached.
func (s *SMTP) Message(to string, l *Letter) (*gomail.Msg, error) {
	from, err := s.from()
	if err != nil {
		return nil, err
	}
	to, err = ParseAddress(to)
	if err != nil {
		return nil, err
	}
	m := gomail.NewMsg()
	if err := m.FromFormat(l.Name, from); err != nil {
		// A name the library cannot encode: send with the bare address.
		if err := m.From(from); err != nil {
			return nil, fmt.Errorf("mailer: sender: %w", err)
		}
	}
	if err := m.To(to); err != nil {
		return nil, fmt.Errorf("mailer: recipient: %w", err)
	}
	m.Subject(l.Subject)
	m.SetDate()
	m.SetMessageID()
	m.SetUserAgent("Assist")
	m.SetBodyString(gomail.TypeTextPlain, l.Body)
	if err := m.AttachReader(l.FileName, bytes.NewReader(l.File),
		gomail.WithFileContentType(ContentType)); err != nil {
		return nil, fmt.Errorf("mailer: attaching the invitation: %w", err)
	}
	return m, nil
}

// ContentType is the MIME type of an attached invitation file.
const ContentType gomail.ContentType = "application/x-assist-invitation"

// Send delivers l to the address to through the server in s. ctx bounds
// the whole exchange.
func (s *SMTP) Send(ctx context.Context, to string, l *Letter) error {
	if err := s.Check(); err != nil {
		return err
	}
	m, err := s.Message(to, l)
	if err != nil {
		return err
	}
	port := s.Port
	if port == 0 {
		port = s.Security.DefaultPort()
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	tc := s.TLSConfig
	if tc == nil {
		tc = &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	}
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(tc),
		// No debug log: it would show the conversation, login included.
	}
	switch s.Security {
	case StartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case Plain:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if s.Security == Plain {
			// Loopback only (Check): the library's PLAIN refuses an
			// unencrypted connection unless told.
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(s.Username), gomail.WithPassword(s.Password))
	}
	c, err := gomail.NewClient(s.Host, opts...)
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return s.explain(err)
	}
	return nil
}

// explain turns a failed send into words that say what to do next. It
// never includes the password.
func (s *SMTP) explain(err error) error {
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.portOrDefault()))
	msg := err.Error()
	if s.Password != "" {
		msg = strings.ReplaceAll(msg, s.Password, "(password)")
	}
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "auth"):
		return fmt.Errorf("the mail server %s did not accept the user name or password (%s); check --smtp-user and the password", addr, msg)
	case strings.Contains(low, "starttls"):
		return fmt.Errorf("the mail server %s does not offer STARTTLS (%s); try --smtp-security tls (usually port 465)", addr, msg)
	case strings.Contains(low, "certificate") || strings.Contains(low, "x509"):
		return fmt.Errorf("the mail server %s showed a certificate this computer does not trust (%s); check --smtp-host", addr, msg)
	case strings.Contains(low, "connection refused") || strings.Contains(low, "no such host") || strings.Contains(low, "timeout") || strings.Contains(low, "deadline"):
		return fmt.Errorf("could not reach the mail server %s (%s); check --smtp-host and --smtp-port, and that this computer is online", addr, msg)
	}
	return fmt.Errorf("sending the e-mail through %s failed: %s", addr, msg)
}

func (s *SMTP) portOrDefault() int {
	if s.Port != 0 {
		return s.Port
	}
	return s.Security.DefaultPort()
}

// WriteMessage writes the MIME message Send would send to w: for tests,
// and for saving an .eml file a mail program can open.
func (s *SMTP) WriteMessage(w io.Writer, to string, l *Letter) error {
	m, err := s.Message(to, l)
	if err != nil {
		return err
	}
	if _, err := m.WriteTo(w); err != nil {
		return fmt.Errorf("mailer: writing the message: %w", err)
	}
	return nil
}

// isLoopback reports whether host names this computer.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
