package account

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/pairing"
)

// ContactLister lists the account's contacts with their devices; a
// *messenger.Client is one.
type ContactLister interface {
	Contacts(ctx context.Context) ([]messenger.Contact, []string, error)
}

// SessionPassword checks the peer device named in an "accepted" message
// against the keys pinned for that contact (directly, or by certificates of
// the contact's devices as the server lists them) and returns the password
// of the session: pairing.SessionSecret of the two device keys and the
// session id. Refused: a peer this device never paired with, or a device key
// that does not chain to a pinned one.
func (d *Device) SessionPassword(ctx context.Context, c ContactLister, accepted messenger.Message) (string, error) {
	if accepted.Peer == nil || accepted.Session == "" {
		return "", errors.New("the server's acceptance names no peer or session")
	}
	user := accepted.Peer.User
	pinned := d.cfg.Pinned(user)
	if len(pinned) == 0 {
		return "", fmt.Errorf("%s has no key pinned on this device: add them as a contact from this device (assist contacts invite / add) before a session", user)
	}
	peerKey := ed25519.PublicKey(accepted.Peer.Device.Key)
	devices := []pairing.Device{device(accepted.Peer.Device)}
	if !keyIn(peerKey, pinned) {
		// Only a linked device needs the account's other devices, for
		// the certificates between it and a pinned key.
		contacts, _, err := c.Contacts(ctx)
		if err != nil {
			return "", fmt.Errorf("listing %s's devices to check the key: %w", user, err)
		}
		for _, ct := range contacts {
			if ct.User == user {
				for _, dv := range ct.Devices {
					devices = append(devices, device(dv))
				}
			}
		}
	}
	if err := pairing.Trusted(user, peerKey, pinned, devices); err != nil {
		return "", err
	}
	return pairing.SessionSecret(d.key, peerKey, accepted.Session)
}

// OrgSessionPassword returns the password of a session between an
// organisation's helper and one of its machines. The caller decides that
// the acceptance is such a session (the agent of an enrolled machine; a
// helper who offered a machine the organisation listed): accepted.Org
// alone is the server's word, and SessionPassword ignores it. The peer's
// key is the one the organisation's server names, which the machine and
// the helper trust for this: a machine has no contacts to pin, and its
// user still answers the offer and every consent question.
func (d *Device) OrgSessionPassword(accepted messenger.Message) (string, error) {
	if accepted.Peer == nil || accepted.Session == "" || accepted.Org == nil {
		return "", errors.New("the server's acceptance names no peer, session or organisation")
	}
	return pairing.SessionSecret(d.key, ed25519.PublicKey(accepted.Peer.Device.Key), accepted.Session)
}

func device(dv messenger.Device) pairing.Device {
	out := pairing.Device{Key: ed25519.PublicKey(dv.Key)}
	if dv.Cert != nil {
		out.Signer, out.Sig = ed25519.PublicKey(dv.Cert.Signer), dv.Cert.Sig
	}
	return out
}

func keyIn(k ed25519.PublicKey, keys []ed25519.PublicKey) bool {
	for _, p := range keys {
		if p.Equal(k) {
			return true
		}
	}
	return false
}

// WaitAnswer waits on c's events for the outcome of request rid: an
// "accepted", "declined" or "request-closed" message. Other events are
// passed to other (may be nil).
func WaitAnswer(ctx context.Context, c *messenger.Client, rid string, other func(messenger.Message)) (messenger.Message, error) {
	for {
		select {
		case m, ok := <-c.Events():
			if !ok {
				return messenger.Message{}, fmt.Errorf("the connection to the server ended: %w", c.Err())
			}
			switch {
			case m.Request == rid && (m.Type == messenger.TypeAccepted || m.Type == messenger.TypeDeclined || m.Type == messenger.TypeRequestClosed):
				return m, nil
			case other != nil:
				other(m)
			}
		case <-ctx.Done():
			return messenger.Message{}, ctx.Err()
		}
	}
}

// CheckRole checks the role the server gave this device in an accepted
// request against what the request was: the one who asks for help ("help")
// and the one who is offered help ("offer") are the novice. A server that
// swapped roles would otherwise turn the helper's desktop into the one
// shared (the novice's consent questions would still come, but to the
// wrong person).
func CheckRole(accepted messenger.Message, kind string, asker bool) error {
	want := messenger.RoleExpert
	if (kind == messenger.KindHelp) == asker {
		want = messenger.RoleNovice
	}
	if accepted.Role != want {
		return fmt.Errorf("the server made this device the %s of a %q request it %s, where it must be the %s: refusing the session",
			accepted.Role, kind, map[bool]string{true: "made", false: "answered"}[asker], want)
	}
	return nil
}
