// Package sqldb lets one SQL implementation of a store run on SQLite (one
// node, files in --data) and on PostgreSQL (several nodes sharing one
// database). Queries are written once, in the SQL both engines accept, with
// ? placeholders; DB rewrites them for PostgreSQL and tells the few things
// that differ (constraint errors, row locks, case-insensitive LIKE).
//
// On PostgreSQL each store lives in its own schema (namespace) of the
// database, so stores whose SQLite files had tables of the same name
// (audit) can share one database, and each counts its own migrations.
package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Dialect is the engine's SQL flavour.
type Dialect int

// The engines.
const (
	SQLite Dialect = iota
	Postgres
)

// DialectOf tells which engine db talks to, by its driver.
func DialectOf(db *sql.DB) Dialect {
	if _, ok := db.Driver().(*stdlib.Driver); ok {
		return Postgres
	}
	return SQLite
}

// IsPostgres reports whether url names a PostgreSQL database (the --store
// form) rather than SQLite files.
func IsPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// DB is a database and its dialect; its methods take queries with ?
// placeholders.
type DB struct {
	SQL     *sql.DB
	Dialect Dialect
}

// Wrap pairs db with its dialect.
func Wrap(db *sql.DB) *DB { return &DB{SQL: db, Dialect: DialectOf(db)} }

// ExecContext runs a statement.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.SQL.ExecContext(ctx, db.Dialect.Rebind(query), args...)
}

// QueryContext runs a query.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.SQL.QueryContext(ctx, db.Dialect.Rebind(query), args...)
}

// QueryRowContext runs a query that returns at most one row.
func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.SQL.QueryRowContext(ctx, db.Dialect.Rebind(query), args...)
}

// BeginTx starts a transaction. On PostgreSQL it runs at READ COMMITTED
// (the default): statements that decide something must lock what they
// read (ForUpdate) or let a constraint decide.
func (db *DB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	tx, err := db.SQL.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Tx{tx: tx, d: db.Dialect}, nil
}

// Close closes the database.
func (db *DB) Close() error { return db.SQL.Close() }

// Tx is a transaction whose methods take queries with ? placeholders.
type Tx struct {
	tx *sql.Tx
	d  Dialect
}

// ExecContext runs a statement.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, tx.d.Rebind(query), args...)
}

// QueryContext runs a query.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, tx.d.Rebind(query), args...)
}

// QueryRowContext runs a query that returns at most one row.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, tx.d.Rebind(query), args...)
}

// PrepareContext prepares a statement.
func (tx *Tx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return tx.tx.PrepareContext(ctx, tx.d.Rebind(query))
}

// Commit commits.
func (tx *Tx) Commit() error { return tx.tx.Commit() }

// Rollback rolls back (after Commit: does nothing, returns an error).
func (tx *Tx) Rollback() error { return tx.tx.Rollback() }

// Dialect is the transaction's engine.
func (tx *Tx) Dialect() Dialect { return tx.d }

var rebound sync.Map // query → PostgreSQL form

// Rebind turns ? placeholders into PostgreSQL's $1, $2, ... (outside
// quoted strings and identifiers); SQLite takes the query as it is.
func (d Dialect) Rebind(query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	if q, ok := rebound.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(c)
	}
	q := b.String()
	rebound.Store(query, q)
	return q
}

// ForUpdate is the clause that locks the rows a SELECT in a transaction
// reads until it ends: needed on PostgreSQL, where another node's
// transaction may run at the same time; SQLite's write transactions run
// one at a time already (and it has no such clause).
func (d Dialect) ForUpdate() string {
	if d == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// ILike is the case-insensitive LIKE operator (SQLite's LIKE is already,
// for ASCII).
func (d Dialect) ILike() string {
	if d == Postgres {
		return "ILIKE"
	}
	return "LIKE"
}

// PostgreSQL's error codes (SQLSTATE).
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

// IsUnique reports whether err is a violated UNIQUE or PRIMARY KEY
// constraint, on either engine.
func IsUnique(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == pgUniqueViolation
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// IsForeignKey reports whether err is a violated FOREIGN KEY constraint,
// on either engine.
func IsForeignKey(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == pgForeignKeyViolation
	}
	return strings.Contains(err.Error(), "FOREIGN KEY")
}

// IsUnavailable reports whether err says the database cannot be reached
// (or is going away) rather than that the query was wrong: a connection
// refused or broken, PostgreSQL shutting down or not accepting
// connections yet, too many connections, a query timed out on the
// network. Such a failure passes by itself once the database is back, so
// callers answer "try again" (the messenger's code unavailable), not an
// internal error.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	// A failed connection attempt, whatever the reason (refused, a
	// server starting up, a password the database no longer takes): the
	// operator's to fix, not the client's.
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: the server
		// is shutting down, crashed or still starting; 53300: too many
		// connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || pe.Code == "53300"
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne):
		return true
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.ErrUnexpectedEOF), pgconn.Timeout(err):
		return true
	}
	return false
}

// MaxConns bounds each store's PostgreSQL connections on one node: every
// node has one pool per store, and the server's max_connections (100 by
// default) is shared by all of them.
const MaxConns = 10

// connectTimeout bounds a connection attempt when the URL sets none, so a
// node whose database is away says so instead of hanging.
const connectTimeout = 10 * time.Second

// OpenPostgres connects to the PostgreSQL database at dsn (a postgres://
// URL), creates the store's schema if needed, applies the migrations it
// has not seen (migrations[i] brings it from version i to i+1, append
// only, as with sqlitedb) and returns a pool whose queries see the
// schema's tables first. Nodes that start at once migrate one at a time.
func OpenPostgres(ctx context.Context, dsn, schema string, migrations []string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL URL %s: %w", Redact(dsn), err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	cfg.RuntimeParams["search_path"] = schema
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(MaxConns)
	db.SetMaxIdleConns(MaxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s: %w (check that it runs, that this machine may connect, and the --store URL's user, password and database)", Redact(dsn), err)
	}
	if err := migratePostgres(ctx, db, schema, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("PostgreSQL %s: %w", Redact(dsn), err)
	}
	return db, nil
}

func migratePostgres(ctx context.Context, db *sql.DB, schema string, migrations []string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	// One node migrates; the others wait here and then find nothing to do.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "assist schema "+schema); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	id := pgx.Identifier{schema}.Sanitize()
	if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+id+`;
		CREATE TABLE IF NOT EXISTS `+id+`.schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema %s: %w", schema, err)
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM `+id+`.schema_version`).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = tx.ExecContext(ctx, `INSERT INTO `+id+`.schema_version (version) VALUES (0)`)
	}
	if err != nil {
		return fmt.Errorf("migrate: read the schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("migrate: schema %s is at version %d, newer than this program's %d: run the newer program on every node, or restore a backup", schema, version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate %s to version %d: %w", schema, v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+id+`.schema_version SET version = $1`, len(migrations)); err != nil {
		return fmt.Errorf("migrate: set the schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Redact returns the URL without its password, for errors and logs.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(an unreadable URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
