package portmap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

// ssdpGroup is the SSDP multicast address (UPnP Device Architecture 1.1).
var ssdpGroup = &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 1900}

// igdSearchTargets are the M-SEARCH targets that find Internet Gateway
// Devices: the device types, and the connection services in case a router
// only answers for those.
var igdSearchTargets = []string{
	"urn:schemas-upnp-org:device:InternetGatewayDevice:2",
	"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
	"urn:schemas-upnp-org:service:WANIPConnection:2",
	"urn:schemas-upnp-org:service:WANIPConnection:1",
	"urn:schemas-upnp-org:service:WANPPPConnection:1",
}

// ssdpResends is when the searches go out again: SSDP is UDP, and a
// router's answer can be lost.
var ssdpResends = []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond}

// mSearch is one M-SEARCH request. MX 1 asks devices to answer within a
// second (the minimum UDA 1.1 allows).
func mSearch(st string) []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\n" +
		"HOST: 239.255.255.250:1900\r\n" +
		"MAN: \"ssdp:discover\"\r\n" +
		"MX: 1\r\n" +
		"ST: " + st + "\r\n" +
		"USER-AGENT: Linux/1 UPnP/1.1 assist/1\r\n\r\n")
}

// discoverIGDs multicasts M-SEARCH on every IPv4 LAN interface and sends
// each new device description URL it hears to found, until ctx ends. It
// returns the addresses it searched from, or an error when there are none.
func discoverIGDs(ctx context.Context, found chan<- *url.URL) ([]netip.Addr, error) {
	addrs, err := lanAddrs()
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, errors.New("no IPv4 network interface with multicast is up")
	}
	var conns []*net.UDPConn
	var from []netip.Addr
	for _, a := range addrs {
		// Binding the interface's address makes the kernel send the
		// multicast out of that interface.
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: a.AsSlice()})
		if err != nil {
			continue
		}
		conns = append(conns, c)
		from = append(from, a)
	}
	if len(conns) == 0 {
		return nil, fmt.Errorf("cannot open a UDP socket on %v", addrs)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				n, src, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return // closed when ctx ends
				}
				loc, err := parseSSDPResponse(buf[:n], src.Addr().Unmap())
				if err != nil {
					continue
				}
				mu.Lock()
				dup := seen[loc.String()]
				seen[loc.String()] = true
				mu.Unlock()
				if dup {
					continue
				}
				select {
				case found <- loc:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	start := time.Now()
resend:
	for _, at := range ssdpResends {
		t := time.NewTimer(time.Until(start.Add(at)))
		select {
		case <-ctx.Done():
			t.Stop()
			break resend
		case <-t.C:
			for _, c := range conns {
				for _, st := range igdSearchTargets {
					_, _ = c.WriteToUDP(mSearch(st), ssdpGroup)
				}
			}
		}
	}
	<-ctx.Done()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	return from, nil
}

// lanAddrs lists the IPv4 addresses of interfaces that are up, not
// loopback, and can multicast.
func lanAddrs() ([]netip.Addr, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var addrs []netip.Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || ifc.Flags&net.FlagMulticast == 0 {
			continue
		}
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok && ip.Is4() {
				addrs = append(addrs, ip)
			}
		}
	}
	return addrs, nil
}

// parseSSDPResponse returns the LOCATION of an SSDP search response from
// src. The location must be a plain http URL on src itself: any host on
// the LAN can answer, and an answer must not make us send requests to a
// third machine.
func parseSSDPResponse(pkt []byte, src netip.Addr) (*url.URL, error) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(pkt)), nil)
	if err != nil {
		return nil, fmt.Errorf("ssdp: bad response: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ssdp: status %d", resp.StatusCode)
	}
	raw := resp.Header.Get("Location")
	if raw == "" {
		return nil, errors.New("ssdp: response without LOCATION")
	}
	loc, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("ssdp: bad LOCATION: %w", err)
	}
	if err := checkURLHost(loc, src); err != nil {
		return nil, fmt.Errorf("ssdp: LOCATION %q: %w", raw, err)
	}
	return loc, nil
}

// checkURLHost accepts an http URL whose host is the address ip.
func checkURLHost(u *url.URL, ip netip.Addr) error {
	if u.Scheme != "http" {
		return fmt.Errorf("scheme %q is not http", u.Scheme)
	}
	if u.User != nil {
		return errors.New("URL carries user information")
	}
	host, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return fmt.Errorf("host %q is not an IP address", u.Hostname())
	}
	if host.Unmap() != ip {
		return fmt.Errorf("host %s is not the device that answered (%s)", host, ip)
	}
	return nil
}
