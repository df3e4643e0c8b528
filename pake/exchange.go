package pake

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"

	"github.com/gtank/ristretto255"
)

// MessageSize is the length of Exchange.Message: one encoded ristretto255
// element. Use it as the maxLen of ReadMessage for the share.
const MessageSize = elementSize

// Role says which side of the initiator-responder exchange a party plays. The
// two ends of one exchange must play different roles.
type Role int

const (
	// Initiator is the expert, the side that joins an invitation.
	Initiator Role = iota
	// Responder is the novice, the side that issued the invitation.
	Responder
)

// String returns "initiator" or "responder".
func (r Role) String() string {
	switch r {
	case Initiator:
		return "initiator"
	case Responder:
		return "responder"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// peer returns the role of the other side.
func (r Role) peer() Role {
	if r == Initiator {
		return Responder
	}
	return Initiator
}

// Errors callers branch on. Every error the package returns for them wraps
// one of these, so use errors.Is.
var (
	// ErrBadMessage: the peer's share is malformed (wrong length, not a
	// canonical ristretto255 encoding, the identity element) or is our own
	// share sent back to us. Treat it as a failed attempt.
	ErrBadMessage = errors.New("pake: bad peer message")
	// ErrWrongPassword: the peer's key confirmation does not match ours. The
	// password differs, or the two sides see different channels (Context),
	// session ids or roles, or a message was altered, replayed or reflected.
	// Count it as a failed password attempt.
	ErrWrongPassword = errors.New("pake: wrong password or tampered exchange")
	// ErrUsed: Finish was called a second time. Each Exchange holds one
	// ephemeral scalar, which the draft forbids reusing (Section 10.9); start
	// a new Exchange for a new attempt.
	ErrUsed = errors.New("pake: exchange already finished")
)

// Config holds the inputs of one exchange. Both sides must use the same
// Password, Context and SessionID, and opposite Roles.
type Config struct {
	// Password is CPace's password-related string PRS: the invitation
	// password, encoded the same way on both sides (RFC 8265 recommends
	// UTF-8 in NFC). It must not be empty. New does not keep it.
	Password []byte
	// Context is CPace's channel identifier CI. It binds the exchange to the
	// channel it runs on: a protocol label followed by the TLS exporter value
	// of the connection, for example "assist/1 direct" || exporter. It is
	// never sent; it must not be empty.
	Context []byte
	// SessionID is CPace's sid: a public value both sides know before the
	// exchange and that is unique to the session, for example nonces both
	// sides contributed. It may be nil.
	SessionID []byte
	// Role is Initiator for the expert and Responder for the novice.
	Role Role
}

// Exchange is one side of one CPace run. It is not safe for concurrent use.
type Exchange struct {
	role Role
	sid  []byte
	// msg is our public share Y = y*g (and, for the draft's test vectors
	// only, our associated data; the public API always sends none).
	msg [MessageSize]byte
	ad  []byte
	// secret is pointer-held (see resultSecret) and nil once Finish ran.
	secret *exchangeSecret
	used   bool
}

// exchangeSecret is the ephemeral scalar y, itself behind a pointer for the
// reason given at resultSecret.
type exchangeSecret struct {
	y *ristretto255.Scalar
}

// New starts an exchange: it derives the password generator from cfg and
// samples a fresh ephemeral scalar with crypto/rand.
func New(cfg Config) (*Exchange, error) {
	var buf [elementSize]byte
	defer clear(buf[:])
	for {
		rand.Read(buf[:]) // never fails since Go 1.24
		ex, err := newExchange(cfg, buf[:], nil)
		if errors.Is(err, errZeroScalar) {
			continue // probability 2^-252; resample rather than fail
		}
		return ex, err
	}
}

// newExchange is New with the scalar's bytes and our associated data given,
// so that the draft's test vectors run through the same code as real
// exchanges.
func newExchange(cfg Config, scalar, ad []byte) (*Exchange, error) {
	if cfg.Role != Initiator && cfg.Role != Responder {
		return nil, fmt.Errorf("pake: new exchange: invalid role %v", cfg.Role)
	}
	if len(cfg.Password) == 0 {
		return nil, errors.New("pake: new exchange: empty password")
	}
	if len(cfg.Context) == 0 {
		return nil, errors.New("pake: new exchange: empty Context: bind the exchange to its channel (e.g. a TLS exporter value)")
	}
	y, err := scalarFromBytes(scalar)
	if err != nil {
		return nil, fmt.Errorf("pake: new exchange: %w", err)
	}
	g := calculateGenerator(cfg.Password, cfg.Context, cfg.SessionID)
	ex := &Exchange{
		role:   cfg.Role,
		sid:    bytes.Clone(cfg.SessionID),
		ad:     bytes.Clone(ad),
		secret: &exchangeSecret{y: y},
	}
	copy(ex.msg[:], scalarMult(y, g))
	return ex, nil
}

// Role returns the role this side plays.
func (e *Exchange) Role() Role { return e.role }

// Message returns our share, the one message to send to the peer. It is
// MessageSize bytes, public, and the same on every call.
func (e *Exchange) Message() []byte {
	return bytes.Clone(e.msg[:])
}

// Finish takes the peer's share and computes the shared intermediate session
// key. An error wrapping ErrBadMessage means the share was malformed, the
// identity element, or our own share reflected back. A nil error does not
// mean the peer knows the password: that is what Result.Verify tells.
//
// Finish may be called once; the ephemeral scalar is erased whatever the
// outcome, so a failed Finish still costs the caller an attempt.
func (e *Exchange) Finish(peer []byte) (*Result, error) {
	return e.finish(peer, nil)
}

// finish is Finish with the peer's associated data (the draft's ADa or ADb),
// which only the test vectors use.
func (e *Exchange) finish(peer, peerAD []byte) (*Result, error) {
	if e.used {
		return nil, ErrUsed
	}
	if e.secret == nil {
		return nil, errors.New("pake: finish: Exchange was not created by New")
	}
	e.used = true
	y := e.secret.y
	defer func() {
		y.Zero()
		e.secret = nil
	}()

	if len(peer) != MessageSize {
		return nil, fmt.Errorf("%w: share is %d bytes, want %d", ErrBadMessage, len(peer), MessageSize)
	}
	// A reflected share passes the group checks but is never what an honest
	// peer sends (its scalar is independent of ours); refusing it outright
	// defeats the loopback attack of draft Section 10.1.2 before any key is
	// computed.
	if bytes.Equal(peer, e.msg[:]) {
		return nil, fmt.Errorf("%w: peer sent our own share back", ErrBadMessage)
	}
	k, err := scalarMultVfy(y, peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	defer clear(k)

	ya, ada, yb, adb := e.msg[:], e.ad, peer, peerAD
	if e.role == Responder {
		ya, ada, yb, adb = yb, adb, ya, ada
	}
	isk := deriveISK(e.sid, k, ya, ada, yb, adb)
	r := &Result{role: e.role, secret: &resultSecret{isk: &isk, macKey: new([sha512.Size]byte)}}
	copy(r.initiatorShare[:], ya)
	copy(r.responderShare[:], yb)

	// mac_key = H.hash(b"CPaceMac" || sid || ISK), draft Section 10.4.
	h := sha512.New()
	h.Write([]byte("CPaceMac"))
	h.Write(e.sid)
	h.Write(r.secret.isk[:])
	h.Sum(r.secret.macKey[:0])
	return r, nil
}
