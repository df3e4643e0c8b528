package lan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/invitation"
	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ErrNotFound is returned (wrapped) by Lookup when no invitation with the
// code answered.
var ErrNotFound = errors.New("no invitation with that code on this network: check the code with the person who invited you, or ask them for the invitation file, or use a rendezvous server (--server)")

// Bounds on what Lookup reads, so that a flood of answers costs little.
const (
	// maxAnswers is the most distinct invitations Lookup returns.
	maxAnswers = 8
	// maxPackets is the most packets Lookup reads in one look-up.
	maxPackets = 512
	// maxRecords is the most records of one packet Lookup reads; an
	// honest answer has an SRV, a TXT and a few addresses.
	maxRecords = 64
	// maxAddrs is the most addresses kept from one answer.
	maxAddrs = 8
	// packetSize is the largest mDNS packet (RFC 6762 17).
	packetSize = 9000
)

// Config tunes Lookup; the zero value is the default.
type Config struct {
	// Wait is how long to wait for answers when none comes (default
	// DefaultWait).
	Wait time.Duration
	// Settle is how long to go on listening after the first answer, for
	// others (default DefaultSettle): a hostile answer that comes first
	// does not hide the right one.
	Settle time.Duration
	// Logger, if not nil, receives what was refused and why, at debug.
	Logger *slog.Logger

	// family, for tests: "udp4" or "udp6" asks over that family only; ""
	// over both.
	family string
}

// The defaults of Config.
const (
	DefaultWait   = 3 * time.Second
	DefaultSettle = 500 * time.Millisecond
)

// mDNS's group addresses and port.
var (
	group4 = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}
	group6 = net.ParseIP("ff02::fb")
)

// Lookup asks the local network, on every interface that can multicast,
// over IPv4 and IPv6, for the invitation of code code (a short code,
// "W848-T91J", in any spelling CanonicalCrockford accepts, or the number
// of a server's word code, "7"), and returns the invitations
// that answered, each with the addresses to dial (at most maxAnswers,
// first answer first). It asks three times, as RFC 6762 suggests for lost
// packets, and stops Settle after the first valid answer, or after Wait
// without one: then it returns an error wrapping ErrNotFound.
func Lookup(ctx context.Context, code string, cfg Config) ([]*invitation.Invitation, error) {
	code, err := lookupCode(code)
	if err != nil {
		return nil, err
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ifaces, err := multicastInterfaces()
	if err != nil {
		return nil, err
	}
	byIndex := map[int]*net.Interface{}
	prefixes := map[int][]netip.Prefix{}
	for i := range ifaces {
		byIndex[ifaces[i].Index] = &ifaces[i]
		prefixes[ifaces[i].Index] = localPrefixes(&ifaces[i])
	}
	q := new(dns.Msg)
	q.SetQuestion(instanceName(code), dns.TypeANY)
	q.RecursionDesired = false
	query, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("lan: packing the question: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	packets := make(chan packet, 32)
	var wg sync.WaitGroup
	defer wg.Wait()
	var socks []socket
	if cfg.family == "udp6" {
		// Tests: IPv6 only.
	} else if c, err := net.ListenUDP("udp4", &net.UDPAddr{}); err == nil {
		p := ipv4.NewPacketConn(c)
		if err := p.SetControlMessage(ipv4.FlagInterface, true); err != nil {
			logger.Debug("lan: no interface index for IPv4 answers", "err", err)
		}
		socks = append(socks, socket4{p})
	} else {
		logger.Debug("lan: no IPv4 socket", "err", err)
	}
	if cfg.family == "udp4" {
		// Tests: IPv4 only.
	} else if c, err := net.ListenUDP("udp6", &net.UDPAddr{}); err == nil {
		p := ipv6.NewPacketConn(c)
		if err := p.SetControlMessage(ipv6.FlagInterface, true); err != nil {
			logger.Debug("lan: no interface index for IPv6 answers", "err", err)
		}
		socks = append(socks, socket6{p})
	} else {
		logger.Debug("lan: no IPv6 socket", "err", err)
	}
	if len(socks) == 0 {
		return nil, errors.New("lan: cannot open a UDP socket to ask the network")
	}
	for _, s := range socks {
		defer s.Close()
		wg.Go(func() { s.read(ctx, packets) })
	}
	// The readers block in ReadFrom: closing the sockets stops them.
	stop := context.AfterFunc(ctx, func() {
		for _, s := range socks {
			s.Close()
		}
	})
	defer stop()

	send := func() error {
		sent := 0
		var errs []error
		for _, ifc := range ifaces {
			for _, s := range socks {
				if err := s.send(query, ifc); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", ifc.Name, err))
					continue
				}
				sent++
			}
		}
		if sent == 0 {
			return fmt.Errorf("lan: cannot ask the network on any interface: %w", errors.Join(errs...))
		}
		return nil
	}
	if err := send(); err != nil {
		return nil, err
	}
	resend := []time.Duration{250 * time.Millisecond, time.Second}
	start := time.Now()
	timer := time.NewTimer(resend[0])
	defer timer.Stop()
	deadline := time.NewTimer(cfg.Wait)
	defer deadline.Stop()
	var (
		found []*invitation.Invitation
		seen  = map[string]bool{}
		read  int
	)
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			if err := send(); err != nil {
				logger.Debug("lan: asking again failed", "err", err)
			}
			resend = resend[1:]
			if len(resend) > 0 {
				timer.Reset(resend[0] - time.Since(start))
			}
		case <-deadline.C:
			if len(found) == 0 {
				return nil, fmt.Errorf("%w (asked for %s for %v)", ErrNotFound, code, cfg.Wait)
			}
			return found, nil
		case p := <-packets:
			read++
			if read > maxPackets {
				if len(found) == 0 {
					return nil, fmt.Errorf("%w (more than %d answers, none valid: something on this network floods mDNS)", ErrNotFound, maxPackets)
				}
				return found, nil
			}
			// Interfaces and prefixes as they were when the look-up
			// started, read on the caller's thread (its network
			// namespace, in tests).
			ifc := byIndex[p.ifc]
			inv, err := parseAnswer(p.data, code, p.src, ifc, prefixes[p.ifc], time.Now())
			if err != nil {
				logger.Debug("lan: answer refused", "from", p.src, "err", err)
				continue
			}
			key := inv.ID + "|" + strings.Join(inv.Addrs, ",")
			if seen[key] {
				continue
			}
			seen[key] = true
			logger.Debug("lan: answer", "from", p.src, "addrs", inv.Addrs)
			found = append(found, inv)
			if len(found) == maxAnswers {
				return found, nil
			}
			if len(found) == 1 {
				deadline.Reset(cfg.Settle)
			}
		}
	}
}

// lookupCode returns the canonical spelling of a code Lookup and Announce
// take: a short code ("W848-T91J") or a word code's number ("7").
func lookupCode(code string) (string, error) {
	if c, ok := invitation.CanonicalCrockford(code, 8); ok {
		return c[:4] + "-" + c[4:], nil
	}
	if n, err := strconv.Atoi(code); err == nil && n >= 1 && n <= invitation.MaxLookup && strconv.Itoa(n) == code {
		return code, nil
	}
	return "", fmt.Errorf("lan: %q is not a code like W848-T91J or the number of one like 7-crayon-harbor", code)
}

// packet is one datagram received, with where it came from.
type packet struct {
	data []byte
	src  netip.AddrPort
	ifc  int // the receiving interface's index; 0 if unknown
}

// socket is the IPv4 or the IPv6 socket of a look-up.
type socket interface {
	send(b []byte, ifc net.Interface) error
	read(ctx context.Context, out chan<- packet)
	Close() error
}

type socket4 struct{ *ipv4.PacketConn }

// send multicasts b out of ifc. The socket option rather than a control
// message picks the interface: Windows has no control messages. Sends
// are sequential (Lookup's loop), so the option cannot change under one.
func (s socket4) send(b []byte, ifc net.Interface) error {
	if err := s.SetMulticastInterface(&ifc); err != nil {
		return err
	}
	_, err := s.WriteTo(b, nil, group4)
	return err
}

func (s socket4) read(ctx context.Context, out chan<- packet) {
	readAll(ctx, out, func(b []byte) (int, int, net.Addr, error) {
		n, cm, src, err := s.ReadFrom(b)
		if cm == nil {
			return n, 0, src, err
		}
		return n, cm.IfIndex, src, err
	})
}

type socket6 struct{ *ipv6.PacketConn }

func (s socket6) send(b []byte, ifc net.Interface) error {
	if err := s.SetMulticastInterface(&ifc); err != nil {
		return err
	}
	_, err := s.WriteTo(b, nil, &net.UDPAddr{IP: group6, Port: 5353, Zone: ifc.Name})
	return err
}

func (s socket6) read(ctx context.Context, out chan<- packet) {
	readAll(ctx, out, func(b []byte) (int, int, net.Addr, error) {
		n, cm, src, err := s.ReadFrom(b)
		if cm == nil {
			return n, 0, src, err
		}
		return n, cm.IfIndex, src, err
	})
}

// readAll hands the look-up every datagram readFrom returns (with the
// receiving interface's index, 0 if unknown) until it fails or ctx ends.
func readAll(ctx context.Context, out chan<- packet, readFrom func([]byte) (n, ifc int, src net.Addr, err error)) {
	buf := make([]byte, packetSize)
	for {
		n, idx, src, err := readFrom(buf)
		if err != nil {
			return
		}
		if !deliver(ctx, out, buf[:n], src, idx) {
			return
		}
	}
}

// deliver hands a copy of a datagram to the look-up; false once ctx ended.
func deliver(ctx context.Context, out chan<- packet, b []byte, src net.Addr, idx int) bool {
	ua, ok := src.(*net.UDPAddr)
	if !ok {
		return true
	}
	ap := ua.AddrPort()
	p := packet{data: slices.Clone(b), src: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ifc: idx}
	select {
	case out <- p:
		return true
	case <-ctx.Done():
		return false
	}
}

// ParseAnswer reads one mDNS packet as an answer for the invitation of
// code code (canonical: "W848-T91J", or a word code's number "7"; for a
// short code the invitation's id must have it), received from src on interface
// ifc (nil if unknown), and returns the invitation it describes with the
// addresses to dial. Everything is checked (see the package's doc): it
// returns an error for anything else.
func ParseAnswer(data []byte, code string, src netip.AddrPort, ifc *net.Interface, now time.Time) (*invitation.Invitation, error) {
	return parseAnswer(data, code, src, ifc, localPrefixes(ifc), now)
}

// parseAnswer is ParseAnswer with the prefixes of ifc given (tests have no
// such interface).
func parseAnswer(data []byte, code string, src netip.AddrPort, ifc *net.Interface, local []netip.Prefix, now time.Time) (*invitation.Invitation, error) {
	if len(data) > packetSize {
		return nil, errors.New("packet too large")
	}
	var m dns.Msg
	if err := m.Unpack(data); err != nil {
		return nil, fmt.Errorf("not DNS: %w", err)
	}
	if !m.Response || m.Opcode != dns.OpcodeQuery || m.Rcode != dns.RcodeSuccess {
		return nil, errors.New("not an answer")
	}
	rrs := append(m.Answer, m.Extra...)
	if len(rrs) > maxRecords {
		return nil, fmt.Errorf("%d records, at most %d read", len(rrs), maxRecords)
	}
	instance := instanceName(code)
	var (
		srv *dns.SRV
		txt *dns.TXT
	)
	for _, rr := range rrs {
		if !strings.EqualFold(rr.Header().Name, instance) {
			continue
		}
		switch r := rr.(type) {
		case *dns.SRV:
			if srv != nil {
				return nil, errors.New("two SRV records for the instance")
			}
			srv = r
		case *dns.TXT:
			if txt != nil {
				return nil, errors.New("two TXT records for the instance")
			}
			txt = r
		}
	}
	if srv == nil || txt == nil {
		return nil, errors.New("no SRV and TXT records for the code")
	}
	if srv.Port == 0 {
		return nil, errors.New("port 0")
	}
	inv, err := ParseTXT(txt.Txt)
	if err != nil {
		return nil, err
	}
	if _, short := invitation.CanonicalCrockford(code, 8); short && inv.ShortCode() != code {
		return nil, fmt.Errorf("the TXT record's invitation has code %q, not the one asked for", inv.ShortCode())
	}
	seen := map[netip.Addr]bool{}
	var zones []string
	for _, rr := range rrs {
		if len(inv.Addrs) == maxAddrs {
			break
		}
		if !strings.EqualFold(rr.Header().Name, srv.Target) {
			continue
		}
		var ip net.IP
		switch r := rr.(type) {
		case *dns.A:
			ip = r.A
		case *dns.AAAA:
			ip = r.AAAA
		default:
			continue
		}
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		a = a.Unmap()
		if !usable(a, src.Addr(), local) || seen[a] {
			continue
		}
		seen[a] = true
		zone := ""
		if a.Is6() && a.IsLinkLocalUnicast() {
			if ifc == nil {
				continue // no zone to dial it with
			}
			zone = ifc.Name
		}
		inv.Addrs = append(inv.Addrs, netip.AddrPortFrom(a, srv.Port).String())
		zones = append(zones, zone)
	}
	if len(inv.Addrs) == 0 {
		return nil, errors.New("no address on this network")
	}
	// The invitation format has no zones (a file crosses computers):
	// check it without, then dial link-local addresses on the interface
	// the answer came in on.
	if err := inv.Validate(now); err != nil {
		return nil, err
	}
	for i, z := range zones {
		if z != "" {
			ap := netip.MustParseAddrPort(inv.Addrs[i])
			inv.Addrs[i] = netip.AddrPortFrom(ap.Addr().WithZone(z), ap.Port()).String()
		}
	}
	return inv, nil
}

// usable reports whether a, from an answer sent by src, is an address the
// expert may dial: a unicast address that is the sender's own, inside one
// of the prefixes of the interface the answer came in on, or IPv6
// link-local (on that interface).
func usable(a, src netip.Addr, local []netip.Prefix) bool {
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	if a == src.WithZone("") {
		return true
	}
	if a.Is6() && a.IsLinkLocalUnicast() {
		return true
	}
	for _, p := range local {
		if p.Contains(a) && a != p.Masked().Addr() {
			return true
		}
	}
	return false
}

// localPrefixes returns the prefixes of ifc's addresses (none for nil).
func localPrefixes(ifc *net.Interface) []netip.Prefix {
	if ifc == nil {
		return nil
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, _ := ipn.Mask.Size()
		ip = ip.Unmap()
		if p, err := ip.Prefix(ones); err == nil {
			out = append(out, p)
		}
	}
	return out
}
