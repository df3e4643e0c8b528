package lab

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MailpitVersion is the mailpit the tests use: .ci/run and
// scripts/setup.sh install it with `go install`.
const MailpitVersion = "v1.33.1" // keep in step with .ci/run and scripts/setup.sh

// Mailpit is a real SMTP server for tests (github.com/axllent/mailpit):
// it accepts every message and shows what arrived through its HTTP API.
type Mailpit struct {
	// SMTP is the SMTP server's loopback address.
	SMTP string
	// API is the base URL of the HTTP API ("http://127.0.0.1:PORT").
	API string
	// Roots trusts the server's self-signed certificate (nil without TLS).
	Roots *x509.CertPool
	proc  *Proc
}

// MailpitOptions say how the test server is protected.
type MailpitOptions struct {
	// TLS is "starttls" (STARTTLS required), "tls" (implicit TLS) or ""
	// (no TLS).
	TLS string
	// User and Password, if set, are the only login accepted; else any
	// login, or none, is.
	User, Password string
}

// mailpitBinary finds mailpit on PATH or where `go install` puts it.
func mailpitBinary() string {
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, d := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(d, "bin", "mailpit")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return ""
}

// StartMailpit starts a mailpit on free loopback ports, stopped on
// cleanup. It skips the test when mailpit is not installed.
func StartMailpit(t testing.TB, o MailpitOptions) *Mailpit {
	t.Helper()
	bin := mailpitBinary()
	if bin == "" {
		t.Skipf("lab: mailpit is not installed (go install github.com/axllent/mailpit@%s, as scripts/setup.sh test does)", MailpitVersion)
	}
	dir := t.TempDir()
	smtpPort, httpPort := freePort(t), freePort(t)
	m := &Mailpit{
		SMTP: net.JoinHostPort("127.0.0.1", strconv.Itoa(smtpPort)),
		API:  "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
	}
	args := []string{
		"--smtp", m.SMTP, "--listen", strings.TrimPrefix(m.API, "http://"),
		"--database", filepath.Join(dir, "mail.db"),
		"--disable-version-check", "--smtp-disable-rdns",
	}
	if o.TLS != "" {
		cert, key, roots := selfSignedCert(t, dir)
		m.Roots = roots
		args = append(args, "--smtp-tls-cert", cert, "--smtp-tls-key", key)
		switch o.TLS {
		case "starttls":
			args = append(args, "--smtp-require-starttls")
		case "tls":
			args = append(args, "--smtp-require-tls")
		default:
			t.Fatalf("lab: mailpit TLS %q", o.TLS)
		}
	}
	if o.User != "" {
		sum := sha1.Sum([]byte(o.Password))
		auth := filepath.Join(dir, "auth")
		line := o.User + ":{SHA}" + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
		if err := os.WriteFile(auth, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--smtp-auth-file", auth)
		if o.TLS == "" {
			args = append(args, "--smtp-auth-allow-insecure")
		}
	} else {
		args = append(args, "--smtp-auth-accept-any")
		if o.TLS == "" {
			args = append(args, "--smtp-auth-allow-insecure")
		}
	}
	m.proc = Start(t, nil, bin, args...)
	waitListening(t, m.proc, smtpPort)
	waitListening(t, m.proc, httpPort)
	return m
}

// Output is mailpit's log so far, for failure messages.
func (m *Mailpit) Output() string { return m.proc.Output() }

// MailpitMessage is a message as mailpit's list shows it.
type MailpitMessage struct {
	ID      string
	Subject string
	To      []struct{ Address string }
}

// Messages lists what arrived, newest first.
func (m *Mailpit) Messages(t testing.TB) []MailpitMessage {
	t.Helper()
	var list struct{ Messages []MailpitMessage }
	if err := json.Unmarshal(m.get(t, "/api/v1/messages"), &list); err != nil {
		t.Fatalf("lab: mailpit messages: %v", err)
	}
	return list.Messages
}

// WaitMessage waits for the first message to arrive and returns its raw
// bytes as received (headers and MIME body).
func (m *Mailpit) WaitMessage(t testing.TB, timeout time.Duration) []byte {
	t.Helper()
	var id string
	// mailpit stores a message after answering the SMTP DATA: a short poll
	// of its API is the signal there is.
	if !waitFor(timeout, func() bool {
		if ms := m.Messages(t); len(ms) > 0 {
			id = ms[0].ID
			return true
		}
		return false
	}) {
		t.Fatalf("lab: no message reached mailpit in %v:\n%s", timeout, m.Output())
	}
	return m.get(t, "/api/v1/message/"+id+"/raw")
}

func (m *Mailpit) get(t testing.TB, path string) []byte {
	t.Helper()
	resp, err := http.Get(m.API + path)
	if err != nil {
		t.Fatalf("lab: mailpit %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("lab: mailpit %s: %s %v: %s", path, resp.Status, err, b)
	}
	return b
}

// selfSignedCert writes a certificate for 127.0.0.1 and localhost and its
// key into dir, and returns their paths and a pool that trusts it.
func selfSignedCert(t testing.TB, dir string) (certPath, keyPath string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "mailpit test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(c)
	return certPath, keyPath, roots
}

// CertFile is the PEM file of the server's certificate, for programs that
// read SSL_CERT_FILE ("" without TLS).
func (m *Mailpit) CertFile() string {
	for _, a := range m.proc.Cmd.Args {
		if strings.HasSuffix(a, "cert.pem") {
			return a
		}
	}
	return ""
}

// Mail is a received message taken apart: its headers, plain-text body
// and attachments by file name.
type Mail struct {
	Header      mail.Header
	Subject     string
	Text        string
	Attachments map[string][]byte
	// Types are the attachments' MIME types by file name.
	Types map[string]string
}

// ParseMail takes a raw MIME message apart (multipart/mixed with a text
// part and attachments, or a single text part).
func ParseMail(t testing.TB, raw []byte) *Mail {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("lab: not a mail message: %v", err)
	}
	dec := new(mime.WordDecoder)
	subj, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("lab: subject: %v", err)
	}
	out := &Mail{Header: msg.Header, Subject: subj, Attachments: map[string][]byte{}, Types: map[string]string{}}
	walkPart(t, out, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body)
	return out
}

func walkPart(t testing.TB, out *Mail, ctype, cte, disp string, body io.Reader) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("lab: multipart: %v", err)
			}
			walkPart(t, out, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), p)
		}
	}
	var r io.Reader = body
	switch strings.ToLower(cte) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body) // skips line breaks
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("lab: part body: %v", err)
	}
	name := ""
	if d, dp, err := mime.ParseMediaType(disp); err == nil && (d == "attachment" || d == "inline") {
		name = dp["filename"]
	}
	if name == "" {
		name = params["name"]
	}
	if name != "" {
		out.Attachments[name] = data
		out.Types[name] = mt
		return
	}
	if mt == "text/plain" {
		out.Text += string(data)
	}
}
