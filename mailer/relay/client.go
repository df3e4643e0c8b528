package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/mailer"
)

// Send asks the server at serverURL to e-mail the invitation file to
// to, signed with this device's key. pin, if not "", is the server's
// certificate fingerprint ("sha256:HEX", as assist serve prints and assist
// login saves); without it the system's authorities must vouch for the
// certificate. The signature covers the fingerprint of the certificate
// this connection saw, so a server in the middle cannot pass the request
// on.
func Send(ctx context.Context, serverURL, pin string, key ed25519.PrivateKey, to string, file []byte) error {
	to, err := mailer.ParseAddress(to)
	if err != nil {
		return err
	}
	if _, err := invitation.Parse(file); err != nil {
		return err
	}
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("the server %q is not an https:// URL", serverURL)
	}
	var want []byte
	if pin != "" {
		h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(pin)), "sha256:")
		if want, err = hex.DecodeString(strings.ReplaceAll(h, ":", "")); !ok || err != nil || len(want) != 32 {
			return fmt.Errorf("%q is not a certificate fingerprint (sha256:HEX)", pin)
		}
	}
	host := u.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "443")
	}
	// Our own TLS dial: the signature needs the fingerprint of the
	// certificate this very connection presents.
	dialer := &tls.Dialer{Config: &tls.Config{
		ServerName: u.Hostname(), MinVersion: tls.VersionTLS12,
		// With a pin, the pin alone decides (checked below); self-signed
		// servers are the norm for assist serve.
		InsecureSkipVerify: want != nil,
	}}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	c, err := dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("could not reach the server %s (%w); is it running, and is this computer online?", serverURL, err)
	}
	conn := c.(*tls.Conn)
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		conn.Close()
		return errors.New("the server showed no certificate")
	}
	fp := sha256.Sum256(certs[0].Raw)
	if want != nil && subtle.ConstantTimeCompare(fp[:], want) != 1 {
		conn.Close()
		return fmt.Errorf("the server %s showed a certificate other than the one pinned (%s): run assist login again if it was renewed", serverURL, pin)
	}
	now := time.Now().Unix()
	b64 := base64.RawURLEncoding
	body, err := json.Marshal(Request{
		Key: b64.EncodeToString(key.Public().(ed25519.PublicKey)), Time: now, To: to,
		Invitation: b64.EncodeToString(file),
		Sig:        b64.EncodeToString(ed25519.Sign(key, SignedBytes(fp, now, to, file))),
	})
	if err != nil {
		conn.Close()
		return err
	}
	used := false
	tr := &http.Transport{
		DialTLSContext: func(context.Context, string, string) (net.Conn, error) {
			if used {
				return nil, errors.New("relay: one request per connection")
			}
			used = true
			return conn, nil
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+u.Host+Path, bytes.NewReader(body))
	if err != nil {
		conn.Close()
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("asking the server to send the e-mail: %w", err)
	}
	defer resp.Body.Close()
	var a Answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<10)).Decode(&a); err != nil || (!a.Sent && a.Message == "") {
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("the server %s does not send e-mail (it has no mail server set up); use --email-via smtp or program", serverURL)
		}
		return fmt.Errorf("the server %s answered %s", serverURL, resp.Status)
	}
	if !a.Sent {
		return fmt.Errorf("the server did not send the e-mail: %s", clip(a.Message))
	}
	return nil
}

// clip keeps a server's words short and printable: they are untrusted.
func clip(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r != 0x7f && b.Len() < 300 {
			b.WriteRune(r)
		}
	}
	return b.String()
}
