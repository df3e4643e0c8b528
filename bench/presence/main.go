// Command presence measures the messenger's presence at scale on one
// machine (scripts/presence.sh runs it against one node,
// scripts/presence-cluster.sh against three): N users, each with K
// contacts (a ring: user i is a contact of the K/2 users on each side),
// one connection each, user i to the i-th server of -server modulo their
// number, so with several nodes most contacts sit on another node; then
// presence changes at a steady rate, and it reports how long each change
// took to reach each contact (p50, p99, max), how many deliveries were
// missing, the signalling round trip (a novice on one node, its expert on
// the next, relay messages echoed), and each server's memory (VmRSS and
// VmHWM from /proc) and CPU.
//
// It runs in two steps, because creating 10,000 accounts and their
// contacts through the protocol would take the per-address creation limit
// and pairings (a PAKE per contact) that this benchmark is not about:
//
//	presence -seed DIR|postgres://... -clients N -contacts K
//	                                              before the servers start: writes the accounts, devices
//	                                              and contacts into DIR/messenger.sqlite or PostgreSQL
//	presence -server URL[,URL...] -fingerprint FP -server-pid PID[,PID...] -clients N -contacts K -rate R -duration D
//
// Device keys are derived from the user's number, so the second step
// logs in as the users the first created. Everything is bounded: dialing
// has -connect-timeout, the changes last -duration, and deliveries are
// awaited at most -drain after the last change.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "presence:", err)
		os.Exit(1)
	}
}

type options struct {
	seed           string
	servers        []string
	fp             string
	pids           []int
	signalPairs    int
	signalEvery    time.Duration
	clients        int
	contacts       int
	rate           float64
	duration       time.Duration
	drain          time.Duration
	workers        int
	connectTimeout time.Duration
	jsonPath       string
}

func run() error {
	var o options
	flag.StringVar(&o.seed, "seed", "", "write the users into DIR/messenger.sqlite, or into the PostgreSQL database at a postgres:// URL (before the servers start), and exit")
	var servers, pids string
	flag.StringVar(&servers, "server", "", "the servers, https://127.0.0.1:PORT as assist serve prints it, comma-separated: user i connects to the i-th modulo their number")
	flag.StringVar(&o.fp, "fingerprint", "", "their certificate's fingerprint, sha256:HEX, as assist serve prints it (the nodes of a cluster share it)")
	flag.StringVar(&pids, "server-pid", "", "the servers' process ids, comma-separated in -server's order, for their memory and CPU; empty: no figures")
	flag.IntVar(&o.signalPairs, "signal-pairs", 4, "novice and expert pairs on the rendezvous signalling (novice on one server, expert on the next) measuring its round trip during the changes; 0: none (at most 10: one address's registrations)")
	flag.DurationVar(&o.signalEvery, "signal-every", 200*time.Millisecond, "one signalling round trip per pair this often")
	flag.IntVar(&o.clients, "clients", 10000, "users, one connection each (2..20000)")
	flag.IntVar(&o.contacts, "contacts", 10, "contacts per user, even (2..100, below -clients)")
	flag.Float64Var(&o.rate, "rate", 200, "presence changes per second, over all users (1..5000)")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long presence changes (1s..10m)")
	flag.DurationVar(&o.drain, "drain", 5*time.Second, "how long after the last change deliveries are awaited")
	flag.IntVar(&o.workers, "connect-workers", 64, "connections dialed at once")
	flag.DurationVar(&o.connectTimeout, "connect-timeout", 5*time.Minute, "bound on connecting every client")
	flag.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	flag.Parse()
	for _, u := range strings.Split(servers, ",") {
		if u = strings.TrimSpace(u); u != "" {
			o.servers = append(o.servers, u)
		}
	}
	if pids != "" {
		for _, f := range strings.Split(pids, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return fmt.Errorf("-server-pid: %q is not a process id", f)
			}
			o.pids = append(o.pids, n)
		}
		if len(o.pids) != len(o.servers) {
			return fmt.Errorf("-server-pid names %d processes for %d servers", len(o.pids), len(o.servers))
		}
	}
	switch {
	case flag.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	case o.clients < 2 || o.clients > 20000:
		return errors.New("-clients must be 2..20000")
	case o.contacts < 2 || o.contacts > 100 || o.contacts%2 != 0 || o.contacts >= o.clients:
		return errors.New("-contacts must be even, 2..100, and below -clients")
	case o.rate < 1 || o.rate > 5000:
		return errors.New("-rate must be 1..5000")
	case o.duration < time.Second || o.duration > 10*time.Minute:
		return errors.New("-duration must be 1s..10m")
	case o.workers < 1 || o.workers > 512:
		return errors.New("-connect-workers must be 1..512")
	case o.signalPairs < 0 || o.signalPairs > 10:
		return errors.New("-signal-pairs must be 0..10")
	case o.signalEvery < 20*time.Millisecond:
		return errors.New("-signal-every must be at least 20ms (the server allows 50 messages a second)")
	}
	if o.seed != "" {
		return seed(o)
	}
	if len(o.servers) == 0 || o.fp == "" {
		return errors.New("-server and -fingerprint are required (or -seed)")
	}
	return measure(o)
}

func userName(i int) string { return fmt.Sprintf("u%05d", i) }

// userKey derives user i's device key, the same in both steps.
func userKey(i int) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("assist presence bench " + strconv.Itoa(i)))
	return ed25519.NewKeyFromSeed(s[:])
}

// contactsOf lists user i's contacts: the K/2 users on each side of the
// ring.
func contactsOf(i, n, k int) []int {
	out := make([]int, 0, k)
	for d := 1; d <= k/2; d++ {
		out = append(out, (i+d)%n, (i-d+n)%n)
	}
	return out
}

func seed(o options) error {
	ctx := context.Background()
	var st *hub.SQLStore
	var err error
	if strings.HasPrefix(o.seed, "postgres://") || strings.HasPrefix(o.seed, "postgresql://") {
		st, err = hub.OpenPostgres(ctx, o.seed)
	} else {
		st, err = hub.OpenSQLite(ctx, filepath.Join(o.seed, "messenger.sqlite"))
	}
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	now := time.Now()
	for i := 0; i < o.clients; i++ {
		k := userKey(i)
		name := userName(i)
		if err := st.CreateAccount(ctx, hub.Account{User: name, Display: "User " + name, Created: now},
			hub.Device{ID: fmt.Sprintf("bench%07d", i), Key: k.Public().(ed25519.PublicKey), Name: "bench", Created: now}); err != nil {
			return fmt.Errorf("seed %s: %w", name, err)
		}
	}
	for i := 0; i < o.clients; i++ {
		for d := 1; d <= o.contacts/2; d++ {
			if err := st.AddContact(ctx, userName(i), userName((i+d)%o.clients), now); err != nil {
				return fmt.Errorf("seed contacts: %w", err)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "presence: seeded %d users with %d contacts each in %v\n", o.clients, o.contacts, time.Since(start).Round(time.Millisecond))
	return nil
}

// tracker matches presence deliveries to the changes that caused them.
type tracker struct {
	mu      sync.Mutex
	pending map[int]*change // by user
	lat     []time.Duration
}

type change struct {
	state   string
	sent    time.Time
	waiting map[int]bool // contacts yet to hear
}

func (t *tracker) start(u int, state string, contacts []int) {
	c := &change{state: state, sent: time.Now(), waiting: make(map[int]bool, len(contacts))}
	for _, x := range contacts {
		c.waiting[x] = true
	}
	t.mu.Lock()
	t.pending[u] = c
	t.mu.Unlock()
}

// got records that receiver r saw user u's state s.
func (t *tracker) got(r, u int, s string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.pending[u]
	if c == nil || c.state != s || !c.waiting[r] {
		return // a login's presence, or a duplicate
	}
	delete(c.waiting, r)
	t.lat = append(t.lat, at.Sub(c.sent))
	if len(c.waiting) == 0 {
		delete(t.pending, u)
	}
}

func (t *tracker) missing() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.pending {
		n += len(c.waiting)
	}
	return n
}

type result struct {
	Clients          int         `json:"clients"`
	Connected        int         `json:"connected"`
	ContactsEach     int         `json:"contacts_each"`
	Servers          int         `json:"servers"`
	ConnectSeconds   float64     `json:"connect_seconds"`
	Rate             float64     `json:"rate_per_second"`
	Changes          int         `json:"changes"`
	Seconds          float64     `json:"change_seconds"`
	Deliveries       int         `json:"deliveries"`
	Missing          int         `json:"missing"`
	P50ms            float64     `json:"p50_ms"`
	P90ms            float64     `json:"p90_ms"`
	P99ms            float64     `json:"p99_ms"`
	MaxMs            float64     `json:"max_ms"`
	SignalPairs      int         `json:"signal_pairs"`
	SignalCrossNode  bool        `json:"signal_cross_node"`
	SignalTrips      int         `json:"signal_round_trips"`
	SignalP50ms      float64     `json:"signal_rtt_p50_ms"`
	SignalP99ms      float64     `json:"signal_rtt_p99_ms"`
	ServerRSSIdleMiB float64     `json:"server_rss_connected_mib"` // all servers together
	ServerRSSEndMiB  float64     `json:"server_rss_end_mib"`
	ServerPeakMiB    float64     `json:"server_rss_peak_mib"`
	Nodes            []nodeStats `json:"nodes,omitempty"`
	BenchRSSMiB      float64     `json:"bench_rss_mib"`
	BenchCPUPercent  float64     `json:"bench_cpu_changes_percent"`
}

// quantile is the p-quantile of sorted durations, in milliseconds.
func quantile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]) / float64(time.Millisecond)
}

func measure(o options) error {
	res := result{Clients: o.clients, ContactsEach: o.contacts, Rate: o.rate, Servers: len(o.servers)}
	for i, u := range o.servers {
		n := nodeStats{URL: u}
		if len(o.pids) > 0 {
			n.PID = o.pids[i]
		}
		res.Nodes = append(res.Nodes, n)
	}
	for i := 0; i < o.clients; i++ {
		res.Nodes[i%len(o.servers)].Clients++
	}
	for i := range res.Nodes {
		res.Nodes[i].cpuStart, _ = cpuTime(res.Nodes[i].PID)
	}
	tr := &tracker{pending: make(map[int]*change)}
	clients := make([]*messenger.Client, o.clients)
	var readers sync.WaitGroup
	defer func() {
		// Close in parallel: 10,000 closing handshakes one by one take long.
		closeAll(clients, o.workers)
		readers.Wait()
	}()

	fmt.Fprintf(os.Stderr, "presence: connecting %d clients to %d server(s)\n", o.clients, len(o.servers))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), o.connectTimeout)
	defer cancel()
	var next atomic.Int64
	var connected atomic.Int64
	var firstErr error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < o.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= o.clients || ctx.Err() != nil {
					return
				}
				url := o.servers[i%len(o.servers)]
				c, _, err := messenger.Dial(ctx, url, o.fp, userKey(i), messenger.LoginOptions{})
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("client %d on %s: %w", i, url, err)
					}
					errMu.Unlock()
					cancel()
					return
				}
				clients[i] = c
				if n := connected.Add(1); n%1000 == 0 {
					fmt.Fprintf(os.Stderr, "presence: %d connected\n", n)
				}
				readers.Add(1)
				go func(r int) {
					defer readers.Done()
					for m := range c.Events() {
						if m.Type != messenger.TypePresence {
							continue
						}
						u, err := strconv.Atoi(strings.TrimPrefix(m.User, "u"))
						if err == nil {
							tr.got(r, u, m.State, time.Now())
						}
					}
				}(i)
			}
		}()
	}
	wg.Wait()
	res.Connected = int(connected.Load())
	res.ConnectSeconds = time.Since(start).Seconds()
	if firstErr != nil {
		return fmt.Errorf("after %d connections: %w", res.Connected, firstErr)
	}
	fmt.Fprintf(os.Stderr, "presence: %d connected in %.1f s\n", res.Connected, res.ConnectSeconds)
	for i := range res.Nodes {
		n := &res.Nodes[i]
		n.RSSConnected, _ = rssMiB(n.PID, "VmRSS")
		if c, err := cpuTime(n.PID); err == nil {
			n.CPUConnectSecs = (c - n.cpuStart).Seconds()
			n.cpuStart = c
		}
	}

	// Signalling: pairs set up now, pinging during the changes.
	var pairs []*signalPair
	defer func() { closeSignalPairs(pairs) }()
	if o.signalPairs > 0 {
		pctx, pcancel := context.WithTimeout(context.Background(), time.Minute)
		var err error
		pairs, err = openSignalPairs(pctx, o.servers, o.fp, o.signalPairs)
		pcancel()
		if err != nil {
			return err
		}
		res.SignalPairs = len(pairs)
		res.SignalCrossNode = len(o.servers) > 1
	}
	sigCtx, sigCancel := context.WithCancel(context.Background())
	defer sigCancel()
	type sigResult struct {
		rtts []time.Duration
		err  error
	}
	sigDone := make(chan sigResult, 1)
	go func() {
		rtts, err := pingSignal(sigCtx, pairs, o.signalEvery)
		sigDone <- sigResult{rtts, err}
	}()

	// Changes: users in turn, each toggling between online and away, at a
	// steady rate; a user changes again only after N/rate seconds, so
	// changes of one user never overlap within a run shorter than that.
	fmt.Fprintf(os.Stderr, "presence: %v of changes at %.0f/s\n", o.duration, o.rate)
	benchCPU, _ := cpuTime(os.Getpid())
	interval := time.Duration(float64(time.Second) / o.rate)
	tick := time.NewTicker(interval)
	changeStart := time.Now()
	end := changeStart.Add(o.duration)
	state := make([]string, o.clients)
	sctx, scancel := context.WithTimeout(context.Background(), o.duration+time.Minute)
	defer scancel()
	u := 0
	for time.Now().Before(end) {
		<-tick.C
		s := messenger.StateAway
		if state[u] == messenger.StateAway {
			s = messenger.StateOnline
		}
		state[u] = s
		tr.start(u, s, contactsOf(u, o.clients, o.contacts))
		if err := clients[u].SetState(sctx, s); err != nil {
			tick.Stop()
			return fmt.Errorf("set state of %s: %w", userName(u), err)
		}
		res.Changes++
		u = (u + 1) % o.clients
	}
	tick.Stop()
	res.Seconds = time.Since(changeStart).Seconds()
	sigCancel()
	sig := <-sigDone
	if sig.err != nil {
		return sig.err
	}
	for i := range res.Nodes {
		n := &res.Nodes[i]
		if c, err := cpuTime(n.PID); err == nil {
			n.cpuChanges = c - n.cpuStart
			n.CPUPercent = 100 * n.cpuChanges.Seconds() / res.Seconds
		}
	}
	if c, err := cpuTime(os.Getpid()); err == nil {
		res.BenchCPUPercent = 100 * (c - benchCPU).Seconds() / res.Seconds
	}
	deadline := time.Now().Add(o.drain)
	for tr.missing() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling the tracker; no signal to wait on
	}
	res.Missing = tr.missing()
	for i := range res.Nodes {
		n := &res.Nodes[i]
		n.RSSEnd, _ = rssMiB(n.PID, "VmRSS")
		n.RSSPeak, _ = rssMiB(n.PID, "VmHWM")
		res.ServerRSSIdleMiB += n.RSSConnected
		res.ServerRSSEndMiB += n.RSSEnd
		res.ServerPeakMiB += n.RSSPeak
	}
	res.BenchRSSMiB, _ = rssMiB(os.Getpid(), "VmRSS")

	tr.mu.Lock()
	lat := slices.Clone(tr.lat)
	tr.mu.Unlock()
	slices.Sort(lat)
	res.Deliveries = len(lat)
	res.P50ms, res.P90ms, res.P99ms = quantile(lat, 0.50), quantile(lat, 0.90), quantile(lat, 0.99)
	if len(lat) > 0 {
		res.MaxMs = float64(lat[len(lat)-1]) / float64(time.Millisecond)
	}
	res.SignalTrips = len(sig.rtts)
	res.SignalP50ms, res.SignalP99ms = quantile(sig.rtts, 0.50), quantile(sig.rtts, 0.99)
	report(os.Stdout, res)
	if o.jsonPath != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func report(w io.Writer, r result) {
	fmt.Fprintf(w, "clients: %d connected of %d over %d server(s), %d contacts each, in %.1f s\n", r.Connected, r.Clients, r.Servers, r.ContactsEach, r.ConnectSeconds)
	fmt.Fprintf(w, "presence changes: %d in %.0f s (%.0f/s, asked %.0f/s); deliveries: %d, missing %d\n",
		r.Changes, r.Seconds, float64(r.Changes)/r.Seconds, r.Rate, r.Deliveries, r.Missing)
	fmt.Fprintf(w, "delivery time: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (target: p99 under 100 ms)\n", r.P50ms, r.P90ms, r.P99ms, r.MaxMs)
	if r.SignalPairs > 0 {
		where := "novice and expert on one server"
		if r.SignalCrossNode {
			where = "novice and expert on different servers"
		}
		fmt.Fprintf(w, "signalling round trip: p50 %.1f ms, p99 %.1f ms (%d round trips, %d pairs, %s)\n", r.SignalP50ms, r.SignalP99ms, r.SignalTrips, r.SignalPairs, where)
	}
	for _, n := range r.Nodes {
		if n.PID == 0 {
			continue
		}
		fmt.Fprintf(w, "server %s (pid %d, %d clients): RSS %.0f MiB connected, %.0f MiB at the end, peak %.0f MiB; CPU %.1f s connecting, %.0f%% of a core during the changes\n",
			n.URL, n.PID, n.Clients, n.RSSConnected, n.RSSEnd, n.RSSPeak, n.CPUConnectSecs, n.CPUPercent)
	}
	if len(r.Nodes) > 1 && r.ServerRSSIdleMiB > 0 {
		fmt.Fprintf(w, "servers together: RSS %.0f MiB connected, peak %.0f MiB\n", r.ServerRSSIdleMiB, r.ServerPeakMiB)
	}
	fmt.Fprintf(w, "benchmark process: RSS %.0f MiB, %.0f%% of a core during the changes\n", r.BenchRSSMiB, r.BenchCPUPercent)
}

func closeAll(clients []*messenger.Client, workers int) {
	ch := make(chan *messenger.Client)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range ch {
				c.Close()
			}
		}()
	}
	for _, c := range clients {
		if c != nil {
			ch <- c
		}
	}
	close(ch)
	wg.Wait()
}
