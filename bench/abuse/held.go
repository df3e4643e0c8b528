package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"log/slog"
	"os/exec"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assist-project/assist/bench/workload"
	"github.com/assist-project/assist/server"
)

// heldConfig sets probe 4.
type heldConfig struct {
	assist      string        // the assist binary; "" skips the probe
	serverURL   string        // as assist serve printed it
	fingerprint string        // the server's certificate
	budget      time.Duration // how long the real expert keeps trying
	mode        string        // what the attacker does once paired: holdModes
}

// holdModes are what the attacker does once paired with the novice.
var holdModes = map[string]string{
	// Never relays: the novice's agent waits for a first message.
	"silent": "never relays anything",
	// One well-formed signalling message (rtc's end-of-candidates, which
	// carries nothing), then nothing: it passes a server rule like "the
	// expert must relay within 5 s" and leaves the novice's agent waiting
	// for the offer.
	"stall": "relays one well-formed signalling message (end-of-candidates), then nothing",
	// A message that is not rtc signalling at all.
	"garbage": "relays one message that is not signalling, then nothing",
}

// holdData is the relay the attacker sends in mode, or nil.
func holdData(mode string) json.RawMessage {
	switch mode {
	case "stall":
		b, _ := json.Marshal(base64.StdEncoding.EncodeToString([]byte(`{"type":"end-of-candidates"}`)))
		return b
	case "garbage":
		return json.RawMessage(`"not signalling!"`)
	}
	return nil
}

var (
	codeLine = regexp.MustCompile(`^code: (([0-9]+)-[a-z]+-[a-z]+)$`)
	pathLine = regexp.MustCompile(`^path: (\S+)`)
)

// probeHeld is probe 4: a real `assist invite` on an Xvfb display
// registers a code; an attacker from addrHolder joins it and holds the
// pairing (cfg.mode), joining again the moment it is dropped; a real
// `assist join CODE` then tries, again and again for cfg.budget, as a
// person would.
func probeHeld(ctx context.Context, ep *endpoint, cfg heldConfig, rep *report) error {
	title := "real join while an attacker holds its code"
	skip := func(why string) error {
		rep.add(result{Probe: "held-code", Title: title, Skipped: why})
		return nil
	}
	if cfg.assist == "" {
		return skip("no -assist binary given")
	}
	if _, err := exec.LookPath("Xvfb"); err != nil {
		return skip("no Xvfb: assist invite needs an X display (apt-get install xvfb)")
	}
	x, err := workload.StartXvfb(image.Pt(800, 600))
	if err != nil {
		return skip("Xvfb did not start: " + err.Error())
	}
	defer x.Close()
	inv, err := startProc(cfg.assist, "invite", "--server", cfg.serverURL, "--server-fingerprint", cfg.fingerprint,
		"--display", x.Display, "--allow", "view", "--no-page", "--no-portmap", "--listen", "127.0.0.1:0",
		"--name", "Novice", "--expires", "15m")
	if err != nil {
		return err
	}
	defer inv.stop()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	m, err := inv.waitLine(wctx, codeLine)
	cancel()
	if err != nil {
		return fmt.Errorf("assist invite printed no code: %w", err)
	}
	code, lookup := m[1], m[2]
	slog.Info("held code: the novice registered", "lookup", lookup, "attacker", cfg.mode)

	d, err := ep.from(addrHolder)
	if err != nil {
		return err
	}
	defer d.close()
	h := &holder{d: d, id: lookup, data: holdData(cfg.mode), firstPaired: make(chan struct{})}
	hctx, stopHolder := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { h.run(hctx) })
	defer func() {
		stopHolder()
		wg.Wait()
	}()
	select {
	case <-h.firstPaired:
	case <-time.After(15 * time.Second):
		stopHolder()
		wg.Wait()
		rep.add(result{Probe: "held-code", Title: title,
			Figure:  "not held: the attacker never got paired in 15 s",
			Target:  "gets through",
			Details: []string{"attacker's answers: " + h.answers.String()},
			Values:  map[string]any{"held": false, "attacker_answers": h.answers.snapshot()}})
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}

	// The real expert, trying again as a person would.
	start := time.Now()
	deadline := start.Add(cfg.budget)
	var (
		tries   int
		through time.Duration
		path    string
		fails   tally
	)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		tries++
		j, err := startProc(cfg.assist, "join", "--no-browser", "--name", "Tester",
			"--server", cfg.serverURL, "--server-fingerprint", cfg.fingerprint, code)
		if err != nil {
			return err
		}
		jctx, cancel := context.WithDeadline(ctx, deadline)
		m, err := j.waitLine(jctx, pathLine)
		timedOut := jctx.Err() != nil
		cancel()
		if err == nil {
			through, path = time.Since(start), m[1]
			j.stop()
			break
		}
		j.stop()
		if timedOut {
			fails.add("still waiting at the end")
			break
		}
		fails.add(j.stderr.lastLine())
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
	}
	stopHolder()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err // interrupted: no figure
	}

	h.mu.Lock()
	holds := append([]time.Duration(nil), h.holds...)
	h.mu.Unlock()
	details := []string{
		fmt.Sprintf("attacker from %s %s; paired %s, holds of %s median, %s longest (the last one cut by the end of the probe)",
			addrHolder, holdModes[cfg.mode], plural(int(h.pairings.Load()), "time", "times"), seconds(median(holds)), seconds(slices.Max(append(holds, 0)))),
		"attacker's answers: " + h.answers.String(),
	}
	if fails.String() != "none" {
		details = append(details, "real joins that failed: "+fails.String())
	}
	res := result{
		Probe:   "held-code",
		Title:   title,
		Target:  "gets through",
		Details: details,
		Values: map[string]any{"got_through": through > 0, "tries": tries, "attacker_mode": cfg.mode,
			"attacker_pairings": h.pairings.Load(), "budget_seconds": cfg.budget.Seconds()},
	}
	if through > 0 {
		res.Figure = fmt.Sprintf("got through after %s (%s; path %s)", seconds(through), plural(tries, "try", "tries"), path)
		res.Values["seconds"] = through.Seconds()
	} else {
		res.Figure = fmt.Sprintf("blocked: no real join got through in %s (%s)", seconds(cfg.budget), plural(tries, "try", "tries"))
	}
	rep.add(res)
	return nil
}

// holder is the attacker of probe 4: it joins id, holds each pairing
// (sending data, if any, once), and joins again as soon as it is dropped.
type holder struct {
	d    *dialer
	id   string
	data json.RawMessage

	pairings    atomic.Int64
	answers     tally
	firstPaired chan struct{}
	once        sync.Once
	mu          sync.Mutex
	holds       []time.Duration
}

func (h *holder) run(ctx context.Context) {
	w := &workerConn{d: h.d, wait: 200 * time.Millisecond}
	defer w.drop()
	for ctx.Err() == nil {
		p, _, err := w.get(ctx)
		if err != nil {
			if ctx.Err() == nil {
				h.answers.add(dialKind(err))
			}
			continue
		}
		if err := p.send(ctx, server.Message{Type: server.TypeJoin, ID: h.id}); err != nil {
			w.drop()
			continue
		}
		m, err := h.waitPaired(ctx, p)
		if err != nil {
			if ctx.Err() == nil {
				h.answers.add(recvKind(err))
				w.drop()
				w.pause(ctx)
			}
			continue
		}
		h.answers.add(kind(m))
		if m.Type != server.TypePaired {
			w.pause(ctx) // refused: try again shortly, as an attacker would
			continue
		}
		h.pairings.Add(1)
		h.once.Do(func() { close(h.firstPaired) })
		t0 := time.Now()
		if h.data != nil {
			if err := p.send(ctx, server.Message{Type: server.TypeRelay, Session: m.Session, Data: h.data}); err != nil {
				w.drop()
				continue
			}
		}
		// Hold until dropped: bye, peer-left or the connection's end.
		for {
			m, err := p.recv(ctx)
			if err != nil {
				break
			}
			if m.Type == server.TypeBye || m.Type == server.TypePeerLeft {
				h.answers.add("dropped by " + kind(m))
				break
			}
		}
		// The last hold, cut short by the end of the probe, counts too.
		h.mu.Lock()
		h.holds = append(h.holds, time.Since(t0))
		h.mu.Unlock()
	}
}

// waitPaired reads the answer to a join, waiting through "queued" or any
// other message that is not an answer: it returns "paired" or an error
// message.
func (h *holder) waitPaired(ctx context.Context, p *peer) (server.Message, error) {
	for {
		m, err := p.recv(ctx)
		if err != nil {
			return m, err
		}
		switch {
		case m.Type == server.TypePaired:
			return m, nil
		case m.Type == server.TypeError && m.Code != server.CodeNotPaired:
			return m, nil
		}
		h.answers.add("meanwhile " + kind(m))
	}
}
