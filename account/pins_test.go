package account

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"github.com/assist-project/assist/identity"
)

func TestPins(t *testing.T) {
	old := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	oldPub := old.Public().(ed25519.PublicKey)
	newKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32)).Public().(ed25519.PublicKey)
	bobKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)).Public().(ed25519.PublicKey)
	var cfg identity.Config
	cfg.Pin("bob", "Bob", bobKey)
	msg, err := sealPins(old, "ada", newKey, cfg.Contacts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := openPins(msg, oldPub, "ada", newKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["bob"].Display != "Bob" || got["bob"].Keys[0] != identity.EncodeKey(bobKey) {
		t.Fatalf("openPins = %+v", got)
	}

	// The server relays the message: anything it changes fails.
	var m map[string]any
	json.Unmarshal(msg, &m)
	m["contacts"] = map[string]any{"bob": map[string]any{"display": "Bob", "keys": []string{identity.EncodeKey(newKey)}}}
	swapped, _ := json.Marshal(m)
	for name, tc := range map[string]struct {
		msg    []byte
		signer ed25519.PublicKey
		user   string
		newKey ed25519.PublicKey
	}{
		"swapped key":        {swapped, oldPub, "ada", newKey},
		"other signer":       {msg, newKey, "ada", newKey},
		"other account":      {msg, oldPub, "eve", newKey},
		"for another device": {msg, oldPub, "ada", bobKey},
		"not json":           {[]byte("{"), oldPub, "ada", newKey},
		"unknown member":     {[]byte(`{"contacts":{},"sig":"","x":1}`), oldPub, "ada", newKey},
		"trailing data":      {append(append([]byte{}, msg...), msg...), oldPub, "ada", newKey},
		"too large":          {bytes.Repeat([]byte(" "), maxPins+1), oldPub, "ada", newKey},
	} {
		if c, err := openPins(tc.msg, tc.signer, tc.user, tc.newKey); err == nil {
			t.Errorf("%s: openPins = %+v, want an error", name, c)
		}
	}

	// Too many contacts: none are sent, and the link still works.
	many := map[string]identity.Contact{}
	for i := range 1000 {
		many[string(rune('a'+i%26))+identity.EncodeKey(bobKey)[:10]+string(rune('a'+i/26))] = identity.Contact{Keys: []string{identity.EncodeKey(bobKey)}}
	}
	msg, err = sealPins(old, "ada", newKey, many)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openPins(msg, oldPub, "ada", newKey); err != nil || len(got) != 0 {
		t.Fatalf("too many contacts: %d handed over, %v; want none", len(got), err)
	}
}

func FuzzOpenPins(f *testing.F) {
	old := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	newKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32)).Public().(ed25519.PublicKey)
	var cfg identity.Config
	cfg.Pin("bob", "Bob", newKey)
	msg, _ := sealPins(old, "ada", newKey, cfg.Contacts)
	f.Add(msg)
	f.Add([]byte(`{"contacts":null,"sig":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Only a message signed by old can open; the fuzzer cannot sign,
		// so anything but the seed must fail, and nothing may panic.
		c, err := openPins(b, old.Public().(ed25519.PublicKey), "ada", newKey)
		if err == nil && !bytes.Equal(b, msg) && len(c) != 0 {
			var again pinsMessage
			if json.Unmarshal(b, &again) != nil {
				t.Fatalf("opened a message that does not parse: %q", b)
			}
		}
	})
}
