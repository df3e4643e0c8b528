package hub_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/hub/storetest"
)

func TestSQLiteStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) hub.Store {
		s, err := hub.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "messenger.sqlite"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestSQLiteReopen checks the file's mode and that data and schema
// survive a reopen.
func TestSQLiteReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "messenger.sqlite")
	s, err := hub.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: %v, %v; want 0600", fi.Mode(), err)
	}
	if err := s.CreateAccount(ctx, hub.Account{User: "alice", Display: "A"}, hub.Device{ID: "d", Key: make([]byte, 32), Name: "n"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = hub.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if a, err := s.Account(ctx, "alice"); err != nil || a.Display != "A" {
		t.Errorf("after reopen: %+v, %v", a, err)
	}
}
