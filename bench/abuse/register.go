package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver, as the server's store does

	"github.com/assist-project/assist/server"
)

// registerConfig sets probe 5.
type registerConfig struct {
	time    time.Duration // how long the flood registers
	workers int           // registering at once
	dataDir string        // the server's --data, to count what it stored; "" skips that
	// storedWait is how long after closing the connections the stored
	// invitations are counted.
	storedWait time.Duration
}

// probeRegister is probe 5: from addrRegFlood, register fresh ids as fast
// as the server answers for cfg.time, one connection per registration
// (a connection registers once), each held until the end as a novice's
// would be; then close them all and count how many the server still
// stores.
func probeRegister(ctx context.Context, ep *endpoint, cfg registerConfig, rep *report) error {
	d, err := ep.from(addrRegFlood)
	if err != nil {
		return err
	}
	defer d.close()
	var (
		mu       sync.Mutex
		held     []*peer
		ids      []string
		answers  tally
		wg       sync.WaitGroup
		tried    int
		accepted int
	)
	defer func() {
		for _, p := range held {
			p.close()
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, cfg.time)
	defer cancel()
	start := time.Now()
	for range cfg.workers {
		wg.Go(func() {
			w := &workerConn{d: d, wait: 100 * time.Millisecond} // a connection not yet registered
			defer w.drop()
			for rctx.Err() == nil {
				p, _, err := w.get(rctx)
				if err != nil {
					if rctx.Err() == nil {
						answers.add(dialKind(err))
					}
					continue
				}
				id, err := freshID()
				if err != nil {
					answers.add("id: " + err.Error())
					return
				}
				mu.Lock()
				tried++
				mu.Unlock()
				// The answer is awaited past the deadline: a registration
				// sent in time counts if the server takes it.
				if err := p.send(ctx, registerMsg(id)); err != nil {
					w.drop()
					continue
				}
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				m, err := answerTo(actx, p, &answers)
				cancel()
				if err != nil {
					answers.add(recvKind(err))
					w.drop()
					continue
				}
				answers.add(kind(m))
				if m.Type == server.TypeRegistered {
					mu.Lock()
					held = append(held, w.handOver())
					ids = append(ids, id)
					accepted++
					mu.Unlock()
					continue
				}
				w.pause(rctx) // refused; the connection may stay open for another try
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := ctx.Err(); err != nil {
		return err // interrupted: no figure
	}
	mu.Lock()
	for _, p := range held {
		p.close()
	}
	held = nil
	mu.Unlock()
	slog.Info("registration flood: done", "accepted", accepted, "answers", answers.String())

	rep.add(result{
		Probe:   "register-flood",
		Title:   fmt.Sprintf("registrations accepted from one address in %s", seconds(cfg.time)),
		Figure:  fmt.Sprintf("%d (of %d sent)", accepted, tried),
		Target:  "at most 10: a burst of 10, then 1 a minute, 20 live at most",
		Details: []string{"answers: " + answers.String(), fmt.Sprintf("took %s", seconds(took))},
		Values:  map[string]any{"accepted": accepted, "tried": tried, "answers": answers.snapshot()},
	})

	title := "registrations still stored after their connections closed"
	if cfg.dataDir == "" {
		rep.add(result{Probe: "register-flood", Title: title, Skipped: "no -data directory given"})
		return nil
	}
	if accepted == 0 {
		rep.add(result{Probe: "register-flood", Title: title, Skipped: "no registration was accepted"})
		return nil
	}
	// Give the server time to act on the closed connections.
	select {
	case <-time.After(cfg.storedWait):
	case <-ctx.Done():
		return ctx.Err()
	}
	stored, err := countStored(ctx, filepath.Join(cfg.dataDir, "assist.db"), ids)
	if err != nil {
		rep.add(result{Probe: "register-flood", Title: title, Skipped: "could not read the server's database: " + err.Error()})
		return nil
	}
	rep.add(result{
		Probe:  "register-flood",
		Title:  title,
		Figure: fmt.Sprintf("%d of %d, %s after closing", stored, accepted, seconds(cfg.storedWait)),
		Target: "no more than accepted; 0 after 10 min unconnected, see -stored-wait",
		Values: map[string]any{"stored": stored, "accepted": accepted, "wait_seconds": cfg.storedWait.Seconds()},
	})
	return nil
}

// countStored counts how many of ids the server's SQLite database at path
// holds in its invitations table, reading it without writing.
func countStored(ctx context.Context, path string, ids []string) (int, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(5000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	rows, err := db.QueryContext(ctx, `SELECT id FROM invitations`)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		if want[id] {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}
