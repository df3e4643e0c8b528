package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/internal/sqldb"
)

// SQLSchema creates SQLStore's tables; NewSQLStore runs it. A server that
// versions its schema (server.SQLiteStore's migrations) may append it as
// a step instead.
const SQLSchema = `CREATE TABLE IF NOT EXISTS audit_entries (
	chain   BLOB NOT NULL,    -- the signer's Ed25519 public key
	seq     INTEGER NOT NULL,
	time    INTEGER NOT NULL, -- unix nanoseconds
	kind    TEXT NOT NULL,
	session TEXT NOT NULL,
	novice  TEXT NOT NULL,
	expert  TEXT NOT NULL,
	machine TEXT NOT NULL,
	hash    BLOB NOT NULL,
	line    TEXT NOT NULL,    -- the stored form: what is verified and exported
	PRIMARY KEY (chain, seq)
);
CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries(time);
CREATE TABLE IF NOT EXISTS audit_chains (
	chain   BLOB PRIMARY KEY,
	head    TEXT NOT NULL DEFAULT '', -- the last signed head uploaded
	through INTEGER NOT NULL DEFAULT 0, -- retention removed entries up to this
	hash    BLOB                        -- ... the last of which had this hash
);`

// PostgresSchema is SQLSchema for PostgreSQL.
const PostgresSchema = `CREATE TABLE IF NOT EXISTS audit_entries (
	chain   BYTEA NOT NULL,
	seq     BIGINT NOT NULL,
	time    BIGINT NOT NULL,
	kind    TEXT NOT NULL,
	session TEXT NOT NULL,
	novice  TEXT NOT NULL,
	expert  TEXT NOT NULL,
	machine TEXT NOT NULL,
	hash    BYTEA NOT NULL,
	line    TEXT NOT NULL,
	PRIMARY KEY (chain, seq)
);
CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries(time);
CREATE TABLE IF NOT EXISTS audit_chains (
	chain   BYTEA PRIMARY KEY,
	head    TEXT NOT NULL DEFAULT '',
	through BIGINT NOT NULL DEFAULT 0,
	hash    BYTEA
)`

// SQLStore keeps chains in an SQL database (the server's SQLite, or the
// PostgreSQL several nodes share, through database/sql; this package
// registers no driver): the server's own chain, and the chains devices
// upload. It checks every entry before it stores it, so what it holds
// always verifies.
type SQLStore struct {
	db *sqldb.DB
	// mu: one append or upload at a time in this process, as each reads
	// the chain's end; on PostgreSQL, lockChain does the same between
	// nodes.
	mu sync.Mutex
}

// NewSQLStore creates the tables if needed.
func NewSQLStore(ctx context.Context, db *sql.DB) (*SQLStore, error) {
	d := sqldb.Wrap(db)
	schema := SQLSchema
	if d.Dialect == sqldb.Postgres {
		schema = PostgresSchema
	}
	if _, err := d.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("audit: store: %w", err)
	}
	return &SQLStore{db: d}, nil
}

// pruneLock is the PostgreSQL advisory lock of a prune (a chain's lock
// is derived from its key; a collision only makes two chains wait for
// each other).
const pruneLock = 0x61756469745f7072 // "audit_pr"

// lockChain makes the other nodes' appends and uploads to chain wait
// until tx ends, so that each reads the chain's true end: under
// PostgreSQL's READ COMMITTED, two nodes appending at once would both
// read entry n and both write n+1. SQLite needs nothing: its write
// transactions run one at a time.
func lockChain(ctx context.Context, tx *sqldb.Tx, chain []byte) error {
	if tx.Dialect() != sqldb.Postgres {
		return nil
	}
	// Any length: an upload's key is not checked yet.
	h := sha256.Sum256(chain)
	return advisoryLock(ctx, tx, int64(binary.BigEndian.Uint64(h[:8])))
}

func advisoryLock(ctx context.Context, tx *sqldb.Tx, key int64) error {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, key); err != nil {
		return fmt.Errorf("audit: store: lock: %w", err)
	}
	return nil
}

// ErrFork is wrapped by Upload's error for entries that contradict what
// is stored: another entry under a stored number, or a chain that does
// not follow on. A device that rewrites its history is evidence, never an
// update.
var ErrFork = errors.New("the entries contradict the stored chain")

// last returns the stored end of chain: its last entry, or the
// retention anchor when all of it was pruned; ok is false for a chain
// never seen.
func (s *SQLStore) last(ctx context.Context, tx *sqldb.Tx, chain ed25519.PublicKey) (seq uint64, hash [32]byte, ok bool, err error) {
	var h []byte
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_entries WHERE chain = ? ORDER BY seq DESC LIMIT 1`, []byte(chain)).Scan(&seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `SELECT through, hash FROM audit_chains WHERE chain = ? AND through > 0`, []byte(chain)).Scan(&seq, &h)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, hash, false, nil
		}
	}
	if err != nil {
		return 0, hash, false, fmt.Errorf("audit: store: %w", err)
	}
	copy(hash[:], h)
	return seq, hash, true, nil
}

// Last returns the last stored entry's number of a device's chain (or
// the last one retention removed), 0 for a chain never uploaded: what
// the device sends next follows it.
func (s *SQLStore) Last(ctx context.Context, chain ed25519.PublicKey) (uint64, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("audit: store: %w", err)
	}
	defer tx.Rollback()
	seq, _, _, err := s.last(ctx, tx, chain)
	return seq, err
}

// Upload stores entries of one device's chain, and its head if given.
// Every entry must verify and follow on the stored chain (or start it at
// 1, or be anchored by a cut among them); entries already stored are
// skipped if identical and refused (ErrFork) if not.
func (s *SQLStore) Upload(ctx context.Context, entries []Entry, head *Head) error {
	if len(entries) == 0 {
		return nil
	}
	chain := entries[0].Key
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: store: %w", err)
	}
	defer tx.Rollback()
	if err := lockChain(ctx, tx, chain); err != nil {
		return err
	}
	seq, hash, known, err := s.last(ctx, tx, chain)
	if err != nil {
		return err
	}
	// Skip what is stored, checking it is the same.
	for len(entries) > 0 && known && entries[0].Seq <= seq {
		e := entries[0]
		var h []byte
		err := tx.QueryRowContext(ctx, `SELECT hash FROM audit_entries WHERE chain = ? AND seq = ?`, []byte(chain), e.Seq).Scan(&h)
		if errors.Is(err, sql.ErrNoRows) {
			entries = entries[1:] // pruned here already
			continue
		}
		if err != nil {
			return fmt.Errorf("audit: store: %w", err)
		}
		if eh := e.Hash(); !bytes.Equal(h, eh[:]) {
			return fmt.Errorf("audit: entry %d: %w", e.Seq, ErrFork)
		}
		entries = entries[1:]
	}
	if len(entries) > 0 {
		// Checked as one chain that must follow on the stored one.
		opts := VerifyOptions{Key: chain}
		if known {
			if entries[0].Seq != seq+1 || entries[0].Prev != hash {
				return fmt.Errorf("audit: entry %d does not follow the stored entry %d: %w", entries[0].Seq, seq, ErrFork)
			}
			opts.anchor = &Cut{Through: seq, Hash: hash}
		}
		if _, err := Verify(entries, opts); err != nil {
			return err
		}
		for _, e := range entries {
			if err := insert(ctx, tx, &e); err != nil {
				return err
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_chains(chain) VALUES (?) ON CONFLICT DO NOTHING`, []byte(chain)); err != nil {
		return fmt.Errorf("audit: store: %w", err)
	}
	if head != nil {
		if !bytes.Equal(head.Key, chain) || !ed25519.Verify(head.Key, head.signed(), head.Sig) {
			return errors.New("audit: the head is not signed by the chain's key")
		}
		b, _ := head.MarshalJSON()
		if _, err := tx.ExecContext(ctx, `UPDATE audit_chains SET head = ? WHERE chain = ?`, string(b), []byte(chain)); err != nil {
			return fmt.Errorf("audit: store: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: store: %w", err)
	}
	return nil
}

func insert(ctx context.Context, tx *sqldb.Tx, e *Entry) error {
	h := e.Hash()
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_entries(chain, seq, time, kind, session, novice, expert, machine, hash, line)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, []byte(e.Key), e.Seq, e.Time.UnixNano(), string(e.Kind),
		e.Session, e.Novice, e.Expert, e.Machine, h[:], string(e.Marshal()))
	if err != nil {
		return fmt.Errorf("audit: store: %w", err)
	}
	return nil
}

// Chain is the server's own chain in the store, signed with key.
func (s *SQLStore) Chain(key ed25519.PrivateKey) Appender {
	return &sqlChain{s: s, key: key, now: time.Now}
}

type sqlChain struct {
	s   *SQLStore
	key ed25519.PrivateKey
	now func() time.Time
}

// Append implements Appender.
func (c *sqlChain) Append(e Entry) (Entry, error) {
	pub := c.key.Public().(ed25519.PublicKey)
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	ctx := context.Background()
	tx, err := c.s.db.BeginTx(ctx, nil)
	if err != nil {
		return e, fmt.Errorf("audit: store: %w", err)
	}
	defer tx.Rollback()
	if err := lockChain(ctx, tx, pub); err != nil {
		return e, err
	}
	seq, hash, _, err := c.s.last(ctx, tx, pub)
	if err != nil {
		return e, err
	}
	e.cleanEntry()
	e.Seq, e.Prev = seq+1, hash
	if e.Time.IsZero() {
		e.Time = c.now()
	}
	e.Time = e.Time.UTC()
	e.sign(c.key)
	if err := e.check(); err != nil {
		return e, fmt.Errorf("audit: refusing a malformed entry: %w", err)
	}
	if err := insert(ctx, tx, &e); err != nil {
		return e, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_chains(chain) VALUES (?) ON CONFLICT DO NOTHING`, []byte(pub)); err != nil {
		return e, fmt.Errorf("audit: store: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return e, fmt.Errorf("audit: store: %w", err)
	}
	return e, nil
}

// Query selects entries for an admin's search and export.
type Query struct {
	// Chains, if not empty, limits the search to these signers (an
	// organisation's devices and the server).
	Chains []ed25519.PublicKey
	// From and To bound the entries' times (zero: unbounded).
	From, To time.Time
	// Text, if set, must occur in the novice's, the expert's or the
	// machine's name (case-insensitive; LIKE's wildcards are literal).
	Text string
	// Session, if set, selects one session of one chain.
	Session string
	// Limit caps the number of entries (default and maximum 10,000).
	Limit int
}

// Search returns the entries matching q, oldest first.
func (s *SQLStore) Search(ctx context.Context, q Query) ([]Entry, error) {
	var where []string
	var args []any
	if len(q.Chains) > 0 {
		where = append(where, "chain IN (?"+strings.Repeat(", ?", len(q.Chains)-1)+")")
		for _, c := range q.Chains {
			args = append(args, []byte(c))
		}
	}
	if !q.From.IsZero() {
		where, args = append(where, "time >= ?"), append(args, q.From.UnixNano())
	}
	if !q.To.IsZero() {
		where, args = append(where, "time < ?"), append(args, q.To.UnixNano())
	}
	if q.Text != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Text) + "%"
		op := s.db.Dialect.ILike()
		where = append(where, `(novice `+op+` ? ESCAPE '\' OR expert `+op+` ? ESCAPE '\' OR machine `+op+` ? ESCAPE '\')`)
		args = append(args, like, like, like)
	}
	if q.Session != "" {
		where, args = append(where, "session = ?"), append(args, q.Session)
	}
	limit := q.Limit
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	query := "SELECT line FROM audit_entries"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY time, chain, seq LIMIT ?"
	return s.lines(ctx, query, append(args, limit)...)
}

func (s *SQLStore) lines(ctx context.Context, query string, args ...any) ([]Entry, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: store: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, fmt.Errorf("audit: store: %w", err)
		}
		e, err := Parse([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("audit: store: a stored entry is damaged: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: store: %w", err)
	}
	return out, nil
}

// VerifyChain checks one stored chain as Verify does, against its last
// uploaded head; entries the store's retention removed are accounted for
// by the store's own record of them.
func (s *SQLStore) VerifyChain(ctx context.Context, chain ed25519.PublicKey) (Report, error) {
	es, err := s.lines(ctx, `SELECT line FROM audit_entries WHERE chain = ? ORDER BY seq`, []byte(chain))
	if err != nil {
		return Report{}, err
	}
	opts := VerifyOptions{Key: chain}
	var head string
	var through uint64
	var hash []byte
	err = s.db.QueryRowContext(ctx, `SELECT head, through, hash FROM audit_chains WHERE chain = ?`, []byte(chain)).Scan(&head, &through, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Report{}, fmt.Errorf("audit: store: %w", err)
	}
	if head != "" {
		h, err := ParseHead([]byte(head))
		if err != nil {
			return Report{}, err
		}
		// A head older than what retention removed says nothing more.
		if len(es) > 0 && h.Seq >= es[0].Seq {
			opts.Head = &h
		}
	}
	if through > 0 {
		c := &Cut{Through: through}
		copy(c.Hash[:], hash)
		opts.anchor = c
	}
	return Verify(es, opts)
}

// Prune removes every chain's entries older than before. The server's
// own chain (key) gets a signed Cut entry as a FileLog does; for the
// devices' chains, whose keys the server does not hold, the store
// records the last removed entry's number and hash instead, so the rest
// still verifies here (on the server's word for what was removed).
func (s *SQLStore) Prune(ctx context.Context, before time.Time, key ed25519.PrivateKey) (int64, error) {
	return s.prune(ctx, nil, before, key)
}

// PruneChain is Prune for one chain: an organisation's retention applies
// to the chains of its machines and helpers, each by its own age.
func (s *SQLStore) PruneChain(ctx context.Context, chain ed25519.PublicKey, before time.Time, key ed25519.PrivateKey) (int64, error) {
	return s.prune(ctx, chain, before, key)
}

func (s *SQLStore) prune(ctx context.Context, only ed25519.PublicKey, before time.Time, key ed25519.PrivateKey) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("audit: store: %w", err)
	}
	defer tx.Rollback()
	// One prune at a time across nodes; each chain it cuts is locked
	// below, before its end is read.
	if tx.Dialect() == sqldb.Postgres {
		if err := advisoryLock(ctx, tx, pruneLock); err != nil {
			return 0, err
		}
	}
	// The last entry to go in each chain.
	q, args := `SELECT chain, MAX(seq) FROM audit_entries WHERE time < ? GROUP BY chain`, []any{before.UnixNano()}
	if only != nil {
		q, args = `SELECT chain, MAX(seq) FROM audit_entries WHERE time < ? AND chain = ? GROUP BY chain`, append(args, []byte(only))
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("audit: store: %w", err)
	}
	type cut struct {
		chain []byte
		seq   uint64
	}
	var cuts []cut
	for rows.Next() {
		var c cut
		if err := rows.Scan(&c.chain, &c.seq); err != nil {
			rows.Close()
			return 0, fmt.Errorf("audit: store: %w", err)
		}
		cuts = append(cuts, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("audit: store: %w", err)
	}
	var removed int64
	own := key.Public().(ed25519.PublicKey)
	// In one order: no deadlock with another transaction's locks.
	slices.SortFunc(cuts, func(a, b cut) int { return bytes.Compare(a.chain, b.chain) })
	for _, c := range cuts {
		if err := lockChain(ctx, tx, c.chain); err != nil {
			return 0, err
		}
		var h []byte
		if err := tx.QueryRowContext(ctx, `SELECT hash FROM audit_entries WHERE chain = ? AND seq = ?`, c.chain, c.seq).Scan(&h); err != nil {
			return 0, fmt.Errorf("audit: store: %w", err)
		}
		if bytes.Equal(c.chain, own) {
			seq, last, _, err := s.last(ctx, tx, own)
			if err != nil {
				return 0, err
			}
			e := Entry{Seq: seq + 1, Prev: last, Time: time.Now().UTC(), Kind: KindCut, Party: PartyServer,
				Reason: "retention: removed entries older than " + before.UTC().Format(time.RFC3339), Cut: &Cut{Through: c.seq}}
			copy(e.Cut.Hash[:], h)
			e.sign(key)
			if err := insert(ctx, tx, &e); err != nil {
				return 0, err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE audit_chains SET through = ?, hash = ? WHERE chain = ?`, c.seq, h, c.chain); err != nil {
			return 0, fmt.Errorf("audit: store: %w", err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM audit_entries WHERE chain = ? AND seq <= ?`, c.chain, c.seq)
		if err != nil {
			return 0, fmt.Errorf("audit: store: %w", err)
		}
		n, _ := res.RowsAffected()
		removed += n
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("audit: store: %w", err)
	}
	return removed, nil
}
