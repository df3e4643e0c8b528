package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/assist-project/assist/identity"
)

// Head is the signed end of a chain: the last entry's Seq and Hash. It is
// rewritten after every append, kept apart from the log, so that a log
// cut short at its end no longer reaches its head.
type Head struct {
	Seq  uint64
	Hash [32]byte
	Time time.Time
	Key  ed25519.PublicKey
	Sig  []byte
}

func (h *Head) signed() []byte {
	b := []byte(headDomain)
	b = field(b, 1, u64(h.Seq))
	b = field(b, 2, h.Hash[:])
	b = field(b, 3, u64(uint64(h.Time.UnixNano())))
	return field(b, 4, h.Key)
}

// headOf makes and signs the head of a chain whose last entry is e.
func headOf(e *Entry, key ed25519.PrivateKey, now time.Time) Head {
	h := Head{Seq: e.Seq, Hash: e.Hash(), Time: now.UTC(), Key: key.Public().(ed25519.PublicKey)}
	h.Sig = ed25519.Sign(key, h.signed())
	return h
}

type headJSON struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	Time string `json:"time"`
	Key  string `json:"key"`
	Sig  string `json:"sig"`
}

// MarshalJSON writes the head's stored form.
func (h Head) MarshalJSON() ([]byte, error) {
	return json.Marshal(headJSON{Seq: h.Seq, Hash: hex.EncodeToString(h.Hash[:]),
		Time: h.Time.UTC().Format(timeFormat), Key: hex.EncodeToString(h.Key), Sig: hex.EncodeToString(h.Sig)})
}

// ParseHead reads a stored head strictly; Verify checks its signature.
func ParseHead(b []byte) (Head, error) {
	if len(b) > 4096 {
		return Head{}, errors.New("audit: head: too long")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j headJSON
	if err := dec.Decode(&j); err != nil {
		return Head{}, fmt.Errorf("audit: head: %w", err)
	}
	h := Head{Seq: j.Seq}
	var err error
	if h.Hash, err = hash32(j.Hash); err != nil {
		return Head{}, fmt.Errorf("audit: head: hash: %w", err)
	}
	if h.Time, err = time.Parse(timeFormat, j.Time); err != nil {
		return Head{}, fmt.Errorf("audit: head: time: %w", err)
	}
	if h.Key, err = hexLen(j.Key, ed25519.PublicKeySize); err != nil {
		return Head{}, fmt.Errorf("audit: head: key: %w", err)
	}
	if h.Sig, err = hexLen(j.Sig, ed25519.SignatureSize); err != nil {
		return Head{}, fmt.Errorf("audit: head: sig: %w", err)
	}
	return h, nil
}

// BadEntry is Verify's verdict on a chain: the first entry that is not
// what it should be, and why.
type BadEntry struct {
	// Line is the entry's line in the log (from 1); 0 for the end of
	// the log or the head.
	Line int
	// Seq is the sequence number the entry claims (0 if unreadable).
	Seq    uint64
	Reason string
}

func (b *BadEntry) Error() string {
	switch {
	case b.Line == 0:
		return "audit: " + b.Reason
	case b.Seq == 0:
		return fmt.Sprintf("audit: line %d: %s", b.Line, b.Reason)
	}
	return fmt.Sprintf("audit: entry %d (line %d): %s", b.Seq, b.Line, b.Reason)
}

// VerifyOptions say what a chain must match beyond itself.
type VerifyOptions struct {
	// Key, if set, is the key every entry must be signed with; without
	// it the first entry's key is taken, and Report.Key names it for
	// people to compare.
	Key ed25519.PublicKey
	// Head, if set, is the chain's signed head: the log must reach it.
	Head *Head
	// anchor is a store's own record of the last entry its retention
	// removed, or of the stored chain that new entries extend.
	anchor *Cut
}

// Report is what a verified chain holds.
type Report struct {
	Entries int
	First   uint64 // Seq of the first entry kept
	Last    uint64
	Key     ed25519.PublicKey
	// Pruned is how many entries retention removed before First.
	Pruned uint64
	// HeadChecked is set when a head was given and the log reaches it.
	HeadChecked bool
}

// Fingerprint is the signing key's fingerprint, as identity prints keys.
func (r Report) Fingerprint() string { return identity.Fingerprint(r.Key) }

// Verify checks a chain: every entry well formed, signed by one key, each
// naming its predecessor's hash and the next sequence number; a first
// entry after 1 only if a signed cut names its predecessor; and the head,
// if given, reached. It returns the first bad entry as a *BadEntry.
func Verify(entries []Entry, opts VerifyOptions) (Report, error) {
	return verifyLines(func(yield func(int, Entry, error) bool) {
		for i, e := range entries {
			if !yield(i+1, e, nil) {
				return
			}
		}
	}, opts)
}

// VerifyReader checks the chain stored in r, one entry per line.
func VerifyReader(r io.Reader, opts VerifyOptions) (Report, error) {
	var readErr error
	rep, err := verifyLines(func(yield func(int, Entry, error) bool) {
		readErr = scanLines(r, func(n int, line []byte, err error) bool {
			if err != nil {
				return yield(n, Entry{}, err)
			}
			e, err := Parse(line)
			return yield(n, e, err)
		})
	}, opts)
	if err == nil && readErr != nil {
		return rep, fmt.Errorf("audit: reading the log: %w", readErr)
	}
	return rep, err
}

// errTorn is a last line without its newline: a write cut short.
var errTorn = errors.New("the last line is incomplete: a write was cut short, or the log was cut")

// scanLines calls f with every line of r (without its newline) until f
// returns false; a line too long or torn comes with an error instead.
func scanLines(r io.Reader, f func(n int, line []byte, err error) bool) error {
	br := bufio.NewReaderSize(r, MaxLine+1)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return err
			}
			if !f(n, nil, fmt.Errorf("longer than %d bytes", MaxLine)) || err == io.EOF {
				return nil
			}
		case err == io.EOF:
			if len(line) > 0 {
				f(n, nil, errTorn)
			}
			return nil
		case err != nil:
			return err
		default:
			if !f(n, line[:len(line)-1], nil) {
				return nil
			}
		}
	}
}

func verifyLines(each func(yield func(int, Entry, error) bool), opts VerifyOptions) (Report, error) {
	var (
		rep       Report
		prev      *Entry
		bad       *BadEntry
		anchored  bool
		firstAt   int
		first     Entry
		cuts      = map[[40]byte]bool{}
		headHash  [32]byte
		headFound bool
	)
	fail := func(line int, seq uint64, format string, a ...any) bool {
		bad = &BadEntry{Line: line, Seq: seq, Reason: fmt.Sprintf(format, a...)}
		return false
	}
	rep.Key = opts.Key
	each(func(line int, e Entry, err error) bool {
		if err != nil {
			return fail(line, 0, "%v", err)
		}
		if rep.Key == nil {
			rep.Key = e.Key
		}
		if !bytes.Equal(e.Key, rep.Key) {
			return fail(line, e.Seq, "signed by another key (%s, not %s): it was written or rewritten by someone else",
				identity.Fingerprint(e.Key), identity.Fingerprint(rep.Key))
		}
		if !e.verifySig() {
			return fail(line, e.Seq, "its signature does not verify: the entry was edited")
		}
		if prev == nil {
			first, firstAt = e, line
			rep.First = e.Seq
			anchored = e.Seq == 1 && e.Prev == [32]byte{}
			if e.Seq == 1 && !anchored {
				return fail(line, e.Seq, "the first entry names a predecessor")
			}
		} else {
			if e.Seq != prev.Seq+1 {
				return fail(line, e.Seq, "it follows entry %d: entries were deleted or reordered", prev.Seq)
			}
			if e.Prev != prev.Hash() {
				return fail(line, e.Seq, "it does not name the entry before it: an entry before it was replaced")
			}
		}
		if c := e.Cut; c != nil {
			var k [40]byte
			binary.BigEndian.PutUint64(k[:8], c.Through)
			copy(k[8:], c.Hash[:])
			cuts[k] = true
		}
		if opts.Head != nil && e.Seq == opts.Head.Seq {
			headHash, headFound = e.Hash(), true
		}
		rep.Entries++
		rep.Last = e.Seq
		p := e
		prev = &p
		return true
	})
	if bad != nil {
		return rep, bad
	}
	if prev == nil {
		if opts.Head != nil {
			return rep, &BadEntry{Reason: fmt.Sprintf("the log is empty but its signed head names entry %d: the log was emptied", opts.Head.Seq)}
		}
		return rep, nil
	}
	if !anchored {
		var k [40]byte
		binary.BigEndian.PutUint64(k[:8], first.Seq-1)
		copy(k[8:], first.Prev[:])
		a := opts.anchor
		if !cuts[k] && (a == nil || a.Through != first.Seq-1 || a.Hash != first.Prev) {
			return rep, &BadEntry{Line: firstAt, Seq: first.Seq,
				Reason: fmt.Sprintf("the log starts at entry %d and no signed cut says the entries before it were removed by retention: they were deleted", first.Seq)}
		}
		rep.Pruned = first.Seq - 1
	}
	if h := opts.Head; h != nil {
		if !bytes.Equal(h.Key, rep.Key) || !ed25519.Verify(h.Key, h.signed(), h.Sig) {
			return rep, &BadEntry{Reason: "the head is not signed by the log's key"}
		}
		switch {
		case h.Seq > prev.Seq:
			return rep, &BadEntry{Reason: fmt.Sprintf("the log ends at entry %d but its signed head names entry %d: entries at the end were removed", prev.Seq, h.Seq)}
		case h.Seq < rep.First:
			return rep, &BadEntry{Reason: fmt.Sprintf("the signed head names entry %d, before the log's first", h.Seq)}
		}
		if !headFound || headHash != h.Hash {
			return rep, &BadEntry{Reason: fmt.Sprintf("entry %d is not the one the signed head names: the log was rewritten", h.Seq)}
		}
		rep.HeadChecked = true
	}
	return rep, nil
}
