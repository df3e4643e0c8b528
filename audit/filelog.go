package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Appender adds entries to a chain: the FileLog on the two ends, a
// server's own chain in SQLStore.
type Appender interface {
	// Append fills in e's Seq, Prev, Key, Sig (and Time if zero),
	// stores it durably and returns it as stored.
	Append(e Entry) (Entry, error)
}

// LogName and HeadName are the files of a FileLog in its directory.
const (
	LogName  = "audit.jsonl"
	HeadName = "audit.head"
	lockName = "audit.lock"
)

// FileLog is a chain in a file, one entry per line, with its head beside
// it. Several processes may append to one FileLog: each append takes a
// lock file and chains onto the last line it finds.
type FileLog struct {
	path string
	key  ed25519.PrivateKey
	now  func() time.Time
	mu   sync.Mutex // appends of this process, in order
}

// OpenFile opens (creating if needed) the chain in dir, signed with key.
// The directory is created 0700, the files 0600.
func OpenFile(dir string, key ed25519.PrivateKey) (*FileLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: creating %s: %w", dir, err)
	}
	l := &FileLog{path: filepath.Join(dir, LogName), key: key, now: time.Now}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: opening the log: %w", err)
	}
	return l, f.Close()
}

// Path is the log file's path.
func (l *FileLog) Path() string { return l.path }

// HeadPath is where the head of the log at path lives.
func HeadPath(path string) string {
	return filepath.Join(filepath.Dir(path), strings.TrimSuffix(filepath.Base(path), ".jsonl")+".head")
}

// locked runs f with the log's lock file held.
func (l *FileLog) locked(f func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	lf, err := os.OpenFile(filepath.Join(filepath.Dir(l.path), lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("audit: lock: %w", err)
	}
	defer lf.Close()
	if err := lock(lf); err != nil {
		return fmt.Errorf("audit: lock: %w", err)
	}
	defer unlock(lf)
	return f()
}

// Append implements Appender: the entry is on disk (fsync) and the head
// rewritten when it returns.
func (l *FileLog) Append(e Entry) (Entry, error) {
	err := l.locked(func() error {
		f, err := os.OpenFile(l.path, os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("audit: opening the log: %w", err)
		}
		defer f.Close()
		last, end, err := lastEntry(f)
		if err != nil {
			return err
		}
		if last != nil && !bytes.Equal(last.Key, l.key.Public().(ed25519.PublicKey)) {
			return fmt.Errorf("audit: %s was signed with another device key; move it aside to start a new log", l.path)
		}
		e.cleanEntry()
		e.Seq, e.Prev = 1, [32]byte{}
		if last != nil {
			e.Seq, e.Prev = last.Seq+1, last.Hash()
		}
		if e.Time.IsZero() {
			e.Time = l.now()
		}
		e.Time = e.Time.UTC()
		e.sign(l.key)
		if err := e.check(); err != nil {
			return fmt.Errorf("audit: refusing a malformed entry: %w", err)
		}
		line := append(e.Marshal(), '\n')
		if len(line) > MaxLine {
			return fmt.Errorf("audit: entry of %d bytes is too long", len(line))
		}
		// A torn last line (a crash mid-write, never synced, so never
		// in the head) is cut off before the new entry.
		if err := f.Truncate(end); err != nil {
			return fmt.Errorf("audit: writing the log: %w", err)
		}
		if _, err := f.WriteAt(line, end); err != nil {
			return fmt.Errorf("audit: writing the log: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("audit: writing the log: %w", err)
		}
		return l.writeHead(&e)
	})
	return e, err
}

// lastEntry reads the last complete line of f: the entry (nil when the
// log is empty) and where the complete lines end.
func lastEntry(f *os.File) (*Entry, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("audit: reading the log: %w", err)
	}
	size := fi.Size()
	start := max(0, size-2*MaxLine)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return nil, 0, fmt.Errorf("audit: reading the log: %w", err)
	}
	end := bytes.LastIndexByte(buf, '\n') + 1 // the complete lines end here
	if end == 0 {
		if start > 0 {
			return nil, 0, fmt.Errorf("audit: the end of %s is not an entry; run assist audit verify", f.Name())
		}
		return nil, 0, nil
	}
	complete := buf[:end-1]
	line := complete[bytes.LastIndexByte(complete, '\n')+1:]
	e, err := Parse(line)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: the last entry of %s is damaged (%v); run assist audit verify", f.Name(), err)
	}
	return &e, start + int64(end), nil
}

// writeHead replaces the head with one naming e: a temporary file,
// synced, renamed into place.
func (l *FileLog) writeHead(e *Entry) error {
	h := headOf(e, l.key, l.now())
	b, err := h.MarshalJSON()
	if err != nil {
		return err
	}
	path := HeadPath(l.path)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".audit.head-*")
	if err != nil {
		return fmt.Errorf("audit: writing the head: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	err = errors.Join(werr, tmp.Chmod(0o600), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("audit: writing the head: %w", err)
	}
	return nil
}

// ReadHead reads the head of the log at path; a missing head is
// fs.ErrNotExist.
func ReadHead(path string) (Head, error) {
	b, err := os.ReadFile(HeadPath(path))
	if err != nil {
		return Head{}, err
	}
	return ParseHead(bytes.TrimSpace(b))
}

// ReadAll reads every entry of r. It stops at the first line that is not
// an entry, returning the entries before it and a *BadEntry.
func ReadAll(r io.Reader) ([]Entry, error) {
	var (
		out []Entry
		bad error
	)
	err := scanLines(r, func(n int, line []byte, err error) bool {
		if err == nil {
			var e Entry
			if e, err = Parse(line); err == nil {
				out = append(out, e)
				return true
			}
		}
		bad = &BadEntry{Line: n, Reason: err.Error()}
		return false
	})
	if bad != nil {
		return out, bad
	}
	return out, err
}

// Entries reads the whole log.
func (l *FileLog) Entries() ([]Entry, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	return ReadAll(f)
}

// Prune removes the entries older than before and appends a Cut naming
// the last one removed, so what is kept still verifies. It refuses a log
// that does not verify: its evidence is kept as it is. It returns how
// many entries it removed.
func (l *FileLog) Prune(before time.Time) (int, error) {
	removed := 0
	err := l.locked(func() error {
		b, err := os.ReadFile(l.path)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		entries, err := ReadAll(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("audit: not pruning a damaged log: %w", err)
		}
		head, err := ReadHead(l.path)
		var hp *Head
		if err == nil {
			hp = &head
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if _, err := Verify(entries, VerifyOptions{Key: l.key.Public().(ed25519.PublicKey), Head: hp}); err != nil {
			return fmt.Errorf("audit: not pruning a log that does not verify: %w", err)
		}
		k := 0
		for k < len(entries) && entries[k].Time.Before(before) {
			k++
		}
		// An older cut may go too: the new cut anchors the first entry
		// kept, whatever it is.
		if k == 0 {
			return nil
		}
		gone, last := entries[k-1], entries[len(entries)-1]
		cut := Entry{Seq: last.Seq + 1, Prev: last.Hash(), Time: l.now().UTC(), Kind: KindCut,
			Party: last.Party, Reason: fmt.Sprintf("retention: removed %d entries older than %s", k, before.UTC().Format(time.RFC3339)),
			Cut: &Cut{Through: gone.Seq, Hash: gone.Hash()}}
		cut.sign(l.key)
		var out bytes.Buffer
		for _, e := range entries[k:] {
			out.Write(e.Marshal())
			out.WriteByte('\n')
		}
		out.Write(cut.Marshal())
		out.WriteByte('\n')
		tmp, err := os.CreateTemp(filepath.Dir(l.path), ".audit.jsonl-*")
		if err != nil {
			return fmt.Errorf("audit: pruning: %w", err)
		}
		_, werr := tmp.Write(out.Bytes())
		err = errors.Join(werr, tmp.Chmod(0o600), tmp.Sync(), tmp.Close())
		if err == nil {
			err = os.Rename(tmp.Name(), l.path)
		}
		if err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("audit: pruning: %w", err)
		}
		removed = k
		return l.writeHead(&cut)
	})
	return removed, err
}
