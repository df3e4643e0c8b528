package rtc

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

// startTURN runs a TURN server on loopback, over UDP and TCP, with one
// static long-term credential, and returns its ICE servers.
func startTURN(t *testing.T) (udpURL, tcpURL string) {
	t.Helper()
	_, udpURL, tcpURL = startTURNServer(t)
	return udpURL, tcpURL
}

// startTURNServer is startTURN that also returns the server, so that a
// test can stop it early (Close again on cleanup is harmless).
func startTURNServer(t *testing.T) (srv *turn.Server, udpURL, tcpURL string) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	gen := func() turn.RelayAddressGenerator {
		return &turn.RelayAddressGeneratorStatic{RelayAddress: net.ParseIP("127.0.0.1"), Address: "127.0.0.1"}
	}
	srv, err = turn.NewServer(turn.ServerConfig{
		Realm: "assist.test",
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if ra.Username != "user" {
				return "", nil, false
			}
			return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, "secret"), true
		},
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: pc, RelayAddressGenerator: gen()}},
		ListenerConfigs:   []turn.ListenerConfig{{Listener: ln, RelayAddressGenerator: gen()}},
	})
	if err != nil {
		pc.Close()
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, "turn:" + pc.LocalAddr().String(), "turn:" + ln.Addr().String() + "?transport=tcp"
}

func TestRelayPaths(t *testing.T) {
	udpURL, tcpURL := startTURN(t)
	for _, tt := range []struct {
		url, want string
	}{
		{udpURL, PathRelayUDP},
		{tcpURL, PathRelayTCP},
	} {
		t.Run(tt.want, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			ice := []webrtc.ICEServer{{URLs: []string{tt.url}, Username: "user", Credential: "secret"}}
			cfg := testConfig(t)
			cfg.ICEServers, cfg.RelayOnly = ice, true
			es, ns := sigPair()
			e, n := connectPair(t, ctx, es, ns, cfg, cfg)
			if e.err != nil || n.err != nil {
				t.Fatalf("Dial: %v\nAccept: %v", e.err, n.err)
			}
			if got := e.c.Path(); got != tt.want {
				t.Errorf("expert Path = %q, want %q", got, tt.want)
			}
			if got := n.c.Path(); got != tt.want {
				t.Errorf("novice Path = %q, want %q", got, tt.want)
			}
			exchange(t, e.c, n.c, 256<<10)
		})
	}
}
