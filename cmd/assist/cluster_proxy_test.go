package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pires/go-proxyproto"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/server"
)

// dialSignalFrom opens a signalling WebSocket to base (https://HOST:PORT)
// from the local address src, pinned to fp, and returns the HTTP status
// of the answer (101 for an upgrade).
func dialSignalFrom(t *testing.T, base, fp, src string) int {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	tr := &http.Transport{TLSClientConfig: server.PinnedTLSConfig(fp), DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(base, "https")+"/v1/signal", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		if resp != nil {
			return resp.StatusCode
		}
		t.Fatalf("signalling connection from %s to %s: %v", src, base, err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return resp.StatusCode
}

// TestProxyProtocolCluster: a node behind HAProxy in TCP mode allows 2
// signalling connections per address. With send-proxy-v2 and assist serve
// --proxy-protocol, the node counts each client's own address: a third
// connection from 127.0.0.3 is refused (429) while 127.0.0.4 still gets
// in. Without the PROXY protocol every client is HAProxy's address, so
// the limit hits 127.0.0.4 too. A client connecting to the node directly
// (not from the trusted balancer) with a header of its own, claiming
// another address, is refused.
func TestProxyProtocolCluster(t *testing.T) {
	e2e(t)
	for _, tc := range []struct {
		name  string
		proxy bool
	}{{"with PROXY protocol", true}, {"without", false}} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--max-conns-per-address", "2"}
			if tc.proxy {
				// As an operator writes it: in the --config file.
				conf := filepath.Join(t.TempDir(), "serve.conf")
				if err := os.WriteFile(conf, []byte("proxy-protocol = true\nproxy-from = "+lab.ProxySource+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", conf)
			}
			c := lab.StartCluster(t, lab.ClusterOptions{Nodes: 1, SendProxy: tc.proxy, Args: func(int, *lab.Node) []string { return args }})
			for i := range 2 {
				if code := dialSignalFrom(t, c.URL, c.Fingerprint, "127.0.0.3"); code != http.StatusSwitchingProtocols {
					t.Fatalf("connection %d from 127.0.0.3 through HAProxy: HTTP %d, want 101", i+1, code)
				}
			}
			if code := dialSignalFrom(t, c.URL, c.Fingerprint, "127.0.0.3"); code != http.StatusTooManyRequests {
				t.Fatalf("connection 3 from 127.0.0.3 through HAProxy: HTTP %d, want 429", code)
			}
			code := dialSignalFrom(t, c.URL, c.Fingerprint, "127.0.0.4")
			switch {
			case tc.proxy && code != http.StatusSwitchingProtocols:
				t.Fatalf("127.0.0.4 through HAProxy while 127.0.0.3 is at its limit: HTTP %d, want 101 (its own address counted)", code)
			case !tc.proxy && code != http.StatusTooManyRequests:
				t.Fatalf("127.0.0.4 through HAProxy without the PROXY protocol: HTTP %d, want 429 (everyone is HAProxy's address)", code)
			}
			if !tc.proxy {
				return
			}
			// Straight to the node from 127.0.0.1, not the trusted
			// balancer: a header is refused; without one it is served.
			if err := tlsWithHeader(c.Nodes[0].Addr, c.Fingerprint, "203.0.113.9:4444"); err == nil {
				t.Fatal("a PROXY header from an untrusted address was accepted")
			} else {
				t.Logf("a PROXY header from 127.0.0.1: %v", err)
			}
			if err := tlsWithHeader(c.Nodes[0].Addr, c.Fingerprint, ""); err != nil {
				t.Fatalf("a direct connection without a header: %v", err)
			}
		})
	}
}

// tlsWithHeader connects to addr, sends a PROXY v2 header naming client
// (none if empty), and completes a TLS handshake pinned to fp.
func tlsWithHeader(addr, fp, client string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if client != "" {
		h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
			SourceAddr:      net.TCPAddrFromAddrPort(netip.MustParseAddrPort(client)),
			DestinationAddr: c.RemoteAddr()}
		if _, err := h.WriteTo(c); err != nil {
			return err
		}
	}
	return tls.Client(c, server.PinnedTLSConfig(fp)).Handshake()
}
