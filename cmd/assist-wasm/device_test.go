//go:build !(js && wasm)

package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"

	"github.com/assist-project/assist/messenger/passkey"
)

func TestDeviceKey(t *testing.T) {
	seed := newSeed()
	if seed == newSeed() {
		t.Fatal("two seeds are equal")
	}
	pub, err := publicKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	challenge := make([]byte, 32)
	challenge[0] = 7
	if passkeyDeviceContext != passkey.DeviceSigContext {
		t.Fatalf("the wasm signs under %q, the server checks %q", passkeyDeviceContext, passkey.DeviceSigContext)
	}
	sig, err := signPasskey(seed, base64.RawURLEncoding.EncodeToString(challenge))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := base64.RawURLEncoding.DecodeString(pub)
	s, _ := base64.RawURLEncoding.DecodeString(sig)
	if !ed25519.Verify(p, append([]byte(passkey.DeviceSigContext), challenge...), s) {
		t.Error("the passkey signature does not verify with the device key")
	}
	for _, bad := range []string{"", "AAAA", seed + "A", "!!"} {
		if _, err := publicKey(bad); err == nil {
			t.Errorf("publicKey(%q) accepted", bad)
		}
	}
	if _, err := signPasskey(seed, "AAAA"); err == nil {
		t.Error("a 3-byte challenge was signed")
	}
}
