package hub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/internal/sqldb"
	"github.com/assist-project/assist/internal/sqlitedb"
)

// SQLStore is the Store over SQL: one SQLite database file in WAL mode
// for a single node (OpenSQLite), or a PostgreSQL database several nodes
// share (OpenPostgres). The queries are the same (package sqldb rewrites
// them); where SQLite relied on its one writer at a time, the PostgreSQL
// transactions lock the rows they decide on.
type SQLStore struct {
	db *sqldb.DB

	auditOnce sync.Once
	audit     *audit.SQLStore
	auditErr  error
}

// SQLiteStore is the name SQLStore had before PostgreSQL.
type SQLiteStore = SQLStore

// sqliteMigrations bring the schema from user_version i to i+1. Append
// only: never edit a step that has shipped.
var sqliteMigrations = []string{
	`CREATE TABLE accounts (
		user    TEXT PRIMARY KEY,
		display TEXT NOT NULL,
		created INTEGER NOT NULL -- unix nanoseconds, as every time here
	);
	CREATE TABLE devices (
		id          TEXT PRIMARY KEY,
		user        TEXT NOT NULL REFERENCES accounts(user) ON DELETE CASCADE,
		key         BLOB NOT NULL UNIQUE,
		name        TEXT NOT NULL,
		cert_signer BLOB,
		cert_sig    BLOB,
		created     INTEGER NOT NULL
	);
	CREATE INDEX devices_user ON devices(user, created);
	-- one row per direction, so a user's contacts are one index range
	CREATE TABLE contacts (
		user    TEXT NOT NULL REFERENCES accounts(user) ON DELETE CASCADE,
		other   TEXT NOT NULL REFERENCES accounts(user) ON DELETE CASCADE,
		created INTEGER NOT NULL,
		PRIMARY KEY (user, other)
	) WITHOUT ROWID;
	-- other need not be an account: blocking says nothing about who exists
	CREATE TABLE blocks (
		user    TEXT NOT NULL REFERENCES accounts(user) ON DELETE CASCADE,
		other   TEXT NOT NULL,
		created INTEGER NOT NULL,
		PRIMARY KEY (user, other)
	) WITHOUT ROWID;
	CREATE TABLE requests (
		id          TEXT PRIMARY KEY,
		sender      TEXT NOT NULL,
		sender_dev  TEXT NOT NULL,
		sender_conn TEXT NOT NULL,
		recipient   TEXT NOT NULL,
		kind        TEXT NOT NULL,
		created     INTEGER NOT NULL,
		expires     INTEGER NOT NULL,
		closed      TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX requests_recipient ON requests(recipient, closed, expires);
	CREATE INDEX requests_sender ON requests(sender, closed, expires);
	CREATE INDEX requests_expires ON requests(closed, expires);`,
	// Organisations (issue 11): their people by role, enrolment tokens
	// (SHA-256 only) and enrolled machines, each a messenger account.
	`CREATE TABLE orgs (
		name     TEXT PRIMARY KEY,
		display  TEXT NOT NULL,
		rights   TEXT NOT NULL,    -- the policy's rights, space-separated
		record   INTEGER NOT NULL,
		timeout  INTEGER NOT NULL, -- seconds
		created  INTEGER NOT NULL
	);
	-- user need not be an account yet: a helper may sign up after being named
	CREATE TABLE org_members (
		org   TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
		user  TEXT NOT NULL,
		role  TEXT NOT NULL,
		PRIMARY KEY (org, user)
	) WITHOUT ROWID;
	CREATE INDEX org_members_user ON org_members(user);
	CREATE TABLE org_tokens (
		hash    BLOB PRIMARY KEY,
		org     TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
		uses    INTEGER NOT NULL, -- enrolments left
		expires INTEGER NOT NULL,
		created INTEGER NOT NULL
	);
	CREATE TABLE org_machines (
		user     TEXT PRIMARY KEY REFERENCES accounts(user) ON DELETE CASCADE,
		org      TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
		enrolled INTEGER NOT NULL
	);
	CREATE INDEX org_machines_org ON org_machines(org, user);`,
	// The audit trail (issue 11): package audit's tables, which chains
	// belong to which organisation, which of the server's own entries
	// concern which organisation, and each organisation's retention.
	audit.SQLSchema + `;
	CREATE TABLE audit_orgs (
		chain BLOB NOT NULL,
		org   TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
		user  TEXT NOT NULL, -- the account that uploaded it
		PRIMARY KEY (chain, org)
	) WITHOUT ROWID;
	CREATE INDEX audit_orgs_org ON audit_orgs(org);
	CREATE TABLE audit_server_orgs (
		seq INTEGER NOT NULL, -- an entry of the server's own chain
		org TEXT NOT NULL,
		PRIMARY KEY (org, seq)
	) WITHOUT ROWID;
	ALTER TABLE orgs ADD COLUMN retention INTEGER NOT NULL DEFAULT 0; -- days; 0: kept for ever`,
	// OpenID Connect sign-in for an organisation's helpers and admins:
	// its provider (the client secret stays in a file, only its path is
	// here) and the subjects an admin linked to accounts.
	`CREATE TABLE org_oidc (
		org         TEXT PRIMARY KEY REFERENCES orgs(name) ON DELETE CASCADE,
		issuer      TEXT NOT NULL,
		client_id   TEXT NOT NULL,
		secret_file TEXT NOT NULL,
		claim       TEXT NOT NULL
	);
	CREATE TABLE org_oidc_links (
		org     TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
		issuer  TEXT NOT NULL,
		subject TEXT NOT NULL,
		user    TEXT NOT NULL,
		PRIMARY KEY (org, issuer, subject)
	) WITHOUT ROWID;`,
	// The organisation's audit key (age1..., "" for none): recordings
	// are encrypted to it on the machines.
	`ALTER TABLE orgs ADD COLUMN audit_key TEXT NOT NULL DEFAULT '';`,
}

// OpenSQLite opens (creating if needed, mode 0600) the database at path
// and brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*SQLStore, error) {
	db, err := sqlitedb.Open(ctx, path, sqliteMigrations)
	if err != nil {
		return nil, fmt.Errorf("messenger store %s: %w", path, err)
	}
	return &SQLStore{db: sqldb.Wrap(db)}, nil
}

// PostgresSchema is the PostgreSQL schema (namespace) of the messenger's
// tables.
const PostgresSchema = "messenger"

// OpenPostgres connects to the PostgreSQL database at dsn (a postgres://
// URL) and brings the messenger's schema up to date.
func OpenPostgres(ctx context.Context, dsn string) (*SQLStore, error) {
	db, err := sqldb.OpenPostgres(ctx, dsn, PostgresSchema, postgresMigrations)
	if err != nil {
		return nil, fmt.Errorf("messenger store: %w", err)
	}
	return &SQLStore{db: sqldb.Wrap(db)}, nil
}

// lockAccounts locks users' account rows until the transaction ends, in
// one order (no deadlock between two transactions locking the same
// pair). On PostgreSQL, another node may otherwise check a block while
// this transaction adds a contact; SQLite's write transactions are one at
// a time already.
func lockAccounts(ctx context.Context, tx *sqldb.Tx, users ...string) error {
	if tx.Dialect() != sqldb.Postgres {
		return nil
	}
	sorted := append([]string(nil), users...)
	slices.Sort(sorted)
	for _, u := range slices.Compact(sorted) {
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM accounts WHERE "user" = ?`+tx.Dialect().ForUpdate(), u); err != nil {
			return err
		}
	}
	return nil
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func insertDevice(ctx context.Context, tx *sqldb.Tx, d Device) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO devices (id, "user", key, name, cert_signer, cert_sig, created) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.User, d.Key, d.Name, nullBytes(d.CertSigner), nullBytes(d.CertSig), d.Created.UnixNano())
	if sqldb.IsUnique(err) {
		return ErrTaken
	}
	return err
}

// CreateAccount implements Store.
func (s *SQLStore) CreateAccount(ctx context.Context, a Account, d Device) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("messenger store: create account: %w", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO accounts ("user", display, created) VALUES (?, ?, ?)`, a.User, a.Display, a.Created.UnixNano())
	if sqldb.IsUnique(err) {
		return fmt.Errorf("messenger store: create account %s: %w", a.User, ErrTaken)
	}
	if err != nil {
		return fmt.Errorf("messenger store: create account: %w", err)
	}
	d.User = a.User
	if err := insertDevice(ctx, tx, d); err != nil {
		return fmt.Errorf("messenger store: create account %s: %w", a.User, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("messenger store: create account: %w", err)
	}
	return nil
}

// Account implements Store.
func (s *SQLStore) Account(ctx context.Context, user string) (Account, error) {
	a := Account{User: user}
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT display, created FROM accounts WHERE "user" = ?`, user).Scan(&a.Display, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("messenger store: account %s: %w", user, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("messenger store: account: %w", err)
	}
	a.Created = time.Unix(0, created)
	return a, nil
}

const deviceColumns = `id, "user", key, name, cert_signer, cert_sig, created`

type scanner interface{ Scan(...any) error }

func scanDevice(r scanner) (Device, error) {
	var d Device
	var created int64
	if err := r.Scan(&d.ID, &d.User, &d.Key, &d.Name, &d.CertSigner, &d.CertSig, &created); err != nil {
		return Device{}, err
	}
	d.Created = time.Unix(0, created)
	return d, nil
}

// DeviceByKey implements Store.
func (s *SQLStore) DeviceByKey(ctx context.Context, key []byte) (Device, error) {
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, fmt.Errorf("messenger store: device: %w", ErrNotFound)
	}
	if err != nil {
		return Device{}, fmt.Errorf("messenger store: device: %w", err)
	}
	return d, nil
}

// Devices implements Store.
func (s *SQLStore) Devices(ctx context.Context, user string) ([]Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE "user" = ? ORDER BY created, id`, user)
	if err != nil {
		return nil, fmt.Errorf("messenger store: devices: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("messenger store: devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messenger store: devices: %w", err)
	}
	return out, nil
}

// AddDevice implements Store.
func (s *SQLStore) AddDevice(ctx context.Context, d Device) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("messenger store: add device: %w", err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE "user" = ?`, d.User).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("messenger store: add device to %s: %w", d.User, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("messenger store: add device: %w", err)
	}
	if err := insertDevice(ctx, tx, d); err != nil {
		return fmt.Errorf("messenger store: add device: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("messenger store: add device: %w", err)
	}
	return nil
}

// RemoveDevice implements Store.
func (s *SQLStore) RemoveDevice(ctx context.Context, user, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("messenger store: remove device: %w", err)
	}
	defer tx.Rollback()
	// Two removals of an account's last two devices must not both pass.
	if err := lockAccounts(ctx, tx, user); err != nil {
		return fmt.Errorf("messenger store: remove device: %w", err)
	}
	var mine, all int
	if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(CASE WHEN id = ? THEN 1 ELSE 0 END), 0) FROM devices WHERE "user" = ?`, id, user).Scan(&all, &mine); err != nil {
		return fmt.Errorf("messenger store: remove device: %w", err)
	}
	if mine == 0 {
		return fmt.Errorf("messenger store: remove device: %w", ErrNotFound)
	}
	if all == 1 {
		return fmt.Errorf("messenger store: remove device: %w", ErrLastDevice)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE "user" = ? AND id = ?`, user, id); err != nil {
		return fmt.Errorf("messenger store: remove device: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("messenger store: remove device: %w", err)
	}
	return nil
}

// AddContact implements Store.
func (s *SQLStore) AddContact(ctx context.Context, a, b string, t time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("messenger store: add contact: %w", err)
	}
	defer tx.Rollback()
	// A block being added at the same time waits, or is seen.
	if err := lockAccounts(ctx, tx, a, b); err != nil {
		return fmt.Errorf("messenger store: add contact: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM blocks WHERE ("user" = ? AND other = ?) OR ("user" = ? AND other = ?)`, a, b, b, a).Scan(&n); err != nil {
		return fmt.Errorf("messenger store: add contact: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("messenger store: add contact: %w", ErrBlocked)
	}
	for _, p := range [][2]string{{a, b}, {b, a}} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO contacts ("user", other, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, p[0], p[1], t.UnixNano()); err != nil {
			return fmt.Errorf("messenger store: add contact: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("messenger store: add contact: %w", err)
	}
	return nil
}

// removeContact deletes both directions and reports whether there was a
// contact.
func removeContact(ctx context.Context, tx *sqldb.Tx, a, b string) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM contacts WHERE ("user" = ? AND other = ?) OR ("user" = ? AND other = ?)`, a, b, b, a)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// RemoveContact implements Store.
func (s *SQLStore) RemoveContact(ctx context.Context, a, b string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("messenger store: remove contact: %w", err)
	}
	defer tx.Rollback()
	was, err := removeContact(ctx, tx, a, b)
	if err != nil {
		return fmt.Errorf("messenger store: remove contact: %w", err)
	}
	if !was {
		return fmt.Errorf("messenger store: remove contact: %w", ErrNotFound)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("messenger store: remove contact: %w", err)
	}
	return nil
}

// Contacts implements Store.
func (s *SQLStore) Contacts(ctx context.Context, user string) ([]Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT a."user", a.display, a.created FROM contacts c JOIN accounts a ON a."user" = c.other WHERE c."user" = ? ORDER BY a."user"`, user)
	if err != nil {
		return nil, fmt.Errorf("messenger store: contacts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		var created int64
		if err := rows.Scan(&a.User, &a.Display, &created); err != nil {
			return nil, fmt.Errorf("messenger store: contacts: %w", err)
		}
		a.Created = time.Unix(0, created)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messenger store: contacts: %w", err)
	}
	return out, nil
}

// IsContact implements Store.
func (s *SQLStore) IsContact(ctx context.Context, a, b string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM contacts WHERE "user" = ? AND other = ?`, a, b).Scan(&n); err != nil {
		return false, fmt.Errorf("messenger store: is contact: %w", err)
	}
	return n > 0, nil
}

// Block implements Store.
func (s *SQLStore) Block(ctx context.Context, user, other string, t time.Time) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("messenger store: block: %w", err)
	}
	defer tx.Rollback()
	// A contact being added at the same time waits, or is removed here.
	if err := lockAccounts(ctx, tx, user, other); err != nil {
		return false, fmt.Errorf("messenger store: block: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO blocks ("user", other, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, user, other, t.UnixNano()); err != nil {
		return false, fmt.Errorf("messenger store: block: %w", err)
	}
	was, err := removeContact(ctx, tx, user, other)
	if err != nil {
		return false, fmt.Errorf("messenger store: block: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("messenger store: block: %w", err)
	}
	return was, nil
}

// Unblock implements Store.
func (s *SQLStore) Unblock(ctx context.Context, user, other string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM blocks WHERE "user" = ? AND other = ?`, user, other)
	if err != nil {
		return fmt.Errorf("messenger store: unblock: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("messenger store: unblock: %w", err)
	} else if n == 0 {
		return fmt.Errorf("messenger store: unblock: %w", ErrNotFound)
	}
	return nil
}

// Blocked implements Store.
func (s *SQLStore) Blocked(ctx context.Context, user string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT other FROM blocks WHERE "user" = ? ORDER BY other`, user)
	if err != nil {
		return nil, fmt.Errorf("messenger store: blocked: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("messenger store: blocked: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messenger store: blocked: %w", err)
	}
	return out, nil
}

// EitherBlocked implements Store.
func (s *SQLStore) EitherBlocked(ctx context.Context, a, b string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM blocks WHERE ("user" = ? AND other = ?) OR ("user" = ? AND other = ?)`, a, b, b, a).Scan(&n); err != nil {
		return false, fmt.Errorf("messenger store: blocked: %w", err)
	}
	return n > 0, nil
}

const requestColumns = `id, sender, sender_dev, sender_conn, recipient, kind, created, expires, closed`

func scanRequest(r scanner) (Request, error) {
	var q Request
	var created, expires int64
	if err := r.Scan(&q.ID, &q.From, &q.FromDevice, &q.FromConn, &q.To, &q.Kind, &created, &expires, &q.Closed); err != nil {
		return Request{}, err
	}
	q.Created, q.Expires = time.Unix(0, created), time.Unix(0, expires)
	return q, nil
}

func (s *SQLStore) requests(ctx context.Context, what, query string, args ...any) ([]Request, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("messenger store: %s: %w", what, err)
	}
	defer rows.Close()
	var out []Request
	for rows.Next() {
		q, err := scanRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("messenger store: %s: %w", what, err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messenger store: %s: %w", what, err)
	}
	return out, nil
}

// PutRequest implements Store.
func (s *SQLStore) PutRequest(ctx context.Context, r Request) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO requests (`+requestColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '')`,
		r.ID, r.From, r.FromDevice, r.FromConn, r.To, r.Kind, r.Created.UnixNano(), r.Expires.UnixNano())
	if sqldb.IsUnique(err) {
		return fmt.Errorf("messenger store: put request: %w", ErrTaken)
	}
	if err != nil {
		return fmt.Errorf("messenger store: put request: %w", err)
	}
	return nil
}

// Request implements Store.
func (s *SQLStore) Request(ctx context.Context, id string) (Request, error) {
	q, err := scanRequest(s.db.QueryRowContext(ctx, `SELECT `+requestColumns+` FROM requests WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, fmt.Errorf("messenger store: request: %w", ErrNotFound)
	}
	if err != nil {
		return Request{}, fmt.Errorf("messenger store: request: %w", err)
	}
	return q, nil
}

// PendingRequests implements Store.
func (s *SQLStore) PendingRequests(ctx context.Context, to string, now time.Time) ([]Request, error) {
	return s.requests(ctx, "pending requests",
		`SELECT `+requestColumns+` FROM requests WHERE recipient = ? AND closed = '' AND expires > ? ORDER BY created, id`, to, now.UnixNano())
}

// CountOpenRequests implements Store.
func (s *SQLStore) CountOpenRequests(ctx context.Context, from string, now time.Time) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM requests WHERE sender = ? AND closed = '' AND expires > ?`, from, now.UnixNano()).Scan(&n); err != nil {
		return 0, fmt.Errorf("messenger store: count requests: %w", err)
	}
	return n, nil
}

// CloseRequest implements Store.
func (s *SQLStore) CloseRequest(ctx context.Context, id, reason string) (Request, error) {
	// One statement decides: of two answers, one changes the row.
	q, err := scanRequest(s.db.QueryRowContext(ctx,
		`UPDATE requests SET closed = ? WHERE id = ? AND closed = '' RETURNING `+requestColumns, reason, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, fmt.Errorf("messenger store: close request: %w", ErrNotFound)
	}
	if err != nil {
		return Request{}, fmt.Errorf("messenger store: close request: %w", err)
	}
	return q, nil
}

// ExpireRequests implements Store.
func (s *SQLStore) ExpireRequests(ctx context.Context, now time.Time) ([]Request, error) {
	return s.requests(ctx, "expire requests",
		`UPDATE requests SET closed = 'expired' WHERE closed = '' AND expires <= ? RETURNING `+requestColumns, now.UnixNano())
}

// DeleteClosedRequests implements Store.
func (s *SQLStore) DeleteClosedRequests(ctx context.Context, t time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM requests WHERE closed != '' AND expires < ?`, t.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("messenger store: delete requests: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Ping implements Store.
func (s *SQLStore) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("messenger store: ping: %w", err)
	}
	return nil
}

// Close implements Store.
func (s *SQLStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("messenger store: close: %w", err)
	}
	return nil
}
