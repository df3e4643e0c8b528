package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind says what an entry records.
type Kind string

// The kinds of entries.
const (
	// KindStart: a session began: who helped whom, on which machine,
	// over which path.
	KindStart Kind = "session-start"
	// KindConsent: a transition of the novice's consent (the novice's
	// own record: Action, From, To, Rights after it, Reason, Auto).
	KindConsent Kind = "consent"
	// KindRights: the expert's record of a state the novice reported
	// (To, Rights, Reason).
	KindRights Kind = "rights"
	// KindPath: the connection moved to another path.
	KindPath Kind = "path"
	// KindFile: a file transfer ended (File, Reason).
	KindFile Kind = "file"
	// KindEnd: the session ended (Reason).
	KindEnd Kind = "session-end"
	// KindCut: older entries were removed by retention (Cut).
	KindCut Kind = "cut"
	// KindRecording: the session's display was recorded (File: the
	// encrypted file's name, size and SHA-256).
	KindRecording Kind = "recording"
)

var kinds = []Kind{KindStart, KindConsent, KindRights, KindPath, KindFile, KindEnd, KindCut, KindRecording}

// Party is whose chain an entry belongs to.
type Party string

// The parties that keep a chain.
const (
	PartyNovice Party = "novice"
	PartyExpert Party = "expert"
	PartyServer Party = "server"
)

// File directions.
const (
	ToNovice = "to-novice"
	ToExpert = "to-expert"
)

// File is a file transfer that ended.
type File struct {
	Direction string // ToNovice or ToExpert; "" for a recording
	Name      string
	Size      uint64
	// SHA256 is the file's hash, known once it Completed.
	SHA256 [32]byte
	// Result is the filetransfer state it ended in: completed,
	// refused, cancelled, failed, interrupted.
	Result string
}

// Cut records that retention removed the entries up to Through, the last
// of which had hash Hash.
type Cut struct {
	Through uint64
	Hash    [32]byte
}

// Entry is one record of a chain. The caller fills in what happened;
// Log.Append fills in Seq, Prev, Time (if zero), Key and Sig.
type Entry struct {
	Seq  uint64
	Prev [32]byte
	Time time.Time
	Kind Kind
	// Party is whose chain this is.
	Party Party
	// Session groups the entries of one session in this chain: random,
	// made by the party (it is no secret and opens nothing).
	Session string
	Novice  string
	Expert  string
	// Machine is the novice's computer.
	Machine string
	// Path is how the two ends are connected ("direct 192.0.2.7:4000",
	// "relay-udp").
	Path string
	// Action, From, To, Rights, Reason and Auto describe a consent
	// transition; Reason also says why a session or transfer ended.
	Action string
	From   string
	To     string
	Rights string
	Reason string
	Auto   bool
	File   *File
	Cut    *Cut
	Key    ed25519.PublicKey
	Sig    []byte
}

// Limits on fields, so that one entry stays one readable line.
const (
	maxText   = 256  // names, machine, path, action, states, rights, session
	maxReason = 1024 // reasons and file names
	// MaxLine is the longest line an entry may take in a log.
	MaxLine = 16 << 10
)

// Domain strings: a signature or hash made for one purpose is never
// valid for another.
const (
	entryDomain = "assist/1 audit entry\x00"
	headDomain  = "assist/1 audit head\x00"
)

// field appends one tag-length-value field.
func field(b []byte, tag byte, v []byte) []byte {
	b = append(b, tag)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func flag(v bool) []byte {
	if v {
		return []byte{1}
	}
	return []byte{0}
}

// signed is the canonical encoding the signature covers (see the package
// doc): every field, always, in this order.
func (e *Entry) signed() []byte {
	b := make([]byte, 0, 512)
	b = append(b, entryDomain...)
	b = field(b, 1, u64(e.Seq))
	b = field(b, 2, e.Prev[:])
	b = field(b, 3, u64(uint64(e.Time.UnixNano())))
	b = field(b, 4, []byte(e.Kind))
	b = field(b, 5, []byte(e.Party))
	b = field(b, 6, []byte(e.Session))
	b = field(b, 7, []byte(e.Novice))
	b = field(b, 8, []byte(e.Expert))
	b = field(b, 9, []byte(e.Machine))
	b = field(b, 10, []byte(e.Path))
	b = field(b, 11, []byte(e.Action))
	b = field(b, 12, []byte(e.From))
	b = field(b, 13, []byte(e.To))
	b = field(b, 14, []byte(e.Rights))
	b = field(b, 15, []byte(e.Reason))
	b = field(b, 16, flag(e.Auto))
	f := e.File
	b = field(b, 17, flag(f != nil))
	if f == nil {
		f = &File{}
	}
	b = field(b, 18, []byte(f.Direction))
	b = field(b, 19, []byte(f.Name))
	b = field(b, 20, u64(f.Size))
	b = field(b, 21, f.SHA256[:])
	b = field(b, 22, []byte(f.Result))
	c := e.Cut
	b = field(b, 23, flag(c != nil))
	if c == nil {
		c = &Cut{}
	}
	b = field(b, 24, u64(c.Through))
	b = field(b, 25, c.Hash[:])
	b = field(b, 26, e.Key)
	return b
}

// Hash is the entry's identity in the chain: SHA-256 of its canonical
// encoding and its signature. The next entry names it as Prev.
func (e *Entry) Hash() [32]byte {
	return sha256.Sum256(field(e.signed(), 27, e.Sig))
}

// sign fills in Key and Sig.
func (e *Entry) sign(key ed25519.PrivateKey) {
	e.Key = key.Public().(ed25519.PublicKey)
	e.Sig = ed25519.Sign(key, e.signed())
}

// verifySig reports whether Sig is Key's signature of the entry.
func (e *Entry) verifySig() bool {
	return len(e.Key) == ed25519.PublicKeySize && len(e.Sig) == ed25519.SignatureSize &&
		ed25519.Verify(e.Key, e.signed(), e.Sig)
}

// entryJSON is the stored form. Its field order is the line's order.
type entryJSON struct {
	Seq     uint64    `json:"seq"`
	Prev    string    `json:"prev"`
	Time    string    `json:"time"`
	Kind    Kind      `json:"kind"`
	Party   Party     `json:"party"`
	Session string    `json:"session,omitempty"`
	Novice  string    `json:"novice,omitempty"`
	Expert  string    `json:"expert,omitempty"`
	Machine string    `json:"machine,omitempty"`
	Path    string    `json:"path,omitempty"`
	Action  string    `json:"action,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Rights  string    `json:"rights,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Auto    bool      `json:"auto,omitempty"`
	File    *fileJSON `json:"file,omitempty"`
	Cut     *cutJSON  `json:"cut,omitempty"`
	Key     string    `json:"key"`
	Sig     string    `json:"sig"`
	Hash    string    `json:"hash,omitempty"` // exports only, never stored
}

type fileJSON struct {
	Direction string `json:"direction"`
	Name      string `json:"name"`
	Size      uint64 `json:"size"`
	SHA256    string `json:"sha256"`
	Result    string `json:"result"`
}

type cutJSON struct {
	Through uint64 `json:"through"`
	Hash    string `json:"hash"`
}

// timeFormat is RFC 3339 in UTC with nanoseconds, always 9 digits, so a
// time has one written form.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func (e *Entry) toJSON() entryJSON {
	j := entryJSON{
		Seq: e.Seq, Prev: hex.EncodeToString(e.Prev[:]), Time: e.Time.UTC().Format(timeFormat),
		Kind: e.Kind, Party: e.Party, Session: e.Session, Novice: e.Novice, Expert: e.Expert,
		Machine: e.Machine, Path: e.Path, Action: e.Action, From: e.From, To: e.To,
		Rights: e.Rights, Reason: e.Reason, Auto: e.Auto,
		Key: hex.EncodeToString(e.Key), Sig: hex.EncodeToString(e.Sig),
	}
	if f := e.File; f != nil {
		j.File = &fileJSON{Direction: f.Direction, Name: f.Name, Size: f.Size, SHA256: hex.EncodeToString(f.SHA256[:]), Result: f.Result}
	}
	if c := e.Cut; c != nil {
		j.Cut = &cutJSON{Through: c.Through, Hash: hex.EncodeToString(c.Hash[:])}
	}
	return j
}

// Marshal returns the entry's stored line, without the newline.
func (e *Entry) Marshal() []byte {
	b, err := json.Marshal(e.toJSON())
	if err != nil {
		panic(err) // plain strings and numbers only
	}
	return b
}

// Parse reads one stored line, strictly: the line must be exactly what
// Marshal makes of the entry it describes, and the entry must be well
// formed (Entry.check). It does not verify the signature (Verify does).
func Parse(line []byte) (Entry, error) {
	if len(line) > MaxLine {
		return Entry{}, fmt.Errorf("longer than %d bytes", MaxLine)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var j entryJSON
	if err := dec.Decode(&j); err != nil {
		return Entry{}, fmt.Errorf("not an entry: %w", err)
	}
	if j.Hash != "" {
		return Entry{}, errors.New("not an entry: a stored entry has no hash field")
	}
	e := Entry{Seq: j.Seq, Kind: j.Kind, Party: j.Party, Session: j.Session, Novice: j.Novice,
		Expert: j.Expert, Machine: j.Machine, Path: j.Path, Action: j.Action, From: j.From,
		To: j.To, Rights: j.Rights, Reason: j.Reason, Auto: j.Auto}
	var err error
	if e.Prev, err = hash32(j.Prev); err != nil {
		return Entry{}, fmt.Errorf("prev: %w", err)
	}
	if e.Time, err = time.Parse(timeFormat, j.Time); err != nil {
		return Entry{}, fmt.Errorf("time: %w", err)
	}
	if e.Key, err = hexLen(j.Key, ed25519.PublicKeySize); err != nil {
		return Entry{}, fmt.Errorf("key: %w", err)
	}
	if e.Sig, err = hexLen(j.Sig, ed25519.SignatureSize); err != nil {
		return Entry{}, fmt.Errorf("sig: %w", err)
	}
	if f := j.File; f != nil {
		e.File = &File{Direction: f.Direction, Name: f.Name, Size: f.Size, Result: f.Result}
		if e.File.SHA256, err = hash32(f.SHA256); err != nil {
			return Entry{}, fmt.Errorf("file sha256: %w", err)
		}
	}
	if c := j.Cut; c != nil {
		e.Cut = &Cut{Through: c.Through}
		if e.Cut.Hash, err = hash32(c.Hash); err != nil {
			return Entry{}, fmt.Errorf("cut hash: %w", err)
		}
	}
	if err := e.check(); err != nil {
		return Entry{}, err
	}
	if !bytes.Equal(e.Marshal(), line) {
		return Entry{}, errors.New("not in canonical form (extra spaces, escapes, duplicate or reordered fields)")
	}
	return e, nil
}

func hexLen(s string, n int) ([]byte, error) {
	if len(s) != 2*n || strings.ToLower(s) != s {
		return nil, fmt.Errorf("want %d lowercase hex digits", 2*n)
	}
	return hex.DecodeString(s)
}

func hash32(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hexLen(s, 32)
	copy(h[:], b)
	return h, err
}

// check says what is wrong with a parsed entry's fields, if anything.
func (e *Entry) check() error {
	if e.Seq == 0 {
		return errors.New("seq 0: entries count from 1")
	}
	if e.Time.IsZero() || e.Time.Year() < 2000 || e.Time.Year() > 9999 {
		return errors.New("time out of range")
	}
	if !knownKind(e.Kind) {
		return fmt.Errorf("unknown kind %q", clean(string(e.Kind), 32))
	}
	switch e.Party {
	case PartyNovice, PartyExpert, PartyServer:
	default:
		return fmt.Errorf("unknown party %q", clean(string(e.Party), 32))
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"session", e.Session, maxText}, {"novice", e.Novice, maxText}, {"expert", e.Expert, maxText},
		{"machine", e.Machine, maxText}, {"path", e.Path, maxText}, {"action", e.Action, maxText},
		{"from", e.From, maxText}, {"to", e.To, maxText}, {"rights", e.Rights, maxText},
		{"reason", e.Reason, maxReason},
	} {
		if err := checkText(f.v, f.max); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if (e.Kind == KindFile || e.Kind == KindRecording) != (e.File != nil) {
		return errors.New("a file or recording entry, and only these, has a file")
	}
	if f := e.File; f != nil {
		if (e.Kind == KindFile) != (f.Direction == ToNovice || f.Direction == ToExpert) || (e.Kind == KindRecording && f.Direction != "") {
			return fmt.Errorf("file direction %q", clean(f.Direction, 32))
		}
		if err := checkText(f.Name, maxReason); err != nil {
			return fmt.Errorf("file name: %w", err)
		}
		if err := checkText(f.Result, maxText); err != nil {
			return fmt.Errorf("file result: %w", err)
		}
	}
	if (e.Kind == KindCut) != (e.Cut != nil) {
		return errors.New("a cut entry, and only a cut entry, has a cut")
	}
	if e.Cut != nil && e.Cut.Through >= e.Seq {
		return errors.New("a cut can only remove entries before it")
	}
	return nil
}

func knownKind(k Kind) bool {
	for _, x := range kinds {
		if k == x {
			return true
		}
	}
	return false
}

// checkText refuses what Clean would have changed.
func checkText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return errors.New("not UTF-8")
	}
	for _, r := range s {
		if !allowed(r) {
			return fmt.Errorf("holds the character %U", r)
		}
	}
	return nil
}

// allowed: no control characters (a terminal obeys them) and no
// bidirectional overrides (they make a name read as another).
func allowed(r rune) bool {
	if unicode.IsControl(r) || r == utf8.RuneError {
		return false
	}
	switch {
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return false
	}
	return true
}

// clean makes s safe to record: disallowed characters become "?", and it
// is cut to max bytes on a character boundary.
func clean(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if !allowed(r) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// cleanEntry cleans every text field the caller filled in.
func (e *Entry) cleanEntry() {
	for _, p := range []*string{&e.Session, &e.Novice, &e.Expert, &e.Machine, &e.Path,
		&e.Action, &e.From, &e.To, &e.Rights} {
		*p = clean(*p, maxText)
	}
	e.Reason = clean(e.Reason, maxReason)
	if e.File != nil {
		f := *e.File
		f.Name, f.Result = clean(f.Name, maxReason), clean(f.Result, maxText)
		e.File = &f
	}
}
