package relay

import (
	"context"
	"errors"
	"github.com/pion/turn/v5"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var transports = []string{"udp", "tcp", "tls"}

func TestSTUNBinding(t *testing.T) {
	r := startRelay(t, nil)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			conn, _ := r.dialConn(t, transport)
			c, err := stun.NewClient(conn)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var (
				got    stun.XORMappedAddress
				evtErr error
			)
			err = c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest), func(ev stun.Event) {
				if evtErr = ev.Error; evtErr == nil {
					evtErr = ev.Message.Parse(&got)
				}
			})
			if err = errors.Join(err, evtErr); err != nil {
				t.Fatalf("binding request: %v", err)
			}
			if want := conn.LocalAddr().String(); got.String() != want {
				t.Fatalf("XOR-MAPPED-ADDRESS %v, want the client's %v", got.String(), want)
			}
		})
	}
}

// TestAllocateAndRelay is the real thing: a TURN client allocates with
// REST credentials over each transport and exchanges datagrams with a UDP
// peer through its relayed address.
func TestAllocateAndRelay(t *testing.T) {
	r := startRelay(t, nil)
	peer := echoPeer(t, "echo:")
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			user, pass := Credentials(testSecret, "session-"+transport, time.Minute, time.Now())
			c := r.client(t, transport, user, pass)
			relayConn, err := c.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			defer relayConn.Close()
			if ip := relayConn.LocalAddr().(*net.UDPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 1)) {
				t.Fatalf("relayed address %v, want 127.0.0.1", relayConn.LocalAddr())
			}
			before := r.Stats().RelayedBytes
			msg := "hello over " + transport
			roundTrip(t, relayConn, peer, msg)
			if got, min := r.Stats().RelayedBytes-before, uint64(len(msg)+len("echo:"+msg)); got < min {
				t.Fatalf("RelayedBytes grew by %d, want at least %d", got, min)
			}
			if n := r.Stats().Allocations; n != 1 {
				t.Fatalf("Stats().Allocations = %d during the allocation, want 1", n)
			}
			// Closing the relayed conn deallocates (Refresh with lifetime 0).
			if err := relayConn.Close(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the allocation to go", func() bool { return r.Stats().Allocations == 0 })
		})
	}
}

func TestRefusedCredentials(t *testing.T) {
	r := startRelay(t, nil)
	now := time.Now()
	validUser, validPass := Credentials(testSecret, "s", time.Minute, now)
	expiredUser, expiredPass := Credentials(testSecret, "s", -time.Minute, now)
	otherUser, otherPass := Credentials([]byte("another secret"), "s", time.Minute, now)
	tests := []struct {
		name, user, pass string
	}{
		{"expired", expiredUser, expiredPass},
		{"wrong password", validUser, validPass + "x"},
		{"other secret", otherUser, otherPass},
		{"not a REST username", "alice", validPass},
		{"negative expiry", "-1:s", validPass},
	}
	for _, transport := range transports {
		for _, tt := range tests {
			t.Run(transport+"/"+tt.name, func(t *testing.T) {
				before := r.Stats().AuthFailures
				c := r.client(t, transport, tt.user, tt.pass)
				if conn, err := c.Allocate(); err == nil {
					_ = conn.Close()
					t.Fatal("Allocate succeeded")
				}
				if got := r.Stats().AuthFailures; got <= before {
					t.Fatalf("AuthFailures %d, want more than %d", got, before)
				}
			})
		}
	}
	if n := r.Stats().Allocations; n != 0 {
		t.Fatalf("%d allocations after refusals", n)
	}
}

func TestAllocationQuotas(t *testing.T) {
	now := time.Now()
	one := func() (string, string) { return Credentials(testSecret, "one", time.Minute, now) }
	tests := []struct {
		name string
		cfg  func(*Config)
		// second returns the second client's credentials; src is its
		// address ("" for the first client's).
		second    func() (string, string)
		src       string
		wantFirst bool
	}{
		{"global", func(c *Config) { c.MaxAllocations = 1 }, func() (string, string) { return Credentials(testSecret, "two", time.Minute, now) }, "", false},
		{"per user, same user", func(c *Config) { c.MaxAllocationsPerUser = 1 }, one, "", false},
		{"per user, other user", func(c *Config) { c.MaxAllocationsPerUser = 1 }, func() (string, string) { return Credentials(testSecret, "two", time.Minute, now) }, "", true},
		// Fresh credentials of the same session (GET /v1/ice hands out
		// a new expiry each time) share its quota.
		{"per user, renewed credentials", func(c *Config) { c.MaxAllocationsPerUser = 1 }, func() (string, string) { return Credentials(testSecret, "one", 2*time.Minute, now) }, "", false},
		{"per address, same address", func(c *Config) { c.MaxAllocationsPerAddress = 1 }, func() (string, string) { return Credentials(testSecret, "two", time.Minute, now) }, "", false},
		{"per address, other address", func(c *Config) { c.MaxAllocationsPerAddress = 1 }, func() (string, string) { return Credentials(testSecret, "two", time.Minute, now) }, "127.0.0.2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startRelay(t, tt.cfg)
			user1, pass1 := one()
			first, err := r.client(t, "udp", user1, pass1).Allocate()
			if err != nil {
				t.Fatalf("first Allocate: %v", err)
			}
			defer first.Close()
			user2, pass2 := tt.second()
			c2 := r.client
			if tt.src != "" {
				c2 = func(t testing.TB, _, u, p string) *turn.Client { return r.clientFrom(t, tt.src, u, p) }
			}
			second, err := c2(t, "udp", user2, pass2).Allocate()
			if err == nil {
				defer second.Close()
			}
			if (err == nil) != tt.wantFirst {
				t.Fatalf("second Allocate: err = %v, want success %v", err, tt.wantFirst)
			}
		})
	}
}

func TestPeerPolicy(t *testing.T) {
	r := startRelay(t, func(c *Config) {
		c.AllowPeer = func(ip net.IP) bool { return !ip.Equal(net.IPv4(127, 0, 0, 1)) }
	})
	user, pass := Credentials(testSecret, "s", time.Minute, time.Now())
	c := r.client(t, "udp", user, pass)
	relayConn, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relayConn.Close()
	if err := c.CreatePermission(echoPeer(t, "echo:")); err == nil {
		t.Fatal("CreatePermission to a refused peer succeeded")
	}
}

func TestDefaultAllowPeer(t *testing.T) {
	tests := []struct {
		ip            string
		loopbackRelay bool
		want          bool
	}{
		{"192.0.2.1", false, true},
		{"10.1.2.3", false, true},
		{"2001:db8::1", false, true},
		{"127.0.0.1", false, false},
		{"127.0.0.1", true, true},
		{"::1", false, false},
		{"0.0.0.0", true, false},
		{"::", true, false},
		{"224.0.0.1", true, false},
		{"ff02::1", true, false},
		{"255.255.255.255", true, false},
		{"169.254.169.254", true, false},
		{"fe80::1", true, false},
	}
	for _, tt := range tests {
		if got := defaultAllowPeer(tt.loopbackRelay)(net.ParseIP(tt.ip)); got != tt.want {
			t.Errorf("defaultAllowPeer(%v)(%s) = %v, want %v", tt.loopbackRelay, tt.ip, got, tt.want)
		}
	}
}

// TestCloseStopsEverything checks that Close ends live client connections
// and allocations, frees the ports, and leaves no goroutine behind.
func TestCloseStopsEverything(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	// Registered first, so it runs after the clients' own cleanups.
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	r := startRelay(t, nil)
	user, pass := Credentials(testSecret, "s", time.Minute, time.Now())
	tcpConn, _ := r.dialConn(t, "tcp")
	tlsConn, _ := r.dialConn(t, "tls")
	c := r.client(t, "udp", user, pass)
	relayConn, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	relayAddr := relayConn.LocalAddr().String()
	udp, tcp, tlsAddr := r.Addrs()

	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := r.Stats().Allocations; n != 0 {
		t.Errorf("Stats().Allocations = %d after Close", n)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for name, conn := range map[string]net.Conn{"tcp": tcpConn, "tls": tlsConn} {
		if !closedByServer(conn) {
			t.Errorf("%s client connection still open after Close", name)
		}
	}
	// The ports are free again once Close returns.
	for _, a := range []string{udp.String(), relayAddr} {
		waitFor(t, "udp port "+a+" to be free", func() bool {
			pc, err := net.ListenPacket("udp4", a)
			if err == nil {
				_ = pc.Close()
			}
			return err == nil
		})
	}
	for _, a := range []string{tcp.String(), tlsAddr.String()} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("tcp port %s still taken after Close: %v", a, err)
		}
		_ = ln.Close()
	}
	_ = relayConn.Close()
}

func TestContextCancelCloses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, err := Start(ctx, Config{UDP: "127.0.0.1:0", Secret: testSecret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	udp, _, _ := r.Addrs()
	cancel()
	waitFor(t, "the UDP port to be free", func() bool {
		pc, err := net.ListenPacket("udp4", udp.String())
		if err == nil {
			_ = pc.Close()
		}
		return err == nil
	})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no listener", Config{Secret: testSecret}},
		{"no secret", Config{UDP: "127.0.0.1:0"}},
		{"tls without certificate", Config{TLS: "127.0.0.1:0", Secret: testSecret}},
		{"wildcard without relay ip", Config{UDP: ":0", Secret: testSecret}},
		{"bad port range", Config{UDP: "127.0.0.1:0", Secret: testSecret, RelayPortMin: 5000, RelayPortMax: 4000}},
		{"bad listen address", Config{UDP: "127.0.0.1:99999", Secret: testSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Start(context.Background(), tt.cfg)
			if err == nil {
				_ = r.Close()
				t.Fatal("Start succeeded")
			}
		})
	}
}
