package audit

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"

	"github.com/assist-project/assist/internal/pgtest"
)

// engines are the databases SQLStore runs on, each opening a fresh one.
var engines = []struct {
	name string
	open func(t *testing.T) *SQLStore
}{
	{"sqlite", openSQL},
	{"postgres", func(t *testing.T) *SQLStore { return openPostgres(t, pgtest.DB(t)) }},
}

func openPostgres(t *testing.T, dsn string) *SQLStore {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := NewSQLStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openSQL(t *testing.T) *SQLStore {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "s.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := NewSQLStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSQLUpload: a device's chain is uploaded in pieces and again
// (idempotent); a rewritten or non-following piece is refused as a
// fork; search finds by name and time; the stored chain verifies
// against the uploaded head.
func TestSQLUpload(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { testSQLUpload(t, e.open(t)) })
	}
}

func testSQLUpload(t *testing.T, s *SQLStore) {
	ctx := context.Background()
	// An entry without a key (a hostile upload) is refused, not a panic.
	if err := s.Upload(ctx, []Entry{{Seq: 1}}, nil); err == nil {
		t.Error("an entry without a key was stored")
	}
	l, key := openLog(t)
	pub := key.Public().(ed25519.PublicKey)
	session(t, l)
	es, _ := l.Entries()
	head, _ := ReadHead(l.Path())
	if err := s.Upload(ctx, es[:3], nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Upload(ctx, es, &head); err != nil {
		t.Fatal(err)
	}
	if err := s.Upload(ctx, es[2:], &head); err != nil {
		t.Fatalf("uploading again: %v", err)
	}
	if rep, err := s.VerifyChain(ctx, pub); err != nil || rep.Entries != 7 || !rep.HeadChecked {
		t.Fatalf("stored chain: %+v, %v", rep, err)
	}

	// The device rewrites entry 5 and uploads again: refused.
	forged := append([]Entry(nil), es...)
	forged[4].Reason = "nothing happened"
	forged[4].sign(key)
	if err := s.Upload(ctx, forged, nil); !errors.Is(err, ErrFork) {
		t.Fatalf("a rewritten entry: %v", err)
	}
	// A piece that skips entries: refused.
	session(t, l)
	es2, _ := l.Entries()
	if err := s.Upload(ctx, es2[9:], nil); !errors.Is(err, ErrFork) {
		t.Fatalf("a gap: %v", err)
	}
	// A tampered new entry: refused by Verify.
	bad := append([]Entry(nil), es2[7:]...)
	bad[1].Expert = "Eve"
	var be *BadEntry
	if err := s.Upload(ctx, bad, nil); !errors.As(err, &be) || be.Seq != 9 {
		t.Fatalf("a tampered entry: %v", err)
	}
	if err := s.Upload(ctx, es2, nil); err != nil {
		t.Fatal(err)
	}

	// The server's own chain.
	srv := s.Chain(newKey(t, 9))
	r := NewRecorder(srv, PartyServer, nil)
	r.Start("Nova", "Dana", "nova-pc", "relay-udp")
	r.End("over")
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	found, err := s.Search(ctx, Query{Text: "nova-PC"})
	if err != nil || len(found) != 16 { // every entry of the three sessions names it
		t.Fatalf("search by machine: %d, %v", len(found), err)
	}
	if found, _ := s.Search(ctx, Query{Text: "%"}); len(found) != 0 {
		t.Fatalf("a wildcard matched %d", len(found))
	}
	if found, _ := s.Search(ctx, Query{Chains: []ed25519.PublicKey{pub}, From: time.Now().Add(-time.Hour)}); len(found) != 14 {
		t.Fatalf("search by chain and time: %d", len(found))
	}
}

// TestSQLPrune: retention on the server removes old entries of every
// chain; its own chain gets a signed cut, the devices' chains the store's
// record, and all still verify and accept new uploads.
func TestSQLPrune(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { testSQLPrune(t, e.open(t)) })
	}
}

func testSQLPrune(t *testing.T, s *SQLStore) {
	ctx := context.Background()
	l, key := openLog(t)
	pub := key.Public().(ed25519.PublicKey)
	now := time.Now().Add(-48 * time.Hour)
	l.now = func() time.Time { return now }
	session(t, l)
	es, _ := l.Entries()
	if err := s.Upload(ctx, es, nil); err != nil {
		t.Fatal(err)
	}
	skey := newKey(t, 9)
	srv := s.Chain(skey).(*sqlChain)
	srv.now = func() time.Time { return now }
	NewRecorder(srv, PartyServer, nil).Start("Nova", "Dana", "pc", "relay")
	now = time.Now()
	NewRecorder(srv, PartyServer, nil).Start("Nova", "Dana", "pc", "relay")
	n, err := s.Prune(ctx, time.Now().Add(-24*time.Hour), skey)
	if err != nil || n != 8 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if rep, err := s.VerifyChain(ctx, skey.Public().(ed25519.PublicKey)); err != nil || rep.Pruned != 1 || rep.Entries != 2 {
		t.Fatalf("server chain: %+v, %v", rep, err)
	}
	if _, err := s.VerifyChain(ctx, pub); err != nil {
		t.Fatal(err)
	}
	session(t, l)
	es, _ = l.Entries()
	if err := s.Upload(ctx, es, nil); err != nil {
		t.Fatalf("upload after pruning: %v", err)
	}
	if rep, err := s.VerifyChain(ctx, pub); err != nil || rep.First != 8 || rep.Last != 14 {
		t.Fatalf("device chain: %+v, %v", rep, err)
	}
}

// TestSQLPruneAcrossNodes: two nodes prune and append to the server's
// chain at once (PostgreSQL): the chain still verifies, with one cut.
func TestSQLPruneAcrossNodes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	skey := newKey(t, 9)
	old := a.Chain(skey).(*sqlChain)
	old.now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	for i := 0; i < 3; i++ {
		NewRecorder(old, PartyServer, nil).Start("Nova", "Dana", "pc", "relay")
	}
	var wg sync.WaitGroup
	for _, s := range []*SQLStore{a, b} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := s.Prune(ctx, time.Now().Add(-24*time.Hour), skey); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			r := NewRecorder(s.Chain(skey), PartyServer, nil)
			r.Start("Nova", "Dana", "pc", "relay")
			if err := r.Err(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rep, err := a.VerifyChain(ctx, skey.Public().(ed25519.PublicKey))
	if err != nil || rep.Pruned != 3 {
		t.Fatalf("server chain after two nodes pruned: %+v, %v", rep, err)
	}
}
