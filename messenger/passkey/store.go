package passkey

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/assist-project/assist/internal/sqldb"
	"github.com/assist-project/assist/internal/sqlitedb"
)

// ErrNotFound is returned by a Store that has no such user or credential.
var ErrNotFound = errors.New("passkey: not found")

// Store keeps the passkeys (WebAuthn credentials) of accounts: each account
// that has one gets a random user handle, which authenticators store with
// the credential and hand back when signing in.
type Store interface {
	// Handle returns the user handle of user, or ErrNotFound.
	Handle(ctx context.Context, user string) ([]byte, error)
	// User returns the account a user handle belongs to and its
	// credentials, or ErrNotFound.
	User(ctx context.Context, handle []byte) (user string, creds []webauthn.Credential, err error)
	// Add saves a new credential of user under handle. The first
	// credential of a user sets its handle; a later one must use it.
	Add(ctx context.Context, user string, handle []byte, cred webauthn.Credential) error
	// Update saves a credential again after a sign-in (its signature
	// counter and flags change).
	Update(ctx context.Context, handle []byte, cred webauthn.Credential) error
}

// SQLStore is the Store over SQL: one SQLite file for a single node
// (OpenSQLite), or PostgreSQL shared by several (OpenPostgres).
type SQLStore struct {
	db *sqldb.DB
}

// SQLiteStore is the name SQLStore had before PostgreSQL.
type SQLiteStore = SQLStore

var migrations = []string{
	`CREATE TABLE passkeys (
		id      BLOB PRIMARY KEY,  -- the credential id
		handle  BLOB NOT NULL,     -- the account's user handle
		user    TEXT NOT NULL,     -- the account's name
		cred    TEXT NOT NULL      -- webauthn.Credential as JSON
	);
	CREATE INDEX passkeys_handle ON passkeys(handle);
	CREATE INDEX passkeys_user ON passkeys(user);`,
}

// postgresMigrations are migrations for PostgreSQL (append only).
var postgresMigrations = []string{
	`CREATE TABLE passkeys (
		id     BYTEA PRIMARY KEY,
		handle BYTEA NOT NULL,
		"user" TEXT NOT NULL,
		cred   TEXT NOT NULL
	);
	CREATE INDEX passkeys_handle ON passkeys(handle);
	CREATE INDEX passkeys_user ON passkeys("user");`,
}

// OpenSQLite opens (creating if needed, mode 0600) the passkey database at
// path and brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*SQLStore, error) {
	db, err := sqlitedb.Open(ctx, path, migrations)
	if err != nil {
		return nil, fmt.Errorf("passkey: store %s: %w", path, err)
	}
	return &SQLStore{db: sqldb.Wrap(db)}, nil
}

// PostgresSchema is the PostgreSQL schema (namespace) of the passkeys.
const PostgresSchema = "passkey"

// OpenPostgres connects to the PostgreSQL database at dsn (a postgres://
// URL) and brings the passkeys' schema up to date.
func OpenPostgres(ctx context.Context, dsn string) (*SQLStore, error) {
	db, err := sqldb.OpenPostgres(ctx, dsn, PostgresSchema, postgresMigrations)
	if err != nil {
		return nil, fmt.Errorf("passkey: store: %w", err)
	}
	return &SQLStore{db: sqldb.Wrap(db)}, nil
}

// Close closes the database.
func (s *SQLStore) Close() error { return s.db.Close() }

// Handle implements Store.
func (s *SQLStore) Handle(ctx context.Context, user string) ([]byte, error) {
	var h []byte
	err := s.db.QueryRowContext(ctx, `SELECT handle FROM passkeys WHERE "user" = ? LIMIT 1`, user).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: store: handle: %w", err)
	}
	return h, nil
}

// User implements Store.
func (s *SQLStore) User(ctx context.Context, handle []byte) (string, []webauthn.Credential, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT "user", cred FROM passkeys WHERE handle = ?`, handle)
	if err != nil {
		return "", nil, fmt.Errorf("passkey: store: user: %w", err)
	}
	defer rows.Close()
	var user string
	var creds []webauthn.Credential
	for rows.Next() {
		var text string
		if err := rows.Scan(&user, &text); err != nil {
			return "", nil, fmt.Errorf("passkey: store: user: %w", err)
		}
		var c webauthn.Credential
		if err := json.Unmarshal([]byte(text), &c); err != nil {
			return "", nil, fmt.Errorf("passkey: store: credential of %s: %w", user, err)
		}
		creds = append(creds, c)
	}
	if err := rows.Err(); err != nil {
		return "", nil, fmt.Errorf("passkey: store: user: %w", err)
	}
	if len(creds) == 0 {
		return "", nil, ErrNotFound
	}
	return user, creds, nil
}

// Add implements Store.
func (s *SQLStore) Add(ctx context.Context, user string, handle []byte, cred webauthn.Credential) error {
	text, err := json.Marshal(cred)
	if err != nil {
		return fmt.Errorf("passkey: store: add: %w", err)
	}
	// The handle must be the user's (or the user must have none yet), so
	// two registrations cannot split an account: one transaction checks
	// and inserts, SQLite's one writer at a time or, on PostgreSQL, a lock
	// on the user's name keeping other nodes' registrations out.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("passkey: store: add: %w", err)
	}
	defer tx.Rollback()
	if tx.Dialect() == sqldb.Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext(?))`, "passkey "+user); err != nil {
			return fmt.Errorf("passkey: store: add: %w", err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM passkeys WHERE ("user" = ? AND handle <> ?) OR (handle = ? AND "user" <> ?)`,
		user, handle, handle, user).Scan(&n); err != nil {
		return fmt.Errorf("passkey: store: add: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("passkey: store: add: %s has another user handle", user)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO passkeys (id, handle, "user", cred) VALUES (?, ?, ?, ?)`,
		cred.ID, handle, user, string(text)); err != nil {
		return fmt.Errorf("passkey: store: add: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("passkey: store: add: %w", err)
	}
	return nil
}

// Update implements Store.
func (s *SQLStore) Update(ctx context.Context, handle []byte, cred webauthn.Credential) error {
	text, err := json.Marshal(cred)
	if err != nil {
		return fmt.Errorf("passkey: store: update: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE passkeys SET cred = ? WHERE id = ? AND handle = ?`, string(text), cred.ID, handle); err != nil {
		return fmt.Errorf("passkey: store: update: %w", err)
	}
	return nil
}
