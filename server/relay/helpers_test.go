package relay

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

var testSecret = []byte("correct horse battery staple")

// testCert returns a server certificate for 127.0.0.1 and a pool trusting it.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relay test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// testRelay is a relay on loopback with every transport on a free port.
type testRelay struct {
	*Relay
	roots *x509.CertPool
	cert  tls.Certificate
}

// startRelay starts a loopback relay; edit may adjust the config.
func startRelay(t testing.TB, edit func(*Config)) *testRelay {
	t.Helper()
	cert, roots := testCert(t)
	cfg := Config{
		UDP:       "127.0.0.1:0",
		TCP:       "127.0.0.1:0",
		TLS:       "127.0.0.1:0",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Realm:     "assist.test",
		Secret:    testSecret,
		Logger:    slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	r, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return &testRelay{Relay: r, roots: roots, cert: cert}
}

// dialConn opens a connected socket to the relay over transport ("udp",
// "tcp" or "tls") and returns it with the server address.
func (r *testRelay) dialConn(t testing.TB, transport string) (net.Conn, string) {
	t.Helper()
	udp, tcp, tlsAddr := r.Addrs()
	var (
		c    net.Conn
		addr string
		err  error
	)
	switch transport {
	case "udp":
		addr = udp.String()
		c, err = net.Dial("udp4", addr)
	case "tcp":
		addr = tcp.String()
		c, err = net.Dial("tcp", addr)
	case "tls":
		addr = tlsAddr.String()
		c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: r.roots, MinVersion: tls.VersionTLS12})
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", transport, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, addr
}

// dial opens the client side of one TURN transport as the packet conn a
// turn.Client runs on, and returns the server address.
func (r *testRelay) dial(t testing.TB, transport string) (net.PacketConn, string) {
	t.Helper()
	if transport == "udp" {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		udp, _, _ := r.Addrs()
		return pc, udp.String()
	}
	c, addr := r.dialConn(t, transport)
	return turn.NewSTUNConn(c), addr
}

// client returns a listening TURN client over transport.
func (r *testRelay) client(t testing.TB, transport, username, password string) *turn.Client {
	t.Helper()
	conn, addr := r.dial(t, transport)
	return r.clientOn(t, conn, addr, username, password)
}

// clientFrom returns a listening TURN client over UDP from the loopback
// address src (Linux routes all of 127/8 to lo): another client address.
func (r *testRelay) clientFrom(t testing.TB, src, username, password string) *turn.Client {
	t.Helper()
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(src, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	udp, _, _ := r.Addrs()
	return r.clientOn(t, pc, udp.String(), username, password)
}

func (r *testRelay) clientOn(t testing.TB, conn net.PacketConn, addr, username, password string) *turn.Client {
	t.Helper()
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr,
		TURNServerAddr: addr,
		Conn:           conn,
		Username:       username,
		Password:       password,
		Realm:          "assist.test",
		RTO:            200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// echoPeer is a UDP peer on loopback that answers every datagram with
// prefix + datagram.
func echoPeer(t testing.TB, prefix string) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte(prefix), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	return pc.LocalAddr().(*net.UDPAddr)
}

// roundTrip sends msg through relayConn to peer until the peer's echo comes
// back (UDP may drop a datagram, so a lost one is retried).
func roundTrip(t testing.TB, relayConn net.PacketConn, peer net.Addr, msg string) {
	t.Helper()
	buf := make([]byte, 2048)
	for range 10 {
		if _, err := relayConn.WriteTo([]byte(msg), peer); err != nil {
			t.Fatalf("WriteTo peer: %v", err)
		}
		_ = relayConn.SetReadDeadline(time.Now().Add(time.Second))
		n, from, err := relayConn.ReadFrom(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil {
			t.Fatalf("ReadFrom relay: %v", err)
		}
		if got, want := string(buf[:n]), "echo:"+msg; got != want || from.String() != peer.String() {
			t.Fatalf("relayed %q from %v, want %q from %v", got, from, want, peer)
		}
		return
	}
	t.Fatal("no answer from the peer through the relay")
}

// waitFor polls cond: allocations are torn down asynchronously.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
