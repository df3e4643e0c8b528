package sqlitedb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "db.sqlite")
	v1 := []string{`CREATE TABLE a (x INTEGER);`}
	db, err := Open(ctx, path, v1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO a VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database file mode %v (%v), want 0600", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("database directory mode %v (%v), want 0700", fi.Mode(), err)
	}

	// A second step runs once, on the data the first one left.
	v2 := append(v1, `ALTER TABLE a ADD COLUMN y INTEGER NOT NULL DEFAULT 1;`)
	for range 2 {
		db, err := Open(ctx, path, v2)
		if err != nil {
			t.Fatal(err)
		}
		var x, y, version int
		if err := db.QueryRow(`SELECT x, y FROM a`).Scan(&x, &y); err != nil || x != 7 || y != 1 {
			t.Fatalf("after migrating: x=%d y=%d (%v)", x, y, err)
		}
		if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != 2 {
			t.Fatalf("user_version %d (%v), want 2", version, err)
		}
		db.Close()
	}

	// An older program refuses a newer database instead of using it.
	if _, err := Open(ctx, path, v1); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("opening a newer schema with older migrations: %v", err)
	}
}

// TestFailedMigrationChangesNothing: a step that fails leaves the database
// at the version it had, so a fixed program can try again.
func TestFailedMigrationChangesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	v1 := []string{`CREATE TABLE a (x INTEGER);`}
	db, err := Open(ctx, path, v1)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	bad := append(v1, `CREATE TABLE b (y INTEGER); ALTER TABLE nowhere ADD COLUMN z;`)
	if _, err := Open(ctx, path, bad); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("a failing step: %v", err)
	}
	db, err = Open(ctx, path, append(v1, `CREATE TABLE b (y INTEGER);`))
	if err != nil {
		t.Fatalf("after a failed step, the fixed one: %v", err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO b VALUES (1)`); err != nil {
		t.Fatal(err)
	}
}

func TestForeignKeysOn(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"), []string{
		`CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p INTEGER REFERENCES p(id));`,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO c VALUES (42)`); err == nil {
		t.Fatal("a row referring to nothing was accepted: foreign keys are off")
	}
}
