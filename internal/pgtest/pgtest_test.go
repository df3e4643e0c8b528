package pgtest_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/pgtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.M(m)) }

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestDBFresh: each test's database is its own and empty, and the server
// runs as someone PostgreSQL accepts.
func TestDBFresh(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := open(t, pgtest.DB(t)), open(t, pgtest.DB(t))
	if _, err := a.ExecContext(ctx, "CREATE TABLE x (v INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, "INSERT INTO x VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRowContext(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("a second database sees the first one's table")
	}
}

// TestRestart: data survives a restart on the same port, a client's next
// query after the restart works again, and a stopped server refuses.
func TestRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := pgtest.Start(t)
	db := open(t, srv.DB(t))
	if _, err := db.ExecContext(ctx, "CREATE TABLE x (v INT); INSERT INTO x VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("ping of a stopped server succeeded")
	}
	srv.Restart(t)
	var v int
	if err := db.QueryRowContext(ctx, "SELECT v FROM x").Scan(&v); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if v != 42 {
		t.Fatalf("v = %d after restart, want 42", v)
	}
}
