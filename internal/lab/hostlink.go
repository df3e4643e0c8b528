package lab

import (
	"crypto/rand"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// HostLink joins the lab's internet to the namespace the test runs in (the
// host), so that servers the test runs there, next to what they need on
// the host's loopback (PostgreSQL, NATS), serve the lab's ends. See
// Net.LinkHost.
type HostLink struct {
	// Addr is the host's address on the link: a server on the host that
	// listens there is reachable from the whole lab, and only from it
	// (and the host).
	Addr string
	// NoviceSeenAs and ExpertSeenAs are the addresses the host sees the
	// novice's and the expert's sides come from: the internet namespace
	// translates each router's public addresses to its own one, so the
	// host needs no route into the lab and two labs never clash there.
	NoviceSeenAs, ExpertSeenAs string
	// Iface is the host's end of the link.
	Iface string
}

// LinkHost links the lab's internet namespace to the host with a veth
// pair on a /29 of 198.19.0.0/16 (the benchmarking range, which the lab's
// own addresses do not use) that no interface of the host holds yet.
// Traffic from behind NAT1 and NAT2 reaches the host with the source
// addresses NoviceSeenAs and ExpertSeenAs; nothing is routed from the
// host into the lab beyond the link itself. Routers stay as SetNATMode
// makes them: a symmetric NAT still picks a new port per destination.
// The link goes with the lab.
func (n *Net) LinkHost(t testing.TB) HostLink {
	t.Helper()
	base, err := freeHostSubnet()
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	at := func(i byte) string {
		ip := append(net.IP(nil), base...)
		ip[3] += i
		return ip.String()
	}
	// The prefix is this lab's own, so the host's interface name is too.
	h := HostLink{Addr: at(1), NoviceSeenAs: at(3), ExpertSeenAs: at(4),
		Iface: strings.TrimSuffix(n.Internet, "inet") + "host"}
	inner := at(2)
	n.ip(t, "link", "add", h.Iface, "type", "veth", "peer", "name", "host0", "netns", n.Internet)
	// Registered before anything else can fail; the namespace's removal
	// would delete the pair too, this is for a lab that outlives it.
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", h.Iface).Run() })
	n.ip(t, "addr", "add", h.Addr+"/29", "dev", h.Iface)
	n.ip(t, "link", "set", h.Iface, "up")
	// The translated addresses live on the internet's end so that it
	// answers the host's ARP for them.
	for _, a := range []string{inner, h.NoviceSeenAs, h.ExpertSeenAs} {
		n.ip(t, "-n", n.Internet, "addr", "add", a+"/29", "dev", "host0")
	}
	n.ip(t, "-n", n.Internet, "link", "set", "host0", "up")
	for _, r := range [][2]string{
		{"198.18.1.0/24", h.NoviceSeenAs}, {novicePublicNet, h.NoviceSeenAs},
		{"198.18.2.0/24", h.ExpertSeenAs}, {expertPublicNet, h.ExpertSeenAs},
	} {
		n.Run(t, n.Internet, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "host0", "-s", r[0], "-j", "SNAT", "--to-source", r[1])
	}
	return h
}

// freeHostSubnet picks a random /29 of 198.19.0.0/16 none of whose
// addresses the host has.
func freeHostSubnet() (net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("host addresses: %w", err)
	}
	for range 100 {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("random subnet: %w", err)
		}
		subnet := &net.IPNet{IP: net.IPv4(198, 19, b[0], b[1]&^7).To4(), Mask: net.CIDRMask(29, 32)}
		taken := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && subnet.Contains(ipn.IP) {
				taken = true
			}
		}
		if !taken {
			return subnet.IP, nil
		}
	}
	return nil, fmt.Errorf("no free /29 in 198.19.0.0/16")
}
