package main

import (
	"fmt"
	"image"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
)

// The connectivity matrix: `assist serve` on the lab's "internet", `assist
// invite --server` behind NAT1 and `assist join` behind NAT2 (see
// lab.NewNet), each end's network one of the sides below, and a first
// frame through the expert's RFB port. Every cell builds its own lab, so
// cells run side by side.

// The server's layout in the lab. HTTPS is on port 443 and TURN over TLS on
// port 443 of the second address, so that a corporate firewall or proxy
// that lets only TCP 443 out still reaches both; STUN and TURN over UDP and
// TCP use the usual 3478.
var (
	matrixHTTPS = net.JoinHostPort(lab.ServerAddr, "443")
	matrixTURN  = net.JoinHostPort(lab.ServerAddr, "3478")
	matrixTURNS = net.JoinHostPort(lab.ServerAddr2, "443")
)

// matrixSlots bounds the cells that run at once: each runs three assist
// processes (and a proxy or miniupnpd) and WebRTC on a 2-core CI machine.
var matrixSlots = make(chan struct{}, 3)

// side is the network of one end of a cell.
type side string

const (
	// sideNone: a public address, no NAT, no firewall.
	sideNone side = "none"
	// sideCone: a home router (port-preserving NAT) without UPnP.
	sideCone side = "cone"
	// sideUPnP: the same router with UPnP IGD (miniupnpd). The novice's
	// agent maps its port and lists the mapping in the invitation file,
	// so the expert opens the file rather than typing the short code:
	// only the file carries the mapped address.
	sideUPnP side = "upnp"
	// sideSymmetric: a NAT that picks a new port per destination.
	sideSymmetric side = "symmetric"
	// sideFirewall: a public address behind a stateful firewall that
	// blocks unsolicited inbound traffic.
	sideFirewall side = "firewall"
	// side443: a corporate firewall and NAT that lets only TCP 80 and 443
	// out.
	side443 side = "443-only"
	// sideProxy: nothing goes out but an HTTP proxy that allows CONNECT to
	// port 443 only (Debian's tinyproxy default, many corporate proxies);
	// the end has HTTPS_PROXY.
	sideProxy side = "proxy-only"
	// sideProxyAny: the same proxy allowing CONNECT to any port, so that
	// TURN over plain TCP gets through too.
	sideProxyAny side = "proxy-any-port"
)

// matrixSides are the sides of the matrix: every one on the
// novice's side, on the expert's, and on both.
var matrixSides = []side{sideCone, sideUPnP, sideSymmetric, sideFirewall, side443, sideProxy}

// Path classes a cell may expect of an end's "path" (each end names its
// own leg: a relayed peer reached over UDP is relay-udp).
var (
	pathDirect   = []string{"direct"}
	pathPunched  = []string{"punched"}
	pathNotRelay = []string{"direct", "punched"}
	pathRelayTLS = []string{"relay-tls"}
	pathAnyRelay = []string{"relay-udp", "relay-tcp", "relay-tls"}
	pathTCPorTLS = []string{"relay-tcp", "relay-tls"}
)

// matrixCell is one (novice's side, expert's side) pair.
type matrixCell struct {
	novice, expert side
	// novicePaths and expertPaths are the paths each end may report.
	novicePaths, expertPaths []string
	// caCert serves a certificate signed by an authority both ends trust
	// (SSL_CERT_FILE) and pins nothing, as with an operator's real
	// certificate, instead of assist serve's self-signed one, pinned.
	caCert bool
}

func (c matrixCell) name() string {
	s := string(c.novice) + " / " + string(c.expert)
	if c.caCert {
		s += " (CA cert, no pin)"
	}
	return s
}

// byFile reports whether the expert opens the invitation file (which
// lists the novice's mapped address) instead of typing the short code.
func (c matrixCell) byFile() bool { return c.novice == sideUPnP }

// matrixCells lists the cells and what each must show: direct or hole
// punched wherever the networks allow it, relayed only where they do not.
func matrixCells() []matrixCell {
	cells := []matrixCell{{novice: sideNone, expert: sideNone, novicePaths: pathDirect, expertPaths: pathDirect}}
	for _, s := range matrixSides {
		cells = append(cells,
			matrixCell{novice: s, expert: sideNone},
			matrixCell{novice: sideNone, expert: s},
			matrixCell{novice: s, expert: s})
	}
	cells = append(cells,
		// TURN over plain TCP through a proxy.
		matrixCell{novice: sideCone, expert: sideProxyAny},
		// An operator's real certificate, trusted through the roots.
		matrixCell{novice: side443, expert: side443, caCert: true})
	for i := range cells {
		c := &cells[i]
		if c.novicePaths == nil {
			c.novicePaths, c.expertPaths = expectPaths(c.novice, c.expert)
		}
	}
	return cells
}

// expectPaths says which paths the ends of a cell may take.
func expectPaths(nov, exp side) (novice, expert []string) {
	relayedOnly := func(s side) bool { return s == side443 || s == sideProxy || s == sideProxyAny }
	public := func(s side) bool { return s == sideNone || s == sideFirewall }
	switch {
	case nov == sideUPnP && !relayedOnly(exp):
		// The expert reaches the novice's mapped port: a direct
		// connection, no server involved.
		return pathDirect, pathDirect
	case relayedOnly(nov) || relayedOnly(exp):
		own := func(s side) []string {
			switch s {
			case side443, sideProxy:
				return pathRelayTLS
			case sideProxyAny:
				return pathTCPorTLS
			}
			return pathAnyRelay
		}
		return own(nov), own(exp)
	case public(nov) && public(exp):
		// Public addresses on both ends: host to host (through the
		// firewalls' holes when there are firewalls).
		return pathDirect, pathDirect
	case nov == sideCone && exp == sideCone, nov == sideUPnP && exp == sideUPnP:
		// Two cone NATs: hole punching, never a relay.
		return pathPunched, pathPunched
	case nov == sideSymmetric && exp == sideNone, nov == sideNone && exp == sideSymmetric:
		// The public end answers the symmetric NAT's new port.
		return pathNotRelay, pathNotRelay
	case nov == sideSymmetric || exp == sideSymmetric:
		// A symmetric NAT against a NAT or a firewall: no hole to punch,
		// so a relay. UDP has the higher priority, but ICE nominates the
		// best pair that has answered when its relay wait (2 s) ends, and
		// on a loaded machine that was once the TLS allocation's pair.
		return pathAnyRelay, pathAnyRelay
	}
	// A NAT (cone, UPnP) against a public end: whichever end sees the
	// other's NAT mapping calls it punched, the other direct.
	return pathNotRelay, pathNotRelay
}

// matrixResult is one row of the table TestRendezvousMatrix prints.
type matrixResult struct {
	cell       matrixCell
	novicePath string
	expertPath string
	firstFrame time.Duration
}

// TestRendezvousMatrix connects a novice and an expert through `assist
// serve` across every pair of networks in matrixSides (and none), and
// checks the path each end takes: direct between public ends, hole
// punching through cone NATs and firewalls, a UPnP router's mapped port,
// TURN (UDP, unless ICE nominated another relay first) when a symmetric
// NAT is in the way, TURN over TLS on port
// 443 (the server's self-signed certificate, pinned) from behind a 443-only
// firewall and through an HTTP proxy (CONNECT, HTTPS_PROXY), and TURN over
// TCP through a proxy that allows it. It logs a markdown table: cell, both
// paths, time from starting `assist join` to the first frame.
func TestRendezvousMatrix(t *testing.T) {
	e2e(t)
	lab.NeedNetns(t)
	lab.Need(t, "tinyproxy", "miniupnpd", "nft", "turnserver")
	t.Parallel()
	lab.AssistBinary(t) // build once, before the parallel subtests

	start := time.Now()
	results := runCells(t, matrixCells(), matrixCell.name, runMatrixCell)
	t.Logf("rendezvous matrix: %d cells in %v\n%s", len(results), time.Since(start).Round(time.Second), matrixTable(results))
}

// runCells runs each cell as a parallel subtest of "cells", at most
// cap(matrixSlots) at a time across every test that shares the slots, and
// returns the results of those that finished (in any order).
func runCells[C any, R any](t *testing.T, cells []C, name func(C) string, run func(*testing.T, C) R) []R {
	var (
		mu      sync.Mutex
		results []R
	)
	subtest := strings.NewReplacer(" / ", "-", " ", "-", "(", "", ")", "", ",", "")
	t.Run("cells", func(t *testing.T) {
		for _, c := range cells {
			t.Run(subtest.Replace(name(c)), func(t *testing.T) {
				t.Parallel()
				matrixSlots <- struct{}{}
				// Registered first, so it runs last: the slot is free
				// only once the lab is gone.
				t.Cleanup(func() { <-matrixSlots })
				r := run(t, c)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			})
		}
	})
	return results
}

// matrixTable renders results as a markdown table, in the order of
// matrixCells.
func matrixTable(results []matrixResult) string {
	order := make(map[string]int)
	for i, c := range matrixCells() {
		order[c.name()] = i
	}
	slices.SortFunc(results, func(a, b matrixResult) int { return order[a.cell.name()] - order[b.cell.name()] })
	var b strings.Builder
	b.WriteString("| novice / expert | expert joins with | novice's path | expert's path | first frame |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, r := range results {
		how := "short code"
		if r.cell.byFile() {
			how = "invitation file"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f s |\n", r.cell.name(), how, r.novicePath, r.expertPath, r.firstFrame.Seconds())
	}
	return b.String()
}

// setUpSide gives the end behind router (n.NAT1 or n.NAT2) the network s
// and returns the end's extra environment.
func setUpSide(t *testing.T, n *lab.Net, router string, s side) []string {
	t.Helper()
	switch s {
	case sideNone:
		n.SetNATMode(t, router, lab.Public)
	case sideCone:
		n.SetNATMode(t, router, lab.Cone)
	case sideUPnP:
		n.SetNATMode(t, router, lab.Cone)
		n.StartMiniUPnPd(t, router, lab.MiniUPnPdConfig{UPnP: true})
	case sideSymmetric:
		n.SetNATMode(t, router, lab.Symmetric)
	case sideFirewall:
		n.SetNATMode(t, router, lab.InboundFirewall)
	case side443:
		n.SetNATMode(t, router, lab.Only443)
	case sideProxy, sideProxyAny:
		n.SetNATMode(t, router, lab.ProxyOnly)
		var ports []int
		if s == sideProxy {
			ports = []int{443}
		}
		proxy, _ := n.StartTinyproxy(t, router, ports...)
		return []string{"HTTPS_PROXY=" + proxy, "NO_PROXY="}
	default:
		t.Fatalf("matrix: unknown side %q", s)
	}
	return nil
}

// runMatrixCell builds a lab for c, connects through it and checks the
// paths, the first frame, and that both programs end promptly.
//
// Each cell has a desktop of its own: novices of parallel cells sharing
// one X server made it fail XFixesGetCursorImage now and then (BadAccess),
// which ends `assist invite` ("capture stopped").
func runMatrixCell(t *testing.T, c matrixCell) matrixResult {
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	x.ShowImage(t, lab.TestPattern(desktopSize.X, desktopSize.Y))
	x.HideCursor(t)
	x.Xdotool(t, "mousemove", "--sync", "5", "5")
	want := x.Screenshot(t)
	display := x.Display
	n := lab.NewNet(t)
	noviceEnv := setUpSide(t, n, n.NAT1, c.novice)
	expertEnv := setUpSide(t, n, n.NAT2, c.expert)
	var cert *lab.ServerCert
	if c.caCert {
		sc := lab.NewServerCert(t, lab.ServerAddr, lab.ServerAddr2)
		cert = &sc
		noviceEnv = append(noviceEnv, "SSL_CERT_FILE="+sc.CAFile)
		expertEnv = append(expertEnv, "SSL_CERT_FILE="+sc.CAFile)
	}
	srv := startLabServe(t, n, cert)
	serverArgs := []string{"--server", srv.URL}
	if !c.caCert {
		serverArgs = append(serverArgs, "--server-fingerprint", srv.Fingerprint)
	}
	bin := lab.AssistBinary(t)

	file := filepath.Join(t.TempDir(), "help.assist")
	inviteArgs := append([]string{"netns", "exec", n.Novice, bin, "invite"}, serverArgs...)
	inviteArgs = append(inviteArgs, "--file", file, "--display", display, "--name", noviceName, "--allow", "view")
	if c.byFile() {
		inviteArgs = append(inviteArgs, "--listen", ":0")
	} else {
		inviteArgs = append(inviteArgs, "--listen", "127.0.0.1:0", "--no-portmap")
	}
	nov := lab.StartLines(t, noviceEnv, "ip", inviteArgs...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("assist invite's output:\n%s", nov.Output())
		}
	})
	code := nov.WaitLine(t, `^code: ([0-9]+-[a-z]+-[a-z]+)$`, lineTimeout)[1]
	noviceArg := code
	joinArgs := append([]string{"netns", "exec", n.Expert, bin, "join"}, serverArgs...)
	if c.byFile() {
		pw := nov.WaitLine(t, `^password: (\S+)$`, lineTimeout)[1]
		joinArgs = append(joinArgs, "--password-file", writePassword(t, pw))
		noviceArg = file
	}
	joinArgs = append(joinArgs, "--no-browser", "--name", expertName, noviceArg)
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)

	start := time.Now()
	exp := lab.StartLines(t, expertEnv, "ip", joinArgs...)
	expertPath := exp.WaitLine(t, `^path: (\S+)$`, 2*lineTimeout)[1]
	rfbAddr := exp.WaitLine(t, `^rfb on (\S+)$`, lineTimeout)[1]
	rc := n.DialRFB(t, n.Expert, rfbAddr)
	got, _, err := rc.Screen()
	if err != nil {
		t.Fatalf("first frame: %v\njoin:\n%s\ninvite:\n%s", err, exp.Output(), nov.Output())
	}
	firstFrame := time.Since(start)
	// The novice reads only whether it went through the server; the
	// path is in the log.
	nov.WaitLine(t, `^`+expertName+` connected (from \S+ )?(through the Assist server)?`, lineTimeout)
	novicePath := novicePathFromLog(t, nov)
	t.Logf("%s: invite path %s, join path %s, first frame after %v", c.name(), novicePath, expertPath, firstFrame.Round(time.Millisecond))

	if !slices.Contains(c.novicePaths, novicePath) {
		t.Errorf("assist invite took path %s, want one of %q", novicePath, c.novicePaths)
	}
	if !slices.Contains(c.expertPaths, expertPath) {
		t.Errorf("assist join took path %s, want one of %q", expertPath, c.expertPaths)
	}
	if m := lab.Mismatch(want, got, image.Point{}, 0); m != "" {
		lab.SaveArtifacts(t, map[string]*screen.Image{"want": want, "got": got})
		t.Errorf("the expert's first frame is not the novice's desktop: %s", m)
	}
	rc.Conn.Close()
	// Both end within stop's deadline, firewall or not: a TURN server
	// that cannot be reached no longer holds a closing agent for minutes.
	stop(t, exp, "assist join")
	stop(t, nov, "assist invite")
	return matrixResult{cell: c, novicePath: novicePath, expertPath: expertPath, firstFrame: firstFrame}
}

// startLabServe runs `assist serve` in the lab's internet namespace with
// the layout of matrixHTTPS, matrixTURN and matrixTURNS, and hands clients
// exactly those relay URLs (its own would name one host for all three).
func startLabServe(t *testing.T, n *lab.Net, cert *lab.ServerCert) *servedProc {
	t.Helper()
	args := []string{"netns", "exec", n.Internet, lab.AssistBinary(t), "serve"}
	if cert != nil {
		args = append(args, "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile)
	}
	p := lab.StartLines(t, nil, "ip", append(args,
		"--listen", matrixHTTPS, "--data", t.TempDir(),
		"--public-url", "https://"+matrixHTTPS,
		"--turn-listen", matrixTURN, "--turns-listen", matrixTURNS,
		"--ice-server", "stun:"+matrixTURN,
		"--ice-server", "turn:"+matrixTURN+"?transport=udp",
		"--ice-server", "turn:"+matrixTURN+"?transport=tcp",
		"--ice-server", "turns:"+matrixTURNS+"?transport=tcp")...)
	srv := &servedProc{}
	srv.URL = p.WaitLine(t, `^listening on (https://\S+)$`, lineTimeout)[1]
	srv.Fingerprint = p.WaitLine(t, `^fingerprint: (sha256:[0-9a-f]{64})$`, lineTimeout)[1]
	srv.ICE = strings.Fields(p.WaitLine(t, `^ice: (.+)$`, lineTimeout)[1])
	if srv.URL != "https://"+matrixHTTPS {
		t.Fatalf("assist serve listens on %s, want https://%s", srv.URL, matrixHTTPS)
	}
	return srv
}
