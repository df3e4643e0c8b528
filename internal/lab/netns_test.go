package lab

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestNet checks the lab's promises: the novice reaches a public server
// through its NAT, nothing on the internet reaches the novice, and the lab
// has no way out to the host's network.
func TestNet(t *testing.T) {
	n := NewNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv := n.Listen(t, n.Internet, "tcp", net.JoinHostPort(ServerAddr, "0"))
	got, err := novicesAddrAt(ctx, n, srv)
	if err != nil {
		t.Fatalf("novice cannot reach a public server through NAT1: %v", err)
	}
	if got != NAT1WANAddr {
		t.Errorf("server saw the novice as %s, want NAT1's public address %s", got, NAT1WANAddr)
	}

	// Unsolicited inbound: to the NAT's public address and to the private one.
	nl := n.Listen(t, n.Novice, "tcp", net.JoinHostPort(NoviceAddr, "0"))
	_, port, _ := net.SplitHostPort(nl.Addr().String())
	for _, addr := range []string{NAT1WANAddr, NoviceAddr} {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		c, err := n.Dial(dctx, n.Internet, "tcp", net.JoinHostPort(addr, port))
		dcancel()
		if err == nil {
			c.Close()
			t.Errorf("internet reached the novice at %s:%s through a cone NAT", addr, port)
		}
	}

	// No way out: the lab's internet has only its own routes.
	if out := string(n.Run(t, n.Internet, "ip", "route")); strings.Contains(out, "default") {
		t.Errorf("the lab's internet has a default route:\n%s", out)
	}
}

// TestNATModes applies every mode, as later scenario tests will.
func TestNATModes(t *testing.T) {
	n := NewNet(t)
	for _, m := range []NATMode{Public, InboundFirewall, Cone, ConeRST, Symmetric, Only443, ProxyOnly, Cone} {
		n.SetNATMode(t, n.NAT2, m)
	}
}

// TestInNetnsMissing reports a namespace that does not exist.
func TestInNetnsMissing(t *testing.T) {
	err := InNetns("assist-no-such-namespace", func() error { return nil })
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("InNetns(missing) = %v, want a not-exist error", err)
	}
}

// TestPublicModes checks the modes without NAT: the novice goes out with
// its public address in both, is reachable from the internet in Public
// only, and is behind its NAT again once the mode is Cone.
func TestPublicModes(t *testing.T) {
	n := NewNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := n.Listen(t, n.Internet, "tcp", net.JoinHostPort(ServerAddr, "0"))
	nl := n.Listen(t, n.Novice, "tcp", ":0")
	_, port, _ := net.SplitHostPort(nl.Addr().String())
	for _, tt := range []struct {
		mode      NATMode
		seenAs    string
		reachable bool
	}{
		{Public, NovicePublicAddr, true},
		{InboundFirewall, NovicePublicAddr, false},
		{Cone, NAT1WANAddr, false},
	} {
		n.SetNATMode(t, n.NAT1, tt.mode)
		got, err := novicesAddrAt(ctx, n, srv)
		if err != nil {
			t.Fatalf("%s: the novice cannot reach a public server: %v", tt.mode, err)
		}
		if got != tt.seenAs {
			t.Errorf("%s: the server saw the novice as %s, want %s", tt.mode, got, tt.seenAs)
		}
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		c, err := n.Dial(dctx, n.Internet, "tcp", net.JoinHostPort(NovicePublicAddr, port))
		dcancel()
		if err == nil {
			c.Close()
		}
		if (err == nil) != tt.reachable {
			t.Errorf("%s: the internet reaches the novice's public address: %v, want %v (%v)", tt.mode, err == nil, tt.reachable, err)
		}
	}
}

// novicesAddrAt connects from the novice's namespace to srv (on the lab's
// internet) and returns the address srv saw the connection come from.
func novicesAddrAt(ctx context.Context, n *Net, srv net.Listener) (string, error) {
	seen := make(chan string, 1)
	go func() {
		c, err := srv.Accept()
		if err != nil {
			seen <- err.Error()
			return
		}
		defer c.Close()
		seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
	}()
	c, err := n.Dial(ctx, n.Novice, "tcp", srv.Addr().String())
	if err != nil {
		return "", err
	}
	c.Close()
	return <-seen, nil
}
