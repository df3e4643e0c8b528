package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/assist-project/assist/internal/sqldb"
	"github.com/assist-project/assist/internal/sqlitedb"
)

// SQLStore is the Store over SQL: for a single node one SQLite database
// file, in WAL mode so /healthz and readers never wait for a writer
// (OpenSQLite); for several nodes the PostgreSQL database they share
// (OpenPostgres). Each of its writes is one statement, atomic on both.
type SQLStore struct {
	db *sqldb.DB
}

// SQLiteStore is the name SQLStore had before PostgreSQL.
type SQLiteStore = SQLStore

// migrations bring the schema from user_version i to i+1. Append only:
// never edit a step that has shipped.
var migrations = []string{
	`CREATE TABLE invitations (
		id      TEXT PRIMARY KEY,
		expires INTEGER NOT NULL, -- unix nanoseconds
		created INTEGER NOT NULL
	);
	CREATE INDEX invitations_expires ON invitations(expires);
	CREATE TABLE secrets (
		name  TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);
	CREATE TABLE audit (
		seq     INTEGER PRIMARY KEY AUTOINCREMENT,
		time    INTEGER NOT NULL,
		kind    TEXT NOT NULL,
		inv     TEXT NOT NULL,
		session TEXT NOT NULL,
		detail  TEXT NOT NULL
	);
	CREATE INDEX audit_time ON audit(time);`,
	// 2: when each invitation's novice was last connected, so that
	// invitations nobody serves any more are forgotten soon. Rows from
	// before get 0: unconnected since the server started (see
	// Server.pruneOnce).
	`ALTER TABLE invitations ADD COLUMN seen INTEGER NOT NULL DEFAULT 0; -- unix nanoseconds
	CREATE INDEX invitations_seen ON invitations(seen);`,
	// 3: the SHA-256 of the registering agent's secret, so that only that
	// agent registers the id again while it is live. Rows from before
	// have none, and anyone may take them over (as before).
	`ALTER TABLE invitations ADD COLUMN owner BLOB;`,
}

// OpenSQLite opens (creating if needed, mode 0600) the database at path and
// brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*SQLStore, error) {
	db, err := sqlitedb.Open(ctx, path, migrations)
	if err != nil {
		return nil, fmt.Errorf("server: store %s: %w", path, err)
	}
	return &SQLStore{db: sqldb.Wrap(db)}, nil
}

// PostgresSchema is the PostgreSQL schema (namespace) of the rendezvous
// server's tables.
const PostgresSchema = "rendezvous"

// postgresMigrations are migrations for PostgreSQL (append only); the
// first step is the schema SQLite reached in three.
var postgresMigrations = []string{
	`CREATE TABLE invitations (
		id      TEXT PRIMARY KEY,
		expires BIGINT NOT NULL,
		created BIGINT NOT NULL,
		seen    BIGINT NOT NULL DEFAULT 0,
		owner   BYTEA
	);
	CREATE INDEX invitations_expires ON invitations(expires);
	CREATE INDEX invitations_seen ON invitations(seen);
	CREATE TABLE secrets (
		name  TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);
	CREATE TABLE audit (
		seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		time    BIGINT NOT NULL,
		kind    TEXT NOT NULL,
		inv     TEXT NOT NULL,
		session TEXT NOT NULL,
		detail  TEXT NOT NULL
	);
	CREATE INDEX audit_time ON audit(time);`,
}

// OpenPostgres connects to the PostgreSQL database at dsn (a postgres://
// URL) and brings the server's schema up to date. Nodes sharing it share
// the TURN secret.
func OpenPostgres(ctx context.Context, dsn string) (*SQLStore, error) {
	db, err := sqldb.OpenPostgres(ctx, dsn, PostgresSchema, postgresMigrations)
	if err != nil {
		return nil, fmt.Errorf("server: store: %w", err)
	}
	return &SQLStore{db: sqldb.Wrap(db)}, nil
}

// PutInvitation implements Store.
func (s *SQLStore) PutInvitation(ctx context.Context, inv Invitation) error {
	var owner any // NULL, not an empty blob, when there is none
	if len(inv.Owner) > 0 {
		owner = inv.Owner
	}
	// One statement, so that two agents cannot both pass the owner check.
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO invitations (id, expires, created, seen, owner) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT(id) DO UPDATE SET expires = excluded.expires, seen = excluded.seen, owner = excluded.owner
		 WHERE invitations.owner IS NULL OR invitations.owner = excluded.owner OR invitations.expires <= excluded.created`,
		inv.ID, inv.Expires.UnixNano(), inv.Created.UnixNano(), unixNano(inv.Seen), owner)
	if err != nil {
		return fmt.Errorf("server: store: put invitation: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("server: store: put invitation: %w", err)
	} else if n == 0 {
		return fmt.Errorf("server: store: put invitation %s: %w", inv.ID, ErrOwned)
	}
	return nil
}

// Invitation implements Store.
func (s *SQLStore) Invitation(ctx context.Context, id string) (Invitation, error) {
	var exp, created, seen int64
	var owner []byte
	err := s.db.QueryRowContext(ctx, `SELECT expires, created, seen, owner FROM invitations WHERE id = ?`, id).Scan(&exp, &created, &seen, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		return Invitation{}, fmt.Errorf("server: store: invitation %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Invitation{}, fmt.Errorf("server: store: invitation %q: %w", id, err)
	}
	inv := Invitation{ID: id, Expires: time.Unix(0, exp), Created: time.Unix(0, created), Owner: owner}
	if seen != 0 {
		inv.Seen = time.Unix(0, seen)
	}
	return inv, nil
}

// unixNano is t in unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Seen implements Store.
func (s *SQLStore) Seen(ctx context.Context, ids []string, t time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("server: store: seen: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE invitations SET seen = ? WHERE id = ? AND seen < ?`)
	if err != nil {
		return fmt.Errorf("server: store: seen: %w", err)
	}
	defer stmt.Close()
	for _, id := range ids {
		if _, err := stmt.ExecContext(ctx, t.UnixNano(), id, t.UnixNano()); err != nil {
			return fmt.Errorf("server: store: seen: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("server: store: seen: %w", err)
	}
	return nil
}

// DeleteUnseen implements Store.
func (s *SQLStore) DeleteUnseen(ctx context.Context, t time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM invitations WHERE seen < ?`, t.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("server: store: delete unconnected invitations: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// DeleteExpired implements Store.
func (s *SQLStore) DeleteExpired(ctx context.Context, t, auditBefore time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM invitations WHERE expires < ?`, t.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("server: store: delete expired invitations: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM audit WHERE time < ?`, auditBefore.UnixNano()); err != nil {
		return int(n), fmt.Errorf("server: store: delete old audit events: %w", err)
	}
	return int(n), nil
}

const turnSecretName = "turn"

// TURNSecret implements Store.
func (s *SQLStore) TURNSecret(ctx context.Context) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("server: store: turn secret: %w", err)
	}
	// Text, not bytes: coturn's static-auth-secret is a string, and this
	// one may be copied into its configuration.
	fresh := base64.RawURLEncoding.EncodeToString(b)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING`, turnSecretName, fresh); err != nil {
		return "", fmt.Errorf("server: store: turn secret: %w", err)
	}
	var v string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = ?`, turnSecretName).Scan(&v); err != nil {
		return "", fmt.Errorf("server: store: turn secret: %w", err)
	}
	return v, nil
}

// Audit implements Store.
func (s *SQLStore) Audit(ctx context.Context, e Event) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit (time, kind, inv, session, detail) VALUES (?, ?, ?, ?, ?)`,
		e.Time.UnixNano(), e.Kind, e.ID, e.Session, e.Detail)
	if err != nil {
		return fmt.Errorf("server: store: audit: %w", err)
	}
	return nil
}

// Events implements Store.
func (s *SQLStore) Events(ctx context.Context, since time.Time, limit int) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT time, kind, inv, session, detail FROM audit WHERE time >= ? ORDER BY seq LIMIT ?`,
		since.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("server: store: events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var t int64
		if err := rows.Scan(&t, &e.Kind, &e.ID, &e.Session, &e.Detail); err != nil {
			return nil, fmt.Errorf("server: store: events: %w", err)
		}
		e.Time = time.Unix(0, t)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("server: store: events: %w", err)
	}
	return out, nil
}

// Ping implements Store.
func (s *SQLStore) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("server: store: ping: %w", err)
	}
	return nil
}

// Close implements Store.
func (s *SQLStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("server: store: close: %w", err)
	}
	return nil
}
