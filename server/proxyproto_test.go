package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// proxyServer is an HTTPS server on 127.0.0.1 that answers every request
// with the client address it sees, its listener wrapped in ProxyProtocol
// (trusting trusted) unless wrap is false.
type proxyServer struct {
	addr string
	fp   string
}

func startProxyServer(t *testing.T, wrap bool, trusted []netip.Prefix) *proxyServer {
	t.Helper()
	cert, err := LoadOrCreateCert(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &proxyServer{addr: ln.Addr().String(), fp: CertFingerprint(cert)}
	if wrap {
		ln = ProxyProtocol(ln, trusted)
	}
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, r.RemoteAddr)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.ServeTLS(ln, "", "")
	}()
	t.Cleanup(func() {
		_ = hs.Close()
		<-done
	})
	return ps
}

// get connects from src, sends header (if any) and then an HTTPS request,
// and returns the client address the server saw.
func (ps *proxyServer) get(src string, header *proxyproto.Header) (string, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", ps.addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if header != nil {
		if _, err := header.WriteTo(c); err != nil {
			return "", err
		}
	}
	tc := tls.Client(c, PinnedTLSConfig(ps.fp))
	if err := tc.HandshakeContext(context.Background()); err != nil {
		return "", err
	}
	if _, err := io.WriteString(tc, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	host, _, err := net.SplitHostPort(string(b))
	return host, err
}

func proxyHeader(version byte, cmd proxyproto.ProtocolVersionAndCommand, proto proxyproto.AddressFamilyAndProtocol, src string) *proxyproto.Header {
	h := &proxyproto.Header{Version: version, Command: cmd, TransportProtocol: proto}
	if src != "" {
		ap := netip.MustParseAddrPort(src)
		h.SourceAddr = net.TCPAddrFromAddrPort(ap)
		dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 8443)
		if ap.Addr().Is6() {
			dst = netip.AddrPortFrom(netip.MustParseAddr("::1"), 8443)
		}
		h.DestinationAddr = net.TCPAddrFromAddrPort(dst)
		if proto == proxyproto.UDPv4 {
			h.SourceAddr = net.UDPAddrFromAddrPort(ap)
			h.DestinationAddr = net.UDPAddrFromAddrPort(dst)
		}
	}
	return h
}

// TestProxyProtocolListener: the balancer (127.0.0.2, trusted) names the
// client in a v1 or v2 header and the server sees that client; a trusted
// source without a header, an untrusted one with a header, and a header
// for anything but TCP are refused; an untrusted source without a header
// is itself the client. Without ProxyProtocol a header is garbage.
func TestProxyProtocolListener(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	on := startProxyServer(t, true, trusted)
	off := startProxyServer(t, false, nil)
	const client4, client6 = "203.0.113.7:50000", "[2001:db8::7]:50000"
	v1 := proxyHeader(1, proxyproto.PROXY, proxyproto.TCPv4, client4)
	v2 := proxyHeader(2, proxyproto.PROXY, proxyproto.TCPv4, client4)
	for _, tc := range []struct {
		name   string
		srv    *proxyServer
		src    string
		header *proxyproto.Header
		want   string // "" = refused
	}{
		{"trusted v1", on, "127.0.0.2", v1, "203.0.113.7"},
		{"trusted v2", on, "127.0.0.2", v2, "203.0.113.7"},
		{"trusted v2 IPv6 client", on, "127.0.0.2", proxyHeader(2, proxyproto.PROXY, proxyproto.TCPv6, client6), "2001:db8::7"},
		{"trusted v1 IPv6 client", on, "127.0.0.2", proxyHeader(1, proxyproto.PROXY, proxyproto.TCPv6, client6), "2001:db8::7"},
		{"trusted v2 LOCAL (a health check)", on, "127.0.0.2", proxyHeader(2, proxyproto.LOCAL, proxyproto.UNSPEC, ""), "127.0.0.2"},
		{"trusted v2 UDP", on, "127.0.0.2", proxyHeader(2, proxyproto.PROXY, proxyproto.UDPv4, client4), ""},
		{"trusted without header", on, "127.0.0.2", nil, ""},
		{"untrusted v1", on, "127.0.0.3", v1, ""},
		{"untrusted v2", on, "127.0.0.3", v2, ""},
		{"untrusted without header", on, "127.0.0.3", nil, "127.0.0.3"},
		{"flag off: v1 is garbage", off, "127.0.0.2", v1, ""},
		{"flag off: v2 is garbage", off, "127.0.0.2", v2, ""},
		{"flag off: without header", off, "127.0.0.2", nil, "127.0.0.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.srv.get(tc.src, tc.header)
			switch {
			case tc.want == "" && err == nil:
				t.Fatalf("served, as %s; want the connection refused", got)
			case tc.want != "" && err != nil:
				t.Fatalf("refused (%v); want served as %s", err, tc.want)
			case got != tc.want:
				t.Fatalf("the server saw %s, want %s", got, tc.want)
			}
		})
	}
}

func TestProxyProtocolParseFrom(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // nil: an error
	}{
		{"10.0.0.5", []string{"10.0.0.5/32"}},
		{"10.0.0.5, 10.1.0.0/24 ,fd00::/64", []string{"10.0.0.5/32", "10.1.0.0/24", "fd00::/64"}},
		{"10.1.0.9/24", []string{"10.1.0.0/24"}},
		{"::ffff:10.0.0.5", []string{"10.0.0.5/32"}},
		{"::1", []string{"::1/128"}},
		{"", nil},
		{" , ", nil},
		{"haproxy.internal", nil},
		{"10.0.0.0/33", nil},
		{"fe80::1%eth0", nil},
	} {
		got, err := ParseProxyFrom(tc.in)
		if tc.want == nil {
			if err == nil {
				t.Errorf("ParseProxyFrom(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if err != nil || !slices.Equal(s, tc.want) {
			t.Errorf("ParseProxyFrom(%q) = %v, %v; want %v", tc.in, s, err, tc.want)
		}
	}
}

// fixedConn is one end of a pipe that says it comes from addr.
type fixedConn struct {
	net.Conn
	addr net.Addr
}

func (c fixedConn) RemoteAddr() net.Addr { return c.addr }

// oneConnListener accepts c once, then reports itself closed.
type oneConnListener struct {
	c    chan net.Conn
	addr net.Addr
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if c, ok := <-l.c; ok {
		return c, nil
	}
	return nil, net.ErrClosed
}
func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.addr }

// FuzzProxyProtocol feeds arbitrary first bytes from a trusted and from
// an untrusted source through ProxyProtocol: it must not panic; a
// connection it lets through from the trusted source had a valid header
// and names a TCP client (or, for LOCAL, the source itself), and one from
// the untrusted source keeps the source's address and its bytes.
func FuzzProxyProtocol(f *testing.F) {
	for _, h := range []*proxyproto.Header{
		proxyHeader(1, proxyproto.PROXY, proxyproto.TCPv4, "203.0.113.7:50000"),
		proxyHeader(2, proxyproto.PROXY, proxyproto.TCPv6, "[2001:db8::7]:50000"),
		proxyHeader(2, proxyproto.LOCAL, proxyproto.UNSPEC, ""),
		proxyHeader(2, proxyproto.PROXY, proxyproto.UDPv4, "203.0.113.7:50000"),
	} {
		b, err := h.Format()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(b, "\x16\x03\x01hello"...))
	}
	f.Add([]byte("PROXY UNKNOWN\r\n\x16\x03\x01"))
	f.Add([]byte("\x16\x03\x01\x02\x00"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x31\x00\x0c"))
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	balancer := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}
	stranger := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3), Port: 40000}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, from := range []*net.TCPAddr{balancer, stranger} {
			a, b := net.Pipe()
			l := &oneConnListener{c: make(chan net.Conn, 1), addr: balancer}
			l.c <- fixedConn{Conn: a, addr: from}
			close(l.c)
			go func() {
				_ = b.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = b.Write(data)
				b.Close()
			}()
			c, err := ProxyProtocol(l, trusted).Accept()
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			got, rerr := io.ReadAll(c)
			remote := c.RemoteAddr()
			c.Close()
			if rerr != nil {
				continue // refused
			}
			if from == stranger {
				if remote.String() != stranger.String() || string(got) != string(data) {
					t.Fatalf("from an untrusted source: remote %v, %q; want %v and the bytes as sent", remote, got, stranger)
				}
				continue
			}
			if _, ok := remote.(*net.TCPAddr); !ok {
				t.Fatalf("from the balancer: remote %T %v, want a TCP address", remote, remote)
			}
			// A header is required from the balancer: it was read, and
			// only it.
			if len(got) >= len(data) || !strings.HasSuffix(string(data), string(got)) {
				t.Fatalf("from the balancer: %q read as %q; want a header taken off", data, got)
			}
		}
	})
}
