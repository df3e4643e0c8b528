package invitation

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	// FileExtension is the extension of invitation files. WriteFile does not
	// add it: the caller chooses the path.
	FileExtension = ".assist"
	// Version is the newest invitation format this package reads and the
	// one it writes.
	Version = 1

	// MinTTL and MaxTTL bound an invitation's lifetime. XP offered from one
	// hour to 30 days; a shorter floor lets tests and quick calls use short
	// invitations, and the ceiling keeps a forgotten invitation from staying
	// usable for ever.
	MinTTL = time.Minute
	MaxTTL = 30 * 24 * time.Hour

	// MaxNameRunes is the longest display name, in characters.
	MaxNameRunes = 64
	// MaxAddrs is the most addresses an invitation lists. The expert dials
	// them all at once, so the list must stay short.
	MaxAddrs = 16
	// MaxClockSkew is how far in the future an invitation's creation time may
	// be, as seen by the expert's clock, before it is refused: the two
	// machines' clocks rarely agree to the second.
	MaxClockSkew = 5 * time.Minute

	typeMarker = "assist-invitation"
	idBytes    = 16
)

var (
	// ErrExpired is returned (wrapped) by Validate for an invitation past its
	// expiry time.
	ErrExpired = errors.New("invitation: expired")
	// ErrUnsupportedVersion is returned (wrapped) for an invitation written by
	// a newer version of assist.
	ErrUnsupportedVersion = errors.New("invitation: unsupported invitation version")
	// ErrCorrupt is returned (wrapped) by Parse, ReadFile and ParseURL for
	// data that is truncated, damaged or not an invitation at all.
	ErrCorrupt = errors.New("invitation: the invitation is damaged or incomplete")
	// ErrInvalid is returned (wrapped) by New, Validate and Marshal when a
	// field breaks the format's rules. Parse wraps it together with
	// ErrCorrupt.
	ErrInvalid = errors.New("invitation: invalid invitation")
)

// idEncoding is RFC 4648 base32 in lower case: case-insensitive file systems
// and people copying ids by hand both prefer one case.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Invitation is what the novice gives the expert. It holds no secret: see the
// package documentation.
type Invitation struct {
	// Version is the format version, Version for invitations made here.
	Version int
	// ID is 128 random bits, base32 lower case without padding. It is also
	// the PAKE session id (see SessionID).
	ID string
	// Name is the novice's display name, shown to the expert.
	Name string
	// Created and Expires bound the invitation's validity, in UTC with second
	// precision.
	Created, Expires time.Time
	// Addrs are "host:port" addresses where the novice's agent listens.
	Addrs []string
	// Server is the rendezvous server's URL, or empty.
	Server string
}

// New makes an invitation with a fresh random ID, valid from now for ttl.
// The name is trimmed of surrounding spaces; addresses are put in canonical
// form and duplicates dropped, keeping the first occurrence's position.
func New(name string, ttl time.Duration, addrs []string, now time.Time) (*Invitation, error) {
	if ttl < MinTTL || ttl > MaxTTL {
		return nil, fmt.Errorf("%w: lifetime %v is outside %v to %v", ErrInvalid, ttl, MinTTL, MaxTTL)
	}
	var raw [idBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("invitation: generating id: %w", err)
	}
	created := now.UTC().Truncate(time.Second)
	inv := &Invitation{
		Version: Version,
		ID:      idEncoding.EncodeToString(raw[:]),
		Name:    strings.TrimSpace(name),
		Created: created,
		Expires: created.Add(ttl.Truncate(time.Second)),
	}
	seen := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		c, err := canonicalAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%w: address %q: %v", ErrInvalid, a, err)
		}
		if !seen[c] {
			seen[c] = true
			inv.Addrs = append(inv.Addrs, c)
		}
	}
	if err := inv.checkFields(); err != nil {
		return nil, err
	}
	return inv, nil
}

// Validate reports whether the invitation can be used at time now (the
// reader's clock): its fields follow the format, it was not created in the
// future (beyond MaxClockSkew) and it has not expired.
func (inv *Invitation) Validate(now time.Time) error {
	if err := inv.checkFields(); err != nil {
		return err
	}
	if inv.Created.Sub(now) > MaxClockSkew {
		return fmt.Errorf("%w: created at %s, which is in the future by this computer's clock (now %s): check the date and time on both computers",
			ErrInvalid, formatHuman(inv.Created), formatHuman(now))
	}
	if !now.Before(inv.Expires) {
		return &wrapError{
			msg: fmt.Sprintf("invitation: expired at %s (%s ago); ask %s for a new invitation",
				formatHuman(inv.Expires), now.Sub(inv.Expires).Round(time.Second), novice(inv.Name)),
			errs: []error{ErrExpired},
		}
	}
	return nil
}

// SessionID is the PAKE session id for this invitation: the bytes of ID.
func (inv *Invitation) SessionID() []byte { return []byte(inv.ID) }

// checkFields checks every rule of the format that does not depend on the
// current time.
func (inv *Invitation) checkFields() error {
	if inv.Version > Version {
		return unsupportedVersion(inv.Version)
	}
	if inv.Version != Version {
		return fmt.Errorf("%w: version %d", ErrInvalid, inv.Version)
	}
	if err := checkID(inv.ID); err != nil {
		return fmt.Errorf("%w: id: %v", ErrInvalid, err)
	}
	if err := checkName(inv.Name); err != nil {
		return fmt.Errorf("%w: name: %v", ErrInvalid, err)
	}
	if err := checkTimes(inv.Created, inv.Expires); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := checkAddrs(inv.Addrs); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := checkServer(inv.Server); err != nil {
		return fmt.Errorf("%w: server: %v", ErrInvalid, err)
	}
	if len(inv.Addrs) == 0 && inv.Server == "" {
		return fmt.Errorf("%w: no address and no server: the expert would have nowhere to connect", ErrInvalid)
	}
	return nil
}

func unsupportedVersion(v int) error {
	return fmt.Errorf("%w: this invitation has version %d, but this assist reads versions up to %d; upgrade assist",
		ErrUnsupportedVersion, v, Version)
}

// wrapError carries a message written for people while still matching the
// sentinel errors it wraps, without repeating their text.
type wrapError struct {
	msg  string
	errs []error
}

func (e *wrapError) Error() string   { return e.msg }
func (e *wrapError) Unwrap() []error { return e.errs }

// novice names the novice in messages, falling back to a role when the name
// is missing.
func novice(name string) string {
	if name == "" {
		return "the person who sent it"
	}
	return name
}

// formatHuman formats a time for error messages read by people.
func formatHuman(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
