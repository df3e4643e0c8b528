package pairing

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/base64"
	"testing"

	"filippo.io/edwards25519"
)

func TestSessionSecret(t *testing.T) {
	_, a := info(t, 1, "ada", "Ada")
	_, b := info(t, 2, "bob", "Bob")
	_, c := info(t, 3, "carol", "Carol")
	pub := func(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }
	must := func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const sid = "r-abcdefghijklmnopqrstuvwxyz"
	ab := must(SessionSecret(a, pub(b), sid))
	ba := must(SessionSecret(b, pub(a), sid))
	if ab != ba {
		t.Fatalf("not symmetric: %s != %s", ab, ba)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(ab); err != nil || len(raw) != 32 {
		t.Fatalf("secret %q is not 32 bytes of base64url", ab)
	}
	for name, other := range map[string]string{
		"other sid":  must(SessionSecret(a, pub(b), sid+"x")),
		"other peer": must(SessionSecret(a, pub(c), sid)),
		"other self": must(SessionSecret(c, pub(b), sid)),
	} {
		if other == ab {
			t.Errorf("%s gives the same secret", name)
		}
	}
	// Golden value, computed independently with Python's cryptography
	// (X25519 of SHA-512(seed)[:32] and u = (1+y)/(1-y), HKDF-SHA256), so
	// that other implementations (the browser's) can check against it.
	const golden = "ms3sx0GdFRedbU8WWQguHbt0B67e5tX-7YWRNKrmi7k"
	if ab != golden {
		t.Errorf("SessionSecret(seed 01.., seed 02.., %s) = %s, want %s", sid, ab, golden)
	}
}

// TestMontgomeryConversion checks the two conversions against each other:
// the X25519 public key of the converted private key is the converted
// Ed25519 public key.
func TestMontgomeryConversion(t *testing.T) {
	for seed := range byte(20) {
		priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
		h := sha512.Sum512(priv.Seed())
		x, err := ecdh.X25519().NewPrivateKey(h[:32])
		if err != nil {
			t.Fatal(err)
		}
		p, err := new(edwards25519.Point).SetBytes(priv.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x.PublicKey().Bytes(), p.BytesMontgomery()) {
			t.Fatalf("seed %d: conversions disagree", seed)
		}
	}
}

func TestSessionSecretRefusesBadKeys(t *testing.T) {
	_, a := info(t, 1, "ada", "Ada")
	identity := make([]byte, 32)
	identity[0] = 1 // the neutral point: small order
	notOnCurve := make([]byte, 32)
	notOnCurve[0] = 2 // y = 2 has no x on the curve
	for name, peer := range map[string][]byte{"small order": identity, "not a point": notOnCurve, "short": identity[:31]} {
		if s, err := SessionSecret(a, peer, "r-x"); err == nil {
			t.Errorf("%s: SessionSecret = %q, want an error", name, s)
		}
	}
}
