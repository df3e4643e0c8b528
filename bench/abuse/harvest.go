package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/server"
)

// harvestConfig sets probe 3.
type harvestConfig struct {
	live    int           // invitations to register
	time    time.Duration // how long the harvester tries
	workers int           // the harvester's connections
}

// lookupID is the id a short code's look-up number n is registered under.
func lookupID(n int) string { return invitation.WordCode{Lookup: n}.LookupID() }

// liveSet registers invitations under random look-up numbers, as real
// novices do, from the first address that accepts them, moving to the next
// address when one is refused for anything but a number already taken.
type liveSet struct {
	novices  []*peer
	numbers  map[int]bool
	perAddr  tally
	refusals tally
}

func registerLive(ctx context.Context, ep *endpoint, want int, addrs []string) (*liveSet, error) {
	ls := &liveSet{numbers: make(map[int]bool)}
	var others tally
	ai := 0
	for tries := 0; len(ls.novices) < want && ai < len(addrs) && tries < 3*want+20; tries++ {
		if err := ctx.Err(); err != nil {
			ls.close()
			return nil, err
		}
		d, err := ep.from(addrs[ai])
		if err != nil {
			ls.close()
			return nil, err
		}
		p, err := d.dialPeer(ctx)
		d.close()
		if err != nil {
			ls.refusals.add(addrs[ai] + " dial " + dialKind(err))
			ai++
			continue
		}
		n, err := invitation.NewLookup()
		if err != nil {
			p.close()
			ls.close()
			return nil, err
		}
		if err := p.send(ctx, registerMsg(lookupID(n))); err != nil {
			p.close()
			ls.refusals.add(addrs[ai] + " send failed")
			ai++
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, fail := await(rctx, p, server.TypeRegistered, &others)
		cancel()
		switch fail {
		case "":
			ls.novices = append(ls.novices, p)
			ls.numbers[n] = true
			ls.perAddr.add(addrs[ai])
		case "error:" + server.CodeTaken:
			p.close() // a number someone holds: draw another
		default:
			p.close()
			ls.refusals.add(addrs[ai] + " " + fail)
			ai++
		}
	}
	return ls, nil
}

func (ls *liveSet) close() {
	for _, p := range ls.novices {
		p.close()
	}
	ls.novices = nil
}

// harvest is what the harvester learnt: the answers each live number got
// (kind -> first time), and the kinds every other number got.
type harvest struct {
	mu        sync.Mutex
	live      map[int]map[string]time.Duration
	dead      map[string]int // kind -> answers, for numbers not live
	pairedAll chan struct{}  // closed when every live number was paired
	paired    int
	closeOnce sync.Once
}

func newHarvest(live map[int]bool) *harvest {
	h := &harvest{live: make(map[int]map[string]time.Duration), dead: make(map[string]int), pairedAll: make(chan struct{})}
	for n := range live {
		h.live[n] = make(map[string]time.Duration)
	}
	return h
}

// record notes that number n got an answer of kind k at time t.
func (h *harvest) record(n int, k string, t time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	kinds, isLive := h.live[n]
	if !isLive {
		h.dead[k]++
		return
	}
	if _, seen := kinds[k]; seen {
		return
	}
	kinds[k] = t
	if k == server.TypePaired {
		h.paired++
		if h.paired == len(h.live) {
			h.closeOnce.Do(func() { close(h.pairedAll) })
		}
	}
}

// found lists, for each live number told apart, when it was: a live
// number is found when one of its answers is of a kind no other number
// ever got (so "paired", or "offline" on an old server, but not a refusal
// every number gets alike, whatever the server calls it).
func (h *harvest) found() map[int]time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[int]time.Duration)
	for n, kinds := range h.live {
		for k, t := range kinds {
			if h.dead[k] > 0 {
				continue
			}
			if first, ok := out[n]; !ok || t < first {
				out[n] = t
			}
		}
	}
	return out
}

// probeHarvest is probe 3: live invitations are registered from
// addrHarvestNovices; from addrHarvester, workers join look-up numbers in
// a random order for cfg.time, as fast as the server answers, and count the
// live ones they can tell apart.
func probeHarvest(ctx context.Context, ep *endpoint, cfg harvestConfig, rep *report) error {
	title := fmt.Sprintf("live codes found in %s from one address", seconds(cfg.time))
	ls, err := registerLive(ctx, ep, cfg.live, addrHarvestNovices)
	if err != nil {
		return err
	}
	defer ls.close()
	if len(ls.novices) == 0 {
		rep.add(result{Probe: "harvest", Title: title,
			Skipped: "no invitation could be registered: " + ls.refusals.String()})
		return nil
	}
	slog.Info("harvest: live invitations registered", "count", len(ls.novices), "from", ls.perAddr.String())

	d, err := ep.from(addrHarvester)
	if err != nil {
		return err
	}
	defer d.close()
	h := newHarvest(ls.numbers)
	order := rand.Perm(invitation.MaxLookup)
	var (
		next, attempted, answered atomic.Int64
		answers, dials            tally
		wg                        sync.WaitGroup
	)
	hctx, cancel := context.WithTimeout(ctx, cfg.time)
	defer cancel()
	wg.Go(func() {
		// Stop early once every live number has been paired: the rest of
		// the minute could find nothing more.
		select {
		case <-h.pairedAll:
			cancel()
		case <-hctx.Done():
		}
	})
	start := time.Now()
	for range cfg.workers {
		wg.Go(func() {
			w := &workerConn{d: d, wait: 100 * time.Millisecond}
			defer w.drop()
			for hctx.Err() == nil {
				p, fresh, err := w.get(hctx)
				if err != nil {
					if hctx.Err() == nil {
						dials.add(dialKind(err))
					}
					continue
				}
				if fresh {
					dials.add("accepted")
				}
				n := order[int(next.Add(1)-1)%len(order)] + 1
				attempted.Add(1)
				if err := p.send(hctx, server.Message{Type: server.TypeJoin, ID: lookupID(n)}); err != nil {
					w.drop()
					continue
				}
				m, err := answerTo(hctx, p, &answers)
				if err != nil {
					if hctx.Err() == nil {
						answers.add(recvKind(err))
					}
					w.drop()
					continue
				}
				answered.Add(1)
				k := kind(m)
				answers.add(k)
				h.record(n, k, time.Since(start))
				switch {
				case m.Type == server.TypePaired:
					// Let go at once, so as not to hold the novice.
					if err := p.send(hctx, server.Message{Type: server.TypeBye, Session: m.Session, Reason: "wrong number"}); err != nil {
						w.drop()
					}
				case k == "error:"+server.CodeUnknown:
				case m.Type == server.TypeError:
					// A refusal (or an answer of an old server): the next
					// try after a pause, so it runs as fast as the server
					// lets it without spinning.
					w.pause(hctx)
				default:
					// "queued" or anything new: leave, whatever it means.
					w.drop()
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	cancel()
	if err := ctx.Err(); err != nil {
		return err // interrupted: no figure
	}

	found := h.found()
	var times []time.Duration
	for _, t := range found {
		times = append(times, t)
	}
	slices.Sort(times)
	figure := fmt.Sprintf("%d of %d", len(found), len(ls.novices))
	if len(found) == len(ls.novices) && took < cfg.time-time.Second {
		figure += fmt.Sprintf(" (all of them after %s; stopped there)", seconds(times[len(times)-1]))
	}
	perCode := "no code found"
	if len(found) > 0 {
		perCode = fmt.Sprintf("%.0f joins per code found", float64(attempted.Load())/float64(len(found)))
	}
	tried := min(int(next.Load()), invitation.MaxLookup)
	h.mu.Lock()
	dead := formatCounts(h.dead)
	h.mu.Unlock()
	details := []string{
		fmt.Sprintf("%d joins tried, %d answered, in %s (%.0f/s); %s; joins sent for %d of the %d look-up numbers",
			attempted.Load(), answered.Load(), seconds(took), float64(attempted.Load())/took.Seconds(), perCode, tried, invitation.MaxLookup),
		"answers: " + answers.String(),
		"answers to numbers not registered: " + dead,
		"harvester's connections: " + dials.String(),
		fmt.Sprintf("live invitations: %d registered (%s)", len(ls.novices), ls.perAddr.String()),
	}
	if len(ls.refusals.snapshot()) > 0 {
		details = append(details, "refused registrations (the next address was used then): "+ls.refusals.String())
	}
	rep.add(result{
		Probe:   "harvest",
		Title:   title,
		Figure:  figure,
		Target:  "close to 0",
		Details: details,
		Values: map[string]any{"found": len(found), "live": len(ls.novices), "attempted": attempted.Load(),
			"answered": answered.Load(), "seconds": took.Seconds(), "answers": answers.snapshot(), "numbers_tried": tried},
	})
	return nil
}

// answerTo reads the answer to a join: the first message that is not a
// late part of an earlier pairing (relay, bye, peer-left, or the
// "not-paired" error of a late bye), which are counted in stray.
func answerTo(ctx context.Context, p *peer, stray *tally) (server.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		m, err := p.recv(ctx)
		if err != nil {
			return m, err
		}
		switch {
		case m.Type == server.TypeRelay, m.Type == server.TypeBye, m.Type == server.TypePeerLeft,
			m.Type == server.TypeError && m.Code == server.CodeNotPaired:
			stray.add("stray " + kind(m))
			continue
		}
		return m, nil
	}
}
