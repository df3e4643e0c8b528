//go:build !linux

package portmap

import (
	"fmt"
	"net/netip"
	"runtime"
)

// defaultGateway is not implemented outside Linux yet, so only UPnP IGD
// works there.
func defaultGateway() (netip.Addr, error) {
	return netip.Addr{}, fmt.Errorf("finding the default gateway is not implemented on %s (NAT-PMP needs it; UPnP IGD still works)", runtime.GOOS)
}
