package passkey

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/assist-project/assist/internal/pgtest"
)

// stores are the engines the passkey store runs on.
var stores = []struct {
	name string
	open func(t *testing.T) []*SQLStore // two stores on one fresh database, as two nodes
}{
	{"sqlite", func(t *testing.T) []*SQLStore {
		path := filepath.Join(t.TempDir(), "passkeys.sqlite")
		return []*SQLStore{openStore(t, func(ctx context.Context) (*SQLStore, error) { return OpenSQLite(ctx, path) }),
			openStore(t, func(ctx context.Context) (*SQLStore, error) { return OpenSQLite(ctx, path) })}
	}},
	{"postgres", func(t *testing.T) []*SQLStore {
		dsn := pgtest.DB(t)
		return []*SQLStore{openStore(t, func(ctx context.Context) (*SQLStore, error) { return OpenPostgres(ctx, dsn) }),
			openStore(t, func(ctx context.Context) (*SQLStore, error) { return OpenPostgres(ctx, dsn) })}
	}},
}

func openStore(t *testing.T, open func(context.Context) (*SQLStore, error)) *SQLStore {
	t.Helper()
	s, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStore: credentials by user and handle, a second handle refused,
// updates kept; two nodes registering one user's first passkeys at once
// cannot give the account two handles.
func TestStore(t *testing.T) {
	for _, e := range stores {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			ss := e.open(t)
			s := ss[0]
			if _, err := s.Handle(ctx, "alice"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Handle before: %v", err)
			}
			h := []byte("handle-alice")
			if err := s.Add(ctx, "alice", h, webauthn.Credential{ID: []byte("c1")}); err != nil {
				t.Fatal(err)
			}
			if err := s.Add(ctx, "alice", []byte("other"), webauthn.Credential{ID: []byte("c2")}); err == nil {
				t.Error("a second handle for alice was accepted")
			}
			if err := s.Add(ctx, "bob", h, webauthn.Credential{ID: []byte("c3")}); err == nil {
				t.Error("bob took alice's handle")
			}
			if err := s.Add(ctx, "alice", h, webauthn.Credential{ID: []byte("c2")}); err != nil {
				t.Fatal(err)
			}
			c := webauthn.Credential{ID: []byte("c1")}
			c.Authenticator.SignCount = 7
			if err := s.Update(ctx, h, c); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Handle(ctx, "alice"); err != nil || string(got) != string(h) {
				t.Errorf("Handle = %q, %v", got, err)
			}
			user, creds, err := s.User(ctx, h)
			if err != nil || user != "alice" || len(creds) != 2 {
				t.Fatalf("User = %q, %d, %v", user, len(creds), err)
			}
			for _, cr := range creds {
				if string(cr.ID) == "c1" && cr.Authenticator.SignCount != 7 {
					t.Errorf("update lost: %+v", cr.Authenticator)
				}
			}
			if _, _, err := s.User(ctx, []byte("none")); !errors.Is(err, ErrNotFound) {
				t.Errorf("User(none): %v", err)
			}

			// Two nodes, one new user, two handles at once: one wins.
			var wg sync.WaitGroup
			for i, n := range ss {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = n.Add(ctx, "carol", []byte{'h', byte(i)}, webauthn.Credential{ID: []byte{'k', byte(i)}})
				}()
			}
			wg.Wait()
			if _, creds, err := s.User(ctx, []byte{'h', 0}); err == nil && len(creds) > 0 {
				if _, _, err := s.User(ctx, []byte{'h', 1}); err == nil {
					t.Error("carol has two user handles")
				}
			}
		})
	}
}
