package hub

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/assist-project/assist/messenger"
)

// Organisations (issue 11). An organisation has admins, helpers and
// members; admins hand out enrolment tokens; a machine enrolled with one
// is a messenger account of its own, whose agent keeps presence like any
// device. A helper (or admin) of an organisation may list its machines and
// offer help to them ("ask" kind "offer") without being their contact; the
// user at the machine still answers, and still grants every right.

// ErrExpired: an enrolment token is unknown, used up or expired.
var ErrExpired = errors.New("enrolment token unknown, used up or expired")

// Org is an organisation and its policy.
type Org struct {
	Name    string
	Display string
	Policy  messenger.Policy
	Created time.Time
}

// OrgMachine is an enrolled machine: its account (User), the machine's
// name (its device's name) and the user logged in on it (the account's
// display name), both as the agent reported them.
type OrgMachine struct {
	User     string
	Name     string
	Display  string
	Org      string
	Enrolled time.Time
}

// DefaultPolicy is a new organisation's: every right may be asked for,
// nothing is recorded, a minute to answer.
func DefaultPolicy() messenger.Policy {
	return messenger.Policy{Rights: []string{messenger.RightView, messenger.RightControl, messenger.RightClipboard, messenger.RightFiles},
		Timeout: 60}
}

// OrgStore keeps organisations. SQLiteStore implements it; a Hub whose
// Store does not has no organisations (every organisation message is
// refused as for a user of none).
type OrgStore interface {
	// CreateOrg creates an organisation (ErrTaken if the name exists).
	CreateOrg(ctx context.Context, o Org) error
	// Org returns an organisation (ErrNotFound).
	Org(ctx context.Context, name string) (Org, error)
	// SetPolicy replaces an organisation's policy (ErrNotFound).
	SetPolicy(ctx context.Context, org string, p messenger.Policy) error
	// SetRole gives user a role in org (an empty role removes them;
	// ErrNotFound for no such organisation, or removing a non-member).
	SetRole(ctx context.Context, org, user, role string) error
	// Roles returns user's role in each organisation, by organisation.
	Roles(ctx context.Context, user string) (map[string]string, error)
	// AddToken stores an enrolment token by its hash (TokenHash), good
	// for uses enrolments until expires (ErrNotFound: no such org).
	AddToken(ctx context.Context, org string, hash [32]byte, uses int, expires, now time.Time) error
	// Enrol spends one use of the token with this hash and creates the
	// machine's account a with its device d in the token's organisation,
	// in one step; it returns the organisation. ErrExpired for a token
	// unknown, used up or expired at now; ErrTaken for a taken name or
	// key (the token is not spent).
	Enrol(ctx context.Context, hash [32]byte, a Account, d Device, now time.Time) (string, error)
	// MachineOrg returns the organisation of the machine account user
	// (ErrNotFound if it is none).
	MachineOrg(ctx context.Context, user string) (string, error)
	// Machines lists an organisation's machines, by account.
	Machines(ctx context.Context, org string) ([]OrgMachine, error)
}

// TokenHash is what the store keeps of an enrolment token.
func TokenHash(token string) [32]byte { return sha256.Sum256([]byte("assist/1 enrol\x00" + token)) }

// NewToken returns a new enrolment token: 128 random bits, base64url,
// never starting with '-', which a command line would take for a flag
// (assist agent enroll URL TOKEN).
func NewToken() string {
	for {
		if t := newRequestID(); t[0] != '-' {
			return t
		}
	}
}

// ValidRole reports whether role is admin, helper or member.
func ValidRole(role string) bool {
	return role == messenger.OrgAdmin || role == messenger.OrgHelper || role == messenger.OrgMember
}

// helps reports whether a role may list an organisation's machines and
// offer them help.
func helps(role string) bool { return role == messenger.OrgAdmin || role == messenger.OrgHelper }
