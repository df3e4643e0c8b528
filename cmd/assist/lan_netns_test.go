package main

import (
	"image"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/lan"
	"github.com/assist-project/assist/screen"
	"github.com/hashicorp/mdns"
	"github.com/miekg/dns"
)

// TestJoinByCodeOnLAN: a home network with no server and no router, in
// network namespaces on one bridge (lab.NewLAN). A real `assist invite`
// (no --server) announces its code by mDNS; `assist join CODE`, with no
// file and no server, finds it and shows the novice's desktop, although a
// stranger on the same bridge answers first for the same code, with the
// real invitation's id and an address where a program accepts and says
// nothing. The expert's computer has a second network card on another
// bridge (its eth0), so the invitation is found through eth1. From a
// computer on the other bridge only, the code is not found and assist
// join says what to do.
func TestJoinByCodeOnLAN(t *testing.T) {
	e2e(t)
	lab.NeedNetns(t)
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	x.ShowImage(t, lab.TestPattern(desktopSize.X, desktopSize.Y))
	x.HideCursor(t)
	x.Xdotool(t, "mousemove", "--sync", "5", "5")
	lab.AssistBinary(t)

	l := lab.NewLAN(t, 2)
	inNovice := []string{"ip", "netns", "exec", l.Host(t, "novice", 2, 1)}
	stranger := l.Host(t, "stranger", 3, 1)
	expertNS := l.Host(t, "expert", 4, 2, 1)
	inExpert := []string{"ip", "netns", "exec", expertNS}
	inOutsider := []string{"ip", "netns", "exec", l.Host(t, "outsider", 5, 2)}

	nov := startInvite(t, inNovice, x.Display, "--allow", "view", "--no-portmap")
	var code string
	for _, line := range nov.Lines() {
		if c, ok := strings.CutPrefix(line, "code: "); ok {
			code = c
		}
	}
	if _, ok := invitation.CanonicalCrockford(code, 8); !ok {
		t.Fatalf("assist invite printed code %q, want one like W848-T91J", code)
	}
	inv, err := invitation.ReadFile(nov.File)
	if err != nil {
		t.Fatal(err)
	}

	hangs := strangerAnswers(t, stranger, inv)

	t.Run("another bridge", func(t *testing.T) {
		msg := joinFails(t, inOutsider, code, nov.PasswordFile)
		wantContains(t, "assist join from another network", msg, "no invitation with that code on this network", "invitation file", "server")
		t.Logf("%s", msg)
	})

	start := time.Now()
	exp := connected(t, startJoin(t, inExpert, strings.ToLower(code), nov.PasswordFile))
	c := l.DialRFB(t, expertNS, exp.RFB)
	got, _, err := c.Screen()
	if err != nil {
		t.Fatalf("first frame: %v\n%s", err, exp.Output())
	}
	t.Logf("assist join %s: first frame %v after start, via %s", code, time.Since(start).Round(time.Millisecond), exp.Path)
	if !strings.HasPrefix(exp.Path, "direct 10.77.1.2:") && !strings.HasPrefix(exp.Path, "direct [fd77:1::2]:") && !strings.HasPrefix(exp.Path, "direct [fe80:") {
		t.Errorf("connected via %q, want the novice's address on bridge 1", exp.Path)
	}
	wantContains(t, "assist join's warning", exp.Stderr(), "2 computers answered for this code", "Your Bank")
	if !strings.Contains(exp.Output(), "connected to "+noviceName+" via ") {
		t.Errorf("assist join does not name the novice who let the expert in:\n%s", exp.Output())
	}
	nov.WaitLine(t, `^`+expertName+` connected from \S+$`, lineTimeout)
	want := x.Screenshot(t)
	if m := lab.Mismatch(want, got, image.Point{}, 0); m != "" {
		lab.SaveArtifacts(t, map[string]*screen.Image{"want": want, "got": got})
		t.Errorf("the expert's first frame is not the novice's desktop: %s", m)
	}
	select {
	case <-hangs:
	case <-time.After(lineTimeout):
		t.Errorf("assist join never dialled the stranger's answer: the test did not test a hostile answer")
	}
	stop(t, exp.LineProc, "assist join")
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	stop(t, nov.LineProc, "assist invite")
}

// strangerAnswers runs, in namespace ns, a stranger that answers mDNS
// questions for inv's code with inv's id and the name "Your Bank",
// pointing at its own port where it accepts connections and never says a
// word, and at an address off the network. The channel it returns is
// closed when the stranger accepts its first connection.
func strangerAnswers(t *testing.T, ns string, inv *invitation.Invitation) <-chan struct{} {
	t.Helper()
	var (
		ln     net.Listener
		server *mdns.Server
	)
	code := inv.ShortCode()
	instance := code + "." + lan.Service + ".local."
	err := lab.InNetns(ns, func() error {
		var err error
		if ln, err = net.Listen("tcp", ":0"); err != nil {
			return err
		}
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fake := *inv
		fake.Name = "Your Bank"
		host := "bank.local."
		hdr := func(name string, typ uint16) dns.RR_Header {
			return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: 120}
		}
		zone := strangerZone{instance: instance, records: []dns.RR{
			&dns.SRV{Hdr: hdr(instance, dns.TypeSRV), Port: uint16(ln.Addr().(*net.TCPAddr).Port), Target: host},
			&dns.A{Hdr: hdr(host, dns.TypeA), A: net.ParseIP(lab.Addr4(1, 3))},
			&dns.A{Hdr: hdr(host, dns.TypeA), A: net.ParseIP("198.51.100.7")},
			&dns.TXT{Hdr: hdr(instance, dns.TypeTXT), Txt: lan.TXT(&fake)},
		}}
		server, err = mdns.NewServer(&mdns.Config{Zone: zone, Iface: ifc, Logger: log.New(io.Discard, "", 0)})
		return err
	})
	if err != nil {
		t.Fatalf("the stranger: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
		first = make(chan struct{})
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if len(conns) == 0 {
				close(first)
			}
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		server.Shutdown()
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return first
}

// strangerZone answers the question for one instance with its records.
type strangerZone struct {
	instance string
	records  []dns.RR
}

func (z strangerZone) Records(q dns.Question) []dns.RR {
	if strings.EqualFold(q.Name, z.instance) {
		return z.records
	}
	return nil
}

// TestJoinWordCodeOnLAN: an invitation with a server, joined by its word
// code without --server from the same home network. The server runs on
// the novice's own loopback, out of the expert's reach, so the join can
// only have found the novice by mDNS, under the code's number.
func TestJoinWordCodeOnLAN(t *testing.T) {
	e2e(t)
	lab.NeedNetns(t)
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	x.ShowImage(t, lab.TestPattern(desktopSize.X, desktopSize.Y))
	x.HideCursor(t)
	x.Xdotool(t, "mousemove", "--sync", "5", "5")
	bin := lab.AssistBinary(t)

	l := lab.NewLAN(t, 1)
	noviceNS := l.Host(t, "novice", 2, 1)
	expertNS := l.Host(t, "expert", 4, 1)
	srv := lab.StartLines(t, nil, "ip", "netns", "exec", noviceNS, bin, "serve", "--listen", "127.0.0.1:0",
		"--data", t.TempDir(), "--turn-listen", "127.0.0.1:0", "--turns-listen", "127.0.0.1:0")
	url := srv.WaitLine(t, `^listening on (https://\S+)$`, lineTimeout)[1]
	fp := srv.WaitLine(t, `^fingerprint: (sha256:[0-9a-f]{64})$`, lineTimeout)[1]

	nov := lab.StartLines(t, nil, "ip", "netns", "exec", noviceNS, bin, "invite", "--server", url,
		"--server-fingerprint", fp, "--display", x.Display, "--name", noviceName, "--no-portmap", "--allow", "view")
	code := nov.WaitLine(t, `^code: ([0-9]+-[a-z]+-[a-z]+)$`, lineTimeout)[1]
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)

	exp := lab.StartLines(t, nil, "ip", "netns", "exec", expertNS, bin, "join", "--no-browser", "--name", expertName, code)
	path := exp.WaitLine(t, `^connected to `+noviceName+` via (direct \S+)$`, lineTimeout)[1]
	rfb := exp.WaitLine(t, `^rfb on (\S+)$`, lineTimeout)[1]
	if !strings.HasPrefix(path, "direct 10.77.1.2:5820") && !strings.HasPrefix(path, "direct [fd77:1::2]:5820") && !strings.HasPrefix(path, "direct [fe80:") {
		t.Errorf("connected via %q, want the novice's address on the LAN", path)
	}
	if strings.Contains(exp.Stderr(), strings.SplitN(code, "-", 2)[1]) {
		t.Errorf("assist join wrote the code's words (the password) to stderr:\n%s", exp.Stderr())
	}
	got, _, err := l.DialRFB(t, expertNS, rfb).Screen()
	if err != nil {
		t.Fatalf("first frame: %v\n%s", err, exp.Output())
	}
	want := x.Screenshot(t)
	if m := lab.Mismatch(want, got, image.Point{}, 0); m != "" {
		lab.SaveArtifacts(t, map[string]*screen.Image{"want": want, "got": got})
		t.Errorf("the expert's first frame is not the novice's desktop: %s", m)
	}
	stop(t, exp, "assist join")
	stop(t, nov, "assist invite")
	stop(t, srv, "assist serve")
}
