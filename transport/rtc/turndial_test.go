package rtc

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

// testCA is a certificate authority and a server certificate it signed
// for 127.0.0.1, like an operator's real certificate; pinning it instead
// stands for assist serve's self-signed one.
type testCA struct {
	pool *x509.CertPool
	cert tls.Certificate
	pin  []byte // SHA-256 of the server certificate
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "turn"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	sum := sha256.Sum256(der)
	return testCA{pool: pool, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pin: sum[:]}
}

// startTURNS runs a TURN server over TLS on loopback with cert and
// returns its turns: URL.
func startTURNS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(tcp, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         "assist.test",
		LoggerFactory: quiet,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, "secret"), ra.Username == "user"
		},
		ListenerConfigs: []turn.ListenerConfig{{Listener: ln, RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
			RelayAddress: net.ParseIP("127.0.0.1"), Address: "127.0.0.1"}}},
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "turns:" + tcp.Addr().String() + "?transport=tcp"
}

// connectProxy is an HTTP proxy on loopback that allows CONNECT to one
// port only, as corporate proxies allow 443 only.
type connectProxy struct {
	URL     *url.URL
	tunnels atomic.Int32 // CONNECTs it allowed
	refused atomic.Int32 // CONNECTs it refused
}

// startConnectProxy runs a connectProxy that allows CONNECT to allowPort
// and never answers when silent is set (a proxy that hangs).
func startConnectProxy(t *testing.T, allowPort string, silent bool) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{URL: &url.URL{Scheme: "http", Host: ln.Addr().String()}}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Go(func() { p.serve(c, allowPort, silent, track) })
		}
	})
	return p
}

func (p *connectProxy) serve(c net.Conn, allowPort string, silent bool, track func(net.Conn)) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil || silent {
		io.Copy(io.Discard, br)
		return
	}
	_, port, _ := net.SplitHostPort(req.Host)
	if req.Method != http.MethodConnect || port != allowPort {
		p.refused.Add(1)
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := net.Dial("tcp", req.Host)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	track(up)
	defer up.Close()
	p.tunnels.Add(1)
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{})
	go func() { io.Copy(up, br); up.Close(); close(done) }()
	io.Copy(c, up)
	c.Close()
	<-done
}

// TestTURNDialerTLS checks which TURN certificates turnDialer accepts:
// the pinned one whatever its issuer, and any other only if the roots
// vouch for it, directly and through a proxy's tunnel.
func TestTURNDialerTLS(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	turnsURL := startTURNS(t, ca.cert)
	addr := turnsURL[len("turns:") : len(turnsURL)-len("?transport=tcp")]
	_, port, _ := net.SplitHostPort(addr)
	proxy := startConnectProxy(t, port, false)
	for _, tt := range []struct {
		name  string
		pin   []byte
		roots *x509.CertPool
		ok    bool
	}{
		{"pinned", ca.pin, nil, true},
		{"pinned, other roots", ca.pin, other.pool, true},
		{"wrong pin", other.pin, nil, false},
		{"wrong pin, roots vouch", other.pin, ca.pool, true},
		{"roots vouch", nil, ca.pool, true},
		{"no pin, other roots", nil, other.pool, false},
	} {
		for _, via := range []*url.URL{nil, proxy.URL} {
			name := tt.name
			if via != nil {
				name += " via proxy"
			}
			t.Run(name, func(t *testing.T) {
				cfg := testConfig(t)
				cfg.ICEServers = []webrtc.ICEServer{{URLs: []string{turnsURL}}}
				cfg.TURNPin, cfg.turnRoots, cfg.ProxyURL = tt.pin, tt.roots, via
				d, err := newTURNDialer(&cfg)
				if err != nil {
					t.Fatal(err)
				}
				c, err := d.Dial("tcp4", addr)
				if tt.ok != (err == nil) {
					t.Fatalf("Dial: %v, want success %v", err, tt.ok)
				}
				if err != nil {
					return
				}
				defer c.Close()
				if _, ok := c.(*tls.Conn); !ok {
					t.Errorf("Dial returned %T, want a TLS connection", c)
				}
				// pion insists on a TCP local address.
				if _, ok := c.LocalAddr().(*net.TCPAddr); !ok {
					t.Errorf("LocalAddr is %T, want *net.TCPAddr", c.LocalAddr())
				}
			})
		}
	}
}

// TestRelayTLSPinnedThroughProxy connects over TURN over TLS to a server
// with a certificate no authority vouches for (pinned instead), the
// expert through a proxy that allows CONNECT to the TURN port only: the
// case of an expert behind a corporate proxy that allows only 443, against
// assist serve's self-signed certificate.
func TestRelayTLSPinnedThroughProxy(t *testing.T) {
	ca := newTestCA(t)
	turnsURL := startTURNS(t, ca.cert)
	_, port, _ := net.SplitHostPort(turnsURL[len("turns:") : len(turnsURL)-len("?transport=tcp")])
	proxy := startConnectProxy(t, port, false)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ice := []webrtc.ICEServer{{URLs: []string{turnsURL}, Username: "user", Credential: "secret"}}
	ecfg := testConfig(t)
	ecfg.ICEServers, ecfg.RelayOnly, ecfg.TURNPin, ecfg.ProxyURL = ice, true, ca.pin, proxy.URL
	ncfg := testConfig(t)
	ncfg.ICEServers, ncfg.RelayOnly, ncfg.TURNPin = ice, true, ca.pin
	es, ns := sigPair()
	e, n := connectPair(t, ctx, es, ns, ecfg, ncfg)
	if e.err != nil || n.err != nil {
		t.Fatalf("Dial: %v\nAccept: %v", e.err, n.err)
	}
	for _, c := range []struct {
		who string
		c   *Conn
	}{{"expert", e.c}, {"novice", n.c}} {
		if got := c.c.Path(); got != PathRelayTLS {
			t.Errorf("%s Path = %q, want %q", c.who, got, PathRelayTLS)
		}
	}
	if proxy.tunnels.Load() == 0 {
		t.Error("the expert's TURN connection did not go through the proxy")
	}
	exchange(t, e.c, n.c, 64<<10)
}

// TestTURNDialerTimeout checks that a TURN server or proxy that accepts
// the connection and then says nothing cannot hold the dial (and so a
// closing ICE agent) beyond the dialer's deadline.
func TestTURNDialerTimeout(t *testing.T) {
	silent, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { silent.Close(); wg.Wait() })
	wg.Go(func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	})
	addr := silent.Addr().String()
	hung := startConnectProxy(t, "443", true)
	for _, tt := range []struct {
		name  string
		proxy *url.URL
	}{
		{"TLS handshake", nil},
		{"proxy CONNECT", hung.URL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.ICEServers = []webrtc.ICEServer{{URLs: []string{"turns:" + addr + "?transport=tcp"}}}
			cfg.ProxyURL = tt.proxy
			d, err := newTURNDialer(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			d.timeout, d.proxyTimeout = 200*time.Millisecond, 200*time.Millisecond
			c, err := d.Dial("tcp4", addr)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded against a silent peer")
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Dial: %v, want a deadline error", err)
			}
		})
	}
}

func TestTURNTLSHosts(t *testing.T) {
	got := turnTLSHosts([]webrtc.ICEServer{{URLs: []string{
		"turns:198.51.100.1:443?transport=tcp",
		"turns:relay.example",
		"turns:[2001:db8::1]:5349",
		"turns:198.51.100.2:443?transport=udp", // DTLS: pion's own
		"turn:198.51.100.3:3478?transport=tcp",
		"stun:198.51.100.4",
		"turns:",
	}}})
	want := map[string]string{
		"198.51.100.1:443":   "198.51.100.1",
		"relay.example:5349": "relay.example",
		"[2001:db8::1]:5349": "2001:db8::1",
	}
	if len(got) != len(want) {
		t.Errorf("turnTLSHosts = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("turnTLSHosts[%q] = %q, want %q", k, got[k], v)
		}
	}
}

func TestProxiedFamily(t *testing.T) {
	for _, tt := range []struct {
		network, addr string
		want          bool
	}{
		{"tcp4", "198.51.100.1:443", true},
		{"tcp6", "198.51.100.1:443", false},
		{"tcp6", "[2001:db8::1]:443", true},
		{"tcp4", "[2001:db8::1]:443", false},
		{"tcp4", "relay.example:443", true},
		{"tcp6", "relay.example:443", false},
		{"tcp", "relay.example:443", true},
		{"tcp4", "no port", false},
	} {
		if got := proxiedFamily(tt.network, tt.addr); got != tt.want {
			t.Errorf("proxiedFamily(%q, %q) = %v, want %v", tt.network, tt.addr, got, tt.want)
		}
	}
}

func TestNewTURNDialerRejects(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"short pin", Config{TURNPin: []byte{1, 2, 3}}},
		{"socks proxy", Config{ProxyURL: &url.URL{Scheme: "socks5", Host: "127.0.0.1:1080"}}},
		{"proxy without host", Config{ProxyURL: &url.URL{Scheme: "http"}}},
	} {
		if _, err := newTURNDialer(&tt.cfg); err == nil {
			t.Errorf("%s: newTURNDialer accepted it", tt.name)
		}
	}
}

// FuzzTURNTLSHosts feeds ICE server URLs as a rendezvous server could send
// them: whatever they are, turnTLSHosts must not panic, and every address
// it keeps must be host:port.
func FuzzTURNTLSHosts(f *testing.F) {
	for _, s := range []string{"turns:198.51.100.1:443?transport=tcp", "turns:[::1]", "turn:h?transport=tcp", "turns:%zz", "turns::0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		for addr := range turnTLSHosts([]webrtc.ICEServer{{URLs: []string{u}}}) {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				t.Errorf("turnTLSHosts(%q) kept %q: %v", u, addr, err)
			}
		}
	})
}
