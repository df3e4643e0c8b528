package server

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/pgtest"
	"github.com/assist-project/assist/internal/sqldb"
	"github.com/assist-project/assist/internal/sqlitedb"
)

// TestMigrateForward: a database at every earlier schema version, with
// rows in every table, is brought up to date on opening, SQLite and
// PostgreSQL (whose first step is SQLite's third), and the rows read back.
func TestMigrateForward(t *testing.T) {
	type opener struct {
		old  func(ctx context.Context, v int) (*sql.DB, error)
		open func(ctx context.Context) (*SQLStore, error)
	}
	for _, e := range []struct {
		name     string
		versions int
		level    func(v int) int
		fresh    func(t *testing.T) opener
	}{
		{"sqlite", len(migrations), func(v int) int { return v }, func(t *testing.T) opener {
			path := filepath.Join(t.TempDir(), "assist.db")
			return opener{func(ctx context.Context, v int) (*sql.DB, error) { return sqlitedb.Open(ctx, path, migrations[:v]) },
				func(ctx context.Context) (*SQLStore, error) { return OpenSQLite(ctx, path) }}
		}},
		{"postgres", len(postgresMigrations), func(v int) int { return 3 }, func(t *testing.T) opener {
			dsn := pgtest.DB(t)
			return opener{func(ctx context.Context, v int) (*sql.DB, error) {
				return sqldb.OpenPostgres(ctx, dsn, PostgresSchema, postgresMigrations[:v])
			}, func(ctx context.Context) (*SQLStore, error) { return OpenPostgres(ctx, dsn) }}
		}},
	} {
		for v := 1; v <= e.versions; v++ {
			t.Run(fmt.Sprintf("%s/at%d", e.name, v), func(t *testing.T) {
				ctx := context.Background()
				o := e.fresh(t)
				db, err := o.old(ctx, v)
				if err != nil {
					t.Fatal(err)
				}
				d := sqldb.Wrap(db)
				seeds := []struct {
					level int
					q     string
					args  []any
				}{
					{1, `INSERT INTO invitations (id, expires, created) VALUES (?, ?, ?)`, []any{"i1", int64(4e18), int64(1)}},
					{1, `INSERT INTO secrets (name, value) VALUES (?, ?)`, []any{turnSecretName, "the-secret"}},
					{1, `INSERT INTO audit (time, kind, inv, session, detail) VALUES (?, ?, ?, ?, ?)`, []any{int64(5), EventPair, "i1", "s1", ""}},
					{2, `UPDATE invitations SET seen = ? WHERE id = ?`, []any{int64(7), "i1"}},
					{3, `UPDATE invitations SET owner = ? WHERE id = ?`, []any{[]byte("agent"), "i1"}},
				}
				level := e.level(v)
				for _, s := range seeds {
					if s.level > level {
						continue
					}
					if _, err := d.ExecContext(ctx, s.q, s.args...); err != nil {
						db.Close()
						t.Fatalf("seed: %v", err)
					}
				}
				db.Close()
				st, err := o.open(ctx)
				if err != nil {
					t.Fatalf("migrating from version %d: %v", v, err)
				}
				defer st.Close()
				inv, err := st.Invitation(ctx, "i1")
				if err != nil || inv.Created != time.Unix(0, 1) {
					t.Fatalf("invitation: %+v, %v", inv, err)
				}
				if level >= 2 && inv.Seen != time.Unix(0, 7) || level < 2 && !inv.Seen.IsZero() {
					t.Errorf("seen: %v at level %d", inv.Seen, level)
				}
				if level >= 3 && string(inv.Owner) != "agent" || level < 3 && inv.Owner != nil {
					t.Errorf("owner: %q at level %d", inv.Owner, level)
				}
				if s, err := st.TURNSecret(ctx); err != nil || s != "the-secret" {
					t.Errorf("TURN secret %q, %v", s, err)
				}
				if evs, err := st.Events(ctx, time.Time{}, 10); err != nil || len(evs) != 1 || evs[0].Session != "s1" {
					t.Errorf("events: %+v, %v", evs, err)
				}
				// New rows go on after the old ones.
				if err := st.Audit(ctx, Event{Time: time.Unix(0, 6), Kind: EventBye, ID: "i1"}); err != nil {
					t.Fatal(err)
				}
				if evs, err := st.Events(ctx, time.Time{}, 10); err != nil || len(evs) != 2 || evs[1].Kind != EventBye {
					t.Errorf("events after migrating: %+v, %v", evs, err)
				}
			})
		}
	}
}
