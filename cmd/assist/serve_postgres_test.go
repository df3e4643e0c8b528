package main

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/internal/pgtest"
	"github.com/assist-project/assist/server"
)

// TestServePostgres: `assist serve --store postgres://...` keeps the
// messenger's accounts and contacts in PostgreSQL, not in --data: two
// users log in and become contacts, the server restarts with an empty
// --data (but its certificate), and their contacts are still there; the
// rows are in the database's messenger schema, where assist org --store
// creates organisations too.
func TestServePostgres(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.DB(t)
	data := t.TempDir()
	srv := startServe(t, data, "--store", dsn)
	nora, eddie := newCLIUser(t, "nora"), newCLIUser(t, "eddie")
	nora.login(t, srv)
	eddie.login(t, srv)
	pairCLI(t, nora, eddie)
	srv.stop(t)
	for _, f := range []string{"assist.db", "messenger.sqlite", "passkeys.sqlite"} {
		if _, err := os.Stat(filepath.Join(data, f)); !os.IsNotExist(err) {
			t.Errorf("--data has %s with --store postgres:// (%v)", f, err)
		}
	}
	// Only the certificate stays: the clients pin it.
	fresh := t.TempDir()
	for _, f := range []string{server.CertFile, server.KeyFile} {
		b, err := os.ReadFile(filepath.Join(data, f))
		if err != nil {
			t.Fatalf("the certificate in --data: %v", err)
		}
		if err := os.WriteFile(filepath.Join(fresh, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// On the same address: the users' config names it.
	srv = startServe(t, fresh, "--store", dsn, "--listen", strings.TrimPrefix(srv.URL, "https://"))
	if out := nora.run(t, "contacts"); out != "eddie offline\n" {
		t.Errorf("nora's contacts after a restart on an empty --data: %q, want eddie", out)
	}
	srv.stop(t)
	// The operator's assist org works on the same database.
	if out := nora.run(t, "org", "create", "acme", "--store", dsn); out != "created: acme\n" {
		t.Errorf("assist org create --store: %q", out)
	}

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM messenger.contacts`).Scan(&n); err != nil || n != 2 {
		t.Errorf("rows in messenger.contacts: %d, %v; want 2 (one per direction)", n, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM messenger.orgs WHERE name = 'acme'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("acme in messenger.orgs: %d, %v", n, err)
	}
}

// TestServePostgresUnreachable: a --store whose database does not answer
// stops the server at once with an error that says what to check, and
// without the password.
func TestServePostgresUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A port that was free a moment ago: nothing listens there.
	pg := pgtest.Start(t)
	url := strings.Replace(pg.URL("none"), "postgres@", "postgres:hunter2@", 1)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		store, want string
	}{
		{url, "cannot reach PostgreSQL at postgres://postgres:xxxxx@127.0.0.1:"},
		{"mysql://x/y", `--store "mysql://x/y": want sqlite, or postgres://`},
	} {
		cmd := exec.CommandContext(ctx, lab.AssistBinary(t), "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(),
			"--turn-listen", "off", "--turns-listen", "off", "--store", tc.store)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("assist serve --store %s started", tc.store)
		}
		if !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "hunter2") {
			t.Errorf("assist serve --store %s said %q, want %q and no password", tc.store, out, tc.want)
		}
	}
}
