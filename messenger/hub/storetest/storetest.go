// Package storetest is the test suite every hub.Store implementation must
// pass, on SQLite and on PostgreSQL. Call Run from the
// implementation's tests with a function that opens a fresh, empty store.
package storetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/messenger/hub"
)

// Run runs the suite; open returns a fresh, empty store and arranges (with
// t.Cleanup) to close it.
func Run(t *testing.T, open func(t *testing.T) hub.Store) {
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, open(t)) })
	t.Run("Contacts", func(t *testing.T) { testContacts(t, open(t)) })
	t.Run("Requests", func(t *testing.T) { testRequests(t, open(t)) })
	t.Run("FirstAnswerWins", func(t *testing.T) { testFirstAnswerWins(t, open(t)) })
	runExtras(t, open)
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

// RunNodes runs the tests of several servers sharing one database: open
// returns two stores on one fresh database, as two nodes would open it.
// Each decision (first answer, contact against block, the audit chain's
// next entry) must hold across them.
func RunNodes(t *testing.T, open func(t *testing.T) (hub.Store, hub.Store)) {
	t.Run("FirstAnswerWinsAcrossNodes", func(t *testing.T) { testFirstAnswerAcross(t, open) })
	t.Run("BlockAgainstContact", func(t *testing.T) { testBlockRace(t, open) })
	t.Run("AuditAppendAcrossNodes", func(t *testing.T) { testAuditAcross(t, open) })
	t.Run("LastDeviceAcrossNodes", func(t *testing.T) { testLastDeviceRace(t, open) })
}

// Orgs, OIDC and the audit trail, for stores that keep them.
func runExtras(t *testing.T, open func(t *testing.T) hub.Store) {
	t.Run("Orgs", func(t *testing.T) {
		s, ok := open(t).(orgStore)
		if !ok {
			t.Skip("the store keeps no organisations")
		}
		testOrgs(t, s)
	})
	t.Run("OIDC", func(t *testing.T) {
		s, ok := open(t).(oidcStore)
		if !ok {
			t.Skip("the store keeps no OpenID providers")
		}
		testOIDC(t, s)
	})
	t.Run("Audit", func(t *testing.T) {
		s, ok := open(t).(auditStore)
		if !ok {
			t.Skip("the store keeps no audit trail")
		}
		testAudit(t, s)
	})
}

type orgStore interface {
	hub.Store
	hub.OrgStore
}

type oidcStore interface {
	orgStore
	hub.OIDCStore
}

type auditStore interface {
	orgStore
	hub.AuditStore
}

func testOrgs(t *testing.T, s orgStore) {
	ctx := context.Background()
	p := hub.DefaultPolicy()
	p.Record = true
	if err := s.CreateOrg(ctx, hub.Org{Name: "acme", Display: "ACME", Policy: p, Created: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOrg(ctx, hub.Org{Name: "acme", Display: "x", Policy: p, Created: t0}); !errors.Is(err, hub.ErrTaken) {
		t.Errorf("second acme: %v, want ErrTaken", err)
	}
	o, err := s.Org(ctx, "acme")
	if err != nil || o.Display != "ACME" || !o.Policy.Record || len(o.Policy.Rights) != len(p.Rights) || !o.Created.Equal(t0) {
		t.Errorf("Org = %+v, %v", o, err)
	}
	if _, err := s.Org(ctx, "none"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("Org(none): %v", err)
	}
	p.Record, p.Timeout, p.AuditKey = false, 30, "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	if err := s.SetPolicy(ctx, "acme", p); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPolicy(ctx, "none", p); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("SetPolicy(none): %v", err)
	}
	if o, _ := s.Org(ctx, "acme"); o.Policy.Record || o.Policy.Timeout != 30 || o.Policy.AuditKey != p.AuditKey {
		t.Errorf("after SetPolicy: %+v", o.Policy)
	}
	if err := s.SetRole(ctx, "acme", "alice", "admin"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRole(ctx, "acme", "alice", "helper"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRole(ctx, "none", "alice", "helper"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("SetRole in no organisation: %v", err)
	}
	if r, err := s.Roles(ctx, "alice"); err != nil || len(r) != 1 || r["acme"] != "helper" {
		t.Errorf("Roles = %v, %v", r, err)
	}
	if err := s.SetRole(ctx, "acme", "bob", ""); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("removing a non-member: %v", err)
	}
	h := hub.TokenHash("tok")
	if err := s.AddToken(ctx, "none", h, 1, t0.Add(time.Hour), t0); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("token of no organisation: %v", err)
	}
	if err := s.AddToken(ctx, "acme", h, 1, t0.Add(time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	dev := func(id string, k byte) hub.Device {
		return hub.Device{ID: id, Key: key(k), Name: "pc-" + id, Created: t0}
	}
	if _, err := s.Enrol(ctx, h, hub.Account{User: "m1", Display: "Nina", Created: t0}, dev("m1dev", 20), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enrol(ctx, h, hub.Account{User: "m2", Display: "x", Created: t0}, dev("m2dev", 21), t0); !errors.Is(err, hub.ErrExpired) {
		t.Errorf("second enrolment with a one-use token: %v, want ErrExpired", err)
	}
	if org, err := s.MachineOrg(ctx, "m1"); err != nil || org != "acme" {
		t.Errorf("MachineOrg = %q, %v", org, err)
	}
	if _, err := s.MachineOrg(ctx, "alice"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("MachineOrg of a person: %v", err)
	}
	if ms, err := s.Machines(ctx, "acme"); err != nil || len(ms) != 1 || ms[0].Name != "pc-m1dev" || ms[0].Display != "Nina" {
		t.Errorf("Machines = %+v, %v", ms, err)
	}
}

// testOIDC: an organisation's OpenID provider and its links, per
// organisation, issuer and subject.
func testOIDC(t *testing.T, s oidcStore) {
	ctx := context.Background()
	p := hub.OIDC{Issuer: "https://id.example", ClientID: "c", SecretFile: "/etc/secret", Claim: "email"}
	if err := s.SetOIDC(ctx, "acme", p); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("SetOIDC without the organisation: %v", err)
	}
	if err := s.CreateOrg(ctx, hub.Org{Name: "acme", Display: "ACME", Policy: hub.DefaultPolicy(), Created: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OIDC(ctx, "acme"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("OIDC before: %v", err)
	}
	if err := s.SetOIDC(ctx, "acme", p); err != nil {
		t.Fatal(err)
	}
	p.ClientID = "c2"
	if err := s.SetOIDC(ctx, "acme", p); err != nil {
		t.Fatal(err)
	}
	if got, err := s.OIDC(ctx, "acme"); got != p || err != nil {
		t.Errorf("OIDC = %+v, %v; want %+v", got, err, p)
	}
	if err := s.LinkOIDC(ctx, "acme", p.Issuer, "sub1", "alice"); err != nil {
		t.Fatal(err)
	}
	// A link is per organisation, issuer and subject.
	for _, tc := range []struct {
		org, issuer, subject, want string
	}{
		{"acme", p.Issuer, "sub1", "alice"},
		{"acme", "https://other.example", "sub1", ""},
		{"other", p.Issuer, "sub1", ""},
		{"acme", p.Issuer, "sub2", ""},
	} {
		got, err := s.OIDCUser(ctx, tc.org, tc.issuer, tc.subject)
		if tc.want == "" && !errors.Is(err, hub.ErrNotFound) || tc.want != "" && (got != tc.want || err != nil) {
			t.Errorf("OIDCUser(%s, %s, %s) = %q, %v; want %q", tc.org, tc.issuer, tc.subject, got, err, tc.want)
		}
	}
	if err := s.LinkOIDC(ctx, "acme", p.Issuer, "sub1", "bob"); err != nil {
		t.Fatal(err)
	}
	if u, err := s.OIDCUser(ctx, "acme", p.Issuer, "sub1"); u != "bob" || err != nil {
		t.Errorf("OIDCUser = %q, %v", u, err)
	}
	if err := s.LinkOIDC(ctx, "acme", p.Issuer, "sub1", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkOIDC(ctx, "acme", p.Issuer, "sub1", ""); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("unlink again: %v", err)
	}
	if _, err := s.OIDCUser(ctx, "acme", p.Issuer, "sub1"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("after unlink: %v", err)
	}
}

func testAudit(t *testing.T, s auditStore) {
	ctx := context.Background()
	if err := s.CreateOrg(ctx, hub.Org{Name: "acme", Display: "ACME", Policy: hub.DefaultPolicy(), Created: t0}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	r := audit.NewRecorder(st.Chain(key), audit.PartyServer, nil)
	r.Start("Nova", "Dana", "Nova-PC", "relay-udp")
	r.End("over")
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if rep, err := st.VerifyChain(ctx, pub); err != nil || rep.Entries != 2 {
		t.Errorf("VerifyChain = %+v, %v", rep, err)
	}
	if found, err := st.Search(ctx, audit.Query{Text: "nova-pc"}); err != nil || len(found) != 2 {
		t.Errorf("case-insensitive search: %d, %v", len(found), err)
	}
	if found, err := st.Search(ctx, audit.Query{Text: "_"}); err != nil || len(found) != 0 {
		t.Errorf("a wildcard matched %d, %v", len(found), err)
	}
	if err := s.LinkAuditChain(ctx, pub, "acme", "m1"); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkAuditChain(ctx, pub, "acme", "m1"); err != nil {
		t.Errorf("linking again: %v", err)
	}
	if cs, err := s.AuditChains(ctx, "acme"); err != nil || len(cs) != 1 || cs[0].User != "m1" || !bytes.Equal(cs[0].Chain, pub) {
		t.Errorf("AuditChains = %+v, %v", cs, err)
	}
	for _, seq := range []uint64{1, 2, 2} {
		if err := s.MarkServerEntry(ctx, seq, "acme"); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := s.ServerEntries(ctx, "acme"); err != nil || len(m) != 2 || !m[1] || !m[2] {
		t.Errorf("ServerEntries = %v, %v", m, err)
	}
	if err := s.SetRetention(ctx, "acme", 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRetention(ctx, "none", time.Hour); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("retention of no organisation: %v", err)
	}
	if m, err := s.Retentions(ctx); err != nil || m["acme"] != 30*24*time.Hour {
		t.Errorf("Retentions = %v, %v", m, err)
	}
}

// testFirstAnswerAcross: two nodes answer one request at once: one wins.
func testFirstAnswerAcross(t *testing.T, open func(t *testing.T) (hub.Store, hub.Store)) {
	a, b := open(t)
	ctx := context.Background()
	for round := 0; round < 5; round++ {
		id := fmt.Sprintf("r%d", round)
		if err := a.PutRequest(ctx, hub.Request{ID: id, From: "a", FromDevice: "d", FromConn: "c", To: "b", Kind: "help", Created: t0, Expires: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.CloseRequest(ctx, id, "answered")
				if err == nil {
					wins.Add(1)
				} else if !errors.Is(err, hub.ErrNotFound) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d answers won, want 1", round, n)
		}
	}
}

// testBlockRace: one node adds a contact while another blocks: they
// never end up both contacts and blocked.
func testBlockRace(t *testing.T, open func(t *testing.T) (hub.Store, hub.Store)) {
	a, b := open(t)
	ctx := context.Background()
	mustAccount(t, a, "alice", 1)
	mustAccount(t, a, "bob", 2)
	for round := 0; round < 10; round++ {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := a.AddContact(ctx, "alice", "bob", t0); err != nil && !errors.Is(err, hub.ErrBlocked) {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := b.Block(ctx, "bob", "alice", t0); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if c, err := a.IsContact(ctx, "alice", "bob"); err != nil || c {
			t.Fatalf("round %d: contacts while blocked (%v, %v)", round, c, err)
		}
		if err := b.Unblock(ctx, "bob", "alice"); err != nil {
			t.Fatal(err)
		}
	}
}

// testLastDeviceRace: two nodes remove an account's two devices at once:
// one device stays.
func testLastDeviceRace(t *testing.T, open func(t *testing.T) (hub.Store, hub.Store)) {
	a, b := open(t)
	ctx := context.Background()
	for round := 0; round < 5; round++ {
		user := fmt.Sprintf("u%d", round)
		first := mustAccount(t, a, user, byte(100+2*round))
		second := hub.Device{ID: user + "-2", User: user, Key: key(byte(101 + 2*round)), Name: "second", Created: t0}
		if err := a.AddDevice(ctx, second); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i, s := range []hub.Store{a, b} {
			id := []string{first.ID, second.ID}[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.RemoveDevice(ctx, user, id); err != nil && !errors.Is(err, hub.ErrLastDevice) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if ds, err := a.Devices(ctx, user); err != nil || len(ds) != 1 {
			t.Fatalf("round %d: %d devices left (%v), want 1", round, len(ds), err)
		}
	}
}

// testAuditAcross: two nodes append to the server's one chain at once:
// every entry is kept, numbered once, and the chain verifies.
func testAuditAcross(t *testing.T, open func(t *testing.T) (hub.Store, hub.Store)) {
	a, b := open(t)
	ctx := context.Background()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	const each = 10
	var wg sync.WaitGroup
	for _, s := range []hub.Store{a, b} {
		as, ok := s.(hub.AuditStore)
		if !ok {
			t.Skip("the store keeps no audit trail")
		}
		st, err := as.Audit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		chain := st.Chain(key)
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := audit.NewRecorder(chain, audit.PartyServer, nil)
				for i := 0; i < each/2; i++ {
					r.Start("Nova", "Dana", "pc", "direct")
				}
				if err := r.Err(); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	st, err := a.(hub.AuditStore).Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := st.VerifyChain(ctx, key.Public().(ed25519.PublicKey))
	if err != nil || rep.Entries != 2*each {
		t.Fatalf("chain after concurrent appends: %+v, %v; want %d entries", rep, err, 2*each)
	}
}
