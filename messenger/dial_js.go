//go:build js

package messenger

import (
	"context"
	"fmt"
	"net/url"

	"github.com/coder/websocket"
)

// dialWS opens the WebSocket of serverURL's messenger from a browser. The
// browser checks the certificate and does not show it, so the fingerprint
// (of the certificate the page was loaded over) is required: it goes into
// the login signature.
func dialWS(ctx context.Context, serverURL, fingerprint string) (*websocket.Conn, [32]byte, error) {
	var seen [32]byte
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, seen, fmt.Errorf("messenger: server URL %q: want https://HOST[:PORT]", serverURL)
	}
	if seen, err = ParseFingerprint(fingerprint); err != nil {
		return nil, seen, err
	}
	u.Scheme, u.Path, u.RawQuery, u.Fragment = "wss", "/v1/messenger", "", ""
	ws, _, err := websocket.Dial(ctx, u.String(), nil)
	if err != nil {
		return nil, seen, fmt.Errorf("messenger: connect to %s: %w", serverURL, err)
	}
	return ws, seen, nil
}
