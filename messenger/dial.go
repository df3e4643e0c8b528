//go:build !js

package messenger

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"

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
	ws, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		return nil, seen, fmt.Errorf("messenger: %w", dialhint.Explain(serverURL, err))
	}
	return ws, seen, nil
}
