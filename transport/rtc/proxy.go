package rtc

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// Deadlines of one TCP or TLS connection to a TURN server, from the first
// SYN to the end of the TLS handshake. pion dials TURN over TCP without
// one, so behind a firewall that drops SYNs a closing agent (which waits
// for its gathering) hung until the kernel gave up, about two minutes.
const (
	turnDialTimeout = 5 * time.Second
	// proxyTimeout also covers the proxy's connection to the server and
	// its answer to CONNECT.
	proxyTimeout = 10 * time.Second
)

// turnDialer is how the ICE agent reaches TURN servers over TCP and TLS.
// Once an agent has a proxy dialer (SettingEngine.SetICEProxyDialer) it
// hands every TCP and TLS TURN connection to it and uses what comes back
// as is, so turnDialer does the whole job that pion would otherwise do, and
// what pion does not:
//
//   - a deadline on connecting (see turnDialTimeout);
//   - an HTTP proxy (CONNECT), Config.ProxyURL or the environment's
//     HTTPS_PROXY and NO_PROXY, decided per server;
//   - TLS for turns: servers, done here so that it also runs inside a
//     proxy's tunnel (pion sends TURN over a proxied connection in the
//     clear, which a TURN server on a TLS port never answers), and so that
//     the rendezvous server's certificate can be pinned (Config.TURNPin):
//     pion checks TURN certificates against the system's roots only, and
//     assist serve's certificate is self-signed by default.
//
// pion says only which address to reach, not the URL's scheme, so the
// scheme is looked up by address in the ICE servers' URLs (tlsHosts).
type turnDialer struct {
	// tlsHosts maps host:port (as pion joins them) of each turns: server
	// over TCP to the host its certificate must name; Conn.SetICEServers
	// adds to it while pion dials, hence mu.
	mu       sync.Mutex
	tlsHosts map[string]string
	// pin is the SHA-256 of a certificate (DER) a TURN server may present
	// instead of one that roots vouch for; nil: none.
	pin []byte
	// roots are the certificate authorities; nil: the system's.
	roots *x509.CertPool
	// proxy returns the proxy for a server's host:port, or nil for none.
	proxy func(addr string) (*url.URL, error)
	// timeout and proxyTimeout bound one dial, without and with a proxy
	// (turnDialTimeout and proxyTimeout; shorter in tests).
	timeout, proxyTimeout time.Duration
}

// newTURNDialer builds the dialer for cfg's ICE servers.
func newTURNDialer(cfg *Config) (*turnDialer, error) {
	d := &turnDialer{tlsHosts: turnTLSHosts(cfg.ICEServers), pin: cfg.TURNPin, roots: cfg.turnRoots,
		timeout: turnDialTimeout, proxyTimeout: proxyTimeout}
	if len(d.pin) != 0 && len(d.pin) != sha256.Size {
		return nil, fmt.Errorf("TURN certificate pin: %d bytes, want a SHA-256 (%d)", len(d.pin), sha256.Size)
	}
	if cfg.ProxyURL != nil {
		if _, err := newConnectDialer(cfg.ProxyURL); err != nil {
			return nil, err
		}
		d.proxy = func(string) (*url.URL, error) { return cfg.ProxyURL, nil }
	} else {
		d.proxy = func(addr string) (*url.URL, error) {
			req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Scheme: "https", Host: addr}}
			return http.ProxyFromEnvironment(req)
		}
	}
	return d, nil
}

// turnTLSHosts finds the TURN servers over TLS in servers, keyed by
// host:port exactly as pion's gathering joins them. A URL that does not
// parse is left for pion to reject. Should one address be listed both
// as turns: and as turn:?transport=tcp, TLS wins: no server answers both
// on one port.
func turnTLSHosts(servers []webrtc.ICEServer) map[string]string {
	m := make(map[string]string)
	for _, s := range servers {
		for _, raw := range s.URLs {
			u, err := stun.ParseURI(raw)
			if err != nil || u.Scheme != stun.SchemeTypeTURNS || u.Proto != stun.ProtoTypeTCP {
				continue
			}
			m[net.JoinHostPort(u.Host, strconv.Itoa(u.Port))] = u.Host
		}
	}
	return m
}

// addServers adds the turns: servers among servers to those dialled over
// TLS. The old ones stay: a dial pion started with them may still come.
func (d *turnDialer) addServers(servers []webrtc.ICEServer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	maps.Copy(d.tlsHosts, turnTLSHosts(servers))
}

// Dial connects to the TURN server at addr, within turnDialTimeout (or
// proxyTimeout through a proxy), and over TLS when it is a turns: server.
// network is pion's: "tcp4" or "tcp6".
func (d *turnDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

// DialContext is Dial, also bounded by ctx.
func (d *turnDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("TURN server %s: cannot dial network %q", addr, network)
	}
	proxy, err := d.proxy(addr)
	if err != nil {
		return nil, fmt.Errorf("TURN server %s: proxy: %w", addr, err)
	}
	timeout := d.timeout
	if proxy != nil {
		timeout = d.proxyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	if proxy == nil {
		var nd net.Dialer
		conn, err = nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, fmt.Errorf("TURN server %s: %w", addr, err)
		}
	} else {
		// pion asks once per IP family; one tunnel per server is enough
		// (the proxy resolves names and picks the family itself).
		if !proxiedFamily(network, addr) {
			return nil, fmt.Errorf("TURN server %s: tunnelled through the proxy once, not again over %s", addr, network)
		}
		cd, err := newConnectDialer(proxy)
		if err != nil {
			return nil, err
		}
		if conn, err = cd.DialContext(ctx, "tcp", addr); err != nil {
			return nil, fmt.Errorf("TURN server %s: %w", addr, err)
		}
	}
	d.mu.Lock()
	host, ok := d.tlsHosts[addr]
	d.mu.Unlock()
	if !ok {
		return conn, nil
	}
	tc := tls.Client(conn, d.tlsConfig(host))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TURN server %s: TLS: %w", addr, err)
	}
	return tc, nil
}

// proxiedFamily reports whether pion's network (tcp4, tcp6) is the one to
// tunnel addr over: an IP address's own family, and tcp4 for a name.
func proxiedFamily(network, addr string) bool {
	if network == "tcp" {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return network == "tcp4"
	}
	return (network == "tcp4") == ip.Unmap().Is4()
}

// tlsConfig is the TLS client configuration for the TURN server host. The
// pinned certificate is accepted whatever its names and issuer (the
// rendezvous server's own, shared by its embedded TURN server); any other
// certificate must verify against the roots for host, as without a pin,
// so that TURN servers other than the rendezvous server's still work.
func (d *turnDialer) tlsConfig(host string) *tls.Config {
	cfg := &tls.Config{ServerName: host, RootCAs: d.roots, MinVersion: tls.VersionTLS12}
	if d.pin == nil {
		return cfg
	}
	// The usual verification is redone below when the pin does not match.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("no certificate")
		}
		leaf := cs.PeerCertificates[0]
		sum := sha256.Sum256(leaf.Raw)
		if subtle.ConstantTimeCompare(sum[:], d.pin) == 1 {
			return nil
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: d.roots, Intermediates: inter, DNSName: host}); err != nil {
			return fmt.Errorf("certificate is neither the rendezvous server's (pinned) nor trusted: %w", err)
		}
		return nil
	}
	return cfg
}

// connectDialer reaches TCP addresses through an HTTP proxy's CONNECT
// method (RFC 9110, Section 9.3.6), for turnDialer.
type connectDialer struct {
	proxy *url.URL
}

func newConnectDialer(u *url.URL) (*connectDialer, error) {
	switch u.Scheme {
	case "http", "https":
	default:
		return nil, fmt.Errorf("proxy %s: unsupported scheme %q (want http or https)", u.Redacted(), u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("proxy %s: no host", u.Redacted())
	}
	return &connectDialer{proxy: u}, nil
}

// DialContext opens a tunnel to addr.
func (d *connectDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("proxy: cannot tunnel network %q", network)
	}
	proxyAddr := d.proxy.Host
	if d.proxy.Port() == "" {
		port := "80"
		if d.proxy.Scheme == "https" {
			port = "443"
		}
		proxyAddr = net.JoinHostPort(d.proxy.Hostname(), port)
	}
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, "tcp", proxyAddr)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", d.proxy.Redacted(), err)
	}
	conn := raw
	if d.proxy.Scheme == "https" {
		tc := tls.Client(raw, &tls.Config{ServerName: d.proxy.Hostname()})
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("proxy %s: tls: %w", d.proxy.Redacted(), err)
		}
		conn = tc
	}
	// Bound the CONNECT exchange by ctx.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	c, err := d.connect(conn, addr)
	if !stop() {
		err = fmt.Errorf("proxy %s: CONNECT %s: %w", d.proxy.Redacted(), addr, ctx.Err())
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	return c, nil
}

func (d *connectDialer) connect(conn net.Conn, addr string) (net.Conn, error) {
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: make(http.Header),
	}
	if u := d.proxy.User; u != nil {
		pw, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("proxy %s: CONNECT %s: %w", d.proxy.Redacted(), addr, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: CONNECT %s: %w", d.proxy.Redacted(), addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("proxy %s: CONNECT %s: %s", d.proxy.Redacted(), addr, resp.Status)
	}
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// bufferedConn is a tunnel whose first bytes arrived with the proxy's
// answer. LocalAddr stays the TCP address, which pion insists on.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
