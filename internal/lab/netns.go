package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/netns"
)

// Addresses of the NAT lab built by NewNet. "Public" addresses come only
// from 198.18.0.0/15 (the benchmarking range) and private ones stay inside
// the lab: the internet namespace has no route to 10/8 and none to the host,
// so nothing a test runs in the lab can reach the host's network.
const (
	NoviceAddr  = "10.1.0.2"   // the novice, behind NAT1
	NAT1LANAddr = "10.1.0.1"   // NAT1 on the novice's LAN (the novice's gateway)
	NAT1WANAddr = "198.18.1.2" // NAT1 on the internet
	ServerAddr  = "198.18.0.1" // a public server host inside the internet namespace
	ServerAddr2 = "198.18.0.2" // its second address (RFC 5780 CHANGE-REQUEST needs two)
	// STUNAddr and STUNAddr2 are the coturn of StartCoturn, apart from the
	// server addresses so that tests can run their own servers there on
	// the usual ports while a router learns its address from coturn.
	STUNAddr    = "198.18.0.3"
	STUNAddr2   = "198.18.0.4"
	NAT2WANAddr = "198.18.2.2" // NAT2 on the internet
	NAT2LANAddr = "10.2.0.1"   // NAT2 on the expert's LAN (the expert's gateway)
	ExpertAddr  = "10.2.0.2"   // the expert, behind NAT2

	// In the modes without NAT (Public, InboundFirewall) each end also has
	// an address of the lab's internet, on a subnet routed to its router,
	// and uses it for everything that leaves its LAN.
	NovicePublicAddr = "198.18.11.2"
	ExpertPublicAddr = "198.18.12.2"
)

// The public subnets of the ends: the routers' LAN addresses there, and
// the subnets the internet routes to them.
const (
	nat1PublicLAN    = "198.18.11.1"
	nat2PublicLAN    = "198.18.12.1"
	novicePublicNet  = "198.18.11.0/24"
	expertPublicNet  = "198.18.12.0/24"
	publicPrefixBits = "/24"
)

// TURN credentials of the coturn server StartCoturn runs.
const (
	TURNUser     = "test"
	TURNPassword = "test123"
	TURNRealm    = "lab.test"
)

// NATMode is how a NAT namespace treats traffic (see Net.SetNATMode).
type NATMode string

// The behaviours of the lab's routers. In every mode but Public,
// unsolicited inbound connections to the end behind the router are
// impossible.
const (
	// Public is no NAT and no firewall: the end has a public address
	// (NovicePublicAddr, ExpertPublicAddr) that anyone can reach.
	Public NATMode = "public"
	// InboundFirewall is no NAT, but a stateful firewall: the end has a
	// public address, everything goes out, and only answers come in.
	InboundFirewall NATMode = "inbound-firewall"
	// Cone is a port-preserving, endpoint-independent NAT that silently
	// drops unsolicited inbound packets, like a home router.
	Cone NATMode = "cone"
	// ConeRST is Cone that answers unsolicited packets (TCP RST, ICMP).
	ConeRST NATMode = "cone-rst"
	// Symmetric picks a new random external port per destination, so UDP
	// hole punching fails and only a relay helps.
	Symmetric NATMode = "symmetric"
	// Only443 is a corporate firewall (and NAT): only TCP to ports 80 and
	// 443 goes out, no UDP at all.
	Only443 NATMode = "443-only"
	// ProxyOnly forwards nothing: the only way out is a proxy running on
	// the NAT box itself.
	ProxyOnly NATMode = "proxyonly"
)

// Net is a NAT lab in network namespaces:
//
//	novice 10.1.0.2 -- [10.1.0.1 NAT1 198.18.1.2] -- [198.18.1.1 Internet 198.18.2.1;
//	servers 198.18.0.1, 198.18.0.2; coturn 198.18.0.3, 198.18.0.4] -- [198.18.2.2 NAT2 10.2.0.1] -- 10.2.0.2 expert
//
// In the modes without NAT the novice also has 198.18.11.2 (NAT1 198.18.11.1)
// and the expert 198.18.12.2 (NAT2 198.18.12.1), routed by the internet.
//
// The fields are the namespaces' names, unique per Net so that tests and
// test processes can build labs side by side. Both NATs start in Cone mode.
type Net struct {
	Novice, NAT1, Internet, NAT2, Expert string

	dir    string // pid files, generated configuration
	coturn *Proc
}

// NeedNetns skips t unless it runs as root with the tools NewNet uses.
// The lab's Debian packages: iproute2 iptables (NewNet, SetNATMode),
// nftables miniupnpd coturn (StartMiniUPnPd, StartCoturn).
func NeedNetns(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("lab: network namespaces need Linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("lab: network namespaces need root (run the tests as root, e.g. in CI)")
	}
	Need(t, "ip", "iptables", "ss")
}

// NewNet builds the lab and removes it, with everything still running in
// it, on cleanup. It skips t when NeedNetns does, or when the kernel does
// not let this process create namespaces (an unprivileged container).
func NewNet(t testing.TB) *Net {
	t.Helper()
	NeedNetns(t)
	// Short names: the prefix keeps parallel labs apart, the suffix says
	// which box it is in `ip netns list`.
	prefix, err := netns.UniquePrefix("as")
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	n := &Net{
		Novice:   prefix + "novice",
		NAT1:     prefix + "nat1",
		Internet: prefix + "inet",
		NAT2:     prefix + "nat2",
		Expert:   prefix + "expert",
		dir:      t.TempDir(),
	}
	if out, err := exec.Command("ip", "netns", "add", n.Novice).CombinedOutput(); err != nil {
		t.Skipf("lab: cannot create network namespaces here (ip netns add: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { n.teardown(t) })
	for _, ns := range n.namespaces()[1:] {
		n.ip(t, "netns", "add", ns)
	}
	for _, ns := range n.namespaces() {
		n.ip(t, "-n", ns, "link", "set", "lo", "up")
	}
	n.link(t, n.Novice, "eth0", n.NAT1, "lan0")
	n.link(t, n.NAT1, "wan0", n.Internet, "n1")
	n.link(t, n.Internet, "n2", n.NAT2, "wan0")
	n.link(t, n.NAT2, "lan0", n.Expert, "eth0")
	for _, a := range [][]string{
		{n.Novice, "eth0", NoviceAddr + "/24"},
		{n.NAT1, "lan0", NAT1LANAddr + "/24"},
		{n.NAT1, "wan0", NAT1WANAddr + "/24"},
		{n.Internet, "n1", "198.18.1.1/24"},
		{n.Internet, "n2", "198.18.2.1/24"},
		// Server addresses live on lo: there is no dummy driver everywhere.
		{n.Internet, "lo", ServerAddr + "/32"},
		{n.Internet, "lo", ServerAddr2 + "/32"},
		{n.Internet, "lo", STUNAddr + "/32"},
		{n.Internet, "lo", STUNAddr2 + "/32"},
		{n.NAT2, "wan0", NAT2WANAddr + "/24"},
		{n.NAT2, "lan0", NAT2LANAddr + "/24"},
		{n.Expert, "eth0", ExpertAddr + "/24"},
	} {
		n.ip(t, "-n", a[0], "addr", "add", a[2], "dev", a[1])
	}
	for _, r := range [][2]string{
		{n.Novice, NAT1LANAddr},
		{n.NAT1, "198.18.1.1"},
		{n.NAT2, "198.18.2.1"},
		{n.Expert, NAT2LANAddr},
	} {
		n.ip(t, "-n", r[0], "route", "add", "default", "via", r[1])
	}
	for _, ns := range []string{n.NAT1, n.Internet, n.NAT2} {
		// /proc/sys/net shows the writer's namespace; no procps needed.
		n.Run(t, ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	}
	n.SetNATMode(t, n.NAT1, Cone)
	n.SetNATMode(t, n.NAT2, Cone)
	return n
}

func (n *Net) namespaces() []string {
	return []string{n.Novice, n.NAT1, n.Internet, n.NAT2, n.Expert}
}

// ip runs the ip tool on the host and fails t if it fails.
func (n *Net) ip(t testing.TB, args ...string) {
	t.Helper()
	Run(t, nil, "ip", args...)
}

// link joins two namespaces with a veth pair created directly inside them,
// so interface names never clash with the host's or another lab's.
func (n *Net) link(t testing.TB, ns1, if1, ns2, if2 string) {
	t.Helper()
	n.ip(t, "link", "add", if1, "netns", ns1, "type", "veth", "peer", "name", if2, "netns", ns2)
	n.ip(t, "-n", ns1, "link", "set", if1, "up")
	n.ip(t, "-n", ns2, "link", "set", if2, "up")
}

// teardown stops whatever still runs in the lab's namespaces (only those:
// the names are this lab's own) and deletes them.
func (n *Net) teardown(t testing.TB) {
	if err := netns.Delete(n.namespaces()...); err != nil {
		t.Errorf("lab: %v", err)
	}
}

// Command returns a command that runs name inside namespace ns.
func (n *Net) Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Run runs a program inside namespace ns to completion and returns its
// stdout; it fails t with stderr when the program fails.
func (n *Net) Run(t testing.TB, ns, name string, args ...string) []byte {
	t.Helper()
	return Run(t, nil, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Start runs a background program inside namespace ns (see Start: it is
// stopped on cleanup, before the lab is removed).
func (n *Net) Start(t testing.TB, ns string, env []string, name string, args ...string) *Proc {
	t.Helper()
	return Start(t, env, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// SetNATMode replaces the firewall rules of a NAT namespace (n.NAT1 or
// n.NAT2) with those of mode, and gives the end behind it its public
// address in the modes without NAT (taking it away in the others). It
// flushes the iptables filter and nat tables, so call it before
// StartMiniUPnPd.
func (n *Net) SetNATMode(t testing.TB, ns string, mode NATMode) {
	t.Helper()
	n.setPublic(t, ns, mode == Public || mode == InboundFirewall)
	ipt := func(args ...string) {
		t.Helper()
		n.Run(t, ns, "iptables", args...)
	}
	ipt("-t", "nat", "-F")
	ipt("-F")
	ipt("-P", "FORWARD", "ACCEPT")
	ipt("-P", "INPUT", "ACCEPT")
	masquerade := []string{"-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"}
	// Dropping unsolicited inbound packets to the NAT box is what home
	// routers do, and it matters: a dropped packet's conntrack entry is
	// never confirmed, so it cannot clash with the mapping of a later
	// outbound packet (otherwise the NAT renumbers the port and UDP hole
	// punching fails even between two cone NATs).
	dropInbound := []string{"-A", "INPUT", "-i", "wan0", "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP"}
	established := []string{"-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"}
	switch mode {
	case Public:
		ipt(dropInbound...)
	case InboundFirewall:
		ipt(dropInbound...)
		ipt(established...)
		ipt("-A", "FORWARD", "-i", "lan0", "-o", "wan0", "-j", "ACCEPT")
		ipt("-P", "FORWARD", "DROP")
	case Cone:
		ipt(masquerade...)
		ipt(dropInbound...)
	case ConeRST:
		ipt(masquerade...)
	case Symmetric:
		ipt(append(masquerade, "--random-fully")...)
		ipt(dropInbound...)
	case Only443:
		ipt(masquerade...)
		ipt(dropInbound...)
		ipt(established...)
		ipt("-A", "FORWARD", "-i", "lan0", "-o", "wan0", "-p", "tcp", "-m", "multiport", "--dports", "80,443", "-j", "ACCEPT")
		ipt("-P", "FORWARD", "DROP")
	case ProxyOnly:
		ipt(masquerade...)
		ipt(dropInbound...)
		ipt(established...)
		ipt("-P", "FORWARD", "DROP")
	default:
		t.Fatalf("lab: unknown NAT mode %q", mode)
	}
}

// setPublic gives the end behind router ns an address on the lab's
// internet, and makes it its source for everything that leaves the LAN
// (public), or takes it away again (!public). The private address stays,
// so that the LAN's services (miniupnpd, tinyproxy) keep theirs.
func (n *Net) setPublic(t testing.TB, ns string, public bool) {
	t.Helper()
	var end, endAddr, gw, privGW, subnet, wan string
	switch ns {
	case n.NAT1:
		end, endAddr, gw, privGW, subnet, wan = n.Novice, NovicePublicAddr, nat1PublicLAN, NAT1LANAddr, novicePublicNet, NAT1WANAddr
	case n.NAT2:
		end, endAddr, gw, privGW, subnet, wan = n.Expert, ExpertPublicAddr, nat2PublicLAN, NAT2LANAddr, expertPublicNet, NAT2WANAddr
	default:
		t.Fatalf("lab: %s is not one of the lab's NATs", ns)
	}
	if public {
		n.ip(t, "-n", ns, "addr", "replace", gw+publicPrefixBits, "dev", "lan0")
		n.ip(t, "-n", end, "addr", "replace", endAddr+publicPrefixBits, "dev", "eth0")
		n.ip(t, "-n", end, "route", "replace", "default", "via", gw, "src", endAddr)
		n.ip(t, "-n", n.Internet, "route", "replace", subnet, "via", wan)
		return
	}
	n.ip(t, "-n", end, "route", "replace", "default", "via", privGW)
	// Deleting what may not be there: errors mean "already gone".
	_ = exec.Command("ip", "-n", n.Internet, "route", "del", subnet).Run()
	_ = exec.Command("ip", "-n", end, "addr", "del", endAddr+publicPrefixBits, "dev", "eth0").Run()
	_ = exec.Command("ip", "-n", ns, "addr", "del", gw+publicPrefixBits, "dev", "lan0").Run()
}

// lanOf returns the LAN subnet behind a NAT namespace.
func (n *Net) lanOf(t testing.TB, ns string) string {
	t.Helper()
	switch ns {
	case n.NAT1:
		return "10.1.0.0/24"
	case n.NAT2:
		return "10.2.0.0/24"
	}
	t.Fatalf("lab: %s is not one of the lab's NATs", ns)
	return ""
}

// InNetns runs fn on an OS thread that has joined namespace ns. Sockets
// fn creates belong to ns for their whole life and may be used from any
// goroutine afterwards. fn must not start goroutines that create sockets.
func InNetns(ns string, fn func() error) error { return netns.Do(ns, fn) }

// Dial connects from inside namespace ns.
func (n *Net) Dial(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := InNetns(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens inside namespace ns; the listener is closed on cleanup.
func (n *Net) Listen(t testing.TB, ns, network, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	err := InNetns(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("lab: listen %s %s in %s: %v", network, addr, ns, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// WaitListening waits until something in namespace ns listens on port
// (network "tcp" or "udp"; "udp" means a bound socket) and fails t after
// 15 s, showing p's output when p is not nil.
func (n *Net) WaitListening(t testing.TB, ns, network string, port int, p *Proc) {
	t.Helper()
	flag := "-t"
	if network == "udp" {
		flag = "-u"
	}
	ok := waitFor(15*time.Second, func() bool {
		if p != nil {
			if exited, _ := p.Exited(); exited {
				return false
			}
		}
		out, err := n.Command(ns, "ss", "-H", "-ln", flag, fmt.Sprintf("sport = :%d", port)).Output()
		return err == nil && len(strings.TrimSpace(string(out))) > 0
	})
	if !ok {
		out := ""
		if p != nil {
			out = p.Output()
		}
		t.Fatalf("lab: nothing listens on %s port %d in %s after 15 s: %s", network, port, ns, out)
	}
}

// StartCoturn runs coturn in the internet namespace, once per Net, on
// STUNAddr and STUNAddr2 port 3478 (and 3479, for RFC 5780): a STUN
// server and a TURN server (UDP and TCP) with TURNUser/TURNPassword.
func (n *Net) StartCoturn(t testing.TB) *Proc {
	t.Helper()
	if n.coturn != nil {
		return n.coturn
	}
	Need(t, "turnserver")
	dir := filepath.Join(n.dir, "coturn")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("lab: coturn: %v", err)
	}
	n.coturn = n.Start(t, n.Internet, nil, "turnserver", "-n",
		"--listening-ip="+STUNAddr, "--listening-ip="+STUNAddr2, "--relay-ip="+STUNAddr,
		"--listening-port=3478", "--lt-cred-mech", "--user="+TURNUser+":"+TURNPassword,
		"--realm="+TURNRealm, "--fingerprint", "--no-tls", "--no-dtls", "--no-cli",
		"--min-port=49152", "--max-port=49999", "--log-file=stdout", "--simple-log",
		"--pidfile="+filepath.Join(dir, "turnserver.pid"),
		"--userdb="+filepath.Join(dir, "turndb"))
	n.WaitListening(t, n.Internet, "udp", 3479, n.coturn)
	return n.coturn
}

// MiniUPnPdConfig says which protocols miniupnpd offers.
type MiniUPnPdConfig struct {
	UPnP   bool // UPnP IGD (SSDP on 239.255.255.250:1900, HTTP on port 5000)
	NATPMP bool // NAT-PMP and PCP on UDP port 5351
}

// StartMiniUPnPd runs miniupnpd (nftables build) on NAT namespace ns (n.NAT1
// or n.NAT2), for its LAN. miniupnpd 2.3.1 treats 198.18.0.0/15 as reserved
// and refuses to map ports for such an external address, so it learns its
// address by STUN from coturn (started here if needed), which it accepts.
// Set the NAT mode first: SetNATMode flushes the rule that lets the STUN
// answers in.
func (n *Net) StartMiniUPnPd(t testing.TB, ns string, cfg MiniUPnPdConfig) *Proc {
	t.Helper()
	Need(t, "miniupnpd", "nft")
	lan := n.lanOf(t, ns)
	n.StartCoturn(t)
	// The skeleton miniupnpd's nftables backend expects (table inet filter
	// with its chains); Debian's nft_init.sh is broken as shipped.
	skel := filepath.Join(n.dir, ns+"-miniupnpd.nft")
	writeFile(t, skel, `table inet filter {
  chain forward     { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd   { }
  chain prerouting  { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd  { }
  chain postrouting_miniupnpd { }
}
`)
	n.Run(t, ns, "nft", "-f", skel)
	// RFC 5780 tests get answers from the other address and port: let
	// them past the drop-unsolicited rule.
	n.Run(t, ns, "iptables", "-I", "INPUT", "-i", "wan0", "-p", "udp", "-s", "198.18.0.0/24", "--sport", "3478:3479", "-j", "ACCEPT")
	yesNo := map[bool]string{true: "yes", false: "no"}
	conf := filepath.Join(n.dir, ns+"-miniupnpd.conf")
	writeFile(t, conf, fmt.Sprintf(`ext_ifname=wan0
listening_ip=lan0
http_port=5000
enable_upnp=%s
enable_natpmp=%s
secure_mode=yes
system_uptime=yes
notify_interval=60
clean_ruleset_interval=600
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
allow 1024-65535 %s 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
ext_perform_stun=yes
ext_stun_host=%s
ext_stun_port=3478
`, yesNo[cfg.UPnP], yesNo[cfg.NATPMP], lan, STUNAddr))
	p := n.Start(t, ns, nil, "miniupnpd", "-d", "-f", conf, "-P", filepath.Join(n.dir, ns+"-miniupnpd.pid"))
	switch {
	case cfg.UPnP:
		n.WaitListening(t, ns, "tcp", 5000, p)
	case cfg.NATPMP:
		n.WaitListening(t, ns, "udp", 5351, p)
	}
	return p
}

// PortMappings lists the port forwardings miniupnpd installed on NAT
// namespace ns, one nftables rule per line.
func (n *Net) PortMappings(t testing.TB, ns string) []string {
	t.Helper()
	out := n.Run(t, ns, "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd")
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "dnat") {
			rules = append(rules, strings.TrimSpace(line))
		}
	}
	return rules
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("lab: %v", err)
	}
}
