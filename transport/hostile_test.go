package transport

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/assist-project/assist/pake"
)

// drain reads from c until it fails, so a server that has said its piece
// does not reset the connection under the client.
func drain(c net.Conn) { io.Copy(io.Discard, c) }

func TestDialNotAssist(t *testing.T) {
	garbage := tcpServer(t, func(c net.Conn) {
		defer c.Close()
		c.Write([]byte("\x00\x01garbage, not TLS at all\r\n"))
		drain(c)
	})
	httpAddr := tcpServer(t, func(c net.Conn) {
		defer c.Close()
		// An HTTP server answers whatever it gets with a 400.
		bufio.NewReader(c).ReadByte()
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		drain(c)
	})
	plainHTTP := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plainHTTP.Close)
	https := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(https.Close)
	// A TLS server that offers ALPN assist/1 but then speaks something else.
	cert, err := newCertificate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	impostor := tcpServer(t, func(c net.Conn) {
		defer c.Close()
		tc := tls.Server(c, serverTLSConfig(cert))
		if tc.Handshake() != nil {
			return
		}
		tc.Write([]byte("HTTP/1.1 200 OK\r\n\r\n"))
		drain(tc)
	})

	for _, tc := range []struct{ name, addr string }{
		{"garbage", garbage},
		{"http answer", httpAddr},
		{"net/http", plainHTTP.Listener.Addr().String()},
		{"https without assist/1", https.Listener.Addr().String()},
		{"tls impostor", impostor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Dial(t.Context(), []string{tc.addr}, dialConfig(testPassword))
			wantHandshakeError(t, err, ErrNotAssist)
			t.Logf("%s: %v", tc.name, err)
		})
	}
}

func TestListenerSurvivesGarbage(t *testing.T) {
	l, sink := newTestListener(t, ListenerConfig{})
	addr := l.Addr().String()
	for _, junk := range []string{
		"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
		"\x16\x03\x01\x00\x05hello", // a TLS record header, then nonsense
		"\xff\xff\xff\xff\xff\xff\xff\xff",
	} {
		c := tcpServerDial(t, addr)
		c.Write([]byte(junk))
		sink.waitOutcome(t, outcomeNotAssist)
		c.Close()
	}
	// TLS with the right ALPN, then a frame that is not a hello.
	tc, err := dialTLS(t.Context(), addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pake.WriteMessage(tc, kindShare, make([]byte, 32))
	sink.waitOutcome(t, outcomeNotAssist)
	tc.Close()

	accepted := acceptAsync(t, l)
	mustDial(t, []string{addr}, dialConfig(testPassword))
	if r := <-accepted; r.err != nil {
		t.Fatal(r.err)
	}
	if got := l.AttemptsLeft(); got != DefaultMaxFailures {
		t.Errorf("garbage cost attempts: %d left", got)
	}
}

// stallers opens three connections that stop at each stage of the
// handshake: after TCP, after TLS, and after the hello (holding an attempt
// reservation and the novice's share).
func stallers(t *testing.T, addr string) []net.Conn {
	t.Helper()
	silent := tcpServerDial(t, addr)
	t.Cleanup(func() { silent.Close() })
	afterTLS, err := dialTLS(t.Context(), addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { afterTLS.Close() })
	afterHello, err := dialTLS(t.Context(), addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { afterHello.Close() })
	hb, _ := hello{Version: ProtocolVersion, InvitationID: testID, Name: "staller"}.Marshal()
	if err := pake.WriteMessage(afterHello, kindHello, hb); err != nil {
		t.Fatal(err)
	}
	if k, _, err := pake.ReadMessage(afterHello, pake.MessageSize); err != nil || k != kindShare {
		t.Fatalf("staller got kind 0x%02x, %v; want the novice's share", k, err)
	}
	return []net.Conn{silent, afterTLS, afterHello}
}

// TestStalledPeersDoNotBlock: peers stuck at every stage of the handshake
// hold no one else up.
func TestStalledPeersDoNotBlock(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{})
	addr := l.Addr().String()
	stallers(t, addr)
	accepted := acceptAsync(t, l)
	mustDial(t, []string{addr}, dialConfig(testPassword))
	if r := <-accepted; r.err != nil {
		t.Fatal(r.err)
	}
}

// TestHandshakeDeadline: the listener's deadline cuts stalled peers off, and
// one that stalled before seeing a confirmation costs no attempt.
func TestHandshakeDeadline(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{HandshakeTimeout: time.Second})
	for _, c := range stallers(t, l.Addr().String()) {
		// Returns once the novice closes; a hang here is the bug.
		io.Copy(io.Discard, c)
	}
	if got := l.AttemptsLeft(); got != DefaultMaxFailures {
		t.Errorf("stallers cost attempts: %d left", got)
	}
}

// TestAbandonAfterConfirmationCounts: a peer that takes the novice's
// confirmation (which tests its guess offline) and hangs up has used an
// attempt.
func TestAbandonAfterConfirmationCounts(t *testing.T) {
	l, sink := newTestListener(t, ListenerConfig{})
	tc, err := dialTLS(t.Context(), l.Addr().String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	hb, _ := hello{Version: ProtocolVersion, InvitationID: testID}.Marshal()
	pake.WriteMessage(tc, kindHello, hb)
	_, share, err := pake.ReadMessage(tc, pake.MessageSize)
	if err != nil {
		t.Fatal(err)
	}
	bind, err := bindingContext(tc)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := pake.New(pake.Config{Password: []byte("a guess"), Context: bind, SessionID: []byte(testID), Role: pake.Initiator})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Finish(share); err != nil {
		t.Fatal(err)
	}
	pake.WriteMessage(tc, kindShare, ex.Message())
	if k, _, err := pake.ReadMessage(tc, pake.ConfirmationSize); err != nil || k != kindConfirm {
		t.Fatalf("got kind 0x%02x, %v; want the novice's confirmation", k, err)
	}
	tc.Close()
	sink.waitOutcome(t, outcomeAbandoned)
	if got := l.AttemptsLeft(); got != DefaultMaxFailures-1 {
		t.Errorf("AttemptsLeft = %d, want %d", got, DefaultMaxFailures-1)
	}
}

func TestBadShareCounts(t *testing.T) {
	l, sink := newTestListener(t, ListenerConfig{})
	tc, err := dialTLS(t.Context(), l.Addr().String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	hb, _ := hello{Version: ProtocolVersion, InvitationID: testID}.Marshal()
	pake.WriteMessage(tc, kindHello, hb)
	if _, _, err := pake.ReadMessage(tc, pake.MessageSize); err != nil {
		t.Fatal(err)
	}
	pake.WriteMessage(tc, kindShare, make([]byte, pake.MessageSize)) // the identity element
	v, err := readVerdict(tc)
	if err != nil {
		t.Fatal(err)
	}
	if v.code != verdictWrongPassword || v.attemptsLeft != DefaultMaxFailures-1 {
		t.Errorf("verdict %+v, want wrong password with %d left", v, DefaultMaxFailures-1)
	}
	sink.waitOutcome(t, outcomeBadShare)
}

func TestVersionRefusal(t *testing.T) {
	l, _ := newTestListener(t, ListenerConfig{})
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"future version", []byte{2, 0xde, 0xad}},
		{"malformed v1", []byte{1, 200, 'x'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := dialTLS(t.Context(), l.Addr().String(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			pake.WriteMessage(conn, kindHello, tc.payload)
			k, p, err := pake.ReadMessage(conn, maxNoviceReply)
			if err != nil || k != kindRefusal {
				t.Fatalf("got kind 0x%02x, %v; want a refusal", k, err)
			}
			r, err := parseRefusal(p)
			if err != nil {
				t.Fatal(err)
			}
			if r.code != refuseVersion {
				t.Errorf("refusal code %d, want %d", r.code, refuseVersion)
			}
			wantHandshakeError(t, refusalError("x", r), ErrVersion)
		})
	}
}
