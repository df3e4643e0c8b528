package pairing

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
)

// sessionInfo prefixes SessionSecret's HKDF info; the session id follows.
const sessionInfo = "assist/1 contact session\x00"

// SessionSecret returns the password of session sid between this device and
// a paired device: X25519 of both device keys converted to Montgomery form,
// then HKDF-SHA256 with the two public keys (sorted) as salt and
// "assist/1 contact session\x00"+sid as info; 32 bytes in base64url without
// padding. Both devices get the same string; the server, which knows neither
// private key, cannot compute it.
//
// peer must be a key the caller trusts (pinned, or certified; see Trusted):
// the secret authenticates whoever holds peer's private key. It fails for a
// peer key that is not a valid point or has small order.
func SessionSecret(myPriv ed25519.PrivateKey, peer ed25519.PublicKey, sid string) (string, error) {
	if len(myPriv) != ed25519.PrivateKeySize || len(peer) != ed25519.PublicKeySize {
		return "", errors.New("pairing: session secret: wrong key size")
	}
	// The X25519 scalar of an Ed25519 key is the first half of SHA-512 of
	// its seed (RFC 8032 5.1.5); ecdh clamps it.
	h := sha512.Sum512(myPriv.Seed())
	defer clear(h[:])
	priv, err := ecdh.X25519().NewPrivateKey(h[:32])
	if err != nil {
		return "", fmt.Errorf("pairing: session secret: %w", err)
	}
	p, err := new(edwards25519.Point).SetBytes(peer)
	if err != nil {
		return "", fmt.Errorf("pairing: session secret: the peer's key is not a valid Ed25519 key")
	}
	pub, err := ecdh.X25519().NewPublicKey(p.BytesMontgomery())
	if err != nil {
		return "", fmt.Errorf("pairing: session secret: %w", err)
	}
	// ECDH refuses an all-zero result, which is what a small-order peer
	// key gives.
	dh, err := priv.ECDH(pub)
	if err != nil {
		return "", fmt.Errorf("pairing: session secret: the peer's key has small order")
	}
	defer clear(dh)
	mine := myPriv.Public().(ed25519.PublicKey)
	a, b := []byte(mine), []byte(peer)
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	salt := append(append(make([]byte, 0, 64), a...), b...)
	key, err := hkdf.Key(sha256.New, dh, salt, sessionInfo+sid, 32)
	if err != nil {
		return "", fmt.Errorf("pairing: session secret: %w", err)
	}
	defer clear(key)
	return base64.RawURLEncoding.EncodeToString(key), nil
}
