package hub_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/pgtest"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/hub/storetest"
)

func openPostgres(t *testing.T, dsn string) *hub.SQLStore {
	t.Helper()
	s, err := hub.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgresStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) hub.Store { return openPostgres(t, pgtest.DB(t)) })
}

// TestPostgresNodes: two stores on one database, as two nodes.
func TestPostgresNodes(t *testing.T) {
	storetest.RunNodes(t, func(t *testing.T) (hub.Store, hub.Store) {
		dsn := pgtest.DB(t)
		return openPostgres(t, dsn), openPostgres(t, dsn)
	})
}

// TestSQLiteNodes: two stores on one file, as two processes on one
// machine (the single-node server never does this, but the store allows
// it).
func TestSQLiteNodes(t *testing.T) {
	storetest.RunNodes(t, func(t *testing.T) (hub.Store, hub.Store) {
		path := filepath.Join(t.TempDir(), "messenger.sqlite")
		var out [2]hub.Store
		for i := range out {
			s, err := hub.OpenSQLite(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			out[i] = s
		}
		return out[0], out[1]
	})
}

// TestPostgresRestart: while PostgreSQL is down the store fails (Ping
// says so: readiness); once it is back the same store works again with
// no reopening, its pooled connections to the old server replaced.
func TestPostgresRestart(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t)
	s := openPostgres(t, pg.DB(t))
	// Several pooled connections, all of which the restart breaks.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.PutRequest(ctx, hub.Request{ID: fmt.Sprint("r", i), From: "a", FromDevice: "d", FromConn: "c", To: "b", Kind: "help", Created: time.Unix(1, 0), Expires: time.Unix(2, 0)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping succeeded with PostgreSQL down")
	}
	pg.Restart(t)
	// A pooled connection broken by the restart fails its first query
	// when pgx has not probed it yet (it probes one idle for over a
	// second): at most one failure per pooled connection, then it is
	// replaced.
	failures := 0
	for i := range 4 {
		for {
			_, err := s.Request(ctx, fmt.Sprint("r", i))
			if err == nil {
				break
			}
			if failures++; failures > 4 {
				t.Fatalf("request %d after PostgreSQL restarted: %v (%d failures)", i, err, failures)
			}
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after the restart: %v", err)
	}
}

// TestHubWithoutPostgres: while PostgreSQL is stopped, a login and the
// messages of a device already logged in that need the store are answered
// "unavailable" with a message that names the database and says to try
// again, not "internal"; once it is back the same hub serves them again.
func TestHubWithoutPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	st := openPostgres(t, pg.DB(t))
	th := startHub(t, func(c *hub.Config) { c.Store = st })
	alice, bob := th.login(t, "alice"), th.login(t, "bob")
	befriend(t, alice, bob)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	unavailable := func(what string, err error) {
		t.Helper()
		var e *messenger.Error
		if !errors.As(err, &e) || e.Code != messenger.CodeUnavailable || !strings.Contains(e.Message, "database") || !strings.Contains(e.Message, "try again") {
			t.Errorf("%s while PostgreSQL is stopped: %v; want code %s saying the database cannot be reached, try again", what, err, messenger.CodeUnavailable)
		}
	}
	_, _, err := th.dial(t, alice.key, messenger.LoginOptions{})
	unavailable("a login", err)
	_, _, err = th.dial(t, newKey(t), messenger.LoginOptions{User: "carol"})
	unavailable("a new account", err)
	_, _, err = bob.Contacts(ctxT(t))
	unavailable("contacts", err)
	_, err = bob.Ask(ctxT(t), "alice", messenger.KindHelp)
	unavailable("a request", err)

	pg.Restart(t)
	// Pooled connections the restart broke fail at most once each.
	deadline := time.Now().Add(wait)
	for {
		_, _, err := th.dial(t, alice.key, messenger.LoginOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a login after PostgreSQL came back: %v", err)
		}
	}
	if _, err := bob.Ask(ctxT(t), "alice", messenger.KindHelp); err != nil {
		t.Errorf("a request after PostgreSQL came back: %v", err)
	}
}
