package lan

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strings"

	"github.com/assist-project/assist/invitation"
	"github.com/hashicorp/mdns"
)

// Service is the DNS-SD service type of an Assist invitation.
const Service = "_assist._tcp"

// domain is mDNS's domain.
const domain = "local."

// instanceName is the DNS name of the instance announcing the invitation
// of code code: a short code ("W848-T91J", canonical) or the number of a
// server's word code ("7").
func instanceName(code string) string {
	return code + "." + Service + "." + domain
}

// hostName is the host name the SRV record points to: the code's own, so
// that it never depends on, or reveals, the computer's name.
func hostName(code string) string {
	return "assist-" + strings.ToLower(code) + "." + domain
}

// maxAnnounced is the most addresses one announcement lists: each A or
// AAAA record takes at most 28 bytes, so 64 fit a 9000-byte mDNS packet
// with room for the SRV and TXT records.
const maxAnnounced = 64

// Announcement is an invitation announced on the local network; Close
// withdraws it.
type Announcement struct {
	servers []*mdns.Server
}

// Announce answers mDNS questions for inv under code on every interface
// that is up and can multicast, with port (the agent's listening port) and
// the interfaces' addresses, until Close. code is what the novice reads
// out: inv.ShortCode() for an invitation without a server, the number of
// the word code ("7" of 7-crayon-harbor) for one with a server. Announce
// fails if no interface can take part (a computer with no network but
// loopback); the invitation still works with its file or a server then.
func Announce(inv *invitation.Invitation, code string, port int, logger *slog.Logger) (*Announcement, error) {
	if _, err := lookupCode(code); err != nil {
		return nil, err
	}
	ifaces, err := multicastInterfaces()
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
				ips = append(ips, ipn.IP)
			}
		}
	}
	if len(ips) == 0 {
		return nil, errors.New("lan: no network interface with an address to announce the invitation on")
	}
	// One answer lists them all (the expert keeps those on its own
	// network); a host with dozens of container bridges must still fit
	// one packet.
	if len(ips) > maxAnnounced {
		ips = ips[:maxAnnounced]
	}
	svc, err := mdns.NewMDNSService(code, Service, domain, hostName(code), port, ips, TXT(inv))
	if err != nil {
		return nil, fmt.Errorf("lan: %w", err)
	}
	// The responder logs every malformed packet anyone sends: debug.
	ll := log.New(io2slog{logger}, "", 0)
	a := &Announcement{}
	var errs []error
	for i := range ifaces {
		// One responder per interface: with no interface given, the
		// system joins the mDNS group on one interface only.
		s, err := mdns.NewServer(&mdns.Config{Zone: svc, Iface: &ifaces[i], Logger: ll})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ifaces[i].Name, err))
			continue
		}
		a.servers = append(a.servers, s)
	}
	if len(a.servers) == 0 {
		return nil, fmt.Errorf("lan: cannot answer mDNS questions on any interface: %w", errors.Join(errs...))
	}
	for _, err := range errs {
		logger.Debug("lan: not announcing on an interface", "err", err)
	}
	return a, nil
}

// Close withdraws the announcement: the invitation is no longer found by
// its code on the local network.
func (a *Announcement) Close() error {
	var errs []error
	for _, s := range a.servers {
		errs = append(errs, s.Shutdown())
	}
	return errors.Join(errs...)
}

// multicastInterfaces lists the interfaces that are up and can multicast,
// without loopback.
func multicastInterfaces() ([]net.Interface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("lan: listing network interfaces: %w", err)
	}
	var out []net.Interface
	for _, ifc := range all {
		if ifc.Flags&net.FlagUp != 0 && ifc.Flags&net.FlagMulticast != 0 && ifc.Flags&net.FlagLoopback == 0 {
			out = append(out, ifc)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("this computer is on no local network (no network interface that can multicast is up): ask for the invitation file, or use a rendezvous server (--server)")
	}
	return out, nil
}

// io2slog writes the lines of a log.Logger to a slog.Logger at debug
// level.
type io2slog struct{ l *slog.Logger }

func (w io2slog) Write(p []byte) (int, error) {
	w.l.Debug("lan: mdns responder", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}
