package transport

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/pake"
)

// frames concatenates handshake frames, for seeds.
func frames(parts ...[]byte) []byte {
	var out []byte
	for i := 0; i+1 < len(parts); i += 2 {
		var w sliceWriter
		pake.WriteMessage(&w, parts[i][0], parts[i+1])
		out = append(out, w...)
	}
	return out
}

type sliceWriter []byte

func (w *sliceWriter) Write(p []byte) (int, error) {
	*w = append(*w, p...)
	return len(p), nil
}

// FuzzNoviceHandshake sends arbitrary bytes to a Listener after TLS, as a
// hostile expert would. The Listener must not panic, must close the
// connection, and must keep serving.
func FuzzNoviceHandshake(f *testing.F) {
	hb, _ := hello{Version: ProtocolVersion, InvitationID: testID, Name: testName}.Marshal()
	f.Add(frames([]byte{kindHello}, hb))
	f.Add(frames([]byte{kindHello}, hb, []byte{kindShare}, make([]byte, 32)))
	f.Add(frames([]byte{kindHello}, hb, []byte{kindShare}, []byte{
		0xe2, 0xf2, 0xae, 0x0a, 0x6a, 0xbc, 0x4e, 0x71, 0xa8, 0x84, 0xa9, 0x61, 0xc5, 0x00, 0x51, 0x5f,
		0x58, 0xe3, 0x0b, 0x6a, 0xa5, 0x82, 0xdd, 0x8d, 0xb6, 0xa6, 0x59, 0x45, 0xe0, 0x8d, 0x2d, 0x76,
	}, []byte{kindConfirm}, make([]byte, 32)))
	f.Add(frames([]byte{kindHello}, []byte{2}))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))

	l := newListenerRaw(f, ListenerConfig{InvitationID: testID, Password: testPassword, MaxFailures: 1 << 30})
	addr := l.Addr().String()
	f.Fuzz(func(t *testing.T, p []byte) {
		tc, err := dialTLS(t.Context(), addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		tc.Write(p)
		tc.CloseWrite()
		// The novice answers what it can and closes; a timeout here means
		// it hung on our bytes.
		if _, err := io.Copy(io.Discard, tc); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("novice did not close: %v", err)
		}
		if l.AttemptsLeft() == 0 {
			t.Fatal("invitation void")
		}
	})
}

// FuzzExpertHandshake answers Dial's hello with arbitrary bytes, as a
// hostile novice (or anything listening at an invitation's address) would.
// Dial must not panic and must return a *HandshakeError.
func FuzzExpertHandshake(f *testing.F) {
	f.Add(frames([]byte{kindRefusal}, []byte{byte(refuseBusy), 'b'}))
	f.Add(frames([]byte{kindShare}, make([]byte, 32)))
	f.Add(frames([]byte{kindShare}, []byte{
		0xe2, 0xf2, 0xae, 0x0a, 0x6a, 0xbc, 0x4e, 0x71, 0xa8, 0x84, 0xa9, 0x61, 0xc5, 0x00, 0x51, 0x5f,
		0x58, 0xe3, 0x0b, 0x6a, 0xa5, 0x82, 0xdd, 0x8d, 0xb6, 0xa6, 0x59, 0x45, 0xe0, 0x8d, 0x2d, 0x76,
	}, []byte{kindConfirm}, make([]byte, 32), []byte{kindVerdict}, []byte{0, 5}))
	f.Add(frames([]byte{kindVerdict}, []byte{1, 4}))

	cert, err := newCertificate(time.Now())
	if err != nil {
		f.Fatal(err)
	}
	var mu sync.Mutex
	var reply []byte
	addr := tcpServer(f, func(c net.Conn) {
		defer c.Close()
		tc := tls.Server(c, serverTLSConfig(cert))
		if tc.Handshake() != nil {
			return
		}
		if _, _, err := pake.ReadMessage(tc, maxHello); err != nil {
			return
		}
		mu.Lock()
		p := reply
		mu.Unlock()
		tc.Write(p)
		tc.CloseWrite()
		drain(tc)
	})
	f.Fuzz(func(t *testing.T, p []byte) {
		mu.Lock()
		reply = p
		mu.Unlock()
		cfg := dialConfig(testPassword)
		cfg.HandshakeTimeout = 10 * time.Second
		c, err := Dial(t.Context(), []string{addr}, cfg)
		if err == nil {
			c.Close()
			t.Fatal("authenticated against a novice that does not know the password")
		}
		var he *HandshakeError
		if !errors.As(err, &he) || he.Kind == nil {
			t.Fatalf("error %v is not a *HandshakeError with a kind", err)
		}
	})
}
