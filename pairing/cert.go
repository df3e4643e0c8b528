package pairing

import (
	"crypto/ed25519"
	"errors"
	"fmt"
)

// deviceCertLabel prefixes what a device certificate signs.
const deviceCertLabel = "assist/1 device\x00"

// certMessage is what a certificate for newKey in account user signs.
func certMessage(user string, newKey ed25519.PublicKey) []byte {
	m := make([]byte, 0, len(deviceCertLabel)+len(user)+1+len(newKey))
	m = append(m, deviceCertLabel...)
	m = append(m, user...)
	m = append(m, 0)
	return append(m, newKey...)
}

// SignDevice certifies newKey as a device of account user, signed by an
// existing device of that account.
func SignDevice(signer ed25519.PrivateKey, user string, newKey ed25519.PublicKey) []byte {
	return ed25519.Sign(signer, certMessage(user, newKey))
}

// VerifyDevice checks a certificate made by SignDevice.
func VerifyDevice(signer ed25519.PublicKey, user string, newKey ed25519.PublicKey, sig []byte) bool {
	if len(signer) != ed25519.PublicKeySize || len(newKey) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(signer, certMessage(user, newKey), sig)
}

// Device is one device of a contact's account as the server lists it: its
// key and, for devices added by a device link, the certificate (Signer and
// Sig; both nil for the account's first device).
type Device struct {
	Key    ed25519.PublicKey
	Signer ed25519.PublicKey
	Sig    []byte
}

// ErrUntrusted: a key is neither pinned nor certified by a pinned key.
var ErrUntrusted = errors.New("pairing: this device's key is not one you confirmed for this contact")

// Trusted reports whether key may be used as a device of contact user: it
// is one of pinned (the keys confirmed by pairing), or a chain of valid
// certificates among devices (the account's devices as the server lists
// them) leads to it from a pinned key. The server only chooses which
// certificates to show; it cannot make one without a device's private key.
func Trusted(user string, key ed25519.PublicKey, pinned []ed25519.PublicKey, devices []Device) error {
	trusted := make(map[string]bool, len(pinned)+len(devices))
	for _, k := range pinned {
		trusted[string(k)] = true
	}
	// Each pass adds the devices certified by an already trusted key; a
	// chain is at most len(devices) long.
	for changed := true; changed && !trusted[string(key)]; {
		changed = false
		for _, d := range devices {
			if trusted[string(d.Key)] || d.Signer == nil || !trusted[string(d.Signer)] {
				continue
			}
			if VerifyDevice(d.Signer, user, d.Key, d.Sig) {
				trusted[string(d.Key)] = true
				changed = true
			}
		}
	}
	if !trusted[string(key)] {
		return fmt.Errorf("%w (%s): refusing it; if %s added a device, pair with it again (assist contacts add)", ErrUntrusted, user, user)
	}
	return nil
}
