package lab

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/assist-project/assist/internal/netns"
)

// LAN is home networks with no router: network namespaces plugged into
// Ethernet bridges, each bridge in a namespace of its own so that nothing
// of the host's takes part. Bridge i (from 1) has the subnets 10.77.i.0/24
// and fd77:i::/64; a host's address on it ends in the host's number. mDNS
// (multicast) crosses a bridge, never from one bridge to another.
//
// Names are unique per LAN, so tests and test processes can build LANs
// side by side; NewLAN removes everything on cleanup.
type LAN struct {
	prefix     string
	namespaces []string
	links      int
}

// NewLAN builds bridges bridges; Host adds hosts to them. It skips t when
// NeedNetns does, or when the kernel does not let this process create
// namespaces.
func NewLAN(t testing.TB, bridges int) *LAN {
	t.Helper()
	NeedNetns(t)
	prefix, err := netns.UniquePrefix("al")
	if err != nil {
		t.Fatalf("lab: lan: %v", err)
	}
	l := &LAN{prefix: prefix}
	t.Cleanup(func() { l.teardown(t) })
	for i := 1; i <= bridges; i++ {
		ns := l.bridge(i)
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("lab: cannot create network namespaces here (ip netns add: %v: %s)", err, strings.TrimSpace(string(out)))
		}
		l.namespaces = append(l.namespaces, ns)
		Run(t, nil, "ip", "-n", ns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
		Run(t, nil, "ip", "-n", ns, "link", "set", "br0", "up")
	}
	return l
}

// bridge is the name of the namespace holding bridge i.
func (l *LAN) bridge(i int) string { return fmt.Sprintf("%sbr%d", l.prefix, i) }

// Host creates namespace name with one interface per bridge number given
// (eth0 on the first, eth1 on the second...) and returns the namespace's
// name. number is the host's part of its addresses (2..254).
func (l *LAN) Host(t testing.TB, name string, number int, bridges ...int) string {
	t.Helper()
	ns := l.prefix + name
	Run(t, nil, "ip", "netns", "add", ns)
	l.namespaces = append(l.namespaces, ns)
	Run(t, nil, "ip", "-n", ns, "link", "set", "lo", "up")
	for i, b := range bridges {
		ifc := fmt.Sprintf("eth%d", i)
		l.links++
		peer := fmt.Sprintf("p%d", l.links)
		Run(t, nil, "ip", "link", "add", ifc, "netns", ns, "type", "veth", "peer", "name", peer, "netns", l.bridge(b))
		Run(t, nil, "ip", "-n", l.bridge(b), "link", "set", peer, "master", "br0", "up")
		Run(t, nil, "ip", "-n", ns, "addr", "add", fmt.Sprintf("10.77.%d.%d/24", b, number), "dev", ifc)
		Run(t, nil, "ip", "-n", ns, "addr", "add", fmt.Sprintf("fd77:%d::%d/64", b, number), "dev", ifc, "nodad")
		Run(t, nil, "ip", "-n", ns, "link", "set", ifc, "up")
	}
	return ns
}

// Addr4 is host number's IPv4 address on bridge b.
func Addr4(b, number int) string { return fmt.Sprintf("10.77.%d.%d", b, number) }

// Start runs a background program inside namespace ns (see Start).
func (l *LAN) Start(t testing.TB, ns string, env []string, name string, args ...string) *Proc {
	t.Helper()
	return Start(t, env, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// DialRFB connects a raw RFB client from inside namespace ns.
func (l *LAN) DialRFB(t testing.TB, ns, addr string) *RawClient {
	t.Helper()
	return (&Net{}).DialRFB(t, ns, addr)
}

// teardown stops whatever still runs in the LAN's namespaces (only those:
// the names are this LAN's own) and deletes them.
func (l *LAN) teardown(t testing.TB) {
	if err := netns.Delete(l.namespaces...); err != nil {
		t.Errorf("lab: %v", err)
	}
}
