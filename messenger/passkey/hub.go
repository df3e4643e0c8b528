package passkey

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/assist-project/assist/messenger/hub"
)

// HubAccounts is Accounts over the messenger hub's Store: the accounts and
// devices that /v1/messenger serves.
type HubAccounts struct {
	Store hub.Store
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func (a HubAccounts) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Exists implements Accounts.
func (a HubAccounts) Exists(ctx context.Context, user string) (bool, error) {
	_, err := a.Store.Account(ctx, user)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, hub.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("passkey: account %s: %w", user, err)
}

// Create implements Accounts.
func (a HubAccounts) Create(ctx context.Context, user, display string, key ed25519.PublicKey, device string) error {
	t := a.now()
	err := a.Store.CreateAccount(ctx, hub.Account{User: user, Display: display, Created: t},
		hub.Device{ID: deviceID(), User: user, Key: key, Name: device, Created: t})
	if errors.Is(err, hub.ErrTaken) {
		// The name or the key: say which.
		if _, kerr := a.Store.DeviceByKey(ctx, key); kerr == nil {
			return ErrKeyInUse
		}
		return ErrTaken
	}
	if err != nil {
		return fmt.Errorf("passkey: create account %s: %w", user, err)
	}
	return nil
}

// AddDevice implements Accounts. The device gets no certificate: no
// device of the account vouched for it, so contacts' devices refuse it for
// sessions until one does.
func (a HubAccounts) AddDevice(ctx context.Context, user string, key ed25519.PublicKey, device string) (bool, error) {
	d, err := a.Store.DeviceByKey(ctx, key)
	if err == nil {
		if d.User != user {
			return false, ErrKeyInUse
		}
		return false, nil
	}
	if !errors.Is(err, hub.ErrNotFound) {
		return false, fmt.Errorf("passkey: look up the device key: %w", err)
	}
	err = a.Store.AddDevice(ctx, hub.Device{ID: deviceID(), User: user, Key: key, Name: device, Created: a.now()})
	if errors.Is(err, hub.ErrTaken) {
		return false, ErrKeyInUse
	}
	if err != nil {
		return false, fmt.Errorf("passkey: add a device to %s: %w", user, err)
	}
	return true, nil
}

// Display implements Accounts.
func (a HubAccounts) Display(ctx context.Context, user string) (string, error) {
	acc, err := a.Store.Account(ctx, user)
	if err != nil {
		return "", fmt.Errorf("passkey: account %s: %w", user, err)
	}
	return acc.Display, nil
}

// deviceID is a device id in the hub's form: 12 of [a-z2-7], 60 random
// bits.
func deviceID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:12]
}
