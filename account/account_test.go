package account

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/pairing"
)

func TestCanonicalServer(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"https://assist.example", "https://assist.example"},
		{"https://assist.example:8443/", "https://assist.example:8443"},
		{" https://127.0.0.1:1234 ", "https://127.0.0.1:1234"},
		{"http://assist.example", ""},
		{"assist.example", ""},
		{"https://assist.example/path", ""},
		{"https://u:p@assist.example", ""},
		{"https://assist.example/?q=1", ""},
	} {
		got, err := canonicalServer(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("canonicalServer(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("canonicalServer(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestProbeFingerprint: the probe returns the fingerprint of the
// certificate the server really shows (a self-signed one here).
func TestProbeFingerprint(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	got, err := ProbeFingerprint(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	want := messenger.FormatFingerprint(sha256.Sum256(srv.Certificate().Raw))
	if got != want {
		t.Errorf("ProbeFingerprint = %s, want %s", got, want)
	}
}

func TestConnectNeedsLogin(t *testing.T) {
	dev, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Connect(context.Background(), ""); err != ErrNotLoggedIn {
		t.Fatalf("Connect before login = %v, want ErrNotLoggedIn", err)
	}
}

// TestSessionPassword: both sides of an accepted request derive the same
// password from their pinned keys; a peer whose key is not pinned is
// refused before any secret is derived.
func TestSessionPassword(t *testing.T) {
	ada, bob := newDevice(t, "ada"), newDevice(t, "bob")
	ada.pin(t, "bob", bob.PublicKey())
	bob.pin(t, "ada", ada.PublicKey())
	const sid = "r-abcdefghijklmnopqrstuvwxyz"
	accepted := func(user string, key ed25519.PublicKey) messenger.Message {
		return messenger.Message{Type: messenger.TypeAccepted, Session: sid,
			Peer: &messenger.Peer{User: user, Display: user, Device: messenger.Device{ID: "aaaaaaaaaaaa", Key: messenger.B64(key), Name: "d"}}}
	}
	ctx := context.Background()
	pa, err := ada.SessionPassword(ctx, nil, accepted("bob", bob.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := bob.SessionPassword(ctx, nil, accepted("ada", ada.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	if pa != pb || pa == "" {
		t.Fatalf("passwords differ: %q %q", pa, pb)
	}
	// A peer this device never paired with.
	eve := newDevice(t, "eve")
	if _, err := ada.SessionPassword(ctx, nil, accepted("carol", eve.PublicKey())); err == nil || !strings.Contains(err.Error(), "no key pinned") {
		t.Fatalf("peer never paired: %v, want a refusal", err)
	}

	// The server names eve's device as bob's: refused.
	bobsDevices := []messenger.Device{{ID: "bbbbbbbbbbbb", Key: messenger.B64(bob.PublicKey()), Name: "first"}}
	lister := fakeLister{{User: "bob", Display: "Bob", State: "online", Devices: bobsDevices}}
	if _, err := ada.SessionPassword(ctx, &lister, accepted("bob", eve.PublicKey())); !errors.Is(err, pairing.ErrUntrusted) {
		t.Fatalf("substituted key: %v, want ErrUntrusted", err)
	}
	// ... even when the server adds it to bob's devices with a certificate
	// that eve made herself.
	forged := messenger.Device{ID: "cccccccccccc", Key: messenger.B64(eve.PublicKey()), Name: "eve",
		Cert: &messenger.Cert{Signer: messenger.B64(eve.PublicKey()), Sig: pairing.SignDevice(eve.key, "bob", eve.PublicKey())}}
	lister[0].Devices = append(bobsDevices, forged)
	if _, err := ada.SessionPassword(ctx, &lister, accepted("bob", eve.PublicKey())); !errors.Is(err, pairing.ErrUntrusted) {
		t.Fatalf("self-certified key: %v, want ErrUntrusted", err)
	}

	// Bob's second device, certified by the first (pinned) one: accepted,
	// and both sides agree.
	bob2 := newDevice(t, "bob")
	linked := messenger.Device{ID: "dddddddddddd", Key: messenger.B64(bob2.PublicKey()), Name: "laptop",
		Cert: &messenger.Cert{Signer: messenger.B64(bob.PublicKey()), Sig: pairing.SignDevice(bob.key, "bob", bob2.PublicKey())}}
	lister[0].Devices = append(bobsDevices, linked)
	pa2, err := ada.SessionPassword(ctx, &lister, accepted("bob", bob2.PublicKey()))
	if err != nil {
		t.Fatalf("certified device: %v", err)
	}
	bob2.pin(t, "ada", ada.PublicKey())
	pb2, err := bob2.SessionPassword(ctx, nil, accepted("ada", ada.PublicKey()))
	if err != nil || pb2 != pa2 || pa2 == pa {
		t.Fatalf("certified device: passwords %q and %q (%v); the first device's was %q", pa2, pb2, err, pa)
	}
}

type fakeLister []messenger.Contact

func (f *fakeLister) Contacts(context.Context) ([]messenger.Contact, []string, error) {
	return *f, nil, nil
}

type testDevice struct{ *Device }

func newDevice(t *testing.T, user string) testDevice {
	t.Helper()
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := *d.cfg
	cfg.Server, cfg.User, cfg.Display = "https://x", user, user
	if err := d.save(&cfg); err != nil {
		t.Fatal(err)
	}
	return testDevice{d}
}

func (d testDevice) pin(t *testing.T, user string, key ed25519.PublicKey) {
	t.Helper()
	cfg := *d.cfg
	cfg.Pin(user, user, key)
	if err := d.save(&cfg); err != nil {
		t.Fatal(err)
	}
}

func TestCheckRole(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		asker bool
		role  string
		ok    bool
	}{
		{messenger.KindHelp, true, messenger.RoleNovice, true},
		{messenger.KindHelp, true, messenger.RoleExpert, false},
		{messenger.KindHelp, false, messenger.RoleExpert, true},
		{messenger.KindHelp, false, messenger.RoleNovice, false},
		{messenger.KindOffer, true, messenger.RoleExpert, true},
		{messenger.KindOffer, true, messenger.RoleNovice, false},
		{messenger.KindOffer, false, messenger.RoleNovice, true},
		{messenger.KindOffer, false, messenger.RoleExpert, false},
		{messenger.KindHelp, true, "", false},
	} {
		err := CheckRole(messenger.Message{Role: tc.role}, tc.kind, tc.asker)
		if (err == nil) != tc.ok {
			t.Errorf("CheckRole(role %q, kind %s, asker %v) = %v, want ok=%v", tc.role, tc.kind, tc.asker, err, tc.ok)
		}
	}
}
