package portmap

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseSSDPResponse(t *testing.T) {
	gw := netip.MustParseAddr("10.1.0.1")
	resp := func(status, loc string) string {
		s := "HTTP/1.1 " + status + "\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
			"USN: uuid:x::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nEXT:\r\nSERVER: Debian UPnP/1.1 MiniUPnPd/2.3.1\r\n"
		if loc != "" {
			s += "LOCATION: " + loc + "\r\n"
		}
		return s + "\r\n"
	}
	for _, tc := range []struct {
		name, pkt, want string // want "" means rejected
	}{
		{name: "miniupnpd", pkt: resp("200 OK", "http://10.1.0.1:5000/rootDesc.xml"), want: "http://10.1.0.1:5000/rootDesc.xml"},
		{name: "lower-case header", pkt: strings.Replace(resp("200 OK", "http://10.1.0.1:5000/d.xml"), "LOCATION", "Location", 1), want: "http://10.1.0.1:5000/d.xml"},
		{name: "another host", pkt: resp("200 OK", "http://10.1.0.99:5000/rootDesc.xml")},
		{name: "a name, not an address", pkt: resp("200 OK", "http://router.lan:5000/rootDesc.xml")},
		{name: "https", pkt: resp("200 OK", "https://10.1.0.1:5000/rootDesc.xml")},
		{name: "file", pkt: resp("200 OK", "file:///etc/passwd")},
		{name: "user info", pkt: resp("200 OK", "http://u:p@10.1.0.1:5000/")},
		{name: "no location", pkt: resp("200 OK", "")},
		{name: "error status", pkt: resp("404 Not Found", "http://10.1.0.1:5000/rootDesc.xml")},
		{name: "a NOTIFY, not a response", pkt: "NOTIFY * HTTP/1.1\r\nLOCATION: http://10.1.0.1:5000/\r\n\r\n"},
		{name: "garbage", pkt: "\x00\x01\x02"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := parseSSDPResponse([]byte(tc.pkt), gw)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("accepted %s", loc)
				}
				return
			}
			if err != nil || loc.String() != tc.want {
				t.Fatalf("got %v, %v; want %s", loc, err, tc.want)
			}
		})
	}
}

func FuzzParseSSDPResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nLOCATION: http://10.1.0.1:5000/rootDesc.xml\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nLOCATION: http://[::ffff:10.1.0.1]:5000/\r\n\r\n"))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		gw := netip.MustParseAddr("10.1.0.1")
		loc, err := parseSSDPResponse(pkt, gw)
		if err != nil {
			return
		}
		// Whatever is accepted points at the device that answered, over http.
		if loc.Scheme != "http" {
			t.Fatalf("accepted scheme %q", loc.Scheme)
		}
		if h, err := netip.ParseAddr(loc.Hostname()); err != nil || h.Unmap() != gw {
			t.Fatalf("accepted host %q", loc.Host)
		}
	})
}
