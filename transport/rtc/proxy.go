package rtc

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// proxyTimeout bounds connecting to the proxy and its answer to CONNECT.
const proxyTimeout = 15 * time.Second

// connectDialer reaches TCP addresses through an HTTP proxy's CONNECT
// method (RFC 9110, Section 9.3.6). pion's ICE agent uses it to reach TURN
// servers over TCP and TLS.
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

// Dial opens a tunnel to addr. network must be a TCP network.
func (d *connectDialer) Dial(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), proxyTimeout)
	defer cancel()
	return d.DialContext(ctx, network, addr)
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
