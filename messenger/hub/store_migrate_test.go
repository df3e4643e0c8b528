package hub

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/pgtest"
	"github.com/assist-project/assist/internal/sqldb"
	"github.com/assist-project/assist/internal/sqlitedb"
)

// migrationEngines open a database at an earlier schema version (the
// first v migrations) and then the store on it, as an upgraded server
// would. level maps an engine's version to the SQLite version whose
// tables it has: PostgreSQL's first step is SQLite's fifth.
var migrationEngines = []struct {
	name     string
	versions int
	level    func(v int) int
	fresh    func(t *testing.T) (old func(ctx context.Context, v int) (*sql.DB, error), open func(ctx context.Context) (*SQLStore, error))
}{
	{"sqlite", len(sqliteMigrations), func(v int) int { return v }, func(t *testing.T) (func(context.Context, int) (*sql.DB, error), func(context.Context) (*SQLStore, error)) {
		path := filepath.Join(t.TempDir(), "messenger.sqlite")
		return func(ctx context.Context, v int) (*sql.DB, error) {
				return sqlitedb.Open(ctx, path, sqliteMigrations[:v])
			},
			func(ctx context.Context) (*SQLStore, error) { return OpenSQLite(ctx, path) }
	}},
	{"postgres", len(postgresMigrations), func(v int) int { return []int{0, 5}[v] }, func(t *testing.T) (func(context.Context, int) (*sql.DB, error), func(context.Context) (*SQLStore, error)) {
		dsn := pgtest.DB(t)
		return func(ctx context.Context, v int) (*sql.DB, error) {
				return sqldb.OpenPostgres(ctx, dsn, PostgresSchema, postgresMigrations[:v])
			},
			func(ctx context.Context) (*SQLStore, error) { return OpenPostgres(ctx, dsn) }
	}},
}

// seeds are rows written at each SQLite schema version, in SQL both
// engines take.
var seeds = [][]struct {
	q    string
	args []any
}{
	1: {
		{`INSERT INTO accounts ("user", display, created) VALUES (?, ?, ?), (?, ?, ?)`, []any{"alice", "Alice", int64(1), "bob", "Bob", int64(2)}},
		{`INSERT INTO devices (id, "user", key, name, created) VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)`,
			[]any{"d1", "alice", []byte("key-alice-000000000000000000000x"), "laptop", int64(1), "d2", "bob", []byte("key-bob-00000000000000000000000x"), "phone", int64(2)}},
		{`INSERT INTO contacts ("user", other, created) VALUES (?, ?, ?), (?, ?, ?)`, []any{"alice", "bob", int64(3), "bob", "alice", int64(3)}},
		{`INSERT INTO blocks ("user", other, created) VALUES (?, ?, ?)`, []any{"alice", "mallory", int64(4)}},
		{`INSERT INTO requests (id, sender, sender_dev, sender_conn, recipient, kind, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{"r1", "alice", "d1", "c1", "bob", "help", int64(5), int64(6)}},
	},
	2: {
		{`INSERT INTO orgs (name, display, rights, record, timeout, created) VALUES (?, ?, ?, ?, ?, ?)`, []any{"acme", "ACME", "view control", true, int64(60), int64(7)}},
		{`INSERT INTO org_members (org, "user", role) VALUES (?, ?, ?)`, []any{"acme", "alice", "admin"}},
		{`INSERT INTO org_machines ("user", org, enrolled) VALUES (?, ?, ?)`, []any{"bob", "acme", int64(8)}},
	},
	3: {
		{`INSERT INTO audit_orgs (chain, org, "user") VALUES (?, ?, ?)`, []any{[]byte("chain-key-0000000000000000000000"), "acme", "bob"}},
		{`INSERT INTO audit_server_orgs (seq, org) VALUES (?, ?)`, []any{int64(9), "acme"}},
		{`UPDATE orgs SET retention = ? WHERE name = ?`, []any{int64(30), "acme"}},
	},
	4: {
		{`INSERT INTO org_oidc (org, issuer, client_id, secret_file, claim) VALUES (?, ?, ?, ?, ?)`, []any{"acme", "https://id.example", "cid", "/etc/s", "email"}},
		{`INSERT INTO org_oidc_links (org, issuer, subject, "user") VALUES (?, ?, ?, ?)`, []any{"acme", "https://id.example", "sub1", "alice"}},
	},
	5: {
		{`UPDATE orgs SET audit_key = ? WHERE name = ?`, []any{"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", "acme"}},
	},
}

// TestMigrateForward: a database at every earlier schema version, with
// rows in every table it has, is brought up to date on opening, on both
// engines, and the rows read back through the store.
func TestMigrateForward(t *testing.T) {
	for _, e := range migrationEngines {
		for v := 1; v <= e.versions; v++ {
			t.Run(e.name+"/from"+string(rune('0'+v)), func(t *testing.T) {
				ctx := context.Background()
				old, open := e.fresh(t)
				db, err := old(ctx, v)
				if err != nil {
					t.Fatal(err)
				}
				d := sqldb.Wrap(db)
				level := e.level(v)
				for l := 1; l <= level; l++ {
					for _, s := range seeds[l] {
						if _, err := d.ExecContext(ctx, s.q, s.args...); err != nil {
							db.Close()
							t.Fatalf("seed of version %d: %v", l, err)
						}
					}
				}
				db.Close()
				s, err := open(ctx)
				if err != nil {
					t.Fatalf("migrating from version %d: %v", v, err)
				}
				defer s.Close()
				checkSeeds(t, s, level)
			})
		}
	}
}

func checkSeeds(t *testing.T, s *SQLStore, level int) {
	ctx := context.Background()
	if a, err := s.Account(ctx, "alice"); err != nil || a.Display != "Alice" || a.Created != time.Unix(0, 1) {
		t.Errorf("account: %+v, %v", a, err)
	}
	if d, err := s.DeviceByKey(ctx, []byte("key-bob-00000000000000000000000x")); err != nil || d.User != "bob" || d.Name != "phone" {
		t.Errorf("device: %+v, %v", d, err)
	}
	if ok, err := s.IsContact(ctx, "bob", "alice"); !ok || err != nil {
		t.Errorf("contact: %v, %v", ok, err)
	}
	if b, err := s.Blocked(ctx, "alice"); err != nil || len(b) != 1 || b[0] != "mallory" {
		t.Errorf("blocks: %v, %v", b, err)
	}
	if r, err := s.Request(ctx, "r1"); err != nil || r.To != "bob" || r.Closed != "" {
		t.Errorf("request: %+v, %v", r, err)
	}
	if level < 2 {
		if _, err := s.Org(ctx, "acme"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an organisation from nowhere: %v", err)
		}
		return
	}
	o, err := s.Org(ctx, "acme")
	if err != nil || !o.Policy.Record || len(o.Policy.Rights) != 2 || o.Policy.Timeout != 60 {
		t.Errorf("organisation: %+v, %v", o, err)
	}
	if r, err := s.Roles(ctx, "alice"); err != nil || r["acme"] != "admin" {
		t.Errorf("roles: %v, %v", r, err)
	}
	if org, err := s.MachineOrg(ctx, "bob"); err != nil || org != "acme" {
		t.Errorf("machine: %q, %v", org, err)
	}
	if level >= 3 {
		if cs, err := s.AuditChains(ctx, "acme"); err != nil || len(cs) != 1 || cs[0].User != "bob" {
			t.Errorf("audit chains: %+v, %v", cs, err)
		}
		if m, err := s.ServerEntries(ctx, "acme"); err != nil || !m[9] {
			t.Errorf("server entries: %v, %v", m, err)
		}
		if m, err := s.Retentions(ctx); err != nil || m["acme"] != 30*24*time.Hour {
			t.Errorf("retention: %v, %v", m, err)
		}
	}
	if level >= 4 {
		if p, err := s.OIDC(ctx, "acme"); err != nil || p.ClientID != "cid" {
			t.Errorf("OpenID provider: %+v, %v", p, err)
		}
		if u, err := s.OIDCUser(ctx, "acme", "https://id.example", "sub1"); err != nil || u != "alice" {
			t.Errorf("OpenID link: %q, %v", u, err)
		}
	}
	want := ""
	if level >= 5 {
		want = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	}
	if o.Policy.AuditKey != want {
		t.Errorf("audit key %q, want %q", o.Policy.AuditKey, want)
	}
	// The upgraded schema takes new rows of every kind.
	if err := s.SetOIDC(ctx, "acme", OIDC{Issuer: "https://id2.example", ClientID: "c2", SecretFile: "/s", Claim: "email"}); err != nil {
		t.Errorf("after migrating: %v", err)
	}
	if err := s.MarkServerEntry(ctx, 10, "acme"); err != nil {
		t.Errorf("after migrating: %v", err)
	}
}

// TestPostgresNewerSchema: a database migrated by a newer program is
// refused, with what to do.
func TestPostgresNewerSchema(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	s, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := OpenPostgres(ctx, dsn); err == nil {
		s.Close()
		t.Fatal("opened a schema from a newer version")
	}
}
