package pairing

import (
	"crypto/ed25519"
	"errors"
	"testing"
)

func TestTrusted(t *testing.T) {
	type key struct {
		priv ed25519.PrivateKey
		pub  ed25519.PublicKey
	}
	mk := func(seed byte) key {
		_, p := info(t, seed, "x", "X")
		return key{p, p.Public().(ed25519.PublicKey)}
	}
	first, second, third, stranger := mk(1), mk(2), mk(3), mk(9)
	cert := func(signer, k key, user string) Device {
		return Device{Key: k.pub, Signer: signer.pub, Sig: SignDevice(signer.priv, user, k.pub)}
	}
	bad := cert(first, second, "bob")
	bad.Sig = append([]byte(nil), bad.Sig...)
	bad.Sig[0] ^= 1
	for _, tc := range []struct {
		name    string
		key     key
		pinned  []key
		devices []Device
		ok      bool
	}{
		{"pinned", first, []key{first}, nil, true},
		{"pinned, among others", second, []key{first, second}, nil, true},
		{"nothing pinned", first, nil, []Device{{Key: first.pub}}, false},
		{"certified by a pinned key", second, []key{first}, []Device{{Key: first.pub}, cert(first, second, "bob")}, true},
		{"chain of two", third, []key{first}, []Device{cert(second, third, "bob"), cert(first, second, "bob")}, true},
		{"chain broken: middle device not listed", third, []key{first}, []Device{cert(second, third, "bob")}, false},
		{"signed by a stranger", second, []key{first}, []Device{cert(stranger, second, "bob")}, false},
		{"self-signed", second, []key{first}, []Device{cert(second, second, "bob")}, false},
		{"certificate for another account", second, []key{first}, []Device{cert(first, second, "eve")}, false},
		{"altered signature", second, []key{first}, []Device{bad}, false},
		{"certificate of another key", third, []key{first}, []Device{{Key: third.pub, Signer: first.pub, Sig: SignDevice(first.priv, "bob", second.pub)}}, false},
		{"cycle without a pinned key", second, []key{first}, []Device{cert(third, second, "bob"), cert(second, third, "bob")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pinned []ed25519.PublicKey
			for _, k := range tc.pinned {
				pinned = append(pinned, k.pub)
			}
			err := Trusted("bob", tc.key.pub, pinned, tc.devices)
			if tc.ok != (err == nil) {
				t.Fatalf("Trusted = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrUntrusted) {
				t.Fatalf("error %v does not wrap ErrUntrusted", err)
			}
		})
	}
}

func TestVerifyDevice(t *testing.T) {
	_, a := info(t, 1, "a", "A")
	b, _ := info(t, 2, "b", "B")
	sig := SignDevice(a, "bob", b.Key)
	apub := a.Public().(ed25519.PublicKey)
	if !VerifyDevice(apub, "bob", b.Key, sig) {
		t.Fatal("a fresh certificate does not verify")
	}
	// The 0x00 after the user name keeps "bo"+"b..." apart from "bob"+"...".
	if VerifyDevice(apub, "bo", b.Key, sig) || VerifyDevice(apub, "bob", b.Key, sig[:10]) || VerifyDevice(apub[:5], "bob", b.Key, sig) {
		t.Error("a wrong certificate verifies")
	}
}
