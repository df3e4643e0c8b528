package relay

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// binding performs one STUN binding request on a TCP conn.
func binding(conn net.Conn) error {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err := conn.Write(req.Raw); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	var res stun.Message
	if err := stun.Decode(buf[:n], &res); err != nil {
		return err
	}
	if res.Type != stun.BindingSuccess || res.TransactionID != req.TransactionID {
		return errors.New("unexpected binding response " + res.String())
	}
	return nil
}

// closedByServer reports whether the server closed conn, discarding what
// the server sent before (a TLS alert, say).
func closedByServer(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	return err == nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

func TestTCPConnBounds(t *testing.T) {
	const idle = 200 * time.Millisecond
	r := startRelay(t, func(c *Config) {
		c.MaxTCPConns = 1
		c.TCPIdleTimeout = idle
	})
	first, _ := r.dialConn(t, "tcp")
	if err := binding(first); err != nil {
		t.Fatalf("binding on the first connection: %v", err)
	}
	// TCP and TLS share the bound: the TLS handshake itself is refused.
	_, _, tlsAddr := r.Addrs()
	if c, err := net.Dial("tcp", tlsAddr.String()); err != nil {
		t.Fatal(err)
	} else if !closedByServer(c) {
		t.Fatal("a connection over MaxTCPConns was not closed")
	} else {
		_ = c.Close()
	}
	// The first connection falls silent: the server closes it and frees its slot.
	if !closedByServer(first) {
		t.Fatal("an idle connection was not closed")
	}
	waitFor(t, "the slot to be released", func() bool {
		c, err := net.Dial("tcp", first.RemoteAddr().String())
		if err != nil {
			return false
		}
		defer c.Close()
		return binding(c) == nil
	})
}

func TestRelayPortRange(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()
	r := startRelay(t, func(c *Config) { c.RelayPortMin, c.RelayPortMax = port, port })
	user, pass := Credentials(testSecret, "s", time.Minute, time.Now())
	first, err := r.client(t, "udp", user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer first.Close()
	if got := first.LocalAddr().(*net.UDPAddr).Port; got != port {
		t.Fatalf("relay port %d, want %d", got, port)
	}
	if second, err := r.client(t, "udp", user, pass).Allocate(); err == nil {
		_ = second.Close()
		t.Fatal("Allocate succeeded with the port range exhausted")
	}
}

// TestCountingConnShortWrite checks that a failed write is not counted.
func TestCountingConnShortWrite(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Uint64
	c := &countingConn{PacketConn: pc, n: &n}
	if _, err := c.WriteTo([]byte("abc"), pc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = pc.Close()
	if _, err := c.WriteTo([]byte("defg"), pc.LocalAddr()); err == nil {
		t.Fatal("write on a closed conn succeeded")
	}
	if got := n.Load(); got != 3 {
		t.Fatalf("counted %d bytes, want 3", got)
	}
}

// TestTLSHandshakeFailure checks that a client failing the TLS handshake
// is disconnected and does not keep its connection slot.
func TestTLSHandshakeFailure(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.MaxTCPConns = 1 })
	_, _, tlsAddr := r.Addrs()
	for range 3 {
		c, err := net.Dial("tcp", tlsAddr.String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if !closedByServer(c) {
			t.Fatal("the server kept a connection that failed the TLS handshake")
		}
		_ = c.Close()
	}
	waitFor(t, "a TLS binding to succeed", func() bool {
		c, err := tls.Dial("tcp", tlsAddr.String(), &tls.Config{RootCAs: r.roots, MinVersion: tls.VersionTLS12})
		if err != nil {
			return false
		}
		defer c.Close()
		return binding(c) == nil
	})
}
