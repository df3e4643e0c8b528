package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/pires/go-proxyproto"
)

// PROXY protocol (HAProxy's, v1 text and v2 binary) on the HTTPS listener,
// for nodes behind a TCP load balancer: without it every client is the
// balancer's address, and the per-address limits (connections, logins,
// registrations, relays) bind all clients together. The header is parsed
// by github.com/pires/go-proxyproto; what is decided here is whom to
// believe.

// proxyHeaderTimeout bounds how long a connection may take to send its
// header (or its first bytes, from a source that sends none), like
// http.Server's ReadHeaderTimeout.
const proxyHeaderTimeout = 10 * time.Second

// DefaultProxyFrom is whom --proxy-protocol trusts unless told otherwise:
// a balancer on the node's own machine.
var DefaultProxyFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// ParseProxyFrom parses a comma-separated list of addresses and CIDR
// prefixes ("10.0.0.5, 10.1.0.0/24, fd00::/64"), the sources whose PROXY
// protocol headers are believed. An empty list is an error: a node that
// trusts nobody has no use for the protocol.
func ParseProxyFrom(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an address or a CIDR prefix (e.g. 10.0.0.5 or 10.0.0.0/24)", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	if len(out) == 0 {
		return nil, errors.New("no address or CIDR prefix given")
	}
	return out, nil
}

// ProxyProtocol wraps ln so that each connection's RemoteAddr is the
// client's address named by the PROXY protocol header (v1 or v2) its
// balancer sends first. A connection from an address within trusted must
// start with a header: the protocol forbids guessing, and a balancer
// that forgot to send one would otherwise let clients write their own.
// A connection from anywhere else must not carry one: its first read
// fails, so the TLS handshake fails and the connection closes, and
// without a header it is served as it is. A header that names no TCP
// client (v2 LOCAL, as HAProxy's health checks send) leaves the
// balancer's own address; one naming anything but TCP over IPv4 or IPv6
// is refused.
//
// Without ProxyProtocol, a header is the start of a TLS handshake that
// fails: garbage.
func ProxyProtocol(ln net.Listener, trusted []netip.Prefix) net.Listener {
	return &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: proxyHeaderTimeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if TrustedProxy(o.Upstream, trusted) {
				return proxyproto.REQUIRE, nil
			}
			return proxyproto.REJECT, nil
		},
		ValidateHeader: func(h *proxyproto.Header) error {
			if h.Command.IsLocal() {
				return nil
			}
			switch h.TransportProtocol {
			case proxyproto.TCPv4, proxyproto.TCPv6:
				return nil
			}
			return fmt.Errorf("server: PROXY header for %v, want TCP over IPv4 or IPv6", h.TransportProtocol)
		},
	}
}

// TrustedProxy reports whether addr (a TCP address) lies within trusted.
func TrustedProxy(addr net.Addr, trusted []netip.Prefix) bool {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
