package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxUpload bounds the entries of one upload; a device with more sends
// several.
const MaxUpload = 1000

// Since returns the log's entries after seq (all of them for 0), at most
// MaxUpload, and the head when they reach the log's end: what a device
// uploads to its organisation's server after the server's last seq.
func (l *FileLog) Since(seq uint64) ([]Entry, *Head, error) {
	es, err := l.Entries()
	if err != nil {
		return nil, nil, err
	}
	i := 0
	for i < len(es) && es[i].Seq <= seq {
		i++
	}
	es = es[i:]
	if len(es) > MaxUpload {
		return es[:MaxUpload], nil, nil
	}
	h, err := ReadHead(l.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return es, nil, nil
		}
		return nil, nil, err
	}
	return es, &h, nil
}

// WriteUpload encodes an upload: the entries' stored lines, then, if
// given, a last line {"head": HEAD}.
func WriteUpload(w io.Writer, entries []Entry, head *Head) error {
	bw := bufio.NewWriter(w)
	for i := range entries {
		bw.Write(entries[i].Marshal())
		bw.WriteByte('\n')
	}
	if head != nil {
		b, err := json.Marshal(struct {
			Head Head `json:"head"`
		}{*head})
		if err != nil {
			return err
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// ReadUpload decodes what WriteUpload wrote, strictly: at most MaxUpload
// entries, each line as Parse wants it, the head only last. The server
// then hands it to SQLStore.Upload, which verifies the chain.
func ReadUpload(r io.Reader) ([]Entry, *Head, error) {
	var (
		out  []Entry
		head *Head
		bad  error
	)
	err := scanLines(io.LimitReader(r, (MaxUpload+1)*MaxLine), func(n int, line []byte, err error) bool {
		if err != nil {
			bad = fmt.Errorf("audit: upload line %d: %w", n, err)
			return false
		}
		if head != nil {
			bad = fmt.Errorf("audit: upload line %d: after the head", n)
			return false
		}
		if bytes.HasPrefix(line, []byte(`{"head":`)) {
			var h struct {
				Head json.RawMessage `json:"head"`
			}
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&h); err != nil {
				bad = fmt.Errorf("audit: upload line %d: %w", n, err)
				return false
			}
			hh, err := ParseHead(h.Head)
			if err != nil {
				bad = fmt.Errorf("audit: upload line %d: %w", n, err)
				return false
			}
			head = &hh
			return true
		}
		if len(out) == MaxUpload {
			bad = fmt.Errorf("audit: more than %d entries in one upload", MaxUpload)
			return false
		}
		e, err := Parse(line)
		if err != nil {
			bad = &BadEntry{Line: n, Reason: err.Error()}
			return false
		}
		out = append(out, e)
		return true
	})
	if bad != nil {
		return nil, nil, bad
	}
	if err != nil {
		return nil, nil, fmt.Errorf("audit: upload: %w", err)
	}
	return out, head, nil
}
