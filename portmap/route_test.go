package portmap

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
)

// hexIP writes an address the way the kernel prints it in /proc/net/route:
// the 32-bit value in the machine's byte order.
func hexIP(s string) string {
	a := netip.MustParseAddr(s).As4()
	return hex32(binary.NativeEndian.Uint32(a[:]))
}

func hex32(v uint32) string {
	const digits = "0123456789ABCDEF"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

const routeHeader = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"

func route(iface, dst, gw, flags, metric, mask string) string {
	return iface + "\t" + dst + "\t" + gw + "\t" + flags + "\t0\t0\t" + metric + "\t" + mask + "\t0\t0\t0\n"
}

func TestParseDefaultGateway(t *testing.T) {
	zero := "00000000"
	for _, tc := range []struct {
		name, table, want string
	}{
		{
			name:  "home LAN",
			table: route("eth0", zero, hexIP("192.168.1.1"), "0003", "100", zero) + route("eth0", hexIP("192.168.1.0"), zero, "0001", "100", hexIP("255.255.255.0")),
			want:  "192.168.1.1",
		},
		{
			name:  "lowest metric wins",
			table: route("wlan0", zero, hexIP("10.0.0.1"), "0003", "600", zero) + route("eth0", zero, hexIP("192.168.1.1"), "0003", "100", zero),
			want:  "192.168.1.1",
		},
		{
			name:  "route that is down is skipped",
			table: route("eth0", zero, hexIP("192.168.1.1"), "0002", "0", zero) + route("eth1", zero, hexIP("10.1.0.1"), "0003", "10", zero),
			want:  "10.1.0.1",
		},
		{name: "no default route", table: route("eth0", hexIP("192.168.1.0"), zero, "0001", "0", hexIP("255.255.255.0"))},
		{name: "default route without gateway (point-to-point)", table: route("tun0", zero, zero, "0001", "0", zero)},
		{name: "garbage", table: "eth0 zz yy\n\x00\xff\n"},
		{name: "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDefaultGateway(strings.NewReader(routeHeader + tc.table))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tc.want) {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func FuzzParseDefaultGateway(f *testing.F) {
	f.Add(routeHeader + route("eth0", "00000000", "010200C0", "0003", "0", "00000000"))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		gw, err := parseDefaultGateway(strings.NewReader(s))
		if err == nil && !gw.Is4() {
			t.Fatalf("gateway %v is not IPv4", gw)
		}
	})
}
