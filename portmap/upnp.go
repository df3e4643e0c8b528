package portmap

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
)

// igdConn is what the generated WANIPConnection2, WANIPConnection1 and
// WANPPPConnection1 clients have in common.
type igdConn interface {
	GetServiceClient() *goupnp.ServiceClient
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string,
		internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
}

// UPnP error codes (IGD WANIPConnection:2 service spec) that change what
// we ask next.
const (
	upnpConflict          = 718 // ConflictInMappingEntry: the port is taken
	upnpPermanentOnly     = 725 // OnlyPermanentLeasesSupported
	upnpConflictOtherMech = 729 // ConflictWithOtherMechanisms
)

// upnpHTTP talks to the router directly: a proxy from the environment must
// not see LAN requests, and device answers are bounded.
var upnpHTTP = http.Client{
	Transport: &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		DisableKeepAlives:      true, // a request every half-hour does not need a pool
		ResponseHeaderTimeout:  3 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	},
	Timeout: 5 * time.Second,
}

// maxDescription bounds a device description (real ones are a few KiB).
const maxDescription = 1 << 20

// mapUPnP finds Internet Gateway Devices by SSDP and asks each in turn,
// as it answers, for a mapping, until one grants it or ctx ends.
func mapUPnP(ctx context.Context, req request) (*lease, error) {
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	found := make(chan *url.URL)
	type discovery struct {
		from []netip.Addr
		err  error
	}
	done := make(chan discovery, 1)
	go func() {
		from, err := discoverIGDs(sctx, found)
		close(found)
		done <- discovery{from, err}
	}()
	var errs []error
	for loc := range found {
		req.log.Debug("portmap: UPnP IGD found", "location", loc.String())
		l, err := tryIGD(ctx, loc, req)
		if err == nil {
			return l, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", loc.Host, err))
	}
	d := <-done
	if d.err != nil {
		return nil, fmt.Errorf("SSDP discovery: %w", d.err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	from := make([]string, len(d.from))
	for i, a := range d.from {
		from[i] = a.String()
	}
	return nil, &noAnswerError{where: "SSDP from " + strings.Join(from, ", ")}
}

// tryIGD asks the device described at loc for a mapping through the first
// connection service that grants one.
func tryIGD(ctx context.Context, loc *url.URL, req request) (*lease, error) {
	gw, _ := netip.ParseAddr(loc.Hostname()) // checked by parseSSDPResponse
	root, err := fetchRootDevice(ctx, loc, gw)
	if err != nil {
		return nil, err
	}
	conns := igdConns(root, loc)
	if len(conns) == 0 {
		return nil, errors.New("device offers no WANIPConnection or WANPPPConnection service")
	}
	var errs []error
	for _, c := range conns {
		sc := c.GetServiceClient()
		if err := checkURLHost(&sc.SOAPClient.EndpointURL, gw); err != nil {
			errs = append(errs, fmt.Errorf("control URL: %w", err))
			continue
		}
		sc.SOAPClient.HTTPClient = upnpHTTP
		l, err := addUPnPMapping(ctx, c, req)
		if err == nil {
			return l, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", sc.Service.ServiceType, err))
	}
	return nil, errors.Join(errs...)
}

// igdConns lists the device's connection services, IGD 2 first.
func igdConns(root *goupnp.RootDevice, loc *url.URL) []igdConn {
	var conns []igdConn
	if cs, err := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range cs {
			conns = append(conns, c)
		}
	}
	if cs, err := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range cs {
			conns = append(conns, c)
		}
	}
	if cs, err := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range cs {
			conns = append(conns, c)
		}
	}
	return conns
}

// fetchRootDevice reads a device description. A URLBase pointing away from
// the device that answered SSDP is ignored, like an off-device LOCATION.
func fetchRootDevice(ctx context.Context, loc *url.URL, gw netip.Addr) (*goupnp.RootDevice, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("device description: %w", err)
	}
	resp, err := upnpHTTP.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("device description: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("device description: HTTP %s", resp.Status)
	}
	root := new(goupnp.RootDevice)
	dec := xml.NewDecoder(io.LimitReader(resp.Body, maxDescription))
	dec.DefaultSpace = goupnp.DeviceXMLNamespace
	dec.CharsetReader = goupnp.CharsetReaderDefault
	if err := dec.Decode(root); err != nil {
		return nil, fmt.Errorf("device description: %w", err)
	}
	base := loc
	if root.URLBaseStr != "" {
		if u, err := url.Parse(root.URLBaseStr); err == nil && checkURLHost(u, gw) == nil {
			base = u
		}
	}
	root.SetURLBase(base)
	return root, nil
}

// addUPnPMapping maps req on one connection service: the same external
// port as the internal one if it is free, else a few random ones.
func addUPnPMapping(ctx context.Context, c igdConn, req request) (*lease, error) {
	ep := c.GetServiceClient().SOAPClient.EndpointURL
	local, err := localAddrTo(ep.Host)
	if err != nil {
		return nil, err
	}
	ext, err := externalIP(ctx, c)
	if err != nil {
		return nil, err
	}
	proto := strings.ToUpper(req.proto)
	internal := uint16(req.internalPort)
	secs := uint32(min(req.lifetime/time.Second, 1<<32-1))
	add := func(ctx context.Context, port uint16) error {
		err := c.AddPortMappingCtx(ctx, "", port, proto, internal, local.String(), true, req.description, secs)
		if upnpErrorCode(err) == upnpPermanentOnly && secs != 0 {
			// Old IGD 1 routers: a permanent lease, deleted by Close.
			secs = 0
			err = c.AddPortMappingCtx(ctx, "", port, proto, internal, local.String(), true, req.description, 0)
		}
		return err
	}
	port := internal
	for try := 0; ; try++ {
		err = add(ctx, port)
		if err == nil {
			break
		}
		code := upnpErrorCode(err)
		if (code != upnpConflict && code != upnpConflictOtherMech) || try == 3 {
			return nil, fmt.Errorf("AddPortMapping %s %d->%s:%d: %w", proto, port, local, internal, err)
		}
		port = uint16(1024 + rand.IntN(65536-1024))
	}
	l := &lease{
		method:   "upnp",
		external: netip.AddrPortFrom(ext, port),
		lifetime: time.Duration(secs) * time.Second,
	}
	l.renew = func(ctx context.Context) (netip.AddrPort, time.Duration, error) {
		if err := add(ctx, port); err != nil {
			return netip.AddrPort{}, 0, fmt.Errorf("AddPortMapping: %w", err)
		}
		// The router's own address may have changed (a new lease from
		// the ISP); keep the last known one if it cannot tell.
		addr := l.external.Addr()
		if ext, err := externalIP(ctx, c); err == nil {
			addr = ext
		}
		return netip.AddrPortFrom(addr, port), time.Duration(secs) * time.Second, nil
	}
	l.remove = func(ctx context.Context) error {
		if err := c.DeletePortMappingCtx(ctx, "", port, proto); err != nil {
			return fmt.Errorf("DeletePortMapping: %w", err)
		}
		return nil
	}
	return l, nil
}

// externalIP asks the router for its address on the internet side.
func externalIP(ctx context.Context, c igdConn) (netip.Addr, error) {
	s, err := c.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("GetExternalIPAddress: %w", err)
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || ip.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("router reports no usable external address (%q): is it connected?", s)
	}
	return ip.Unmap(), nil
}

// localAddrTo returns this machine's address on the route to hostport
// (connecting a UDP socket sends nothing). Routers in secure mode only
// map ports to the address that asks.
func localAddrTo(hostport string) (netip.Addr, error) {
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(hostport, "80")
	}
	c, err := net.Dial("udp4", hostport)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route to %s: %w", hostport, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// upnpErrorCode returns the UPnP error code in a SOAP fault, or 0.
func upnpErrorCode(err error) int {
	var f *soap.SOAPFaultError
	if errors.As(err, &f) {
		return f.Detail.UPnPError.Errorcode
	}
	return 0
}
