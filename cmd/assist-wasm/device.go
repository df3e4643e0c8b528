package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
)

// passkeyDeviceContext is passkey.DeviceSigContext (that package holds the
// server and SQLite, which the browser must not carry; a test checks the
// two agree).
const passkeyDeviceContext = "assist/1 passkey device\x00"

// The browser's device key. The page keeps its seed (IndexedDB) and hands
// it to each call; every use of the private key happens here, in Go.

var errBadSeed = errors.New("this browser's device key is damaged: sign out and sign in again")

// newSeed makes a device key's seed, base64url.
func newSeed() string {
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	return base64.RawURLEncoding.EncodeToString(seed)
}

// deviceKey returns the device key of a seed.
func deviceKey(seedB64 string) (ed25519.PrivateKey, error) {
	seed, err := base64.RawURLEncoding.DecodeString(seedB64)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errBadSeed
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// publicKey returns the public key of a seed, base64url.
func publicKey(seedB64 string) (string, error) {
	k, err := deviceKey(seedB64)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(k.Public().(ed25519.PublicKey)), nil
}

// signPasskey signs a passkey ceremony's challenge (base64url) with the
// device key, as package messenger/passkey checks it.
func signPasskey(seedB64, challengeB64 string) (string, error) {
	k, err := deviceKey(seedB64)
	if err != nil {
		return "", err
	}
	ch, err := base64.RawURLEncoding.DecodeString(challengeB64)
	if err != nil || len(ch) < 16 || len(ch) > 64 {
		return "", errors.New("the server's passkey challenge is malformed")
	}
	msg := append([]byte(passkeyDeviceContext), ch...)
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(k, msg)), nil
}
