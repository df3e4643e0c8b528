package account

import (
	"context"
	"fmt"
	"maps"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/pairing"
)

// Invite opens a contact pairing, calls show with the code to give to the
// other person, runs the exchange with whoever joins, and pins their key
// once the server has recorded the contact. ctx bounds the whole wait.
func (d *Device) Invite(ctx context.Context, c *messenger.Client, show func(code string)) (pairing.Info, error) {
	p, err := c.PairOpen(ctx, messenger.PurposeContact)
	if err != nil {
		return pairing.Info{}, fmt.Errorf("opening a pairing: %w", err)
	}
	defer p.Close()
	code, err := pairing.NewCode(p.ID)
	if err != nil {
		return pairing.Info{}, err
	}
	show(code.String())
	return d.pairContact(ctx, p, pairing.Opener, code)
}

// AddContact joins the contact pairing of code, runs the exchange and pins
// the other side's key once the server has recorded the contact.
func (d *Device) AddContact(ctx context.Context, c *messenger.Client, codeText string) (pairing.Info, error) {
	code, err := pairing.ParseCode(codeText)
	if err != nil {
		return pairing.Info{}, err
	}
	p, err := c.PairJoin(ctx, code.PairID, messenger.PurposeContact)
	if err != nil {
		if messenger.IsCode(err, messenger.CodeNotFound) {
			return pairing.Info{}, fmt.Errorf("no pairing for code %s: it expired (10 minutes), was used already, or was mistyped; ask for a new one", code)
		}
		return pairing.Info{}, fmt.Errorf("joining the pairing: %w", err)
	}
	defer p.Close()
	return d.pairContact(ctx, p, pairing.Joiner, code)
}

// pairContact runs the exchange on p and, when the server confirms, pins
// the peer.
func (d *Device) pairContact(ctx context.Context, p *messenger.Pair, role pairing.Role, code pairing.Code) (pairing.Info, error) {
	claimed, err := p.Peer(ctx)
	if err != nil {
		return pairing.Info{}, fmt.Errorf("waiting for the other side: %w", err)
	}
	peer, err := pairing.Run(ctx, p, role, code.Secret, code.PairID, pairing.PurposeContact, d.me())
	if err != nil {
		return pairing.Info{}, err
	}
	// The exchange proves the key and the name the peer gave; the server
	// records the contact under the name it knows. They must agree, or the
	// pinned key would be filed under someone else's name.
	if peer.User != claimed.User {
		return pairing.Info{}, fmt.Errorf("the server says the other side is %q but they say %q: not adding; pair again", claimed.User, peer.User)
	}
	if peer.User == d.cfg.User {
		return pairing.Info{}, fmt.Errorf("that code is from your own account %q: to add a device use `assist devices add`", peer.User)
	}
	r, err := p.Done(ctx, peer.Key, nil)
	if err != nil {
		return pairing.Info{}, fmt.Errorf("the server did not record the contact: %w", err)
	}
	if r.User != peer.User {
		return pairing.Info{}, fmt.Errorf("the server recorded a contact %q, not %q", r.User, peer.User)
	}
	cfg := *d.cfg
	cfg.Contacts = maps.Clone(cfg.Contacts)
	cfg.Pin(peer.User, peer.Display, peer.Key)
	if err := d.save(&cfg); err != nil {
		return pairing.Info{}, fmt.Errorf("the contact was added but its key was not saved: %w", err)
	}
	return peer, nil
}

// LinkDevice opens a device link on this (signed-in) device, calls show with
// the code to type on the new device (`assist login URL --user NAME --code
// CODE`), runs the exchange, hands this device's pinned contacts to the new
// one (signed), certifies the new device's key and waits for the server to
// add it. It returns the new device's id.
func (d *Device) LinkDevice(ctx context.Context, c *messenger.Client, show func(code string)) (string, pairing.Info, error) {
	p, err := c.PairOpen(ctx, messenger.PurposeDevice)
	if err != nil {
		return "", pairing.Info{}, fmt.Errorf("opening a device link: %w", err)
	}
	defer p.Close()
	code, err := pairing.NewCode(p.ID)
	if err != nil {
		return "", pairing.Info{}, err
	}
	show(code.String())
	if _, err := p.Peer(ctx); err != nil {
		return "", pairing.Info{}, fmt.Errorf("waiting for the new device: %w", err)
	}
	peer, err := pairing.Run(ctx, p, pairing.Opener, code.Secret, code.PairID, pairing.PurposeDevice, d.me())
	if err != nil {
		return "", pairing.Info{}, err
	}
	if peer.User != d.cfg.User {
		return "", pairing.Info{}, fmt.Errorf("the new device asks for account %q, not %q: not adding it", peer.User, d.cfg.User)
	}
	pins, err := sealPins(d.key, d.cfg.User, peer.Key, d.cfg.Contacts)
	if err != nil {
		return "", pairing.Info{}, err
	}
	if err := p.Send(pins); err != nil {
		return "", pairing.Info{}, fmt.Errorf("handing the contacts to the new device: %w", err)
	}
	cert := pairing.SignDevice(d.key, d.cfg.User, peer.Key)
	r, err := p.Done(ctx, peer.Key, cert)
	if err != nil {
		return "", pairing.Info{}, fmt.Errorf("the server did not add the device: %w", err)
	}
	return r.Device, peer, nil
}

// Forget drops a contact's pinned keys (after remove or block).
func (d *Device) Forget(user string) error {
	cfg := *d.cfg
	cfg.Contacts = maps.Clone(cfg.Contacts)
	cfg.Forget(user)
	return d.save(&cfg)
}
