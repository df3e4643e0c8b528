package portmap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Route flags of Linux's /proc/net/route (linux/route.h).
const (
	rtfUp      = 0x1
	rtfGateway = 0x2
)

// parseDefaultGateway returns the gateway of the IPv4 default route with
// the lowest metric in the text of Linux's /proc/net/route. Addresses
// there are hex numbers in the machine's own byte order.
func parseDefaultGateway(r io.Reader) (netip.Addr, error) {
	sc := bufio.NewScanner(r)
	var (
		best       netip.Addr
		bestMetric uint64
		line       int
	)
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if line == 1 || len(f) < 8 {
			continue // header, or not a route
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		gw, err2 := strconv.ParseUint(f[2], 16, 32)
		flags, err3 := strconv.ParseUint(f[3], 16, 16)
		metric, err4 := strconv.ParseUint(f[6], 10, 32)
		mask, err5 := strconv.ParseUint(f[7], 16, 32)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			continue
		}
		if dst != 0 || mask != 0 || flags&(rtfUp|rtfGateway) != rtfUp|rtfGateway || gw == 0 {
			continue
		}
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], uint32(gw))
		if !best.IsValid() || metric < bestMetric {
			best, bestMetric = netip.AddrFrom4(b), metric
		}
	}
	if err := sc.Err(); err != nil {
		return netip.Addr{}, fmt.Errorf("read routes: %w", err)
	}
	if !best.IsValid() {
		return netip.Addr{}, errors.New("no IPv4 default route via a gateway")
	}
	return best, nil
}
