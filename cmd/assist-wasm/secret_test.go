//go:build !(js && wasm)

package main

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/pairing"
)

func TestSessionSecret(t *testing.T) {
	_, me, _ := ed25519.GenerateKey(nil)
	bobPub, bob, _ := ed25519.GenerateKey(nil)
	laptopPub, laptop, _ := ed25519.GenerateKey(nil)
	cert := pairing.SignDevice(bob, "bob", laptopPub)
	const sid = "r-abcdefghijklmnopqrstuvwxyz"
	req := func(key ed25519.PublicKey, pinned []ed25519.PublicKey, devices []messenger.Device) []byte {
		r := secretRequest{User: "bob", Key: messenger.B64(key), Devices: devices, Session: sid}
		for _, p := range pinned {
			r.Pinned = append(r.Pinned, messenger.B64(p))
		}
		b, _ := json.Marshal(r)
		return b
	}
	mePub := me.Public().(ed25519.PublicKey)
	wantBob, _ := pairing.SessionSecret(bob, mePub, sid)
	wantLaptop, _ := pairing.SessionSecret(laptop, mePub, sid)
	certified := []messenger.Device{{ID: "1", Key: messenger.B64(bobPub), Name: "desk"},
		{ID: "2", Key: messenger.B64(laptopPub), Name: "laptop", Cert: &messenger.Cert{Signer: messenger.B64(bobPub), Sig: cert}}}
	forged := []messenger.Device{{ID: "2", Key: messenger.B64(laptopPub), Name: "laptop", Cert: &messenger.Cert{Signer: messenger.B64(bobPub), Sig: make([]byte, 64)}}}
	for _, c := range []struct {
		name string
		req  []byte
		want string // the secret, or a piece of the error
		ok   bool
	}{
		{"pinned", req(bobPub, []ed25519.PublicKey{bobPub}, nil), wantBob, true},
		{"certified by a pinned key", req(laptopPub, []ed25519.PublicKey{bobPub}, certified), wantLaptop, true},
		{"forged certificate", req(laptopPub, []ed25519.PublicKey{bobPub}, forged), "not one you confirmed", false},
		{"nothing pinned here", req(bobPub, nil, nil), "not added as a contact in this browser", false},
		{"another key", req(laptopPub, []ed25519.PublicKey{bobPub}, nil), "not one you confirmed", false},
	} {
		got, err := sessionSecret(me, c.req)
		if c.ok && (err != nil || got != c.want) {
			t.Errorf("%s: %q, %v; want the peer's secret", c.name, got, err)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %q, %v; want an error with %q", c.name, got, err, c.want)
		}
	}
}

// TestOrgSessionSecret: in an organisation's session the page derives the
// same password as the machine, from the key the server named; a request
// without a key or a session is refused.
func TestOrgSessionSecret(t *testing.T) {
	helperPub, helper, _ := ed25519.GenerateKey(nil)
	machinePub, machine, _ := ed25519.GenerateKey(nil)
	const sid = "r-abcdefghijklmnopqrstuvwxyz"
	req, _ := json.Marshal(orgSecretRequest{Key: messenger.B64(machinePub), Session: sid})
	got, err := orgSessionSecret(helper, req)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pairing.SessionSecret(machine, helperPub, sid)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || got == "" {
		t.Fatalf("the helper's password %q, the machine's %q", got, want)
	}
	for _, bad := range []string{
		`{"session":"` + sid + `"}`,
		`{"key":"` + string(mustJSON(t, messenger.B64(machinePub[:5]))) + `","session":"` + sid + `"}`,
		`not json`,
	} {
		if _, err := orgSessionSecret(helper, []byte(bad)); err == nil {
			t.Errorf("request %s accepted", bad)
		}
	}
	noSession, _ := json.Marshal(orgSecretRequest{Key: messenger.B64(machinePub)})
	if _, err := orgSessionSecret(helper, noSession); err == nil || !strings.Contains(err.Error(), "session") {
		t.Errorf("a request without a session: %v", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b[1 : len(b)-1] // without the quotes
}
