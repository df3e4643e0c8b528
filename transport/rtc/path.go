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
	return pairPath(p.Local, p.Remote, c.remoteHosts, c.localRelayProtocol(p.Local))
}

// pairPath names the path of a selected pair. A reflexive candidate stands
// for a NAT only when its address was rewritten: one at a link-local or
// loopback address, at its own base (local), or at one of the peer's host
// candidates (remote; a peer-reflexive one is where the peer's checks came
// from, which beats the signalling of its host candidates) went through no
// NAT and counts as a host candidate. Browsers on loopback, for one, offer a
// server-reflexive 127.0.0.1.
func pairPath(local, remote *webrtc.ICECandidate, remoteHosts *hostSet, relayProto string) string {
	lt, rt := local.Typ, remote.Typ
	if reflexive(lt) && (notTranslated(local.Address) ||
		local.Address == local.RelatedAddress && local.Port == local.RelatedPort) {
		lt = webrtc.ICECandidateTypeHost
	}
	if reflexive(rt) && (notTranslated(remote.Address) || remoteHosts != nil &&
		remoteHosts.has(net.JoinHostPort(remote.Address, strconv.Itoa(int(remote.Port))))) {
		rt = webrtc.ICECandidateTypeHost
	}
	return classifyPath(lt, rt, relayProto)
}

func reflexive(t webrtc.ICECandidateType) bool {
	return t == webrtc.ICECandidateTypeSrflx || t == webrtc.ICECandidateTypePrflx
}

// notTranslated reports whether addr is one no NAT rewrites: loopback, or
// link-local (no router forwards it; pion sends checks from IPv6
// link-local addresses it does not signal).
func notTranslated(addr string) bool {
	ip := net.ParseIP(addr)
	return ip != nil && (ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast())
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
	c.cfgMu.Lock()
	stats := c.pc.GetStats()
	c.cfgMu.Unlock()
	for _, s := range stats {
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
