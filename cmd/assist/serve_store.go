package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/assist-project/assist/internal/sqldb"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/passkey"
	"github.com/assist-project/assist/server"
)

// storeUsage is --store's help.
const storeUsage = `where the server keeps its state: "sqlite" (the default: files in --data, one node) or a PostgreSQL URL, postgres://USER:PASSWORD@HOST:5432/DB?sslmode=verify-full, which several nodes share (the password may also come from $PGPASSWORD or ~/.pgpass)`

// checkStore refuses a --store that is neither SQLite nor PostgreSQL.
func checkStore(store string) error {
	if store == "" || store == "sqlite" || sqldb.IsPostgres(store) {
		return nil
	}
	return fmt.Errorf("--store %q: want sqlite, or postgres://USER@HOST:PORT/DATABASE", sqldb.Redact(store))
}

// openServerStore opens the rendezvous server's store: assist.db in
// dataDir, or the PostgreSQL database of store.
func openServerStore(ctx context.Context, store, dataDir string) (*server.SQLStore, error) {
	if sqldb.IsPostgres(store) {
		return server.OpenPostgres(ctx, store)
	}
	return server.OpenSQLite(ctx, filepath.Join(dataDir, "assist.db"))
}

// openHubStore opens the messenger's store: messenger.sqlite in dataDir,
// or the PostgreSQL database of store.
func openHubStore(ctx context.Context, store, dataDir string) (*hub.SQLStore, error) {
	if sqldb.IsPostgres(store) {
		return hub.OpenPostgres(ctx, store)
	}
	return hub.OpenSQLite(ctx, filepath.Join(dataDir, "messenger.sqlite"))
}

// openPasskeyStore opens the passkeys: passkeys.sqlite in dataDir, or the
// PostgreSQL database of store.
func openPasskeyStore(ctx context.Context, store, dataDir string) (*passkey.SQLStore, error) {
	if sqldb.IsPostgres(store) {
		return passkey.OpenPostgres(ctx, store)
	}
	return passkey.OpenSQLite(ctx, filepath.Join(dataDir, "passkeys.sqlite"))
}
