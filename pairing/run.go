package pairing

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/assist-project/assist/pake"
)

// Channel carries the exchange's messages to the peer and back, in order:
// the messenger's pair-relay messages for one pairing. Each message is a JSON
// object; Recv returns the next one from the peer.
type Channel interface {
	Send(data []byte) error
	Recv(ctx context.Context) ([]byte, error)
}

// Role says which side of a pairing a device is.
type Role int

const (
	// Opener is the side that opened the pairing and shows the code (CPace's
	// Responder).
	Opener Role = iota
	// Joiner is the side that typed the code (CPace's Initiator).
	Joiner
)

// String returns "opener" or "joiner".
func (r Role) String() string {
	if r == Opener {
		return "opener"
	}
	return "joiner"
}

// Purposes of a pairing, as in the messenger's pair-open.
const (
	PurposeContact = "contact"
	PurposeDevice  = "device"
)

// Errors callers branch on; Run's errors wrap them.
var (
	// ErrWrongCode: the key confirmation failed. The two people typed
	// different codes, or something between them altered the exchange.
	ErrWrongCode = errors.New("pairing: the code does not match: check that you both use the same code, or make a new one")
	// ErrTampered: the code matched but the peer's identity arrived altered:
	// someone on the way (the server) substituted a key or a name.
	ErrTampered = errors.New("pairing: the other side's key was altered on the way (the server or the network substituted it); nothing was saved: do not trust this server, and pair again elsewhere")
)

// Run runs one side of the exchange over ch and returns the peer's
// authenticated identity. secret and pairID are the code's parts (either
// spelling), purpose PurposeContact or PurposeDevice, me this device's own
// identity. ctx bounds the whole exchange.
//
// A nil error means the peer knew the secret and sent exactly this Info for
// this pairing id and purpose; anything else wraps ErrWrongCode, ErrTampered
// or a malformed-message or channel error.
func Run(ctx context.Context, ch Channel, role Role, secret, pairID, purpose string, me Info) (Info, error) {
	code, err := ParseCode(pairID + secret)
	if err != nil {
		return Info{}, err
	}
	if purpose != PurposeContact && purpose != PurposeDevice {
		return Info{}, fmt.Errorf("pairing: unknown purpose %q", purpose)
	}
	if err := me.check(); err != nil {
		return Info{}, fmt.Errorf("pairing: our own identity: %w", err)
	}
	pr := pake.Initiator
	if role == Opener {
		pr = pake.Responder
	}
	ex, err := pake.New(pake.Config{
		Password:  []byte(code.Secret),
		Context:   []byte("assist/1 pair\x00" + purpose),
		SessionID: []byte("assist/1 pair " + code.PairID),
		Role:      pr,
	})
	if err != nil {
		return Info{}, fmt.Errorf("pairing: %w", err)
	}

	// Both sides send their share at once: CPace needs nothing from the
	// peer to make it, so the exchange costs one round trip per step.
	if err := send(ch, message{Step: stepShare, V: b64.EncodeToString(ex.Message())}); err != nil {
		return Info{}, err
	}
	share, err := recv(ctx, ch, stepShare)
	if err != nil {
		return Info{}, err
	}
	res, err := ex.Finish(share.v)
	if err != nil {
		return Info{}, fmt.Errorf("%w (%v)", ErrWrongCode, err)
	}
	if err := send(ch, message{Step: stepConfirm, V: b64.EncodeToString(res.Confirmation())}); err != nil {
		return Info{}, err
	}
	conf, err := recv(ctx, ch, stepConfirm)
	if err != nil {
		return Info{}, err
	}
	if err := res.Verify(conf.v); err != nil {
		return Info{}, ErrWrongCode
	}

	// Each direction has its own MAC key, so an identity reflected back to
	// its sender does not verify.
	myKey := res.SessionKey("assist/1 pair id "+role.String(), 32)
	peerRole := Joiner
	if role == Joiner {
		peerRole = Opener
	}
	peerKey := res.SessionKey("assist/1 pair id "+peerRole.String(), 32)
	defer clear(myKey)
	defer clear(peerKey)

	if err := send(ch, message{
		Step: stepID, Key: b64.EncodeToString(me.Key), User: me.User, Display: me.Display,
		MAC: b64.EncodeToString(idMAC(myKey, purpose, me)),
	}); err != nil {
		return Info{}, err
	}
	id, err := recv(ctx, ch, stepID)
	if err != nil {
		return Info{}, err
	}
	if !hmac.Equal(id.mac, idMAC(peerKey, purpose, id.id)) {
		return Info{}, ErrTampered
	}
	return id.id, nil
}

// idMAC is HMAC-SHA256 over the identity, each field length-prefixed so
// that no two identities share an input.
func idMAC(key []byte, purpose string, i Info) []byte {
	m := hmac.New(sha256.New, key)
	for _, f := range [][]byte{[]byte(purpose), i.Key, []byte(i.User), []byte(i.Display)} {
		m.Write([]byte{byte(len(f) >> 8), byte(len(f))})
		m.Write(f)
	}
	return m.Sum(nil)
}

func send(ch Channel, m message) error {
	if err := ch.Send(encodeMessage(m)); err != nil {
		return fmt.Errorf("pairing: sending %s: %w", m.Step, err)
	}
	return nil
}

func recv(ctx context.Context, ch Channel, step string) (parsed, error) {
	data, err := ch.Recv(ctx)
	if err != nil {
		return parsed{}, fmt.Errorf("pairing: waiting for the other side's %s: %w", step, err)
	}
	return parseMessage(data, step)
}
