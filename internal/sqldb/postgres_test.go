package sqldb_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assist-project/assist/internal/pgtest"
	"github.com/assist-project/assist/internal/sqldb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.M(m)) }

var steps = []string{
	`CREATE TABLE a (x BIGINT PRIMARY KEY)`,
	`ALTER TABLE a ADD COLUMN y TEXT NOT NULL DEFAULT ''; INSERT INTO a (x) VALUES (1)`,
}

// TestOpenPostgresConcurrently: nodes that start at once on one new
// database migrate it once between them, and each store's tables stay
// in its own schema.
func TestOpenPostgresConcurrently(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sqldb.OpenPostgres(ctx, dsn, "one", steps)
			if err != nil {
				t.Error(err)
				return
			}
			db.Close()
		}()
	}
	wg.Wait()
	db, err := sqldb.OpenPostgres(ctx, dsn, "two", steps[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM one.a`).Scan(&n); err != nil || n != 1 {
		t.Errorf("rows of one.a: %d, %v; want 1 (the second step ran once)", n, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM a`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows of two's own a: %d, %v; want 0", n, err)
	}
	if _, err := sqldb.OpenPostgres(ctx, dsn, "two", nil); err == nil || !strings.Contains(err.Error(), "newer than this program") {
		t.Errorf("a schema newer than the program: %v", err)
	}
}

// TestIsUnavailableStopped: the errors database/sql and pgx really return
// while PostgreSQL is stopped, for a pool that had connections and for a
// fresh connection, are recognised as unavailable; an error of the query
// itself is not.
func TestIsUnavailableStopped(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t)
	db, err := sqldb.OpenPostgres(ctx, pg.DB(t), "s", steps)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `SELECT nonsense FROM a`); err == nil || sqldb.IsUnavailable(err) {
		t.Errorf("a wrong query: %v, IsUnavailable %v; want an error that is not unavailable", err, sqldb.IsUnavailable(err))
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // the pooled connection, then fresh ones
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var n int
		err := db.QueryRowContext(qctx, `SELECT count(*) FROM a`).Scan(&n)
		cancel()
		if err == nil || !sqldb.IsUnavailable(err) {
			t.Errorf("query %d while PostgreSQL is stopped: %v; want an unavailable error", i, err)
		}
	}
}
