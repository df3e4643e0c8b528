package hub_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/pgtest"
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
	for i := range 4 {
		if _, err := s.Request(ctx, fmt.Sprint("r", i)); err != nil {
			t.Fatalf("request %d after PostgreSQL restarted: %v", i, err)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after the restart: %v", err)
	}
}
