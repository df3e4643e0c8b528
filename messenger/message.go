package messenger

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Message types, client to server (C) and server to client (S). Some
// names go both ways: "contacts", "devices" and "pair-relay" are a request
// and its answer, "state" is only C, "presence" only S.
const (
	TypeChallenge     = "challenge"      // S
	TypeLogin         = "login"          // C
	TypeWelcome       = "welcome"        // S
	TypeContacts      = "contacts"       // C and S
	TypeState         = "state"          // C
	TypePresence      = "presence"       // S
	TypeRemove        = "remove"         // C
	TypeRemoved       = "removed"        // S
	TypeBlock         = "block"          // C
	TypeBlocked       = "blocked"        // S
	TypeUnblock       = "unblock"        // C
	TypeUnblocked     = "unblocked"      // S
	TypeDevices       = "devices"        // C and S
	TypeRemoveDevice  = "remove-device"  // C
	TypeDeviceRemoved = "device-removed" // S
	TypeDeviceAdded   = "device-added"   // S, to the old device of a device link
	TypePairOpen      = "pair-open"      // C
	TypePairOpened    = "pair-opened"    // S
	TypePairJoin      = "pair-join"      // C
	TypePairPeer      = "pair-peer"      // S
	TypePairRelay     = "pair-relay"     // C and S
	TypePairDone      = "pair-done"      // C
	TypePairFailed    = "pair-failed"    // S
	TypeContactAdded  = "contact-added"  // S
	TypeAsk           = "ask"            // C
	TypeAsked         = "asked"          // S
	TypeRequest       = "request"        // S
	TypeAnswer        = "answer"         // C
	TypeAccepted      = "accepted"       // S
	TypeDeclined      = "declined"       // S
	TypeRequestClosed = "request-closed" // S
	TypeCancel        = "cancel"         // C
	TypeError         = "error"          // S
	TypeMachines      = "machines"       // C and S: an organisation's machines, for its helpers
	TypeEnrolToken    = "enrol-token"    // C and S: an admin makes an enrolment token
	TypeAuditUpload   = "audit-upload"   // C: a device's new audit entries
	TypeAuditStored   = "audit-stored"   // S: how far the server holds the device's chain
	TypeAuditSearch   = "audit-search"   // C: an admin searches the organisation's audit trail
	TypeAuditEntries  = "audit-entries"  // S: one page of what audit-search found
	TypeAuditVerify   = "audit-verify"   // C: an admin verifies the organisation's stored chains
	TypeAuditVerified = "audit-verified" // S: the verdict on each chain

	TypeRecordingUpload = "recording-upload" // C: a chunk of a machine's encrypted session recording
	TypeRecordingStored = "recording-stored" // S: how much of the upload the server holds
	TypeRecordingList   = "recording-list"   // C: an admin lists the organisation's recordings
	TypeRecordings      = "recordings"       // S: the organisation's recordings
	TypeRecordingGet    = "recording-get"    // C: an admin downloads a chunk of a recording
	TypeRecordingData   = "recording-data"   // S: that chunk
)

// Roles in an organisation.
const (
	OrgAdmin  = "admin"
	OrgHelper = "helper"
	OrgMember = "member"
)

// Rights an organisation's policy may allow a helper to ask for.
const (
	RightView      = "view"
	RightControl   = "control"
	RightClipboard = "clipboard"
	RightFiles     = "files"
)

// States of a device ("state") and of a user ("presence").
const (
	StateOnline  = "online"
	StateBusy    = "busy"
	StateAway    = "away"
	StateOffline = "offline" // a user with no device connected; never sent by a client
)

// Purposes of a pairing.
const (
	PurposeContact = "contact"
	PurposeDevice  = "device"
)

// Kinds of a request, and the roles in an accepted one. In a "help"
// request the asker is the novice; in an "offer" the asker is the expert.
const (
	KindHelp        = "help"
	KindOffer       = "offer"
	RoleNovice      = "novice"
	RoleExpert      = "expert"
	ReasonAnswered  = "answered"
	ReasonCancelled = "cancelled"
	ReasonExpired   = "expired"
	ReasonDeclined  = "declined"
)

// Error codes.
const (
	CodeMalformed    = "malformed"    // not a valid message; the connection is closed
	CodeUnauthorized = "unauthorized" // not logged in, or not yours
	CodeNotFound     = "not-found"
	CodeInvalid      = "invalid"
	CodeTaken        = "taken"
	CodeTooMany      = "too-many"
	CodeInternal     = "internal"
	CodeUnavailable  = "unavailable" // the server cannot serve for now (its message bus or database is away); try again
)

// B64 is binary data on the wire: base64url without padding.
type B64 []byte

// MarshalText implements encoding.TextMarshaler.
func (b B64) MarshalText() ([]byte, error) {
	return base64.RawURLEncoding.AppendEncode(nil, b), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *B64) UnmarshalText(t []byte) error {
	d, err := base64.RawURLEncoding.Strict().AppendDecode(nil, t)
	if err != nil {
		return fmt.Errorf("not base64url without padding: %w", err)
	}
	*b = d
	return nil
}

// Cert certifies a device key added by a device link: Sig is
// Ed25519(signer, CertMessage(user, key)) by Signer, a device of the same
// account.
type Cert struct {
	Signer B64 `json:"signer"`
	Sig    B64 `json:"sig"`
}

// Device is one device of an account: its id (for "remove-device"), its
// Ed25519 public key, its name, and the cert of a linked device (nil for
// the account's first device).
type Device struct {
	ID   string `json:"id"`
	Key  B64    `json:"key"`
	Name string `json:"name"`
	Cert *Cert  `json:"cert,omitempty"`
}

// OwnDevice is a Device in the "devices" answer: whether it is the device
// asking, and whether it is connected.
type OwnDevice struct {
	Device
	Self   bool `json:"self"`
	Online bool `json:"online"`
}

// Contact is one contact in the "contacts" answer, with the user's state
// and devices.
type Contact struct {
	User    string   `json:"user"`
	Display string   `json:"display"`
	State   string   `json:"state"`
	Devices []Device `json:"devices"`
}

// Peer is the other side of an accepted request: the user and the device
// that asked or answered.
type Peer struct {
	User    string `json:"user"`
	Display string `json:"display"`
	Device  Device `json:"device"`
}

// Policy is an organisation's rule for its helpers' sessions: the rights
// a helper may ask for at all, whether sessions are recorded, and how long
// the user has to answer an offer (and each consent question).
type Policy struct {
	Rights []string `json:"rights"`
	Record bool     `json:"record"`
	// Timeout in seconds.
	Timeout int `json:"timeout"`
	// AuditKey is the organisation's audit key, an age X25519 recipient
	// (age1...), that recordings are encrypted to on the machine: the
	// server stores what it cannot read. "" for none; with Record and no
	// key an agent records nothing (and says so).
	AuditKey string `json:"audit_key,omitempty"`
}

// Allows reports whether the policy lets a helper ask for right.
func (p Policy) Allows(right string) bool {
	for _, r := range p.Rights {
		if r == right {
			return true
		}
	}
	return false
}

// Org names the organisation of an offer to one of its machines, in
// "request" and "accepted": its id, its name as people read it, and its
// policy.
type Org struct {
	Name    string `json:"name"`
	Display string `json:"display"`
	Policy  Policy `json:"policy"`
}

// Machine is one enrolled machine in the "machines" answer: its account
// (what "ask" names), the machine's name and logged-in user as its agent
// reported them (untrusted text), its organisation and its presence.
type Machine struct {
	User    string `json:"user"`
	Name    string `json:"name"`
	Display string `json:"display"`
	Org     string `json:"org"`
	State   string `json:"state"`
}

// AuditChain is the verdict on one stored audit chain in
// "audit-verified": its key, whose it is (a user of the organisation, or
// "" for the server's own), and either what verified or Bad, which names
// the first bad entry.
type AuditChain struct {
	Key         B64    `json:"key"`
	User        string `json:"user"`
	Entries     int    `json:"entries"`
	First       uint64 `json:"first"`
	Last        uint64 `json:"last"`
	Pruned      uint64 `json:"pruned"`
	HeadChecked bool   `json:"head_checked"`
	Bad         string `json:"bad,omitempty"`
}

// Message is one messenger message in either direction; only the members
// of its Type are set (see the package documentation for which).
type Message struct {
	Type string `json:"type"`
	// Ref is the client's reference of a request, echoed in the server's
	// answer or error.
	Ref string `json:"ref,omitempty"`

	Nonce B64 `json:"nonce,omitempty"` // challenge
	Key   B64 `json:"key,omitempty"`   // login: own key; pair-done: the peer's key
	Sig   B64 `json:"sig,omitempty"`   // login
	// Cert, in a device link's pair-done from the old device: the
	// signature of CertMessage(user, new key).
	Cert B64 `json:"cert,omitempty"`
	// Code: in login, the pair id of a device link; in error, the error
	// code.
	Code    string `json:"code,omitempty"`
	User    string `json:"user,omitempty"`
	Display string `json:"display,omitempty"`
	// Name, in login: this device's name in the account's device list.
	Name string `json:"name,omitempty"`
	// Token, in login: an organisation's enrolment token; the new
	// account is a machine of that organisation.
	Token string `json:"token,omitempty"`
	// Device is a device id (welcome, remove-device, device-removed,
	// device-added).
	Device  string `json:"device,omitempty"`
	Created *bool  `json:"created,omitempty"` // welcome
	State   string `json:"state,omitempty"`

	Contacts []Contact   `json:"contacts,omitzero"`
	Blocked  []string    `json:"blocked,omitzero"`
	Devices  []OwnDevice `json:"devices,omitzero"`

	Purpose string          `json:"purpose,omitempty"`
	Pair    string          `json:"pair,omitempty"`
	Expires time.Time       `json:"expires,omitzero"`
	Data    json.RawMessage `json:"data,omitempty"`
	Reason  string          `json:"reason,omitempty"`

	To      string `json:"to,omitempty"`
	From    string `json:"from,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Request string `json:"request,omitempty"`
	Accept  *bool  `json:"accept,omitempty"`
	By      string `json:"by,omitempty"`
	Session string `json:"session,omitempty"`
	Role    string `json:"role,omitempty"`
	Peer    *Peer  `json:"peer,omitempty"`
	// Org, in "request" and "accepted": the offer is an organisation's
	// helper's to one of its machines.
	Org      *Org      `json:"org,omitempty"`
	Machines []Machine `json:"machines,omitzero"`
	// Organisation names an organisation (enrol-token); Uses is how many
	// machines a token may enrol.
	Organisation string `json:"organisation,omitempty"`
	Uses         int    `json:"uses,omitempty"`

	// Audit holds audit entries as JSONL (package audit's upload
	// format): a device's new entries in "audit-upload", a page of
	// results in "audit-entries".
	Audit string `json:"audit,omitempty"`
	// Recording is one chunk (at most RecordingChunk bytes) of an
	// encrypted session recording, in "recording-upload" and
	// "recording-data"; Recordings lists them in "recordings".
	Recording  B64         `json:"recording,omitempty"`
	Recordings []Recording `json:"recordings,omitzero"`
	// Seq, in "audit-stored": the last entry of the device's chain the
	// server holds (0: none).
	Seq *uint64 `json:"seq,omitempty"`
	// Since, Text and Offset narrow an "audit-search" and page through
	// it; More says another page follows (ask again from Offset plus
	// this page's entries).
	Since  time.Time    `json:"since,omitzero"`
	Text   string       `json:"text,omitempty"`
	Offset int          `json:"offset,omitempty"`
	More   bool         `json:"more,omitempty"`
	Chains []AuditChain `json:"chains,omitzero"`

	Message string `json:"message,omitempty"` // error
}

// Error is a server's "error" message as a Go error.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "messenger: server error " + e.Code
	}
	return "messenger: " + e.Message + " (" + e.Code + ")"
}

// IsCode reports whether err is (or wraps) a server error with this code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// LoginContext is what a login signs before the nonce and the server
// fingerprint.
const LoginContext = "assist/1 messenger login\x00"

// LoginMessage is what a device signs to log in: LoginContext, the
// challenge's nonce, and the 32 bytes of SHA-256 of the server's TLS leaf
// certificate as the client saw it, so a login relayed through another
// server fails.
func LoginMessage(nonce []byte, serverFingerprint [32]byte) []byte {
	m := make([]byte, 0, len(LoginContext)+len(nonce)+32)
	m = append(m, LoginContext...)
	m = append(m, nonce...)
	return append(m, serverFingerprint[:]...)
}

// CertMessage is what an existing device signs to certify a new device
// key of the account user.
func CertMessage(user string, newKey []byte) []byte {
	m := make([]byte, 0, 16+len(user)+1+len(newKey))
	m = append(m, "assist/1 device\x00"...)
	m = append(m, user...)
	m = append(m, 0)
	return append(m, newKey...)
}

// RecordingChunk bounds the bytes of one recording chunk: base64 in a
// message, it stays below MaxMessageBytes.
const RecordingChunk = 32 << 10

// Recording describes an uploaded session recording in "recordings": its
// id, the machine that recorded it, the helper who saw the session, when
// the session started and the encrypted file's size.
type Recording struct {
	ID      string    `json:"id"`
	Machine string    `json:"machine"`
	User    string    `json:"user"`
	Start   time.Time `json:"start"`
	Size    int64     `json:"size"`
}
