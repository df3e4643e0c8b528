package messenger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxMessageBytes bounds one message in either direction.
const MaxMessageBytes = 64 << 10

// ErrMalformed is wrapped by the errors of ParseClientMessage and
// ParseServerMessage.
var ErrMalformed = errors.New("malformed messenger message")

// member names one JSON member of a message type; req marks it required.
type member struct {
	name string
	req  bool
}

func req(n string) member { return member{n, true} }
func opt(n string) member { return member{n, false} }

// clientMembers lists, per client-to-server type, the members it may
// carry (besides "type"). Anything else is malformed.
var clientMembers = map[string][]member{
	TypeLogin:           {req("key"), req("sig"), opt("user"), opt("display"), opt("code"), opt("name"), opt("token"), opt("ref")},
	TypeContacts:        {opt("ref")},
	TypeState:           {req("state"), opt("ref")},
	TypeRemove:          {req("user"), opt("ref")},
	TypeBlock:           {req("user"), opt("ref")},
	TypeUnblock:         {req("user"), opt("ref")},
	TypeDevices:         {opt("ref")},
	TypeRemoveDevice:    {req("device"), opt("ref")},
	TypePairOpen:        {req("purpose"), opt("ref")},
	TypePairJoin:        {req("pair"), req("purpose"), opt("ref")},
	TypePairRelay:       {req("pair"), req("data"), opt("ref")},
	TypePairDone:        {req("pair"), req("key"), opt("cert"), opt("ref")},
	TypeAsk:             {req("to"), req("kind"), opt("ref")},
	TypeAnswer:          {req("request"), req("accept"), opt("ref")},
	TypeCancel:          {req("request"), opt("ref")},
	TypeMachines:        {opt("ref")},
	TypeEnrolToken:      {req("organisation"), opt("uses"), opt("ref")},
	TypeAuditUpload:     {opt("audit"), opt("ref")},
	TypeAuditSearch:     {req("organisation"), opt("since"), opt("text"), opt("offset"), opt("ref")},
	TypeAuditVerify:     {req("organisation"), opt("ref")},
	TypeRecordingUpload: {opt("session"), opt("offset"), opt("recording"), opt("more"), opt("user"), opt("since"), opt("ref")},
	TypeRecordingList:   {req("organisation"), opt("ref")},
	TypeRecordingGet:    {req("organisation"), req("session"), opt("offset"), opt("ref")},
}

// serverRequired lists, per server-to-client type, the members it must
// carry. Clients ignore members they do not know, so servers may add some.
var serverRequired = map[string][]string{
	TypeChallenge:       {"nonce"},
	TypeWelcome:         {"user", "display", "device", "created"},
	TypeContacts:        {"contacts", "blocked"},
	TypePresence:        {"user", "state"},
	TypeRemoved:         {"user"},
	TypeBlocked:         {"user"},
	TypeUnblocked:       {"user"},
	TypeDevices:         {"devices"},
	TypeDeviceRemoved:   {"device"},
	TypeDeviceAdded:     {"pair", "device"},
	TypePairOpened:      {"pair", "expires"},
	TypePairPeer:        {"pair", "user", "display"},
	TypePairRelay:       {"pair", "data"},
	TypePairFailed:      {"pair", "reason"},
	TypeContactAdded:    {"user", "display"},
	TypeAsked:           {"request", "to", "kind", "expires"},
	TypeRequest:         {"request", "from", "display", "kind", "expires"},
	TypeAccepted:        {"request", "by", "session", "role", "peer"},
	TypeDeclined:        {"request", "by"},
	TypeRequestClosed:   {"request", "reason"},
	TypeError:           {"code", "message"},
	TypeMachines:        {"machines"},
	TypeEnrolToken:      {"organisation", "token", "expires"},
	TypeAuditStored:     {"seq"},
	TypeAuditEntries:    {"organisation"},
	TypeAuditVerified:   {"organisation", "chains"},
	TypeRecordingStored: {"session"},
	TypeRecordings:      {"organisation"},
	TypeRecordingData:   {"session"},
}

// splitObject checks that b is exactly one JSON object of valid UTF-8
// with a string "type", and returns its members.
func splitObject(b []byte) (string, map[string]json.RawMessage, error) {
	if len(b) > MaxMessageBytes {
		return "", nil, fmt.Errorf("%w: over %d bytes", ErrMalformed, MaxMessageBytes)
	}
	if !utf8.Valid(b) {
		return "", nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	var obj map[string]json.RawMessage
	if err := d.Decode(&obj); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if obj == nil {
		return "", nil, fmt.Errorf("%w: not an object", ErrMalformed)
	}
	if _, err := d.Token(); err != io.EOF {
		return "", nil, fmt.Errorf("%w: data after the object", ErrMalformed)
	}
	raw, ok := obj["type"]
	if !ok {
		return "", nil, fmt.Errorf("%w: no \"type\"", ErrMalformed)
	}
	var typ string
	if err := json.Unmarshal(raw, &typ); err != nil {
		return "", nil, fmt.Errorf("%w: \"type\" is not a string", ErrMalformed)
	}
	return typ, obj, nil
}

// decodeInto decodes b into m; members must have the right JSON types.
func decodeInto(b []byte, m *Message) error {
	if err := json.Unmarshal(b, m); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// ParseClientMessage parses one client-to-server message strictly: one
// JSON object of valid UTF-8, at most MaxMessageBytes, of a known type,
// with only that type's members (spelt exactly), its required ones
// present and not null, each of the right JSON type, and the values
// well-formed (see Message.Check). Errors wrap ErrMalformed.
func ParseClientMessage(b []byte) (Message, error) {
	typ, obj, err := splitObject(b)
	if err != nil {
		return Message{}, err
	}
	allowed, ok := clientMembers[typ]
	if !ok {
		return Message{}, fmt.Errorf("%w: unknown type %q", ErrMalformed, clip(typ))
	}
	for name, v := range obj {
		if name == "type" {
			continue
		}
		i := -1
		for j, a := range allowed {
			if a.name == name {
				i = j
			}
		}
		if i < 0 {
			return Message{}, fmt.Errorf("%w: %q has no member %q", ErrMalformed, typ, clip(name))
		}
		if string(v) == "null" {
			return Message{}, fmt.Errorf("%w: %q is null", ErrMalformed, name)
		}
	}
	for _, a := range allowed {
		if _, ok := obj[a.name]; a.req && !ok {
			return Message{}, fmt.Errorf("%w: %q needs %q", ErrMalformed, typ, a.name)
		}
	}
	var m Message
	if err := decodeInto(b, &m); err != nil {
		return Message{}, err
	}
	if err := m.checkClient(); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return m, nil
}

// ParseServerMessage parses one server-to-client message: one JSON object
// of valid UTF-8 with a string "type", its known members of the right JSON
// types, and, for a known type, its required members present and
// well-formed. Unknown members and unknown types are accepted (the caller
// ignores them), so servers may extend the protocol. Errors wrap
// ErrMalformed.
func ParseServerMessage(b []byte) (Message, error) {
	typ, obj, err := splitObject(b)
	if err != nil {
		return Message{}, err
	}
	// encoding/json matches member names case-insensitively: a member
	// that differs from a known one only by case would land in its field.
	for name := range obj {
		if !knownMember[name] && knownMemberFold[strings.ToLower(name)] {
			return Message{}, fmt.Errorf("%w: member %q", ErrMalformed, clip(name))
		}
	}
	for _, name := range serverRequired[typ] {
		if v, ok := obj[name]; !ok || string(v) == "null" {
			return Message{}, fmt.Errorf("%w: %q needs %q", ErrMalformed, typ, name)
		}
	}
	var m Message
	if err := decodeInto(b, &m); err != nil {
		return Message{}, err
	}
	if err := m.checkServer(); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return m, nil
}

var knownMember, knownMemberFold = func() (map[string]bool, map[string]bool) {
	k, f := map[string]bool{}, map[string]bool{}
	for _, n := range []string{"type", "ref", "nonce", "key", "sig", "cert", "code", "user", "display", "name",
		"device", "created", "state", "contacts", "blocked", "devices", "purpose", "pair", "expires", "data",
		"reason", "to", "from", "kind", "request", "accept", "by", "session", "role", "peer", "message",
		"token", "org", "machines", "organisation", "uses", "audit", "seq", "since", "text", "offset", "more", "chains", "recording", "recordings"} {
		k[n], f[n] = true, true
	}
	return k, f
}()

// clip bounds untrusted text quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return strings.ToValidUTF8(s[:40], "") + "..."
	}
	return s
}

// checkClient checks the values of a client message whose members are
// known to be the right ones.
func (m *Message) checkClient() error {
	if m.Ref != "" && !ValidRef(m.Ref) {
		return errors.New("bad ref: 1 to 64 of [A-Za-z0-9_-]")
	}
	switch m.Type {
	case TypeLogin:
		if len(m.Key) != ed25519.PublicKeySize || len(m.Sig) != ed25519.SignatureSize {
			return errors.New("login: key must be 32 bytes and sig 64")
		}
		if m.User != "" && !ValidUser(m.User) {
			return errors.New("login: bad user name: 1 to 32 of a-z 0-9 . _ -, starting with a letter or digit")
		}
		if m.Display != "" && !ValidText(m.Display, 64) {
			return errors.New("login: bad display name: 1 to 64 printable characters")
		}
		if m.Name != "" && !ValidText(m.Name, 64) {
			return errors.New("login: bad device name: 1 to 64 printable characters")
		}
		if m.Code != "" && (!ValidPairID(m.Code) || m.User == "") {
			return errors.New("login: code must be a pair id (4 Crockford base32 symbols) and comes with a user")
		}
		if m.Token != "" && (!ValidToken(m.Token) || m.User == "" || m.Code != "") {
			return errors.New("login: token must be an enrolment token (22 of [A-Za-z0-9_-]), comes with a user and without a code")
		}
	case TypeState:
		if m.State != StateOnline && m.State != StateBusy && m.State != StateAway {
			return errors.New("state: want online, busy or away")
		}
	case TypeRemove, TypeBlock, TypeUnblock:
		if !ValidUser(m.User) {
			return errors.New("bad user name")
		}
	case TypeRemoveDevice:
		if !ValidDeviceID(m.Device) {
			return errors.New("bad device id")
		}
	case TypePairOpen, TypePairJoin, TypePairRelay, TypePairDone:
		if m.Type != TypePairOpen && !ValidPairID(m.Pair) {
			return errors.New("bad pair id: 4 Crockford base32 symbols")
		}
		if (m.Type == TypePairOpen || m.Type == TypePairJoin) && m.Purpose != PurposeContact && m.Purpose != PurposeDevice {
			return errors.New("purpose: want contact or device")
		}
		if m.Type == TypePairDone && (len(m.Key) != ed25519.PublicKeySize || (m.Cert != nil && len(m.Cert) != ed25519.SignatureSize)) {
			return errors.New("pair-done: key must be 32 bytes, cert 64")
		}
	case TypeAsk:
		if !ValidUser(m.To) || (m.Kind != KindHelp && m.Kind != KindOffer) {
			return errors.New("ask: bad user name, or kind not help or offer")
		}
	case TypeAnswer, TypeCancel:
		if !ValidRequestID(m.Request) {
			return errors.New("bad request id")
		}
	case TypeRecordingUpload:
		if m.Offset < 0 || len(m.Recording) > RecordingChunk || m.Session != "" && !ValidRecordingID(m.Session) ||
			m.User != "" && !ValidUser(m.User) {
			return errors.New("recording-upload: bad session, offset, user or a chunk over 32 KiB")
		}
	case TypeRecordingList:
		if !ValidUser(m.Organisation) {
			return errors.New("recording-list: bad organisation")
		}
	case TypeRecordingGet:
		if !ValidUser(m.Organisation) || !ValidRecordingID(m.Session) || m.Offset < 0 {
			return errors.New("recording-get: bad organisation, recording id or offset")
		}
	case TypeAuditSearch, TypeAuditVerify:
		if !ValidUser(m.Organisation) {
			return fmt.Errorf("%s: bad organisation", m.Type)
		}
		if m.Offset < 0 || m.Text != "" && !ValidText(m.Text, 64) {
			return fmt.Errorf("%s: offset below 0, or text not 1 to 64 printable characters", m.Type)
		}
	case TypeEnrolToken:
		if !ValidUser(m.Organisation) || m.Uses < 0 || m.Uses > MaxTokenUses {
			return fmt.Errorf("enrol-token: bad organisation, or uses not 1 to %d", MaxTokenUses)
		}
	}
	return nil
}

// MaxTokenUses bounds the machines one enrolment token made through the
// messenger may enrol.
const MaxTokenUses = 1000

// checkServer checks the values of a server message that a client relies
// on.
func (m *Message) checkServer() error {
	switch m.Type {
	case TypeChallenge:
		if len(m.Nonce) < 16 || len(m.Nonce) > 64 {
			return errors.New("challenge: nonce of 16 to 64 bytes")
		}
	case TypeWelcome, TypePresence, TypeContactAdded, TypePairPeer, TypeRemoved, TypeBlocked, TypeUnblocked:
		if !ValidUser(m.User) {
			return fmt.Errorf("%s: bad user name", m.Type)
		}
		if m.Type == TypePresence && !validUserState(m.State) {
			return errors.New("presence: bad state")
		}
	case TypeContacts:
		for _, c := range m.Contacts {
			if !ValidUser(c.User) || !validUserState(c.State) {
				return errors.New("contacts: bad user name or state")
			}
			for _, d := range c.Devices {
				if err := d.check(); err != nil {
					return err
				}
			}
		}
	case TypeDevices:
		for _, d := range m.Devices {
			if err := d.Device.check(); err != nil {
				return err
			}
		}
	case TypeAccepted:
		if m.Peer == nil || !ValidUser(m.Peer.User) || (m.Role != RoleNovice && m.Role != RoleExpert) {
			return errors.New("accepted: bad peer or role")
		}
		if err := m.Peer.Device.check(); err != nil {
			return err
		}
	case TypeMachines:
		for _, x := range m.Machines {
			if !ValidUser(x.User) || !ValidUser(x.Org) || !validUserState(x.State) {
				return errors.New("machines: bad machine, organisation or state")
			}
		}
	}
	if m.Org != nil {
		if err := m.Org.check(); err != nil {
			return err
		}
	}
	return nil
}

// check checks an organisation named by the server: its id, and a policy
// of known rights (view at least) and a sane timeout.
func (o *Org) check() error {
	if !ValidUser(o.Name) || !ValidText(o.Display, 64) {
		return errors.New("org: bad name or display name")
	}
	return o.Policy.Check()
}

// Check checks a policy: known rights only, "view" among them (every
// session starts with viewing), and a timeout of 5 s to 10 min.
func (p Policy) Check() error {
	view := false
	for _, r := range p.Rights {
		switch r {
		case RightView:
			view = true
		case RightControl, RightClipboard, RightFiles:
		default:
			return fmt.Errorf("policy: unknown right %q: want view, control, clipboard or files", clip(r))
		}
	}
	if !view {
		return errors.New("policy: the rights must include view")
	}
	if p.Timeout < 5 || p.Timeout > 600 {
		return errors.New("policy: timeout must be 5 to 600 seconds")
	}
	if p.AuditKey != "" && !validAgeRecipient(p.AuditKey) {
		return errors.New("policy: the audit key is not an age X25519 recipient (age1...: from assist audit keygen)")
	}
	return nil
}

// validAgeRecipient checks the form of an age X25519 recipient: "age1"
// and 58 lower-case bech32 characters (a 32-byte key and its checksum).
// The agent parses it fully before it encrypts to it.
func validAgeRecipient(s string) bool {
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	if len(s) != 62 || !strings.HasPrefix(s, "age1") {
		return false
	}
	for _, r := range s[4:] {
		if !strings.ContainsRune(charset, r) {
			return false
		}
	}
	return true
}

// ValidToken reports whether s is an enrolment token: 16 bytes,
// base64url without padding (as a request id).
func ValidToken(s string) bool { return ValidRequestID(s) }

func (d *Device) check() error {
	if len(d.Key) != ed25519.PublicKeySize {
		return errors.New("device key must be 32 bytes")
	}
	if d.Cert != nil && (len(d.Cert.Signer) != ed25519.PublicKeySize || len(d.Cert.Sig) != ed25519.SignatureSize) {
		return errors.New("device cert: signer of 32 bytes and sig of 64")
	}
	return nil
}

func validUserState(s string) bool {
	return s == StateOnline || s == StateBusy || s == StateAway || s == StateOffline
}

// ValidUser reports whether s is a user name: 1 to 32 of [a-z0-9._-],
// starting with a letter or digit.
func ValidUser(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidText reports whether s is 1 to max printable characters (letters,
// marks, numbers, punctuation, symbols and the space), not starting or
// ending with a space.
func ValidText(s string, max int) bool {
	if s == "" || utf8.RuneCountInString(s) > max || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if r != ' ' && !unicode.IsGraphic(r) || unicode.Is(unicode.Bidi_Control, r) {
			return false
		}
	}
	return true
}

// crockford is the Crockford base32 alphabet, of pair ids and codes.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ValidPairID reports whether s is a pair id: 4 Crockford base32 symbols,
// upper case.
func ValidPairID(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(crockford, s[i]) < 0 {
			return false
		}
	}
	return true
}

// ValidDeviceID reports whether s is a device id: 12 of [a-z2-7] (60 bits).
func ValidDeviceID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// ValidRequestID reports whether s is a request id: 16 bytes, base64url
// without padding.
func ValidRequestID(s string) bool {
	if len(s) != 22 {
		return false
	}
	b, err := B64Decode(s)
	return err == nil && len(b) == 16
}

// ValidRef reports whether s is a client reference: 1 to 64 of
// [A-Za-z0-9_-].
func ValidRef(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// B64Decode decodes base64url without padding, refusing non-canonical
// encodings.
func B64Decode(s string) ([]byte, error) {
	var b B64
	if err := b.UnmarshalText([]byte(s)); err != nil {
		return nil, err
	}
	return b, nil
}

// ValidRecordingID reports whether id is a recording id as the server
// makes them: 32 lowercase hex digits.
func ValidRecordingID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}
