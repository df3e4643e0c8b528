// Package sqlitedb opens the server's SQLite databases the one way they
// all need: a private file, WAL, a busy timeout, foreign keys, write
// transactions that wait for each other, a bounded connection pool, and
// append-only schema migrations counted by PRAGMA user_version.
package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// MaxConns bounds each database's connections: enough for health checks
// and readers beside a writer (WAL), few enough to bound their memory.
// Each connection has its own page cache and SQLite writes one at a time
// anyway; unbounded, a flood of concurrent writes (registrations from
// many addresses) opened a connection each.
const MaxConns = 8

// Open opens the database at path, creating it (mode 0600, its directory
// 0700) if needed, and applies the migrations it has not seen:
// migrations[i] brings the schema from version i to i+1. Migrations are
// append only: a step that has shipped is never edited. A database newer
// than migrations is refused, not downgraded.
func Open(ctx context.Context, path string, migrations []string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Create the file ourselves so it is private from the start.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	// _txlock=immediate: a transaction takes the write lock at BEGIN,
	// where the busy timeout applies; a deferred one that upgrades to
	// writing under WAL gets SQLITE_BUSY at once instead of waiting (seen
	// as "the server failed" on the messenger's pair-done under load).
	dsn := path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(MaxConns)
	if err := migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func migrate(ctx context.Context, db *sql.DB, migrations []string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("migrate: read user_version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("migrate: schema version %d is newer than this program's %d: run the newer program, or restore a backup", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
	}
	// PRAGMA takes no bound parameters; the value is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("migrate: set user_version: %w", err)
	}
	return tx.Commit()
}
