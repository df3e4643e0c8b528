package rtc

import (
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"
)

// Values of Conn.Path.
const (
	// PathDirect: host candidates on both ends, no NAT in between.
	PathDirect = "direct"
	// PathPunched: a server- or peer-reflexive candidate on either end: UDP
	// through NAT, hole punched.
	PathPunched = "punched"
	// PathRelayUDP, PathRelayTCP, PathRelayTLS: through a TURN relay, which
	// our end reaches over UDP, TCP or TLS.
	PathRelayUDP = "relay-udp"
	PathRelayTCP = "relay-tcp"
	PathRelayTLS = "relay-tls"
	// PathUnknown: no candidate pair is selected (the connection is closed).
	PathUnknown = "unknown"
)

// Path says how the connection goes, from the ICE candidate pair selected
// now (ICE may change it during the session): one of PathDirect,
// PathPunched, PathRelayUDP, PathRelayTCP, PathRelayTLS, or PathUnknown.
//
// For a relayed path the transport is the one our end uses to reach its
// TURN server. When only the peer's candidate is relayed, our packets reach
// the peer's relay over UDP and the path is "relay-udp", whatever transport
// the peer's own leg to its relay uses: we cannot see it.
func (c *Conn) Path() string {
	p := c.selectedPair()
	if p == nil || p.Local == nil || p.Remote == nil {
		return PathUnknown
	}
	remote := p.Remote.Typ
	// A peer-reflexive candidate is the address the peer's checks came
	// from; when that is one of the peer's host candidates (the check beat
	// the signalling), it is a host candidate.
	if remote == webrtc.ICECandidateTypePrflx && (linkLocal(p.Remote.Address) || c.remoteHosts != nil &&
		c.remoteHosts.has(net.JoinHostPort(p.Remote.Address, strconv.Itoa(int(p.Remote.Port))))) {
		remote = webrtc.ICECandidateTypeHost
	}
	return classifyPath(p.Local.Typ, remote, c.localRelayProtocol(p.Local))
}

// linkLocal reports whether addr is a link-local address: one no router
// forwards and no NAT rewrites, so a peer seen there is on our link. (pion
// sends checks from IPv6 link-local addresses it does not signal.)
func linkLocal(addr string) bool {
	ip := net.ParseIP(addr)
	return ip != nil && (ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast())
}

// classifyPath names the path of a candidate pair; relayProto is the local
// relay candidate's TURN transport ("udp", "tcp", "tls"), if it is one.
func classifyPath(local, remote webrtc.ICECandidateType, relayProto string) string {
	switch {
	case local == webrtc.ICECandidateTypeRelay:
		switch relayProto {
		case "tcp":
			return PathRelayTCP
		case "tls":
			return PathRelayTLS
		}
		return PathRelayUDP
	case remote == webrtc.ICECandidateTypeRelay:
		return PathRelayUDP
	case local == webrtc.ICECandidateTypeHost && remote == webrtc.ICECandidateTypeHost:
		return PathDirect
	}
	return PathPunched
}

func (c *Conn) selectedPair() *webrtc.ICECandidatePair {
	sctp := c.pc.SCTP()
	if sctp == nil {
		return nil
	}
	dtls := sctp.Transport()
	if dtls == nil {
		return nil
	}
	ice := dtls.ICETransport()
	if ice == nil {
		return nil
	}
	p, err := ice.GetSelectedCandidatePair()
	if err != nil {
		return nil
	}
	return p
}

// localRelayProtocol finds the TURN transport of a local relay candidate in
// the connection's statistics (webrtc.ICECandidate does not carry it).
func (c *Conn) localRelayProtocol(local *webrtc.ICECandidate) string {
	if local.Typ != webrtc.ICECandidateTypeRelay {
		return ""
	}
	for _, s := range c.pc.GetStats() {
		cs, ok := s.(webrtc.ICECandidateStats)
		if !ok || cs.Type != webrtc.StatsTypeLocalCandidate || cs.CandidateType != webrtc.ICECandidateTypeRelay {
			continue
		}
		if cs.IP == local.Address && int(cs.Port) == int(local.Port) {
			return cs.RelayProtocol
		}
	}
	return ""
}

// hostSet holds the host:port of the peer's host candidates.
type hostSet struct {
	mu sync.Mutex
	m  map[string]bool
}

// addCandidate records a candidate line (RFC 8839: "candidate:" foundation
// component transport priority address port "typ" type ...) if it is a host
// candidate. Lines it cannot read are left to pion to judge.
func (h *hostSet) addCandidate(line string) {
	f := strings.Fields(strings.TrimPrefix(line, "candidate:"))
	if len(f) < 8 || f[6] != "typ" || f[7] != "host" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = make(map[string]bool)
	}
	h.m[net.JoinHostPort(f[4], f[5])] = true
}

func (h *hostSet) has(hostport string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[hostport]
}
