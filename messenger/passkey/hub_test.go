package passkey

import (
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"testing"

	"github.com/assist-project/assist/messenger/hub"
)

// TestHubAccounts: the passkey service's accounts over the messenger's own
// store: the devices it adds are the ones /v1/messenger logs in.
func TestHubAccounts(t *testing.T) {
	ctx := t.Context()
	store, err := hub.OpenSQLite(ctx, filepath.Join(t.TempDir(), "messenger.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a := HubAccounts{Store: store}
	k1, _, _ := newKey(t)
	k2, _, _ := newKey(t)
	k3, _, _ := newKey(t)

	if ok, err := a.Exists(ctx, "alice"); ok || err != nil {
		t.Fatalf("Exists before: %v %v", ok, err)
	}
	if err := a.Create(ctx, "alice", "Alice A", k1, "Chrome on Linux"); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Exists(ctx, "alice"); !ok || err != nil {
		t.Errorf("Exists after: %v %v", ok, err)
	}
	if d, err := a.Display(ctx, "alice"); d != "Alice A" || err != nil {
		t.Errorf("Display: %q %v", d, err)
	}
	if err := a.Create(ctx, "alice", "Mallory", k2, "x"); !errors.Is(err, ErrTaken) {
		t.Errorf("a second alice: %v, want ErrTaken", err)
	}
	if err := a.Create(ctx, "bob", "Bob", k1, "x"); !errors.Is(err, ErrKeyInUse) {
		t.Errorf("bob with alice's key: %v, want ErrKeyInUse", err)
	}
	if err := a.Create(ctx, "bob", "Bob", k3, "x"); err != nil {
		t.Fatal(err)
	}
	if added, err := a.AddDevice(ctx, "alice", k2, "Laptop"); !added || err != nil {
		t.Errorf("AddDevice: %v %v", added, err)
	}
	if added, err := a.AddDevice(ctx, "alice", k2, "Laptop"); added || err != nil {
		t.Errorf("AddDevice again: %v %v, want nothing added", added, err)
	}
	if _, err := a.AddDevice(ctx, "alice", k3, "x"); !errors.Is(err, ErrKeyInUse) {
		t.Errorf("alice adds bob's key: %v, want ErrKeyInUse", err)
	}
	devs, err := store.Devices(ctx, "alice")
	if err != nil || len(devs) != 2 {
		t.Fatalf("alice's devices: %v %v", devs, err)
	}
	if !ed25519.PublicKey(devs[1].Key).Equal(k2) || devs[1].CertSigner != nil || devs[1].Name != "Laptop" || len(devs[1].ID) != 12 {
		t.Errorf("the added device: %+v, want k2 without a certificate, named Laptop, a 12-letter id", devs[1])
	}
}
