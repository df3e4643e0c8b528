package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{`INSERT INTO t ("user", x) VALUES (?, '?')`, `INSERT INTO t ("user", x) VALUES ($1, '?')`},
		{`SELECT "a?b" FROM t WHERE x LIKE ? ESCAPE '\' OR y LIKE ? ESCAPE '\'`, `SELECT "a?b" FROM t WHERE x LIKE $1 ESCAPE '\' OR y LIKE $2 ESCAPE '\'`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
	} {
		if got := Postgres.Rebind(tc.in); got != tc.want {
			t.Errorf("Postgres.Rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := SQLite.Rebind(tc.in); got != tc.in {
			t.Errorf("SQLite.Rebind(%q) = %q, want it unchanged", tc.in, got)
		}
	}
}

func TestConstraintErrors(t *testing.T) {
	for _, tc := range []struct {
		err        error
		unique, fk bool
	}{
		{nil, false, false},
		{errors.New("constraint failed: UNIQUE constraint failed: accounts.user (2067)"), true, false},
		{errors.New("constraint failed: FOREIGN KEY constraint failed (787)"), false, true},
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "23505"}), true, false},
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "23503"}), false, true},
		{&pgconn.PgError{Code: "40001"}, false, false},
	} {
		if got := IsUnique(tc.err); got != tc.unique {
			t.Errorf("IsUnique(%v) = %v", tc.err, got)
		}
		if got := IsForeignKey(tc.err); got != tc.fk {
			t.Errorf("IsForeignKey(%v) = %v", tc.err, got)
		}
	}
}

func TestIsUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"refused", fmt.Errorf("messenger store: login: %w", refused), true},
		{"bad connection", fmt.Errorf("x: %w", driver.ErrBadConn), true},
		{"connection done", sql.ErrConnDone, true},
		{"connection closed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), true},
		{"cut mid-query", fmt.Errorf("x: %w", io.ErrUnexpectedEOF), true},
		{"shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"connection exception", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"unique", &pgconn.PgError{Code: "23505"}, false},
		{"syntax", &pgconn.PgError{Code: "42601"}, false},
		{"no rows", sql.ErrNoRows, false},
		{"sqlite constraint", errors.New("constraint failed: UNIQUE constraint failed: accounts.user (2067)"), false},
		{"cancelled", context.Canceled, false},
		{"plain", errors.New("messenger store: bad row"), false},
	} {
		if got := IsUnavailable(tc.err); got != tc.want {
			t.Errorf("%s: IsUnavailable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://assist:s3cret@db:5432/assist", "postgres://assist:xxxxx@db:5432/assist"},
		{"postgres://assist@db/assist?password=s3cret&sslmode=require", "postgres://assist@db/assist?password=xxxxx&sslmode=require"},
		{"postgres://db/assist", "postgres://db/assist"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
