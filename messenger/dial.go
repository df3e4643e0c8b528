//go:build !js

package messenger

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/internal/dialhint"
)

// dialWS opens the WebSocket of serverURL's messenger and returns the
// SHA-256 of the TLS leaf certificate it saw. With a fingerprint only that
// certificate is accepted; without, the system's roots verify it.
func dialWS(ctx context.Context, serverURL, fingerprint string) (*websocket.Conn, [32]byte, error) {
	var seen [32]byte
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, seen, fmt.Errorf("messenger: server URL %q: want https://HOST[:PORT]", serverURL)
	}
	var pin [32]byte
	if fingerprint != "" {
		if pin, err = ParseFingerprint(fingerprint); err != nil {
			return nil, seen, err
		}
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if fingerprint != "" {
		// Chain and name checks are replaced by the pin, as in
		// server.PinnedTLSConfig.
		tlsConf.InsecureSkipVerify = true
	}
	tlsConf.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("messenger: the server sent no certificate")
		}
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if fingerprint != "" && sum != pin {
			return fmt.Errorf("messenger: server certificate fingerprint %s, want %s", FormatFingerprint(sum), fingerprint)
		}
		seen = sum
		return nil
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsConf}
	defer tr.CloseIdleConnections()
	u.Scheme, u.Path, u.RawQuery, u.Fragment = "wss", "/v1/messenger", "", ""
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		if why := refusal(resp); why != "" {
			return nil, seen, fmt.Errorf("messenger: the server refused the connection (HTTP %d): %s", resp.StatusCode, why)
		}
		return nil, seen, fmt.Errorf("messenger: %w", dialhint.Explain(serverURL, err))
	}
	return ws, seen, nil
}

// refusal is the server's reason for refusing a connection it is too busy
// (or too loaded by this address) to take, which says when to try again:
// the first line of the body, printable text only; "" for any other
// answer.
func refusal(resp *http.Response) string {
	if resp == nil || resp.Body == nil || resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests {
		return ""
	}
	// The websocket package leaves the first KiB of the body readable.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, line))
}
