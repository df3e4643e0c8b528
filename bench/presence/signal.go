package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/assist-project/assist/server"
)

// signalPair is one novice and one expert paired by the rendezvous
// server, the novice on one node and the expert, when there are several,
// on the next: each relay message the expert sends comes back from the
// novice, so a round trip crosses the nodes twice.
type signalPair struct {
	novice, expert *server.Client
	novURL, expURL string
}

// openSignalPairs registers n novices and joins an expert to each,
// novice i on urls[i%len(urls)] and its expert on the next URL.
func openSignalPairs(ctx context.Context, urls []string, fp string, n int) ([]*signalPair, error) {
	var pairs []*signalPair
	expires := time.Now().Add(time.Hour)
	for i := 0; i < n; i++ {
		p := &signalPair{novURL: urls[i%len(urls)], expURL: urls[(i+1)%len(urls)]}
		pairs = append(pairs, p)
		var err error
		if p.novice, err = server.DialSignal(ctx, p.novURL, fp); err != nil {
			return pairs, fmt.Errorf("signalling pair %d, novice on %s: %w", i, p.novURL, err)
		}
		id := fmt.Sprintf("bench-presence-%d-%d", time.Now().UnixNano(), i)
		owner, err := server.NewOwner()
		if err != nil {
			return pairs, err
		}
		if err := p.novice.Register(ctx, id, expires, owner); err != nil {
			return pairs, fmt.Errorf("signalling pair %d, novice on %s: %w", i, p.novURL, err)
		}
		if p.expert, err = server.DialSignal(ctx, p.expURL, fp); err != nil {
			return pairs, fmt.Errorf("signalling pair %d, expert on %s: %w", i, p.expURL, err)
		}
		if _, err := p.expert.Join(ctx, id); err != nil {
			return pairs, fmt.Errorf("signalling pair %d, expert on %s joining a novice on %s: %w", i, p.expURL, p.novURL, err)
		}
		if m, err := p.novice.Recv(ctx); err != nil || m.Type != server.TypePaired {
			return pairs, fmt.Errorf("signalling pair %d: the novice got %q, %v; want paired", i, m.Type, err)
		}
	}
	return pairs, nil
}

func closeSignalPairs(pairs []*signalPair) {
	for _, p := range pairs {
		if p.novice != nil {
			p.novice.Close()
		}
		if p.expert != nil {
			p.expert.Close()
		}
	}
}

// pingSignal runs round trips on every pair until ctx ends, one every
// interval per pair (the server allows 50 messages a second per
// connection), and returns the round-trip times; the first error ends
// it.
func pingSignal(ctx context.Context, pairs []*signalPair, interval time.Duration) ([]time.Duration, error) {
	var mu sync.Mutex
	var rtts []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Add(2)
		// The novice echoes every relay message back.
		go func() {
			defer wg.Done()
			for {
				m, err := p.novice.Recv(ctx)
				if err != nil {
					return // ctx ended, or the expert's side reports it
				}
				if m.Type == server.TypeRelay {
					if err := p.novice.Relay(ctx, m.Data); err != nil {
						return
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				sent := time.Now()
				if err := p.expert.Relay(ctx, json.RawMessage(strconv.Itoa(k))); err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						firstErr = cmpOr(firstErr, fmt.Errorf("signalling relay %s -> %s: %w", p.expURL, p.novURL, err))
						mu.Unlock()
					}
					return
				}
				m, err := p.expert.Recv(ctx)
				if err != nil || m.Type != server.TypeRelay || string(m.Data) != strconv.Itoa(k) {
					if ctx.Err() == nil {
						mu.Lock()
						firstErr = cmpOr(firstErr, fmt.Errorf("signalling echo %s <- %s: got %q %s, %v", p.expURL, p.novURL, m.Type, m.Data, err))
						mu.Unlock()
					}
					return
				}
				mu.Lock()
				rtts = append(rtts, time.Since(sent))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(rtts)
	return rtts, firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
