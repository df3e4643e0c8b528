package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/server"
	"github.com/chromedp/chromedp"
)

// The expert's web app through NATs: the rendezvous matrix's lab (see
// matrix_netns_test.go), with headless Chromium inside the expert's
// namespace instead of `assist join`. The page comes from the server's lab
// address, its self-signed certificate pinned by key, and WebRTC uses the
// browser's real candidates: host addresses on the expert's LAN, reflexive
// ones from the server's STUN, relayed ones from its TURN.

// browserNetCell is one (novice's side, browser's side) pair.
type browserNetCell struct {
	novice, expert side
}

func (c browserNetCell) name() string {
	return string(c.novice) + " / " + string(c.expert) + " browser"
}

// browserNetCells: hole punching between two home routers, TURN over UDP
// between two symmetric NATs, and TURN over TLS on port 443 from a network
// that lets nothing else out.
var browserNetCells = []browserNetCell{
	{novice: sideCone, expert: sideCone},
	{novice: sideSymmetric, expert: sideSymmetric},
	{novice: sideCone, expert: side443},
}

// browserNetResult is one row of the table TestBrowserExpertNAT logs.
type browserNetResult struct {
	cell       browserNetCell
	novicePath string // as assist invite printed it when the page authenticated
	pagePath   string
	firstFrame time.Duration
}

// TestBrowserExpertNAT joins a novice behind one NAT from the web app in a
// browser behind another, by the invitation URL, and checks that the page
// shows the desktop once the novice allows it, over the path the networks
// allow: punched between cone NATs (the screen skips the relay), relayed
// over UDP between symmetric NATs, relayed over TLS on port 443 from a
// 443-only network (the TURN server's self-signed certificate is the HTTPS
// one, which Chromium trusts, for TURN too, by the same SPKI pin). Besides
// what each end reports, the novice's router counts where the novice's
// agent sends the next screen: to the browser's NAT, or to the server's
// relay. It logs a markdown table: cell, both ends' paths, time from
// Connect to the first frame.
func TestBrowserExpertNAT(t *testing.T) {
	e2e(t)
	lab.NeedNetns(t)
	needExpertApp(t)
	t.Parallel()
	lab.AssistBinary(t) // build once, before the parallel subtests

	start := time.Now()
	// A cell here weighs at least as much as one of the matrix's
	// (Chromium instead of assist join): it takes one of its slots.
	results := runCells(t, browserNetCells, browserNetCell.name, runBrowserNetCell)
	t.Logf("browser expert through NATs: %d cells in %v\n%s", len(results), time.Since(start).Round(time.Second), browserNetTable(results))
}

// browserNetTable renders results as a markdown table in the order of
// browserNetCells, with the columns of TestRendezvousMatrix's.
func browserNetTable(results []browserNetResult) string {
	slices.SortFunc(results, func(a, b browserNetResult) int {
		return slices.Index(browserNetCells, a.cell) - slices.Index(browserNetCells, b.cell)
	})
	var b strings.Builder
	b.WriteString("| novice / expert | expert joins with | novice's path | expert's path | first frame |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, r := range results {
		novice := r.novicePath
		if legOf(novice) != legOf(r.pagePath) {
			// Chromium, controlling ICE, moved to a better pair after
			// the handshake: the printed path is the first pair's.
			novice += " at first, then " + r.pagePath
		}
		fmt.Fprintf(&b, "| %s / %s | browser, invitation URL | %s | %s | %.1f s |\n",
			r.cell.novice, r.cell.expert, novice, r.pagePath, r.firstFrame.Seconds())
	}
	return b.String()
}

// The novice's leg: straight to the browser's NAT, or through the relay.
const (
	legDirect = "direct"
	legRelay  = "relay"
)

// legOf names the leg a path takes.
func legOf(path string) string {
	if strings.HasPrefix(path, "relay-") {
		return legRelay
	}
	return legDirect
}

// runBrowserNetCell builds a lab for c, joins from Chromium in the
// expert's namespace and checks the paths and the desktop on the page.
func runBrowserNetCell(t *testing.T, c browserNetCell) browserNetResult {
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	x.ShowImage(t, lab.TestPattern(desktopSize.X, desktopSize.Y))
	x.HideCursor(t)
	x.Xdotool(t, "mousemove", "--sync", "5", "5")
	n := lab.NewNet(t)
	noviceEnv := setUpSide(t, n, n.NAT1, c.novice)
	setUpSide(t, n, n.NAT2, c.expert)
	legBytes := countNoviceLeg(t, n)
	srv := startLabServe(t, n, nil)
	novicePaths, pagePaths := expectPaths(c.novice, c.expert)

	nov := &serverNovice{File: filepath.Join(t.TempDir(), "help.assist")}
	nov.LineProc = lab.StartLines(t, noviceEnv, "ip", "netns", "exec", n.Novice, lab.AssistBinary(t), "invite",
		"--server", srv.URL, "--server-fingerprint", srv.Fingerprint, "--file", nov.File,
		"--display", x.Display, "--name", noviceName, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "ask")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("assist invite's output:\n%s", nov.Output())
		}
	})
	nov.Code = nov.WaitLine(t, `^code: ([0-9]+-[a-z]+-[a-z]+)$`, lineTimeout)[1]
	nov.BrowserURL = nov.WaitLine(t, `^browser: (https://\S+)$`, lineTimeout)[1]
	if want := "https://" + matrixHTTPS + "/#" + nov.Code; nov.BrowserURL != want {
		t.Fatalf("browser: line says %s, want %s", nov.BrowserURL, want)
	}
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)

	// The pin is read from inside the expert's network: the browser's
	// own way to the server.
	spki := n.SPKIPin(t, n.Expert, matrixHTTPS, server.PinnedTLSConfig(srv.Fingerprint))
	ctx := startNetnsChromium(t, n, spki)
	bxRun(t, ctx, chromedp.Navigate(nov.BrowserURL))
	// A fresh profile knows no name: the page waits for one.
	bxWait(t, ctx, `window.assistExpertPage?.phase === "ready"`)
	bxRun(t, ctx, chromedp.SendKeys(bxID("name"), expertName))
	start := time.Now()
	bxRun(t, ctx, chromedp.Click(bxID("connect")))

	nov.WaitLine(t, `^`+expertName+` connected (from \S+ )?through the Assist server$`, 2*lineTimeout)
	novicePath := novicePathFromLog(t, nov.LineProc)
	nov.WaitLine(t, `^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "y")
	nov.WaitLine(t, `^state: viewing`, lineTimeout)
	bxWait(t, ctx, `window.assistExpertPage.state === "viewing" && window.assistExpertPage.rfb === "connected"`)
	bxWaitPixels(t, ctx, x, lab.PatternBars(desktopSize))
	firstFrame := time.Since(start)

	// A whole new screen, to see which way the novice's agent sends it.
	relay0, direct0 := legBytes()
	x.ShowImage(t, mirrored(lab.TestPattern(desktopSize.X, desktopSize.Y)))
	bxWaitPixels(t, ctx, x, lab.PatternBars(desktopSize))
	relay1, direct1 := legBytes()
	noviceLeg := legDirect
	if relay1-relay0 > direct1-direct0 {
		noviceLeg = legRelay
	}
	// The mirrored pattern is about 45 KB on the wire (Tight, JPEG).
	if sent := max(relay1-relay0, direct1-direct0); sent < 10_000 {
		t.Errorf("the novice's router saw %d bytes for a whole new screen: the counting rules miss the novice's traffic", sent)
	}

	bxWait(t, ctx, `window.assistExpertPage.path !== ""`)
	pagePath := bxEval[string](t, ctx, `window.assistExpertPage.path`)
	pair := bxEval[string](t, ctx, `window.assistExpertPage.pathPair`)
	t.Logf("%s: novice's path %s when authenticated, page's path %s (%s), the novice's agent sent the next screen %s "+
		"(%d bytes to the relay, %d to the browser's NAT), first frame %v after Connect",
		c.name(), novicePath, pagePath, pair, noviceLeg, relay1-relay0, direct1-direct0, firstFrame.Round(time.Millisecond))
	if !slices.Contains(pagePaths, pagePath) {
		t.Errorf("the page took path %s (candidates %s), want one of %q", pagePath, pair, pagePaths)
	}
	if line := bxEval[string](t, ctx, `document.querySelector('[data-testid="path"]').dataset.path`); line != pagePath {
		t.Errorf("the page's detail line is for path %q, its status path %s", line, pagePath)
	}
	if want := legOf(pagePaths[0]); noviceLeg != want {
		t.Errorf("the novice's agent sent the screen %s (%d bytes to the relay, %d to the browser's NAT), want %s",
			noviceLeg, relay1-relay0, direct1-direct0, want)
	}
	// The novice prints the path of the pair selected when the page
	// authenticated. Chromium, which controls ICE, may nominate a relayed
	// pair first and a punched one a moment later (pion follows a
	// nomination of a better pair): then the novice must say so with a
	// "path changed" line in its log once the screen went the better way.
	if !slices.Contains(novicePaths, novicePath) {
		if legOf(novicePath) == legRelay && legOf(novicePaths[0]) == legDirect {
			changed := waitLogPath(t, nov.LineProc, `msg="rendezvous: path changed" .*path=(\S+)`)
			t.Logf("%s: the novice's path changed from %s to %s", c.name(), novicePath, changed)
			novicePath = changed
		}
		if !slices.Contains(novicePaths, novicePath) {
			t.Errorf("assist invite took path %s, want one of %q", novicePath, novicePaths)
		}
	}
	bxSave(t, ctx)

	bxRun(t, ctx, chromedp.Click(bxID("leave")))
	bxWait(t, ctx, `window.assistExpertPage.phase === "ended"`)
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	stop(t, nov.LineProc, "assist invite")
	return browserNetResult{cell: c, novicePath: novicePath, pagePath: pagePath, firstFrame: firstFrame}
}

// countNoviceLeg adds counting rules to the novice's router (after its
// mode is set: SetNATMode flushes them) and returns a function that reads
// the UDP bytes the novice has sent through it to the server's addresses
// (the relay) and to the expert's router (hole punched).
func countNoviceLeg(t *testing.T, n *lab.Net) func() (relay, direct int64) {
	t.Helper()
	const relayTag, directTag = "assist-leg-relay", "assist-leg-direct"
	for _, r := range [][2]string{{"198.18.0.0/24", relayTag}, {lab.NAT2WANAddr, directTag}} {
		// Inserted first, with no target: they count and let the
		// packet go on to the mode's own rules.
		n.Run(t, n.NAT1, "iptables", "-I", "FORWARD", "-i", "lan0", "-p", "udp", "-d", r[0],
			"-m", "comment", "--comment", r[1])
	}
	return func() (relay, direct int64) {
		out := n.Run(t, n.NAT1, "iptables", "-L", "FORWARD", "-n", "-v", "-x")
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			var b int64
			if _, err := fmt.Sscan(f[1], &b); err != nil {
				continue
			}
			switch {
			case strings.Contains(line, "/* "+relayTag+" */"):
				relay = b
			case strings.Contains(line, "/* "+directTag+" */"):
				direct = b
			}
		}
		return relay, direct
	}
}

// mirrored returns img flipped left to right: a whole new screen whose
// flat bars are where TestPattern's are.
func mirrored(img *screen.Image) *screen.Image {
	out := screen.NewImage(img.Rect)
	w := img.Rect.Dx()
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
			copy(out.Pix[out.PixOffset(img.Rect.Min.X+w-1-(x-img.Rect.Min.X), y):][:4], img.Pix[img.PixOffset(x, y):][:4])
		}
	}
	return out
}

// startNetnsChromium starts headless Chromium in the lab's expert
// namespace, trusting the server's certificate by its key. Unlike
// startExpertChromium it does not allow WebRTC on loopback: the browser
// must use its real interfaces. Host candidates stay real addresses, not
// mDNS names, which the novice's pion could not resolve. The page's
// console goes into the log of a failed or verbose test.
func startNetnsChromium(t *testing.T, n *lab.Net, spki string) context.Context {
	t.Helper()
	ctx := n.StartChromium(t, n.Expert, 1280, 900,
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	)
	logConsole(t, ctx)
	return ctx
}
