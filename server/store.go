package server

import (
	"context"
	"errors"
	"time"
)

// Store keeps what must survive a restart of the server: registered
// invitations, the TURN shared secret and the audit log. Live connections
// and pairings are not stored; clients reconnect and register again.
// Implementations are safe for concurrent use.
type Store interface {
	// PutInvitation records inv, replacing an invitation with the same ID
	// but keeping its Created time. A stored invitation that has an Owner
	// and has not expired at inv.Created is replaced only by one with the
	// same Owner; otherwise PutInvitation returns an error wrapping
	// ErrOwned and changes nothing.
	PutInvitation(ctx context.Context, inv Invitation) error
	// Invitation returns the invitation with this id, or an error wrapping
	// ErrNotFound.
	Invitation(ctx context.Context, id string) (Invitation, error)
	// DeleteExpired forgets invitations that expired before t and audit
	// events older than auditBefore, returning how many invitations went.
	DeleteExpired(ctx context.Context, t, auditBefore time.Time) (int, error)
	// Seen records that the novices of these invitations were connected
	// at t (ids not stored are skipped).
	Seen(ctx context.Context, ids []string, t time.Time) error
	// DeleteUnseen forgets invitations whose novice was last connected
	// before t, returning how many went.
	DeleteUnseen(ctx context.Context, t time.Time) (int, error)
	// TURNSecret returns the shared secret for TURN REST credentials,
	// creating a random one the first time.
	TURNSecret(ctx context.Context) (string, error)
	// Audit appends an event to the audit log.
	Audit(ctx context.Context, e Event) error
	// Events returns the audit events at or after since, oldest first, at
	// most limit of them.
	Events(ctx context.Context, since time.Time, limit int) ([]Event, error)
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	Close() error
}

// ErrNotFound is wrapped by Store errors for missing records.
var ErrNotFound = errors.New("not found")

// ErrOwned is wrapped by PutInvitation's error when a live invitation with
// the same ID belongs to another agent.
var ErrOwned = errors.New("invitation id owned by another agent")

// Invitation is a registered invitation as the server knows it: only its
// look-up id and lifetime, never its password.
type Invitation struct {
	ID      string
	Expires time.Time
	Created time.Time
	// Seen is when its novice was last known to be connected; zero for
	// invitations stored before the server recorded it.
	Seen time.Time
	// Owner is the SHA-256 of the secret its agent registered it with
	// (Signal.Owner), or nil: a novice that is away cannot have its id
	// taken over by someone else before it expires.
	Owner []byte
}

// Event is one entry of the audit log. It never holds signalling payloads.
type Event struct {
	Time    time.Time
	Kind    string // e.g. "register", "pair", "bye", "peer-left"
	ID      string // invitation id, if any
	Session string // session id, if any
	Detail  string // e.g. the bye reason
}

// Audit event kinds.
const (
	EventRegister = "register"
	EventPair     = "pair"
	EventBye      = "bye"
	EventPeerLeft = "peer-left"
)
