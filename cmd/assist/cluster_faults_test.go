package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/assist-project/assist/messenger"
)

// Issue 14's faults beyond one node's loss: a three-server NATS cluster
// losing a server, the audit trail after a node's loss, and what clients
// are told while PostgreSQL is away.

// checkStoreAway fails the test unless err is the messenger's answer while
// its database is away: code unavailable (clients retry, as for the bus),
// and a message that says so in plain words.
func checkStoreAway(t *testing.T, what string, err error) {
	t.Helper()
	var e *messenger.Error
	if !errors.As(err, &e) || e.Code != messenger.CodeUnavailable || !strings.Contains(e.Message, "cannot reach its database") {
		t.Errorf("%s: %v; want code %s saying the server cannot reach its database", what, err, messenger.CodeUnavailable)
	}
}

// checkStoreAwayCLI runs `assist contacts` as u against srv while the
// database is away: it fails, and says why and what to do.
func checkStoreAwayCLI(t *testing.T, u *cliUser, srv *servedProc) {
	t.Helper()
	out, err := u.try(t, "contacts", "--server", srv.URL)
	if err == nil || !strings.Contains(out, "cannot reach its database: try again in a minute") {
		t.Errorf("assist contacts while PostgreSQL is down: %v, output %q; want a failure saying the server cannot reach its database", err, out)
	}
	t.Logf("assist contacts while PostgreSQL is down: %s", strings.TrimSpace(out))
}
