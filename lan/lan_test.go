package lan

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/invitation"
	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// hashicorp/mdns's responders stop their readers after Shutdown
	// returns: goleak's retries wait for them.
	goleak.VerifyTestMain(m)
}

var testNow = time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)

// testInvitation is a valid invitation created at testNow.
func testInvitation(t testing.TB) *invitation.Invitation {
	t.Helper()
	inv, err := invitation.New("Grandma", time.Hour, []string{"192.0.2.1:5820"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestTXTRoundTrip(t *testing.T) {
	inv := testInvitation(t)
	got, err := ParseTXT(TXT(inv))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != inv.ID || got.Name != inv.Name || !got.Created.Equal(inv.Created.Truncate(time.Second)) || !got.Expires.Equal(inv.Expires.Truncate(time.Second)) {
		t.Errorf("ParseTXT(TXT(inv)) = %+v, want %+v", got, inv)
	}
	for _, f := range TXT(inv) {
		if strings.Contains(strings.ToLower(f), "pass") {
			t.Errorf("TXT field %q: the TXT record must not carry the password", f)
		}
	}
}

func TestParseTXTRefuses(t *testing.T) {
	inv := testInvitation(t)
	good := TXT(inv)
	for _, tc := range []struct {
		name   string
		fields []string
	}{
		{"empty", nil},
		{"no id", slices.Delete(slices.Clone(good), 1, 2)},
		{"two ids", append(slices.Clone(good), "id="+inv.ID)},
		{"version 2", append([]string{"v=2"}, good[1:]...)},
		{"created not a number", append(slices.Clone(good[:3]), "created=-5", good[4])},
		{"expires too far", append(slices.Clone(good[:4]), "expires=99999999999999")},
		{"too many fields", append(slices.Clone(good), strings.Split(strings.Repeat("x=1,", 20), ",")...)},
		{"too long", append(slices.Clone(good), "z="+strings.Repeat("a", 1300))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseTXT(tc.fields); !errors.Is(err, ErrBadTXT) {
				t.Errorf("ParseTXT(%q) = %v, want ErrBadTXT", tc.fields, err)
			}
		})
	}
}

// answer builds an mDNS answer packet for inv's code as the novice's
// responder sends it, changed by edit.
func answer(t testing.TB, inv *invitation.Invitation, edit func(m *dns.Msg)) []byte {
	t.Helper()
	code := inv.ShortCode()
	hdr := func(name string, typ uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: 120}
	}
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
	m.Answer = []dns.RR{
		&dns.SRV{Hdr: hdr(instanceName(code), dns.TypeSRV), Port: 5820, Target: hostName(code)},
		&dns.A{Hdr: hdr(hostName(code), dns.TypeA), A: net.ParseIP("192.168.1.20")},
		&dns.AAAA{Hdr: hdr(hostName(code), dns.TypeAAAA), AAAA: net.ParseIP("fd00::20")},
		&dns.AAAA{Hdr: hdr(hostName(code), dns.TypeAAAA), AAAA: net.ParseIP("fe80::20")},
		&dns.TXT{Hdr: hdr(instanceName(code), dns.TypeTXT), Txt: TXT(inv)},
	}
	if edit != nil {
		edit(m)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAnswer(t *testing.T) {
	inv := testInvitation(t)
	other, err := invitation.New("Grandma", time.Hour, []string{"192.0.2.1:5820"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	code := inv.ShortCode()
	src := netip.MustParseAddrPort("192.168.1.20:5353")
	ifc := &net.Interface{Index: 7, Name: "eth7"}
	local := []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("fd00::/64")}
	addRR := func(rr dns.RR) func(m *dns.Msg) { return func(m *dns.Msg) { m.Answer = append(m.Answer, rr) } }
	a := func(ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: hostName(code), Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.ParseIP(ip)}
	}
	for _, tc := range []struct {
		name  string
		data  []byte
		src   netip.AddrPort
		addrs []string // nil: refused
	}{
		{"the novice's answer", answer(t, inv, nil), src,
			[]string{"192.168.1.20:5820", "[fd00::20]:5820", "[fe80::20%eth7]:5820"}},
		{"an address off this network is dropped", answer(t, inv, addRR(a("8.8.8.8"))), src,
			[]string{"192.168.1.20:5820", "[fd00::20]:5820", "[fe80::20%eth7]:5820"}},
		{"loopback, multicast, broadcast and network addresses are dropped",
			answer(t, inv, func(m *dns.Msg) {
				m.Answer = append(m.Answer, a("127.0.0.1"), a("224.0.0.251"), a("255.255.255.255"), a("192.168.1.0"), a("0.0.0.0"))
			}), src, []string{"192.168.1.20:5820", "[fd00::20]:5820", "[fe80::20%eth7]:5820"}},
		{"the sender's own address is kept even off the interface's prefixes",
			answer(t, inv, func(m *dns.Msg) { m.Answer[1] = a("10.9.9.9") }), netip.MustParseAddrPort("10.9.9.9:5353"),
			[]string{"10.9.9.9:5820", "[fd00::20]:5820", "[fe80::20%eth7]:5820"}},
		{"only addresses off this network", answer(t, inv, func(m *dns.Msg) { m.Answer = slices.Delete(m.Answer, 1, 4); m.Answer = append(m.Answer, a("8.8.8.8")) }), src, nil},
		{"another invitation's TXT", answer(t, inv, func(m *dns.Msg) { m.Answer[4].(*dns.TXT).Txt = TXT(other) }), src, nil},
		{"no TXT", answer(t, inv, func(m *dns.Msg) { m.Answer = m.Answer[:4] }), src, nil},
		{"no SRV", answer(t, inv, func(m *dns.Msg) { m.Answer = m.Answer[1:] }), src, nil},
		{"two SRV", answer(t, inv, func(m *dns.Msg) { m.Answer = append(m.Answer, m.Answer[0]) }), src, nil},
		{"port 0", answer(t, inv, func(m *dns.Msg) { m.Answer[0].(*dns.SRV).Port = 0 }), src, nil},
		{"a question, not an answer", answer(t, inv, func(m *dns.Msg) { m.Response = false }), src, nil},
		{"an error", answer(t, inv, func(m *dns.Msg) { m.Rcode = dns.RcodeNameError }), src, nil},
		{"too many records", answer(t, inv, func(m *dns.Msg) {
			for range maxRecords {
				m.Extra = append(m.Extra, a("192.168.1.99"))
			}
		}), src, nil},
		{"expired", answer(t, inv, func(m *dns.Msg) {
			m.Answer[4].(*dns.TXT).Txt[4] = "expires=" + "1765040000" // before testNow
		}), src, nil},
		{"not DNS", []byte("hello"), src, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAnswer(tc.data, code, tc.src, ifc, local, testNow)
			if tc.addrs == nil {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != inv.ID || got.Name != inv.Name {
				t.Errorf("got invitation %s %q, want %s %q", got.ID, got.Name, inv.ID, inv.Name)
			}
			if !slices.Equal(got.Addrs, tc.addrs) {
				t.Errorf("addresses %q, want %q", got.Addrs, tc.addrs)
			}
		})
	}
}

func TestParseAnswerBoundsAddresses(t *testing.T) {
	inv := testInvitation(t)
	code := inv.ShortCode()
	data := answer(t, inv, func(m *dns.Msg) {
		for i := range 40 {
			m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: hostName(code), Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(192, 168, 1, byte(30+i))})
		}
	})
	got, err := parseAnswer(data, code, netip.MustParseAddrPort("192.168.1.20:5353"), nil, []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Addrs) != maxAddrs {
		t.Errorf("%d addresses kept, want %d", len(got.Addrs), maxAddrs)
	}
}

func FuzzParseTXT(f *testing.F) {
	inv := testInvitation(f)
	f.Add(strings.Join(TXT(inv), "\x00"))
	f.Add("v=1\x00id=x\x00name=\x00created=1\x00expires=2")
	f.Add("v=1\x00v=1")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		fields := strings.Split(s, "\x00")
		got, err := ParseTXT(fields)
		if err != nil {
			if !errors.Is(err, ErrBadTXT) {
				t.Fatalf("error %v does not wrap ErrBadTXT", err)
			}
			return
		}
		// What ParseTXT accepts, TXT writes back the same way.
		again, err := ParseTXT(TXT(got))
		if err != nil || again.ID != got.ID || again.Name != got.Name || !again.Expires.Equal(got.Expires) {
			t.Fatalf("round trip of %+v: %+v, %v", got, again, err)
		}
	})
}

func FuzzParseAnswer(f *testing.F) {
	inv := testInvitation(f)
	f.Add(answer(f, inv, nil))
	f.Add(answer(f, inv, func(m *dns.Msg) { m.Answer = m.Answer[:2] }))
	f.Add([]byte{})
	code := inv.ShortCode()
	src := netip.MustParseAddrPort("192.168.1.20:5353")
	local := []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseAnswer(data, code, src, &net.Interface{Index: 1, Name: "eth0"}, local, testNow)
		if err != nil {
			return
		}
		if got.ShortCode() != code {
			t.Fatalf("accepted another code's invitation: %s", got.ShortCode())
		}
		if len(got.Addrs) == 0 || len(got.Addrs) > maxAddrs {
			t.Fatalf("%d addresses", len(got.Addrs))
		}
		for _, a := range got.Addrs {
			ap, err := netip.ParseAddrPort(a)
			if err != nil {
				t.Fatalf("address %q: %v", a, err)
			}
			if !usable(ap.Addr().WithZone(""), src.Addr(), local) {
				t.Fatalf("accepted an address off this network: %s", a)
			}
		}
		// Link-local addresses carry the receiving interface's zone,
		// which the invitation format has no room for.
		plain := *got
		plain.Addrs = nil
		for _, a := range got.Addrs {
			ap := netip.MustParseAddrPort(a)
			plain.Addrs = append(plain.Addrs, netip.AddrPortFrom(ap.Addr().WithZone(""), ap.Port()).String())
		}
		if err := plain.Validate(testNow); err != nil {
			t.Fatalf("accepted an invalid invitation: %v", err)
		}
	})
}

func TestLookupCode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"W848-T91J", "W848-T91J"},
		{"w848 t91j", "W848-T91J"},
		{"WB4B-T9IJ", "WB4B-T91J"},
		{"7", "7"},
		{"9999", "9999"},
		{"0", ""},
		{"10000", ""},
		{"007", ""},
		{"-7", ""},
		{"W848-T91", ""},
		{"W848-T91J.evil", ""},
		{"", ""},
	} {
		got, err := lookupCode(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("lookupCode(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("lookupCode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
