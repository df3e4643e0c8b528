package main

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/pairing"
)

// secretRequest is what the page hands sessionSecret: the peer device of an
// "accepted" message, the keys pinned in this browser for that contact,
// and the contact's devices as the server lists them (for certificates).
type secretRequest struct {
	User    string             `json:"user"`
	Key     messenger.B64      `json:"key"`
	Pinned  []messenger.B64    `json:"pinned"`
	Devices []messenger.Device `json:"devices"`
	Session string             `json:"session"`
}

// sessionSecret checks the peer's device key and returns the session's
// password, as account.Device.SessionPassword does on the command line.
func sessionSecret(key ed25519.PrivateKey, req []byte) (string, error) {
	var r secretRequest
	if err := json.Unmarshal(req, &r); err != nil {
		return "", fmt.Errorf("sessionSecret: %w", err)
	}
	if r.Session == "" || len(r.Key) != ed25519.PublicKeySize {
		return "", errors.New("the server's acceptance names no peer device or session")
	}
	if len(r.Pinned) == 0 {
		return "", fmt.Errorf("%s was not added as a contact in this browser, so their key is not confirmed here. Add them again with a contact code in this browser, then try again", r.User)
	}
	pinned := make([]ed25519.PublicKey, 0, len(r.Pinned))
	for _, k := range r.Pinned {
		pinned = append(pinned, ed25519.PublicKey(k))
	}
	devices := make([]pairing.Device, 0, len(r.Devices))
	for _, d := range r.Devices {
		pd := pairing.Device{Key: ed25519.PublicKey(d.Key)}
		if d.Cert != nil {
			pd.Signer, pd.Sig = ed25519.PublicKey(d.Cert.Signer), d.Cert.Sig
		}
		devices = append(devices, pd)
	}
	peer := ed25519.PublicKey(r.Key)
	if err := pairing.Trusted(r.User, peer, pinned, devices); err != nil {
		return "", fmt.Errorf("the device %s answered from is not one you confirmed: %w", r.User, err)
	}
	return pairing.SessionSecret(key, peer, r.Session)
}

// orgSecretRequest is what the page hands orgSessionSecret: the machine's
// device key from "accepted" and the session.
type orgSecretRequest struct {
	Key     messenger.B64 `json:"key"`
	Session string        `json:"session"`
}

// orgSessionSecret returns the password of a session with an
// organisation's machine, as account.Device.OrgSessionPassword does: the
// key is the organisation server's word (a machine has no contacts).
func orgSessionSecret(key ed25519.PrivateKey, req []byte) (string, error) {
	var r orgSecretRequest
	if err := json.Unmarshal(req, &r); err != nil {
		return "", fmt.Errorf("orgSessionSecret: %w", err)
	}
	if r.Session == "" || len(r.Key) != ed25519.PublicKeySize {
		return "", errors.New("the server's acceptance names no machine device or session")
	}
	return pairing.SessionSecret(key, ed25519.PublicKey(r.Key), r.Session)
}
