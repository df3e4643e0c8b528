package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/internal/dialhint"
)

// Message is one signalling message as a client sends or receives it; only
// the members of its Type are set (see the package documentation).
type Message struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Expires string `json:"expires,omitempty"` // RFC 3339
	// Owner, in "register", is the agent's secret for the id (see
	// NewOwner); the server never sends it.
	Owner   string          `json:"owner,omitempty"`
	Session string          `json:"session,omitempty"`
	ICE     []ICEServer     `json:"ice,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Code    string          `json:"code,omitempty"`
	Message string          `json:"message,omitempty"`
	// From, in the "paired" message a novice gets, is the expert's IP
	// address as the server saw it; the zero Addr when the server did not
	// say.
	From netip.Addr `json:"from,omitzero"`
}

// ErrMalformedMessage is wrapped by the errors of ParseMessage (and so of
// Recv) for a message from the server that breaks the protocol.
var ErrMalformedMessage = errors.New("malformed message from the rendezvous server")

// wireMessage is Message as it arrives, before the checks.
type wireMessage struct {
	Type    *string         `json:"type"`
	ID      string          `json:"id"`
	Expires string          `json:"expires"`
	Session string          `json:"session"`
	ICE     []ICEServer     `json:"ice"`
	Data    json.RawMessage `json:"data"`
	Reason  string          `json:"reason"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	From    *string         `json:"from"`
}

// ParseMessage parses one server-to-client message: one JSON object of
// valid UTF-8 with a string "type", its known members of the right JSON
// types, and "from" (only in "paired") a plain IP address. Unknown
// members are ignored, as the protocol asks, and so are unknown types,
// which the caller judges. Errors wrap ErrMalformedMessage (and the JSON
// error, if any).
func ParseMessage(b []byte) (Message, error) {
	if !utf8.Valid(b) {
		return Message{}, fmt.Errorf("%w: not valid UTF-8", ErrMalformedMessage)
	}
	var w wireMessage
	if err := json.Unmarshal(b, &w); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformedMessage, err)
	}
	if w.Type == nil {
		return Message{}, fmt.Errorf("%w: no \"type\"", ErrMalformedMessage)
	}
	m := Message{Type: *w.Type, ID: w.ID, Expires: w.Expires, Session: w.Session, ICE: w.ICE,
		Data: w.Data, Reason: w.Reason, Code: w.Code, Message: w.Message}
	if w.From != nil {
		if m.Type != TypePaired {
			return Message{}, fmt.Errorf("%w: \"from\" in a %q message", ErrMalformedMessage, m.Type)
		}
		a, err := netip.ParseAddr(*w.From)
		if err != nil || a.Zone() != "" {
			return Message{}, fmt.Errorf("%w: \"from\" is not an IP address: %q", ErrMalformedMessage, clip(*w.From))
		}
		m.From = a
	}
	return m, nil
}

// clip bounds text from the server for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "..."
	}
	return s
}

// Client is an agent's signalling connection to a rendezvous server. Recv
// must be called from one goroutine at a time; the other methods may run
// concurrently with it.
type Client struct {
	ws *websocket.Conn
}

// DialSignal connects to the server at serverURL ("https://HOST:PORT").
// With a fingerprint ("sha256:HEX", as "assist serve" prints) only that
// certificate is accepted; without, the system's roots verify it. HTTPS_PROXY
// and NO_PROXY are honoured.
func DialSignal(ctx context.Context, serverURL, fingerprint string) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server: signal: server URL %q: want https://HOST[:PORT]", serverURL)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if fingerprint != "" {
		tlsConf = PinnedTLSConfig(fingerprint)
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsConf}
	u.Scheme, u.Path, u.RawQuery = "wss", "/v1/signal", ""
	ws, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	tr.CloseIdleConnections()
	if err != nil {
		return nil, fmt.Errorf("server: signal: %w", dialhint.Explain(serverURL, err))
	}
	ws.SetReadLimit(1 << 20)
	return &Client{ws: ws}, nil
}

// Send sends one message.
func (c *Client) Send(ctx context.Context, m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("server: signal: send %s: %w", m.Type, err)
	}
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("server: signal: send %s: %w", m.Type, err)
	}
	return nil
}

// Recv returns the next message. An "error" message comes back as a
// *SignalError (the Message is returned too).
func (c *Client) Recv(ctx context.Context) (Message, error) {
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return Message{}, fmt.Errorf("server: signal: receive: %w", err)
	}
	if typ != websocket.MessageText {
		return Message{}, fmt.Errorf("server: signal: receive: %w: binary message", ErrMalformedMessage)
	}
	m, err := ParseMessage(b)
	if err != nil {
		return Message{}, fmt.Errorf("server: signal: receive: %w", err)
	}
	if m.Type == TypeError {
		return m, &SignalError{Code: m.Code, Message: m.Message}
	}
	return m, nil
}

// expect receives the reply to a request: a message of type want, or the
// server's error.
func (c *Client) expect(ctx context.Context, want string) (Message, error) {
	m, err := c.Recv(ctx)
	if err != nil {
		return m, err
	}
	if m.Type != want {
		return m, fmt.Errorf("server: signal: got a %q message, want %q", m.Type, want)
	}
	return m, nil
}

// Register offers the invitation id until expires (novice) and waits for
// the server's answer. Then Recv returns "paired" when an expert joins.
//
// owner is the agent's secret for the id (NewOwner), the same for every
// registration of it: while the invitation is live, the server lets no
// one else register the id when the agent is away. "" registers without
// one, and anyone may take the id over while the agent is not connected.
func (c *Client) Register(ctx context.Context, id string, expires time.Time, owner string) error {
	if err := c.Send(ctx, Message{Type: TypeRegister, ID: id, Expires: expires.UTC().Format(time.RFC3339), Owner: owner}); err != nil {
		return err
	}
	_, err := c.expect(ctx, TypeRegistered)
	return err
}

// Join pairs with the novice holding invitation id (expert) and returns
// the "paired" message with the session and its ICE servers. While the
// novice is paired with another expert it waits in line (see JoinQueued);
// ctx bounds the whole wait.
func (c *Client) Join(ctx context.Context, id string) (Message, error) {
	return c.JoinQueued(ctx, id, nil)
}

// JoinQueued is Join, calling queued (if not nil) when the server says
// this expert waits in line ("queued"): the novice is paired with another
// expert, and "paired" comes when their pairing ends, or "busy" after the
// server's longest wait.
func (c *Client) JoinQueued(ctx context.Context, id string, queued func()) (Message, error) {
	if err := c.Send(ctx, Message{Type: TypeJoin, ID: id}); err != nil {
		return Message{}, err
	}
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			return m, err
		}
		switch m.Type {
		case TypePaired:
			return m, nil
		case TypeQueued:
			if queued != nil {
				queued()
			}
			continue
		}
		return m, fmt.Errorf("server: signal: got a %q message, want %q", m.Type, TypePaired)
	}
}

// Relay sends data, any JSON value but null, to the peer.
func (c *Client) Relay(ctx context.Context, data json.RawMessage) error {
	return c.Send(ctx, Message{Type: TypeRelay, Data: data})
}

// Bye ends the pairing; reason ReasonAuthFailed reports a failed PAKE.
func (c *Client) Bye(ctx context.Context, reason string) error {
	return c.Send(ctx, Message{Type: TypeBye, Reason: reason})
}

// Close closes the connection.
func (c *Client) Close() error {
	return c.ws.Close(websocket.StatusNormalClosure, "")
}

// NewOwner returns a fresh secret for Client.Register: 128 random bits,
// base64url. Keep it for as long as the agent registers the id.
func NewOwner() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("server: owner secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
