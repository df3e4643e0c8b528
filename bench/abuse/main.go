// Command abuse probes a running rendezvous server ("assist serve") the way
// an attacker on one address would, and measures what it gets:
//
//  1. idle flood: WebSockets to /v1/signal opened as fast as possible from
//     one address and held without registering; how many the server
//     accepts, how many are still open after the idle deadline, and the
//     server's memory (RSS) before, at the peak and after closing them;
//  2. legitimate pairings from other addresses while that flood is held;
//  3. code harvesting: live invitations registered under random look-up
//     numbers, then joins on random numbers from one address for a minute:
//     how many live codes the answers give away;
//  4. a held code: a real `assist invite` (on an Xvfb display) and an
//     attacker that pairs with its code and stalls, joining again whenever
//     dropped; whether a real `assist join CODE` gets through;
//  5. registration flood: fresh ids registered from one address for 10 s;
//     how many are accepted, and how many the server still stores after
//     the connections close;
//  6. TURN credentials for a self-pairing (one address) and for a pairing
//     of two addresses.
//
// Each address plays one client of the internet: the probes bind their
// connections to loopback source addresses (127.0.0.1 for the flood,
// 127.0.0.4 and up for the others, 127.0.1.X and 127.0.2.X for legitimate
// users), so only a server on loopback can be probed. Every probe is
// bounded in count and time and stops by itself. Each figure is printed as
// one line, "WHAT: FIGURE (target: TARGET)", with indented details below,
// and with -json written to a file. The targets are the hardened server's
// limits (issue 8); the probes measure whatever the server does, counting
// message types and error codes they do not know rather than failing.
// scripts/abuse.sh builds assist and this program, starts a fresh server
// and runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jezek/xgb"
)

// The source addresses of the probes' clients.
var (
	addrFlood          = loopback(0, 0, 1)
	addrHarvestNovices = []string{loopback(0, 0, 4), loopback(0, 0, 5), loopback(0, 0, 6), loopback(0, 0, 7), loopback(0, 0, 8)}
	addrHarvester      = loopback(0, 0, 9)
	addrHolder         = loopback(0, 0, 10)
	addrRegFlood       = loopback(0, 0, 11)
	addrTURNSelf       = loopback(0, 0, 12)
	addrTURNNovice     = loopback(0, 0, 13)
	addrTURNExpert     = loopback(0, 0, 14)
)

// allProbes are the probes' names for -probes, in the order they run.
var allProbes = []string{"flood", "harvest", "held", "register", "turn"}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		os.Exit(1)
	}
}

func run() error {
	serverURL := flag.String("server", "", "the server, https://127.0.0.1:PORT, as assist serve prints it (required)")
	fingerprint := flag.String("fingerprint", "", "its certificate's fingerprint, sha256:HEX, as assist serve prints it (required)")
	pid := flag.Int("server-pid", 0, "the server's process id, to read its memory (RSS) from /proc; 0: no memory figures")
	dataDir := flag.String("data", "", "the server's --data directory, to count the invitations it stores; empty: no such figure")
	assistPath := flag.String("assist", "", "the assist binary, for the held-code probe's real invite and join; empty: that probe is skipped")
	jsonPath := flag.String("json", "", "also write the results as JSON to this file")
	probes := flag.String("probes", strings.Join(allProbes, ","), "probes to run, comma-separated: "+strings.Join(allProbes, ", ")+" (flood includes the legitimate pairings)")
	floodN := flag.Int("flood", 3000, "idle connections the flood tries to open (1..20000)")
	floodWorkers := flag.Int("flood-workers", 16, "connections the flood dials at once")
	idleWait := flag.Duration("idle-wait", 15*time.Second, "how long after the flood its connections still open are counted")
	rssWait := flag.Duration("rss-wait", 30*time.Second, "how long after closing the flood's connections the server's RSS is read again")
	legit := flag.Int("legit", 20, "legitimate pairings run during the flood (1..500)")
	live := flag.Int("live", 20, "live invitations the harvester hunts (1..200)")
	harvestTime := flag.Duration("harvest-time", 60*time.Second, "how long the harvester tries (it stops early once it has paired with every live code)")
	harvestWorkers := flag.Int("harvest-workers", 8, "the harvester's connections")
	holdMode := flag.String("hold-mode", "stall", "what the attacker holding a code does once paired: stall (one well-formed signalling message, then nothing), silent (nothing) or garbage")
	heldBudget := flag.Duration("held-budget", 45*time.Second, "how long the real expert keeps trying to join a held code")
	regTime := flag.Duration("register-time", 10*time.Second, "how long the registration flood lasts")
	regWorkers := flag.Int("register-workers", 8, "registrations sent at once by the registration flood")
	storedWait := flag.Duration("stored-wait", 3*time.Second, "how long after the registration flood's connections close the invitations still stored are counted")
	verbose := flag.Bool("v", false, "log progress at debug level")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	// xgb complains about a missing Xauthority (Xvfb needs none).
	xgb.Logger = log.New(io.Discard, "", 0)

	ep, err := newEndpoint(*serverURL, *fingerprint)
	if err != nil {
		return err
	}
	selected, err := parseProbes(*probes)
	if err != nil {
		return err
	}
	switch {
	case *floodN < 1 || *floodN > 20000:
		return errors.New("-flood must be 1..20000")
	case *floodWorkers < 1 || *floodWorkers > 256:
		return errors.New("-flood-workers must be 1..256")
	case *legit < 1 || *legit > 500:
		return errors.New("-legit must be 1..500")
	case *live < 1 || *live > 200:
		return errors.New("-live must be 1..200")
	case *harvestWorkers < 1 || *harvestWorkers > 64 || *regWorkers < 1 || *regWorkers > 64:
		return errors.New("-harvest-workers and -register-workers must be 1..64")
	case *harvestTime <= 0 || *harvestTime > 10*time.Minute || *regTime <= 0 || *regTime > 10*time.Minute ||
		*heldBudget <= 0 || *heldBudget > 10*time.Minute || *idleWait < 0 || *idleWait > 10*time.Minute ||
		*rssWait < 0 || *rssWait > 10*time.Minute || *storedWait < 0 || *storedWait > 30*time.Minute:
		return errors.New("durations must be positive and at most 10m (-stored-wait: 30m)")
	}
	if _, ok := holdModes[*holdMode]; !ok {
		return fmt.Errorf("-hold-mode %q: want stall, silent or garbage", *holdMode)
	}
	if *pid < 0 {
		return errors.New("-server-pid must be a process id")
	}
	if *pid > 0 {
		if _, err := rssBytes(*pid); err != nil {
			return fmt.Errorf("-server-pid: %w", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep := &report{w: os.Stdout}
	type probe struct {
		name string
		run  func() error
	}
	for _, p := range []probe{
		{"flood", func() error {
			return probeFlood(ctx, ep, floodConfig{n: *floodN, workers: *floodWorkers, maxTime: 60 * time.Second,
				idleWait: *idleWait, rssWait: *rssWait, legit: *legit, pid: *pid}, rep)
		}},
		{"harvest", func() error {
			return probeHarvest(ctx, ep, harvestConfig{live: *live, time: *harvestTime, workers: *harvestWorkers}, rep)
		}},
		{"held", func() error {
			return probeHeld(ctx, ep, heldConfig{assist: *assistPath, serverURL: *serverURL, fingerprint: *fingerprint,
				budget: *heldBudget, mode: *holdMode}, rep)
		}},
		{"register", func() error {
			return probeRegister(ctx, ep, registerConfig{time: *regTime, workers: *regWorkers, dataDir: *dataDir, storedWait: *storedWait}, rep)
		}},
		{"turn", func() error { return probeTURN(ctx, ep, rep) }},
	} {
		if !slices.Contains(selected, p.name) {
			continue
		}
		slog.Info("probe: start", "probe", p.name)
		if err := p.run(); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted during probe %s", p.name)
			}
			// One broken probe does not hide the others' figures.
			rep.add(result{Probe: p.name, Title: "probe " + p.name, Skipped: "failed: " + err.Error()})
		}
	}
	if *jsonPath != "" {
		settings := map[string]any{
			"server": *serverURL, "probes": selected, "flood": *floodN, "flood_workers": *floodWorkers,
			"idle_wait": idleWait.String(), "rss_wait": rssWait.String(), "legit": *legit, "live": *live,
			"harvest_time": harvestTime.String(), "harvest_workers": *harvestWorkers, "hold_mode": *holdMode,
			"held_budget": heldBudget.String(), "register_time": regTime.String(), "register_workers": *regWorkers, "stored_wait": storedWait.String(),
		}
		if err := rep.writeJSON(*jsonPath, settings); err != nil {
			return err
		}
	}
	return nil
}

// parseProbes reads -probes: known names, comma-separated, at least one.
func parseProbes(s string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(allProbes, name) {
			return nil, fmt.Errorf("-probes: unknown probe %q: want some of %s", name, strings.Join(allProbes, ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-probes: no probe named")
	}
	return out, nil
}
