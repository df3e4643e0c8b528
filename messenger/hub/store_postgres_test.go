package hub_test

import (
	"context"
	"path/filepath"
	"testing"

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
