package portmap

import (
	"fmt"
	"net/netip"
	"os"
)

// defaultGateway is the router NAT-PMP talks to: the IPv4 default route's
// gateway.
func defaultGateway() (netip.Addr, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("default gateway: %w", err)
	}
	defer f.Close()
	gw, err := parseDefaultGateway(f)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("default gateway: %w", err)
	}
	return gw, nil
}
