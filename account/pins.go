package account

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/pairing"
)

// A device link hands the old device's pinned contacts to the new device,
// so that the new device can check its contacts' keys in sessions too. The
// message goes over the link's pairing relay after the exchange, signed by
// the old device's key, which the exchange has just authenticated: the
// server relays it but cannot change it.

// pinsLabel prefixes what the old device signs.
const pinsLabel = "assist/1 pins\x00"

// maxPins bounds the pins message: the relay carries 64 KiB messages with
// the data in base64.
const maxPins = 40 << 10

// pinsMessage is the relayed message: the contacts and the signature.
type pinsMessage struct {
	Contacts json.RawMessage `json:"contacts"`
	Sig      string          `json:"sig"`
}

// pinsSigned is what the signature covers.
func pinsSigned(user string, newKey ed25519.PublicKey, contacts []byte) []byte {
	m := append([]byte(pinsLabel), user...)
	m = append(m, 0)
	m = append(m, newKey...)
	return append(m, contacts...)
}

// sealPins makes the pins message for newKey in account user. When the
// contacts are too many to send at once it sends none: the new device then
// pairs with its contacts itself.
func sealPins(priv ed25519.PrivateKey, user string, newKey ed25519.PublicKey, contacts map[string]identity.Contact) ([]byte, error) {
	if contacts == nil {
		contacts = map[string]identity.Contact{}
	}
	c, err := json.Marshal(contacts)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(priv, pinsSigned(user, newKey, c))
	b, _ := json.Marshal(pinsMessage{Contacts: c, Sig: base64.RawURLEncoding.EncodeToString(sig)})
	if len(b) > maxPins {
		return sealPins(priv, user, newKey, map[string]identity.Contact{})
	}
	return b, nil
}

// openPins checks a pins message from the old device (key signer) to this
// new device (newKey) of account user, and returns the contacts.
func openPins(b []byte, signer ed25519.PublicKey, user string, newKey ed25519.PublicKey) (map[string]identity.Contact, error) {
	if len(b) > maxPins {
		return nil, errors.New("pins: message too large")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m pinsMessage
	if err := dec.Decode(&m); err != nil || dec.More() {
		return nil, errors.New("pins: not a pins message")
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(m.Sig)
	if err != nil || !ed25519.Verify(signer, pinsSigned(user, newKey, m.Contacts), sig) {
		return nil, errors.New("pins: the signature does not verify")
	}
	// Checked as a config would be: keys that decode, names that are not
	// empty.
	cfg, err := identity.ParseConfig(append(append([]byte(`{"contacts":`), m.Contacts...), '}'))
	if err != nil {
		return nil, fmt.Errorf("pins: %w", err)
	}
	for u := range cfg.Contacts {
		if err := pairing.CheckUser(u); err != nil {
			return nil, fmt.Errorf("pins: %w", err)
		}
	}
	return cfg.Contacts, nil
}
