package server

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/pgtest"
)

func TestSQLiteStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "assist.db")
	open := func(ctx context.Context) (*SQLStore, error) { return OpenSQLite(ctx, path) }
	st, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode: %v, %v; want 0600", fi.Mode(), err)
	}
	testStore(t, open)
}

func TestPostgresStore(t *testing.T) {
	dsn := pgtest.DB(t)
	testStore(t, func(ctx context.Context) (*SQLStore, error) { return OpenPostgres(ctx, dsn) })
}

// testStore checks a store that open opens, empty the first time.
func testStore(t *testing.T, open func(context.Context) (*SQLStore, error)) {
	ctx := context.Background()
	st, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 123)
	if _, err := st.Invitation(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing invitation: %v, want ErrNotFound", err)
	}
	if err := st.PutInvitation(ctx, Invitation{ID: "a", Expires: now.Add(time.Hour), Created: now}); err != nil {
		t.Fatal(err)
	}
	// A re-registration moves the expiry but keeps the creation time.
	if err := st.PutInvitation(ctx, Invitation{ID: "a", Expires: now.Add(2 * time.Hour), Created: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutInvitation(ctx, Invitation{ID: "old", Expires: now.Add(-time.Hour), Created: now.Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	secret, err := st.TURNSecret(ctx)
	if err != nil || len(secret) < 40 {
		t.Fatalf("TURNSecret = %q, %v", secret, err)
	}
	for _, e := range []Event{
		{Time: now.Add(-100 * 24 * time.Hour), Kind: EventRegister, ID: "ancient"},
		{Time: now, Kind: EventPair, ID: "a", Session: "s1"},
		{Time: now.Add(time.Second), Kind: EventBye, ID: "a", Session: "s1", Detail: "auth-failed"},
	} {
		if err := st.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.DeleteExpired(ctx, now, now.Add(-90*24*time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteExpired = %d, %v; want 1", n, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Everything survives a reopen.
	st, err = open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	inv, err := st.Invitation(ctx, "a")
	if err != nil || !inv.Expires.Equal(now.Add(2*time.Hour)) || !inv.Created.Equal(now) {
		t.Errorf("after reopen: %+v, %v", inv, err)
	}
	if _, err := st.Invitation(ctx, "old"); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired invitation still there: %v", err)
	}
	if s2, err := st.TURNSecret(ctx); err != nil || s2 != secret {
		t.Errorf("TURN secret after reopen = %q, %v; want %q", s2, err, secret)
	}
	evs, err := st.Events(ctx, time.Time{}, 10)
	if err != nil || len(evs) != 2 || evs[1] != (Event{Time: now.Add(time.Second), Kind: EventBye, ID: "a", Session: "s1", Detail: "auth-failed"}) {
		t.Errorf("events after reopen = %+v, %v", evs, err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Error(err)
	}
}

func TestSQLiteStoreNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "assist.db")
	st, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.SQL.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err := OpenSQLite(ctx, path); err == nil {
		st.Close()
		t.Fatal("opened a database from a newer version")
	}
}

// TestSQLiteStoreMigrate: a database of the first schema (no "seen") is
// brought up to date with its invitations, which count as never seen.
func TestSQLiteStoreMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "assist.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0], "PRAGMA user_version = 1",
		`INSERT INTO invitations (id, expires, created) VALUES ('v1', 4000000000000000000, 1)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	st, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	inv, err := st.Invitation(ctx, "v1")
	if err != nil || !inv.Seen.IsZero() || inv.Created != time.Unix(0, 1) {
		t.Fatalf("migrated invitation: %+v, %v", inv, err)
	}
	now := time.Unix(1_800_000_000, 0)
	if err := st.PutInvitation(ctx, Invitation{ID: "v2", Expires: now.Add(time.Hour), Created: now, Seen: now}); err != nil {
		t.Fatal(err)
	}
	// Seen moves forward only, and skips ids it does not know.
	if err := st.Seen(ctx, []string{"v2", "nobody"}, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.Seen(ctx, []string{"v2"}, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if inv, err := st.Invitation(ctx, "v2"); err != nil || !inv.Seen.Equal(now.Add(time.Minute)) {
		t.Errorf("v2 after Seen: %+v, %v", inv, err)
	}
	// v1, stored without an owner, may be taken over by an agent with one.
	if err := st.PutInvitation(ctx, Invitation{ID: "v1", Expires: now.Add(time.Hour), Created: now, Owner: []byte("agent-a")}); err != nil {
		t.Errorf("owning a migrated invitation: %v", err)
	}
	if n, err := st.DeleteUnseen(ctx, now); err != nil || n != 1 {
		t.Errorf("DeleteUnseen = %d, %v; want 1 (v1)", n, err)
	}
	if _, err := st.Invitation(ctx, "v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("v1 after DeleteUnseen: %v", err)
	}
}

// TestSQLiteStoreOwner: a live invitation with an owner is registered
// again only by the same owner; one without an owner, or an expired one,
// by anyone.
func TestSQLiteStoreOwner(t *testing.T) {
	st, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "assist.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testOwner(t, st)
}

func TestPostgresStoreOwner(t *testing.T) {
	st, err := OpenPostgres(context.Background(), pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testOwner(t, st)
}

func testOwner(t *testing.T, st *SQLStore) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	a, b := []byte("owner-a"), []byte("owner-b")
	put := func(id string, at time.Time, owner []byte) error {
		return st.PutInvitation(ctx, Invitation{ID: id, Expires: at.Add(time.Hour), Created: at, Seen: at, Owner: owner})
	}
	for _, tt := range []struct {
		name  string
		id    string
		at    time.Time
		owner []byte
		owned bool
	}{
		{"first, with an owner", "x", now, a, false},
		{"the same owner again", "x", now.Add(time.Minute), a, false},
		{"another owner", "x", now.Add(2 * time.Minute), b, true},
		{"no owner", "x", now.Add(2 * time.Minute), nil, true},
		{"another owner once it expired", "x", now.Add(2 * time.Hour), b, false},
		{"first, without an owner", "y", now, nil, false},
		{"anyone takes an unowned one", "y", now.Add(time.Minute), b, false},
		{"then it is owned", "y", now.Add(2 * time.Minute), a, true},
	} {
		err := put(tt.id, tt.at, tt.owner)
		if got := errors.Is(err, ErrOwned); got != tt.owned || (err != nil && !got) {
			t.Errorf("%s: PutInvitation = %v, want owned %v", tt.name, err, tt.owned)
		}
	}
	inv, err := st.Invitation(ctx, "x")
	if err != nil || string(inv.Owner) != "owner-b" || !inv.Expires.Equal(now.Add(3*time.Hour)) {
		t.Errorf("x: %+v, %v; want owner-b's registration", inv, err)
	}
}

// TestRegisterWithoutPostgres: while PostgreSQL is stopped a registration
// (the rendezvous server's one message that writes the store) is answered
// "unavailable", saying the database cannot be reached, not "internal";
// once it is back, the same server registers again.
func TestRegisterWithoutPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	st, err := OpenPostgres(context.Background(), pg.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := startServer(t, "", func(c *Config) { c.Store = st })
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	n := ts.dial(t)
	n.register("4242", ts.Clock.Now().Add(time.Hour))
	if r := n.expectError(CodeUnavailable); !strings.Contains(r.Message, "database") || !strings.Contains(r.Message, "try again") {
		t.Errorf("message %q, want it to say the database cannot be reached and to try again", r.Message)
	}
	pg.Restart(t)
	// A pooled connection the restart broke fails once, then is replaced.
	for i := 0; ; i++ {
		n := ts.dial(t)
		n.register("4242", ts.Clock.Now().Add(time.Hour))
		if r := n.recv(); r.Type == TypeRegistered {
			break
		} else if i >= 3 {
			t.Fatalf("register after PostgreSQL came back: %+v", r)
		}
	}
}
