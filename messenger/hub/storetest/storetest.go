// Package storetest is the test suite every hub.Store implementation must
// pass: SQLite today, PostgreSQL next. Call Run from the
// implementation's tests with a function that opens a fresh, empty store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/messenger/hub"
)

// Run runs the suite; open returns a fresh, empty store and arranges (with
// t.Cleanup) to close it.
func Run(t *testing.T, open func(t *testing.T) hub.Store) {
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, open(t)) })
	t.Run("Contacts", func(t *testing.T) { testContacts(t, open(t)) })
	t.Run("Requests", func(t *testing.T) { testRequests(t, open(t)) })
	t.Run("FirstAnswerWins", func(t *testing.T) { testFirstAnswerWins(t, open(t)) })
}

var t0 = time.Unix(1_800_000_000, 0)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mustAccount(t *testing.T, s hub.Store, user string, k byte) hub.Device {
	t.Helper()
	d := hub.Device{ID: fmt.Sprintf("%-12s", user)[:12], User: user, Key: key(k), Name: "first", Created: t0}
	if err := s.CreateAccount(context.Background(), hub.Account{User: user, Display: "The " + user, Created: t0}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func testAccounts(t *testing.T, s hub.Store) {
	ctx := context.Background()
	d := mustAccount(t, s, "alice", 1)
	if err := s.CreateAccount(ctx, hub.Account{User: "alice", Display: "x", Created: t0}, hub.Device{ID: "other", Key: key(2), Name: "n", Created: t0}); !errors.Is(err, hub.ErrTaken) {
		t.Errorf("second alice: %v, want ErrTaken", err)
	}
	if err := s.CreateAccount(ctx, hub.Account{User: "bob", Display: "x", Created: t0}, hub.Device{ID: "bobdev", Key: key(1), Name: "n", Created: t0}); !errors.Is(err, hub.ErrTaken) {
		t.Errorf("bob with alice's key: %v, want ErrTaken", err)
	}
	if _, err := s.Account(ctx, "bob"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("bob after the failed creation: %v, want ErrNotFound (no half account)", err)
	}
	a, err := s.Account(ctx, "alice")
	if err != nil || a.Display != "The alice" || !a.Created.Equal(t0) {
		t.Errorf("Account = %+v, %v", a, err)
	}
	got, err := s.DeviceByKey(ctx, key(1))
	if err != nil || got.ID != d.ID || got.User != "alice" || len(got.CertSig) != 0 {
		t.Errorf("DeviceByKey = %+v, %v", got, err)
	}
	if _, err := s.DeviceByKey(ctx, key(9)); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("unknown key: %v", err)
	}
	linked := hub.Device{ID: "alice2", User: "alice", Key: key(3), Name: "laptop", CertSigner: key(1), CertSig: bytes.Repeat([]byte{7}, 64), Created: t0.Add(time.Second)}
	if err := s.AddDevice(ctx, linked); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDevice(ctx, hub.Device{ID: "x", User: "nobody", Key: key(4), Name: "n", Created: t0}); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("device of no account: %v", err)
	}
	if err := s.AddDevice(ctx, hub.Device{ID: "y", User: "alice", Key: key(3), Name: "n", Created: t0}); !errors.Is(err, hub.ErrTaken) {
		t.Errorf("known key again: %v", err)
	}
	ds, err := s.Devices(ctx, "alice")
	if err != nil || len(ds) != 2 || ds[1].ID != "alice2" || !bytes.Equal(ds[1].CertSigner, key(1)) || len(ds[1].CertSig) != 64 {
		t.Fatalf("Devices = %+v, %v", ds, err)
	}
	mustAccount(t, s, "bob", 5)
	if err := s.RemoveDevice(ctx, "bob", "alice2"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("bob removes alice's device: %v, want ErrNotFound", err)
	}
	if err := s.RemoveDevice(ctx, "alice", "alice2"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDevice(ctx, "alice", d.ID); !errors.Is(err, hub.ErrLastDevice) {
		t.Errorf("last device: %v, want ErrLastDevice", err)
	}
	if _, err := s.DeviceByKey(ctx, key(3)); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("removed device still found: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Error(err)
	}
}

func testContacts(t *testing.T, s hub.Store) {
	ctx := context.Background()
	for i, u := range []string{"alice", "bob", "carol"} {
		mustAccount(t, s, u, byte(i+1))
	}
	if err := s.AddContact(ctx, "alice", "bob", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.AddContact(ctx, "bob", "alice", t0); err != nil {
		t.Errorf("adding again: %v", err)
	}
	for _, c := range []struct {
		a, b string
		want bool
	}{{"alice", "bob", true}, {"bob", "alice", true}, {"alice", "carol", false}, {"carol", "bob", false}} {
		if got, err := s.IsContact(ctx, c.a, c.b); err != nil || got != c.want {
			t.Errorf("IsContact(%s, %s) = %v, %v", c.a, c.b, got, err)
		}
	}
	if cs, err := s.Contacts(ctx, "bob"); err != nil || len(cs) != 1 || cs[0].User != "alice" || cs[0].Display != "The alice" {
		t.Errorf("Contacts(bob) = %+v, %v", cs, err)
	}
	if cs, err := s.Contacts(ctx, "carol"); err != nil || len(cs) != 0 {
		t.Errorf("Contacts(carol) = %+v, %v", cs, err)
	}
	if err := s.RemoveContact(ctx, "carol", "alice"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("remove non-contact: %v", err)
	}
	was, err := s.Block(ctx, "bob", "alice", t0)
	if err != nil || !was {
		t.Errorf("Block = %v, %v; want true", was, err)
	}
	if ok, _ := s.IsContact(ctx, "alice", "bob"); ok {
		t.Error("still contacts after a block")
	}
	for _, pair := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		if b, err := s.EitherBlocked(ctx, pair[0], pair[1]); err != nil || !b {
			t.Errorf("EitherBlocked%v = %v, %v", pair, b, err)
		}
		if err := s.AddContact(ctx, pair[0], pair[1], t0); !errors.Is(err, hub.ErrBlocked) {
			t.Errorf("AddContact%v while blocked: %v", pair, err)
		}
	}
	if was, err := s.Block(ctx, "bob", "nobody-at-all", t0); err != nil || was {
		t.Errorf("blocking a name with no account: %v, %v", was, err)
	}
	if bl, err := s.Blocked(ctx, "bob"); err != nil || len(bl) != 2 || bl[0] != "alice" {
		t.Errorf("Blocked = %v, %v", bl, err)
	}
	if bl, err := s.Blocked(ctx, "carol"); err != nil || bl == nil || len(bl) != 0 {
		t.Errorf("Blocked(carol) = %#v, %v; want empty, not nil", bl, err)
	}
	if err := s.Unblock(ctx, "alice", "bob"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("alice unblocks bob, whom she never blocked: %v", err)
	}
	if err := s.Unblock(ctx, "bob", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddContact(ctx, "alice", "bob", t0); err != nil {
		t.Errorf("AddContact after unblock: %v", err)
	}
	if err := s.RemoveContact(ctx, "bob", "alice"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.IsContact(ctx, "alice", "bob"); ok {
		t.Error("still contacts after remove")
	}
}

func testRequests(t *testing.T, s hub.Store) {
	ctx := context.Background()
	r := hub.Request{ID: "r1", From: "alice", FromDevice: "d1", FromConn: "c1", To: "bob", Kind: "help", Created: t0, Expires: t0.Add(5 * time.Minute)}
	if err := s.PutRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRequest(ctx, hub.Request{ID: "r2", From: "alice", FromDevice: "d1", FromConn: "c1", To: "bob", Kind: "offer", Created: t0.Add(time.Second), Expires: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Request(ctx, "r1")
	if err != nil || got != r {
		t.Errorf("Request = %+v, %v; want %+v", got, err, r)
	}
	if p, err := s.PendingRequests(ctx, "bob", t0); err != nil || len(p) != 2 || p[0].ID != "r1" {
		t.Errorf("PendingRequests = %+v, %v", p, err)
	}
	if p, err := s.PendingRequests(ctx, "alice", t0); err != nil || len(p) != 0 {
		t.Errorf("PendingRequests(alice) = %+v, %v", p, err)
	}
	if n, err := s.CountOpenRequests(ctx, "alice", t0); err != nil || n != 2 {
		t.Errorf("CountOpenRequests = %d, %v", n, err)
	}
	exp, err := s.ExpireRequests(ctx, t0.Add(time.Minute))
	if err != nil || len(exp) != 1 || exp[0].ID != "r2" || exp[0].Closed != "expired" {
		t.Errorf("ExpireRequests = %+v, %v", exp, err)
	}
	if p, err := s.PendingRequests(ctx, "bob", t0); err != nil || len(p) != 1 {
		t.Errorf("PendingRequests after expiry = %+v, %v", p, err)
	}
	if _, err := s.CloseRequest(ctx, "r2", "answered"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("answering an expired request: %v", err)
	}
	c, err := s.CloseRequest(ctx, "r1", "cancelled")
	if err != nil || c.Closed != "cancelled" || c.To != "bob" {
		t.Errorf("CloseRequest = %+v, %v", c, err)
	}
	if n, err := s.DeleteClosedRequests(ctx, t0.Add(time.Hour)); err != nil || n != 2 {
		t.Errorf("DeleteClosedRequests = %d, %v", n, err)
	}
	if _, err := s.Request(ctx, "r1"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("deleted request: %v", err)
	}
}

// testFirstAnswerWins has many goroutines close one request: exactly one
// succeeds.
func testFirstAnswerWins(t *testing.T, s hub.Store) {
	ctx := context.Background()
	if err := s.PutRequest(ctx, hub.Request{ID: "r", From: "a", FromDevice: "d", FromConn: "c", To: "b", Kind: "help", Created: t0, Expires: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.CloseRequest(ctx, "r", "answered")
			if err != nil && !errors.Is(err, hub.ErrNotFound) {
				t.Error(err)
			}
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d answers won, want 1", wins)
	}
}
