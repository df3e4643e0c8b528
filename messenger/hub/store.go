package hub

import (
	"context"
	"errors"
	"time"
)

// Errors of a Store (wrapped).
var (
	// ErrNotFound: no such account, device, contact, block or open
	// request (or not the caller's).
	ErrNotFound = errors.New("not found")
	// ErrTaken: the user name or device key exists already.
	ErrTaken = errors.New("taken")
	// ErrLastDevice: the device is its account's only one.
	ErrLastDevice = errors.New("the account's only device")
	// ErrBlocked: one of the two users blocked the other.
	ErrBlocked = errors.New("blocked")
)

// Account is a user.
type Account struct {
	User    string
	Display string
	Created time.Time
}

// Device is one device key of an account. CertSigner and CertSig are
// empty for the account's first device.
type Device struct {
	ID         string
	User       string
	Key        []byte // Ed25519 public key, 32 bytes
	Name       string
	CertSigner []byte
	CertSig    []byte
	Created    time.Time
}

// Request is a request for help (or an offer) from one user's connection
// to another user.
type Request struct {
	ID         string
	From       string // user
	FromDevice string
	FromConn   string // the asking connection's id (see Bus)
	To         string
	Kind       string
	Created    time.Time
	Expires    time.Time
	// Closed is "" while open, else the reason it closed.
	Closed string
}

// Store keeps the messenger's accounts, devices, contacts, blocks and
// requests. Implementations must be safe for concurrent use; every method
// that decides something (CreateAccount, AddDevice, AddContact,
// CloseRequest, ...) must decide it atomically, as several servers may
// share one store. storetest.Run (package messenger/hub/storetest) is the
// suite every implementation must pass.
type Store interface {
	// CreateAccount creates the account a with its first device d
	// (ErrTaken if the user or the key exists).
	CreateAccount(ctx context.Context, a Account, d Device) error
	// Account returns the account of user (ErrNotFound).
	Account(ctx context.Context, user string) (Account, error)
	// DeviceByKey returns the device with this public key (ErrNotFound).
	DeviceByKey(ctx context.Context, key []byte) (Device, error)
	// Devices lists user's devices, oldest first.
	Devices(ctx context.Context, user string) ([]Device, error)
	// AddDevice adds a device to an existing account (ErrNotFound if
	// there is none, ErrTaken if the key or id exists).
	AddDevice(ctx context.Context, d Device) error
	// RemoveDevice removes user's device id (ErrNotFound if user has no
	// such device; ErrLastDevice if it is the only one).
	RemoveDevice(ctx context.Context, user, id string) error

	// AddContact makes a and b contacts of each other (ErrBlocked if
	// either blocked the other; adding existing contacts is no error).
	AddContact(ctx context.Context, a, b string, t time.Time) error
	// RemoveContact ends the contact both ways (ErrNotFound if none).
	RemoveContact(ctx context.Context, a, b string) error
	// Contacts lists user's contacts, by name.
	Contacts(ctx context.Context, user string) ([]Account, error)
	// IsContact reports whether a and b are contacts.
	IsContact(ctx context.Context, a, b string) (bool, error)
	// Block records that user blocks other and removes their contact,
	// in one step; it reports whether they were contacts.
	Block(ctx context.Context, user, other string, t time.Time) (wasContact bool, err error)
	// Unblock lifts user's block of other (ErrNotFound if none).
	Unblock(ctx context.Context, user, other string) error
	// Blocked lists the users user blocked, by name.
	Blocked(ctx context.Context, user string) ([]string, error)
	// EitherBlocked reports whether a blocked b or b blocked a.
	EitherBlocked(ctx context.Context, a, b string) (bool, error)

	// PutRequest stores a new open request.
	PutRequest(ctx context.Context, r Request) error
	// Request returns a request, open or closed (ErrNotFound).
	Request(ctx context.Context, id string) (Request, error)
	// PendingRequests lists the open requests to user that expire after
	// now, oldest first.
	PendingRequests(ctx context.Context, to string, now time.Time) ([]Request, error)
	// CountOpenRequests counts the open requests from user that expire
	// after now.
	CountOpenRequests(ctx context.Context, from string, now time.Time) (int, error)
	// CloseRequest closes an open request with reason, atomically: of
	// two calls for one request exactly one succeeds, the other gets
	// ErrNotFound (as does a request that is not open).
	CloseRequest(ctx context.Context, id, reason string) (Request, error)
	// ExpireRequests closes the open requests that expire at or before
	// now with reason "expired" and returns them.
	ExpireRequests(ctx context.Context, now time.Time) ([]Request, error)
	// DeleteClosedRequests forgets requests closed or expired before t.
	DeleteClosedRequests(ctx context.Context, t time.Time) (int, error)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}
