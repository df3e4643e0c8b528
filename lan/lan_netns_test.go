package lan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/invitation"
	"github.com/hashicorp/mdns"
	"github.com/miekg/dns"
)

// hostileZone answers the question for one instance with whatever records
// it was given: a stranger on the LAN.
type hostileZone struct {
	instance string
	records  []dns.RR
}

func (z hostileZone) Records(q dns.Question) []dns.RR {
	if strings.EqualFold(q.Name, z.instance) {
		return z.records
	}
	return nil
}

// inNetns runs fn inside namespace ns and fails t on error.
func inNetns(t *testing.T, ns string, fn func() error) {
	t.Helper()
	if err := lab.InNetns(ns, fn); err != nil {
		t.Fatal(err)
	}
}

// TestLookupAcrossNamespaces: the novice announces on bridge 1; the
// expert, on bridges 2 (eth0) and 1 (eth1), finds it over IPv4 and over
// IPv6 through its second interface, with the novice's addresses on
// bridge 1 only, despite a stranger on bridge 1 answering for the same
// code with the real invitation's id and addresses off the network, a
// wrong code, and garbage. A host on bridge 2 alone does not find it.
func TestLookupAcrossNamespaces(t *testing.T) {
	l := lab.NewLAN(t, 2)
	novice := l.Host(t, "novice", 2, 1)
	stranger := l.Host(t, "stranger", 3, 1)
	expert := l.Host(t, "expert", 4, 2, 1)
	outsider := l.Host(t, "outsider", 5, 2)

	now := time.Now()
	inv, err := invitation.New("Grandma", time.Hour, []string{"10.77.1.2:5820"}, now)
	if err != nil {
		t.Fatal(err)
	}
	code := inv.ShortCode()
	var a *Announcement
	inNetns(t, novice, func() (err error) {
		a, err = Announce(inv, code, 5820, slog.Default())
		return err
	})
	defer a.Close()

	// The stranger knows the real invitation's id (it asked too) and
	// answers with its own name and addresses, one off the network.
	hdr := func(name string, typ uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: 120}
	}
	fake := *inv
	fake.Name = "Your Bank"
	host := "evil.local."
	records := []dns.RR{
		&dns.SRV{Hdr: hdr(instanceName(code), dns.TypeSRV), Port: 6000, Target: host},
		&dns.A{Hdr: hdr(host, dns.TypeA), A: net.ParseIP("10.77.1.3")},
		&dns.A{Hdr: hdr(host, dns.TypeA), A: net.ParseIP("8.8.8.8")},
		&dns.TXT{Hdr: hdr(instanceName(code), dns.TypeTXT), Txt: TXT(&fake)},
	}
	var hostile *mdns.Server
	inNetns(t, stranger, func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		hostile, err = mdns.NewServer(&mdns.Config{Zone: hostileZone{instanceName(code), records}, Iface: ifc, Logger: log.New(io.Discard, "", 0)})
		return err
	})
	defer hostile.Shutdown()

	for _, family := range []string{"udp4", "udp6"} {
		t.Run(family, func(t *testing.T) {
			var found []*invitation.Invitation
			inNetns(t, expert, func() (err error) {
				found, err = Lookup(context.Background(), strings.ToLower(code), Config{family: family, Settle: time.Second})
				return err
			})
			var mine, theirs []*invitation.Invitation
			for _, f := range found {
				switch f.Name {
				case "Grandma":
					mine = append(mine, f)
				case "Your Bank":
					theirs = append(theirs, f)
				default:
					t.Errorf("unexpected answer %+v", f)
				}
			}
			if len(mine) == 0 {
				t.Fatalf("the novice's answer was not found: %v", describe(found))
			}
			for _, f := range mine {
				if f.ID != inv.ID {
					t.Errorf("id %s, want %s", f.ID, inv.ID)
				}
				for _, want := range []string{"10.77.1.2:5820", "[fd77:1::2]:5820"} {
					if !slices.Contains(f.Addrs, want) {
						t.Errorf("the novice's addresses %q lack %s", f.Addrs, want)
					}
				}
				for _, ad := range f.Addrs {
					if strings.HasPrefix(ad, "[fe80:") && !strings.Contains(ad, "%eth1]") {
						t.Errorf("link-local address %s is not on eth1, where the answer came in", ad)
					}
				}
			}
			for _, f := range theirs {
				if !slices.Equal(f.Addrs, []string{"10.77.1.3:6000"}) {
					t.Errorf("the stranger's answer kept %q, want only its own address on the network", f.Addrs)
				}
			}
			t.Logf("%s: %s", family, describe(found))
		})
	}

	t.Run("a word code's number", func(t *testing.T) {
		// An invitation with a server is announced under its word
		// code's number: the id does not contain it.
		withServer, err := invitation.New("Grandpa", time.Hour, []string{"10.77.1.2:5821"}, now)
		if err != nil {
			t.Fatal(err)
		}
		var b *Announcement
		inNetns(t, novice, func() (err error) {
			b, err = Announce(withServer, "7", 5821, slog.Default())
			return err
		})
		defer b.Close()
		var found []*invitation.Invitation
		inNetns(t, expert, func() (err error) {
			found, err = Lookup(context.Background(), "7", Config{})
			return err
		})
		if len(found) != 1 || found[0].ID != withServer.ID || !slices.Contains(found[0].Addrs, "10.77.1.2:5821") {
			t.Fatalf("found %s, want Grandpa's invitation at 10.77.1.2:5821", describe(found))
		}
	})

	t.Run("another bridge", func(t *testing.T) {
		start := time.Now()
		var err error
		inNetns(t, outsider, func() error {
			_, err = Lookup(context.Background(), code, Config{Wait: time.Second})
			return nil
		})
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup from another bridge: %v, want ErrNotFound", err)
		}
		t.Logf("not found after %v: %v", time.Since(start).Round(time.Millisecond), err)
	})

	t.Run("withdrawn", func(t *testing.T) {
		a.Close()
		var err error
		inNetns(t, expert, func() error {
			var found []*invitation.Invitation
			found, err = Lookup(context.Background(), code, Config{Wait: time.Second})
			for _, f := range found {
				if f.Name == "Grandma" {
					return fmt.Errorf("found after Close: %+v", f)
				}
			}
			return nil
		})
		// The stranger still answers: found, but not the novice.
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	})
}

func describe(found []*invitation.Invitation) string {
	var s []string
	for _, f := range found {
		s = append(s, fmt.Sprintf("%q %s", f.Name, strings.Join(f.Addrs, " ")))
	}
	return strings.Join(s, "; ")
}
