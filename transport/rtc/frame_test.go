package rtc

import (
	"context"
	"io"
	"testing"

	"github.com/assist-project/assist/pake"
	"github.com/pion/webrtc/v4"
)

func writeFrame(t *testing.T, w io.Writer, kind byte, p []byte) {
	t.Helper()
	if err := pake.WriteMessage(w, kind, p); err != nil {
		t.Errorf("write frame: %v", err)
	}
}

func readFrame(t *testing.T, r io.Reader) (byte, []byte) {
	t.Helper()
	k, p, err := pake.ReadMessage(r, pake.MaxFramePayload)
	if err != nil {
		t.Errorf("read frame: %v", err)
	}
	return k, p
}

// openAndStop opens a data channel without authenticating, as a hostile
// peer or a man in the middle would, and ends its signalling at once.
func openAndStop(ctx context.Context, sig Signaler, cfg *Config, expert bool) (*Conn, []byte, func(), error) {
	c, fp, stop, err := open(ctx, sig, cfg, expert, cfg.logger())
	if stop != nil {
		stop()
	}
	return c, fp, stop, err
}

func TestNotTranslated(t *testing.T) {
	for addr, want := range map[string]bool{
		"fe80::fc:ff:fe00:1": true,
		"169.254.10.1":       true,
		"127.0.0.1":          true,
		"::1":                true,
		"fd00::2":            false,
		"192.0.2.2":          false,
		"198.18.1.2":         false,
		"not an address":     false,
	} {
		if got := notTranslated(addr); got != want {
			t.Errorf("notTranslated(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestPairPath(t *testing.T) {
	const (
		host  = webrtc.ICECandidateTypeHost
		srflx = webrtc.ICECandidateTypeSrflx
		prflx = webrtc.ICECandidateTypePrflx
		relay = webrtc.ICECandidateTypeRelay
	)
	cand := func(typ webrtc.ICECandidateType, addr string, port uint16, raddr string, rport uint16) *webrtc.ICECandidate {
		return &webrtc.ICECandidate{Typ: typ, Address: addr, Port: port, RelatedAddress: raddr, RelatedPort: rport}
	}
	var hosts hostSet
	hosts.addCandidate("candidate:1 1 udp 2130706431 10.0.0.2 5000 typ host")
	hosts.addCandidate("candidate:2 1 udp 2130706431 198.18.11.2 6000 typ host")
	for _, tt := range []struct {
		name          string
		local, remote *webrtc.ICECandidate
		proto         string
		want          string
	}{
		{"host to host", cand(host, "10.0.0.1", 1, "", 0), cand(host, "10.0.0.2", 5000, "", 0), "", PathDirect},
		{"through a NAT (remote srflx)", cand(host, "10.0.0.1", 1, "", 0), cand(srflx, "203.0.113.9", 40000, "10.0.0.2", 5000), "", PathPunched},
		{"through our NAT (local srflx)", cand(srflx, "203.0.113.1", 40001, "10.0.0.1", 1), cand(host, "198.18.11.2", 6000, "", 0), "", PathPunched},
		{"prflx at a signalled host", cand(host, "10.0.0.1", 1, "", 0), cand(prflx, "10.0.0.2", 5000, "", 0), "", PathDirect},
		{"prflx elsewhere", cand(host, "10.0.0.1", 1, "", 0), cand(prflx, "203.0.113.9", 40000, "", 0), "", PathPunched},
		{"srflx at the peer's public host", cand(host, "198.18.12.2", 1, "", 0), cand(srflx, "198.18.11.2", 6000, "198.18.11.2", 6000), "", PathDirect},
		{"browser's loopback srflx", cand(host, "127.0.0.1", 1, "", 0), cand(srflx, "127.0.0.1", 7000, "192.0.2.2", 7000), "", PathDirect},
		{"link-local prflx", cand(host, "fe80::1", 1, "", 0), cand(prflx, "fe80::2", 9, "", 0), "", PathDirect},
		{"local srflx at its base", cand(srflx, "198.18.11.2", 6000, "198.18.11.2", 6000), cand(host, "198.18.12.2", 1, "", 0), "", PathDirect},
		{"our relay over TLS", cand(relay, "198.18.0.2", 50000, "", 0), cand(host, "10.0.0.2", 5000, "", 0), "tls", PathRelayTLS},
		{"our relay over TCP", cand(relay, "198.18.0.2", 50000, "", 0), cand(srflx, "203.0.113.9", 40000, "", 0), "tcp", PathRelayTCP},
		{"the peer's relay", cand(srflx, "203.0.113.1", 40001, "10.0.0.1", 1), cand(relay, "198.18.0.2", 50001, "", 0), "", PathRelayUDP},
	} {
		if got := pairPath(tt.local, tt.remote, &hosts, tt.proto); got != tt.want {
			t.Errorf("%s: pairPath = %s, want %s", tt.name, got, tt.want)
		}
	}
}
