package rendezvous

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/transport"
	"github.com/assist-project/assist/transport/rtc"
)

// Timeouts of the rendezvous path.
const (
	// signalTimeout bounds dialling the server and one request (register,
	// join) or one relayed message.
	signalTimeout = 15 * time.Second
	// RTCTimeout bounds one WebRTC setup and handshake: ICE over TURN
	// through a proxy can take several seconds.
	RTCTimeout = 30 * time.Second
	// firstMessageTimeout bounds the wait for a paired expert's first
	// message: an expert that pairs and stays silent holds the code.
	firstMessageTimeout = 5 * time.Second
	// queueTimeout bounds a join that waits in line at the server (the
	// novice is paired with another expert): the server's longest wait
	// (server.Config.QueueTimeout, 60 s) and a margin.
	queueTimeout = 60*time.Second + signalTimeout
	// maxRegisterBackoff caps the pause between attempts to register again
	// after the server went away.
	maxRegisterBackoff = 30 * time.Second
)

// rtcLoopback reports whether WebRTC should gather loopback candidates: only
// when the server itself is on loopback, which means both ends are on this
// machine (tests, demos) and loopback may be the only path between them.
// Elsewhere loopback candidates would only cost useless checks.
func rtcLoopback(serverURL string) bool {
	u, err := url.Parse(serverURL)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(u.Hostname())
	return err == nil && ip.IsLoopback()
}

// iceServers converts the server's ICE server list for pion.
func iceServers(list []server.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(list))
	for _, s := range list {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// signalConn is a signalling connection with one goroutine reading it. The
// websocket closes itself when a read's context is cancelled, so rtc (which
// cancels its reads when it stops signalling) must never read it directly:
// it reads from msgs instead.
type signalConn struct {
	c      *server.Client
	msgs   chan server.Message
	done   chan struct{} // closed when the reader stops
	err    error         // why it stopped; read after done
	closed chan struct{}
	once   sync.Once
}

// dialSignal connects to the server.
func dialSignal(ctx context.Context, serverURL, fingerprint string) (*server.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	c, err := server.DialSignal(ctx, serverURL, fingerprint)
	if err != nil {
		return nil, fmt.Errorf("rendezvous server: %w", err)
	}
	return c, nil
}

// startReading starts the reader of c, once its request (register, join)
// got its answer.
func startReading(c *server.Client) *signalConn {
	s := &signalConn{c: c, msgs: make(chan server.Message, 64), done: make(chan struct{}), closed: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			m, err := c.Recv(context.Background())
			var se *server.SignalError
			if err != nil && !errors.As(err, &se) {
				s.err = classifyRecvError(err)
				return
			}
			select {
			case s.msgs <- m:
			case <-s.closed:
				s.err = errors.New("closed")
				return
			}
		}
	}()
	return s
}

// classifyRecvError tells a server that broke the protocol (a message that
// is not JSON, or a binary one: rtc.ErrSignalling, so an attempt under way
// ends at once with that reason) from a connection that merely went away
// (the server restarting, the network), which an established session
// outlives and an attempt may too.
func classifyRecvError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.Is(err, server.ErrMalformedMessage) || errors.As(err, &syntax) || errors.As(err, &typ) || strings.HasSuffix(err.Error(), "binary message") {
		return fmt.Errorf("%w: %v", rtc.ErrSignalling, err)
	}
	return err
}

// next returns the next message from the server, or why there is none.
func (s *signalConn) next(ctx context.Context) (server.Message, error) {
	select {
	case m := <-s.msgs:
		return m, nil
	case <-s.done:
		select {
		case m := <-s.msgs:
			return m, nil
		default:
		}
		if errors.Is(s.err, rtc.ErrSignalling) {
			return server.Message{}, s.err
		}
		return server.Message{}, fmt.Errorf("connection to the rendezvous server lost: %w", s.err)
	case <-ctx.Done():
		return server.Message{}, ctx.Err()
	}
}

// send sends one message. Its own context: a write cancelled half-way
// would close the websocket under the other users of the connection.
func (s *signalConn) send(m server.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), signalTimeout)
	defer cancel()
	return s.c.Send(ctx, m)
}

// bye ends the pairing session, if it is still the current one, telling
// the peer why. Naming the session keeps a late bye from ending the next
// expert's pairing.
func (s *signalConn) bye(session, reason string) {
	if len(reason) > server.MaxReasonLen {
		reason = reason[:server.MaxReasonLen]
	}
	if err := s.send(server.Message{Type: server.TypeBye, Session: session, Reason: reason}); err != nil {
		slog.Debug("rendezvous server: bye not sent", "err", err)
	}
}

func (s *signalConn) close() {
	s.once.Do(func() {
		close(s.closed)
		s.c.Close()
	})
}

// peerEndedError is the peer ending the pairing before the connection was
// set up: the novice's agent turning the expert away, or either end
// leaving the server.
type peerEndedError struct{ reason string }

// Unwrap tells the novice's refusals apart by their words (a bye's reason
// is free text): transport.ErrDenied while the invitation rests after a
// no, transport.ErrClosed once the noes closed it.
func (e *peerEndedError) Unwrap() error {
	switch {
	case strings.HasPrefix(e.reason, transport.DeniedPrefix):
		return transport.ErrDenied
	case strings.HasPrefix(e.reason, closedPrefix):
		return transport.ErrClosed
	}
	return nil
}

// closedPrefix starts transport.ClosedMessage (and is not DeniedPrefix).
const closedPrefix = "The person you are helping said no "

func (e *peerEndedError) Error() string {
	switch e.reason {
	case "":
		return "the other computer left the rendezvous server before the connection was set up"
	case server.ReasonAuthFailed:
		return "the other computer ended the attempt: " + rtc.ErrWrongPassword.Error()
	}
	if e.Unwrap() != nil {
		return e.reason // the novice's refusal, in words for the expert
	}
	return "the other computer ended the attempt: " + e.reason
}

// relaySignaler carries rtc's signalling in the server's relay messages
// of one pairing.
type relaySignaler struct {
	s       *signalConn // where it sends
	in      messages    // where it reads: s itself, or a novice's link
	session string      // the pairing's session id
	// ended is called when the peer ends the pairing (bye, peer-left).
	ended func(*peerEndedError)

	// broken is closed when Recv failed for good: the pairing ended, the
	// connection broke, or a bad message came.
	brokenOnce sync.Once
	broken     chan struct{}
	brokenErr  error
}

func newRelaySignaler(s *signalConn, in messages, session string) *relaySignaler {
	return &relaySignaler{s: s, in: in, session: session, broken: make(chan struct{})}
}

// err is why the signaler broke; call it after broken is closed.
func (r *relaySignaler) err() error { return r.brokenErr }

func (r *relaySignaler) fail(err error) error {
	r.brokenOnce.Do(func() {
		r.brokenErr = err
		close(r.broken)
	})
	return err
}

var _ rtc.Signaler = (*relaySignaler)(nil)

func (r *relaySignaler) Send(ctx context.Context, msg []byte) error {
	data, err := json.Marshal(base64.StdEncoding.EncodeToString(msg))
	if err != nil {
		return err
	}
	return r.s.send(server.Message{Type: server.TypeRelay, Session: r.session, Data: data})
}

func (r *relaySignaler) Recv(ctx context.Context) ([]byte, error) {
	b, err := r.recv(ctx)
	if err != nil && ctx.Err() == nil {
		r.fail(err)
	}
	return b, err
}

func (r *relaySignaler) recv(ctx context.Context) ([]byte, error) {
	for {
		m, err := r.in.next(ctx)
		if err != nil {
			return nil, err
		}
		switch m.Type {
		case server.TypeRelay:
			var s string
			if err := json.Unmarshal(m.Data, &s); err != nil {
				return nil, fmt.Errorf("%w: relayed data is not a string", rtc.ErrSignalling)
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("%w: relayed data is not base64", rtc.ErrSignalling)
			}
			return b, nil
		case server.TypeBye, server.TypePeerLeft:
			e := &peerEndedError{reason: printable(m.Reason)}
			if r.ended != nil {
				r.ended(e)
			}
			return nil, e
		case server.TypeError:
			if m.Code == server.CodeNotPaired {
				// The answer to a late bye or relay of a pairing that is
				// over (errors name no session); the end of this one
				// comes as "bye" or "peer-left".
				continue
			}
			// The server refused one of our relays (we broke a limit):
			// what we sent is lost, so the attempt cannot go on. An
			// unknown code is a server we do not understand.
			return nil, fmt.Errorf("%w: the rendezvous server answered with error %q: %s", rtc.ErrSignalling, printable(m.Code), printable(m.Message))
		case server.TypeRegistered, server.TypePaired:
			// Not signalling: a late answer to a request.
			continue
		}
		return nil, fmt.Errorf("%w: unknown message type %q from the rendezvous server", rtc.ErrSignalling, printable(m.Type))
	}
}

// printable drops control characters from text a peer or the server sent,
// before it reaches a terminal, and bounds its length.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' || r == '\u202d' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) > server.MaxReasonLen {
		s = strings.ToValidUTF8(s[:server.MaxReasonLen], "")
	}
	return s
}

// turnPin turns the pinned fingerprint of the rendezvous server
// ("sha256:HEX", --server-fingerprint) into the certificate hash its TURN
// server over TLS may present (rtc.Config.TURNPin): the embedded TURN
// server shares the HTTPS certificate, self-signed unless the operator
// gave one. Without a valid pin TURN over TLS relies on the system's
// certificate authorities (a malformed one has already failed the
// connection to the server itself).
func turnPin(fingerprint string) []byte {
	hexSum, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(fingerprint)), "sha256:")
	if !ok {
		return nil
	}
	sum, err := hex.DecodeString(hexSum)
	if err != nil || len(sum) != sha256.Size {
		return nil
	}
	return sum
}
