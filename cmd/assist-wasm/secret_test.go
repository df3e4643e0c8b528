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
