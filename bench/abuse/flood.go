package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/server"
)

// floodConfig sets probes 1 and 2.
type floodConfig struct {
	n        int           // connections to try
	workers  int           // dialling at once
	maxTime  time.Duration // bound on the flood's dialling
	idleWait time.Duration // how long after the flood the survivors are counted
	rssWait  time.Duration // how long after closing them the RSS is read again
	legit    int           // legitimate pairings during the flood
	pid      int           // the server's process, for its RSS; 0: none
}

// idleConn is one of the flood's connections. gone is done once the
// connection has ended (CloseRead's context: its reader also answers the
// server's pings, as any websocket client would).
type idleConn struct {
	ws   *websocket.Conn
	gone context.Context
}

// probeFlood is probes 1 and 2: from one address, open idle signalling
// connections as fast as possible and hold them; at the peak, run
// legitimate pairings from other addresses; count the survivors after
// idleWait, close them all, and read the server's RSS throughout.
func probeFlood(ctx context.Context, ep *endpoint, cfg floodConfig, rep *report) error {
	d, err := ep.from(addrFlood)
	if err != nil {
		return err
	}
	defer d.close()

	var before int64
	if cfg.pid > 0 {
		if before, err = rssBytes(cfg.pid); err != nil {
			return err
		}
	}

	var (
		mu       sync.Mutex
		conns    []idleConn
		peakOpen int
		peakRSS  int64
		rssErr   error
	)
	countOpen := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range conns {
			if c.gone.Err() == nil {
				n++
			}
		}
		return n
	}
	sample := func() {
		open := countOpen()
		var rss int64
		if cfg.pid > 0 {
			var err error
			if rss, err = rssBytes(cfg.pid); err != nil {
				mu.Lock()
				rssErr = err
				mu.Unlock()
			}
		}
		mu.Lock()
		peakOpen = max(peakOpen, open)
		peakRSS = max(peakRSS, rss)
		mu.Unlock()
	}
	samplerCtx, stopSampler := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-samplerCtx.Done():
				return
			case <-t.C:
			}
		}
	})
	defer func() {
		stopSampler()
		sampler.Wait()
	}()

	closeAll := func() {
		mu.Lock()
		cs := conns
		conns = nil
		mu.Unlock()
		for _, c := range cs {
			c.ws.CloseNow()
		}
	}
	defer closeAll()

	slog.Info("idle flood: opening connections", "from", addrFlood, "max", cfg.n)
	var outcomes tally
	var tried atomic.Int64
	start := time.Now()
	floodCtx, cancelFlood := context.WithTimeout(ctx, cfg.maxTime)
	var workers sync.WaitGroup
	for range cfg.workers {
		workers.Go(func() {
			for floodCtx.Err() == nil && tried.Add(1) <= int64(cfg.n) {
				ws, err := d.dial(floodCtx)
				if err != nil {
					if floodCtx.Err() != nil {
						outcomes.add("unfinished")
						return
					}
					outcomes.add(dialKind(err))
					continue
				}
				outcomes.add("accepted")
				c := idleConn{ws: ws, gone: ws.CloseRead(context.Background())}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	workers.Wait()
	cancelFlood()
	floodTime := time.Since(start)
	floodEnd := time.Now()
	if err := ctx.Err(); err != nil {
		return err
	}
	attempts := min(int(tried.Load()), cfg.n)
	sample()
	openAfterFlood := countOpen()
	slog.Info("idle flood: done dialling", "attempts", attempts, "outcomes", outcomes.String(), "open", openAfterFlood, "took", floodTime.Round(time.Millisecond))

	// Probe 2, while the flood is held.
	slog.Info("legitimate pairings during the flood", "pairings", cfg.legit)
	legit := legitPairings(ctx, ep, cfg.legit)
	legit.Title = fmt.Sprintf("legitimate pairings during the flood (%d idle connections from %s open)", openAfterFlood, addrFlood)
	legit.Probe = "legit-during-flood"

	select {
	case <-time.After(time.Until(floodEnd.Add(cfg.idleWait))):
	case <-ctx.Done():
		return ctx.Err()
	}
	stillOpen := countOpen()
	sample()
	closeAll()
	closedAt := time.Now()
	slog.Info("idle flood: closed every connection; waiting to read the server's memory", "wait", cfg.rssWait)
	var after int64
	if cfg.pid > 0 {
		select {
		case <-time.After(cfg.rssWait):
		case <-ctx.Done():
			return ctx.Err()
		}
		if after, err = rssBytes(cfg.pid); err != nil {
			return err
		}
	}
	stopSampler()
	sampler.Wait()

	accepted := outcomes.get("accepted")
	mu.Lock()
	topOpen, topRSS, sampleErr := peakOpen, peakRSS, rssErr
	mu.Unlock()
	rep.add(result{
		Probe:  "idle-flood",
		Title:  "idle connections held by one address",
		Figure: fmt.Sprintf("%d open at once (%d of %d tried accepted in %s)", topOpen, accepted, attempts, seconds(floodTime)),
		Target: "at most 64, the per-address cap",
		Details: []string{
			"outcomes of the upgrades: " + outcomes.String(),
		},
		Values: map[string]any{"tried": attempts, "accepted": accepted, "peak_open": topOpen,
			"outcomes": outcomes.snapshot(), "flood_seconds": floodTime.Seconds()},
	})
	rep.add(result{
		Probe:  "idle-flood",
		Title:  fmt.Sprintf("idle connections still open %s after the flood", seconds(cfg.idleWait)),
		Figure: fmt.Sprintf("%d of %d accepted", stillOpen, accepted),
		Target: "0, past the 10 s deadline to register or join",
		Values: map[string]any{"still_open": stillOpen, "accepted": accepted, "wait_seconds": cfg.idleWait.Seconds()},
	})
	rep.add(legit)
	if cfg.pid == 0 {
		rep.add(result{Probe: "idle-flood", Title: "server memory under the idle flood", Skipped: "no -server-pid given"})
		return nil
	}
	res := result{
		Probe: "idle-flood",
		Title: "server memory (RSS) under the idle flood",
		Figure: fmt.Sprintf("%s before, %s at the peak, %s %s after closing them",
			mb(before), mb(topRSS), mb(after), seconds(time.Since(closedAt).Round(time.Second))),
		Target: "a peak bounded by the per-address cap, then back near the figure before",
		Values: map[string]any{"rss_before": before, "rss_peak": topRSS, "rss_after": after,
			"after_seconds": cfg.rssWait.Seconds()},
	}
	if sampleErr != nil {
		res.Details = append(res.Details, "a sample of the RSS failed: "+sampleErr.Error())
	}
	rep.add(res)
	return nil
}

// legitPairings runs n pairings at once, each a novice and an expert on
// loopback addresses of their own (127.0.1.X and 127.0.2.X): the novice
// registers a fresh id, the expert joins it, both get "paired", and each
// relays one message to the other.
func legitPairings(ctx context.Context, ep *endpoint, n int) result {
	var (
		failures tally
		others   tally
		mu       sync.Mutex
		times    []time.Duration
		wg       sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			nov := loopback(1, i/250, i%250+1)
			exp := loopback(2, i/250, i%250+1)
			t0 := time.Now()
			if fail := pair(ctx, ep, nov, exp, &others); fail != "" {
				failures.add(fail)
				return
			}
			mu.Lock()
			times = append(times, time.Since(t0))
			mu.Unlock()
		})
	}
	wg.Wait()
	ok := len(times)
	res := result{
		Figure: fmt.Sprintf("%d/%d succeeded", ok, n),
		Target: fmt.Sprintf("%d/%d", n, n),
		Values: map[string]any{"succeeded": ok, "tried": n, "failures": failures.snapshot()},
	}
	if ok > 0 {
		med := median(times)
		res.Details = append(res.Details, fmt.Sprintf("median time of a successful pairing: %.0f ms", float64(med.Microseconds())/1000))
		res.Values["median_ms"] = float64(med.Microseconds()) / 1000
	}
	if ok < n {
		res.Details = append(res.Details, "failures: "+failures.String())
	}
	if len(others.snapshot()) > 0 {
		res.Details = append(res.Details, "other messages on the way: "+others.String())
	}
	return res
}

// pair runs one legitimate pairing; it returns "" on success, else what
// failed ("expert join: error:busy").
func pair(ctx context.Context, ep *endpoint, novAddr, expAddr string, others *tally) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	id, err := freshID()
	if err != nil {
		return "id: " + err.Error()
	}
	nd, err := ep.from(novAddr)
	if err != nil {
		return "novice: " + err.Error()
	}
	defer nd.close()
	ed, err := ep.from(expAddr)
	if err != nil {
		return "expert: " + err.Error()
	}
	defer ed.close()

	nov, err := nd.dialPeer(ctx)
	if err != nil {
		return "novice dial: " + dialKind(err)
	}
	defer nov.close()
	if err := nov.send(ctx, registerMsg(id)); err != nil {
		return "novice register: send failed"
	}
	if _, fail := await(ctx, nov, server.TypeRegistered, others); fail != "" {
		return "novice register: " + fail
	}
	exp, err := ed.dialPeer(ctx)
	if err != nil {
		return "expert dial: " + dialKind(err)
	}
	defer exp.close()
	if err := exp.send(ctx, server.Message{Type: server.TypeJoin, ID: id}); err != nil {
		return "expert join: send failed"
	}
	pm, fail := await(ctx, exp, server.TypePaired, others)
	if fail != "" {
		return "expert join: " + fail
	}
	if _, fail := await(ctx, nov, server.TypePaired, others); fail != "" {
		return "novice paired: " + fail
	}
	if err := exp.send(ctx, server.Message{Type: server.TypeRelay, Session: pm.Session, Data: []byte(`"ping"`)}); err != nil {
		return "expert relay: send failed"
	}
	if m, fail := await(ctx, nov, server.TypeRelay, others); fail != "" || string(m.Data) != `"ping"` {
		return "novice relay: " + orWrong(fail)
	}
	if err := nov.send(ctx, server.Message{Type: server.TypeRelay, Session: pm.Session, Data: []byte(`"pong"`)}); err != nil {
		return "novice relay: send failed"
	}
	if m, fail := await(ctx, exp, server.TypeRelay, others); fail != "" || string(m.Data) != `"pong"` {
		return "expert relay: " + orWrong(fail)
	}
	// Errors here do not undo the pairing: the connections close anyway.
	_ = exp.send(ctx, server.Message{Type: server.TypeBye, Session: pm.Session, Reason: "done"})
	return ""
}

func orWrong(fail string) string {
	if fail == "" {
		return "wrong data"
	}
	return fail
}

// await reads until a message of type want. An error message, the end of
// the connection or ctx ending is a failure, named as kind or recvKind
// name it. Messages of other types ("queued", say) are counted in others
// and skipped.
func await(ctx context.Context, p *peer, want string, others *tally) (server.Message, string) {
	for {
		m, err := p.recv(ctx)
		if err != nil {
			return m, recvKind(err)
		}
		switch m.Type {
		case want:
			return m, ""
		case server.TypeError, server.TypeBye, server.TypePeerLeft:
			return m, kind(m)
		}
		others.add(kind(m))
	}
}

// freshID returns an id like an invitation file's (what assist invite
// registers besides the short code's number): 128 random bits, lower-case
// base32 without padding.
func freshID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}
