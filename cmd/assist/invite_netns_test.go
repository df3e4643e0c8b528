package main

import (
	"image"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
)

// TestInviteThroughRouter puts the novice behind a home router (NAT1, a
// cone NAT) and the expert behind another (NAT2), in network namespaces
// (see lab.NewNet), and joins with the invitation file alone: no server.
// With miniupnpd on NAT1, `assist invite` maps its port and the expert
// reaches it through the mapping; without, `assist join` fails and says
// why and what would help.
//
// The novice's agent runs inside the novice's namespace but shares an
// Xvfb of the host: X clients reach it through /tmp/.X11-unix.
func TestInviteThroughRouter(t *testing.T) {
	e2e(t)
	lab.NeedNetns(t)
	t.Parallel()
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	x.ShowImage(t, lab.TestPattern(desktopSize.X, desktopSize.Y))
	x.HideCursor(t)
	x.Xdotool(t, "mousemove", "--sync", "5", "5")
	lab.AssistBinary(t) // build once, before the parallel subtests

	for _, tc := range []struct {
		name   string
		router *lab.MiniUPnPdConfig // nil: the router maps nothing
		method string
	}{
		{"upnp", &lab.MiniUPnPdConfig{UPnP: true}, "upnp"},
		{"natpmp", &lab.MiniUPnPdConfig{NATPMP: true}, "natpmp"},
		{"no port mapping", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := lab.NewNet(t)
			if tc.router != nil {
				n.StartMiniUPnPd(t, n.NAT1, *tc.router)
			}
			inNovice := []string{"ip", "netns", "exec", n.Novice}
			inExpert := []string{"ip", "netns", "exec", n.Expert}
			// --allow view: the time measured below is the network's and
			// the programs', not a person's answering a question.
			nov := startInvite(t, inNovice, x.Display, "--listen", ":0", "--allow", "view")

			if tc.router == nil {
				for deadline := time.Now().Add(lineTimeout); !strings.Contains(nov.Stderr(), "note:") && time.Now().Before(deadline); {
					time.Sleep(20 * time.Millisecond)
				}
				wantContains(t, "assist invite without port mapping", nov.Stderr(), "note:", "router", "rendezvous")
				t.Logf("assist invite: %s", lineWith(nov.Stderr(), "note:"))
				for _, a := range nov.Addrs {
					if strings.HasPrefix(a, lab.NAT1WANAddr+":") {
						t.Errorf("addresses %q list the router's address, but nothing was mapped", nov.Addrs)
					}
				}
				start := time.Now()
				msg := joinFails(t, inExpert, nov.File, nov.PasswordFile)
				t.Logf("assist join gave up after %v: %s", time.Since(start).Round(time.Millisecond), msg)
				wantContains(t, "unreachable novice", msg, "no address of the invitation answered", "rendezvous")
				nov.stillWaiting(t)
				return
			}

			external := ""
			for _, a := range nov.Addrs {
				if strings.HasPrefix(a, lab.NAT1WANAddr+":") {
					external = a
				}
			}
			if external == "" {
				t.Fatalf("addresses %q do not list the router's external address %s:PORT\n%s", nov.Addrs, lab.NAT1WANAddr, nov.Output())
			}
			// stderr is collected by its own goroutine: the line printed
			// before the stdout lines may still be on its way.
			for deadline := time.Now().Add(lineTimeout); !strings.Contains(nov.Stderr(), "the router forwards") && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			wantContains(t, "assist invite", nov.Stderr(), "the router forwards "+external, "("+tc.method+")")
			t.Logf("assist invite: %s", lineWith(nov.Stderr(), "the router forwards"))

			start := time.Now()
			exp := connected(t, startJoin(t, inExpert, nov.File, nov.PasswordFile))
			c := n.DialRFB(t, n.Expert, exp.RFB)
			got, _, err := c.Screen()
			if err != nil {
				t.Fatalf("first frame: %v\n%s", err, exp.Output())
			}
			logFirstFrame(t, "router="+tc.method, []time.Duration{time.Since(start)})

			if exp.Path != "direct "+external {
				t.Errorf("assist join connected via %q, want direct %s (the mapped port)", exp.Path, external)
			}
			// The novice sees the expert's router, not the expert.
			nov.WaitLine(t, `^`+expertName+` connected from `+regexp.QuoteMeta(lab.NAT2WANAddr)+`:\d+$`, lineTimeout)
			want := x.Screenshot(t)
			if m := lab.Mismatch(want, got, image.Point{}, 0); m != "" {
				lab.SaveArtifacts(t, map[string]*screen.Image{"want": want, "got": got})
				t.Errorf("the expert's first frame is not the novice's desktop: %s", m)
			}
			// A real viewer, in the expert's namespace too.
			snap := n.VNCSnapshot(t, n.Expert, exp.RFB, "-encodings", "raw")
			if m := lossyMismatch(want, snap, image.Point{}); m != "" {
				lab.SaveArtifacts(t, map[string]*screen.Image{"want": want, "vncsnapshot": snap})
				t.Errorf("vncsnapshot through the routers: %s", m)
			}
			stop(t, exp.LineProc, "assist join")
			nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
			stop(t, nov.LineProc, "assist invite")
			// Ending the invitation removes the router's forwarding.
			if rules := n.PortMappings(t, n.NAT1); len(rules) != 0 {
				t.Errorf("the router still forwards after assist invite stopped: %q", rules)
			}
		})
	}
}

// lineWith returns the first line of text that contains s.
func lineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
