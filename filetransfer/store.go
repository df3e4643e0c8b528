package filetransfer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Store is where incoming files are kept while they arrive and saved once
// complete. DirStore keeps them in a folder on disk; a program without a
// disk (the browser's WebAssembly) brings its own.
type Store interface {
	// Has reports whether a part of transfer id is held from an earlier
	// attempt: an offer of it then resumes without asking again.
	Has(id ID) bool
	// Open opens the part of transfer id, creating it empty if none is
	// held. The error's text is told to the sender.
	Open(id ID) (Part, error)
	// FreeSpace is how many bytes more may be stored.
	FreeSpace() (uint64, error)
}

// Part is one incoming file while it arrives.
type Part interface {
	// Read reads the part held so far from its start (once, when the
	// offer is accepted, to hash it).
	io.Reader
	io.WriterAt
	// Truncate cuts the part to size bytes (0: the sender's file
	// differs, start over).
	Truncate(size int64) error
	// Save makes the complete part the file name (already sanitised),
	// never overwriting another, and says where it is: a path, or
	// whatever the Store's user knows it by.
	Save(name string) (string, error)
	// Remove deletes the part.
	Remove() error
	// Close closes the part and keeps it for a resume.
	Close() error
}

// DirStore keeps incoming files in dir: each part as a hidden
// ".assist-ID.part" file, created 0600 without following a symbolic
// link, saved under the file's name or "name (2)" and so on. freeSpace
// measures dir's free space; nil means FreeSpace.
func DirStore(dir string, freeSpace func(dir string) (uint64, error)) Store {
	if freeSpace == nil {
		freeSpace = FreeSpace
	}
	return dirStore{dir: dir, freeSpace: freeSpace}
}

type dirStore struct {
	dir       string
	freeSpace func(string) (uint64, error)
}

func (s dirStore) partialPath(id ID) string {
	return filepath.Join(s.dir, ".assist-"+hex.EncodeToString(id[:])+".part")
}

func (s dirStore) Has(id ID) bool {
	_, err := os.Lstat(s.partialPath(id))
	return err == nil
}

func (s dirStore) FreeSpace() (uint64, error) { return s.freeSpace(s.dir) }

func (s dirStore) Open(id ID) (Part, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the folder for files: %w", err)
	}
	partial := s.partialPath(id)
	if fi, err := os.Lstat(partial); err == nil && !fi.Mode().IsRegular() {
		return nil, errors.New("a partial file is in the way: " + partial)
	}
	file, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot save the file: %w", err)
	}
	return &dirPart{File: file, path: partial, dir: s.dir}, nil
}

// dirPart is a part in a DirStore: the open partial file.
type dirPart struct {
	*os.File
	path, dir string
}

func (p *dirPart) Save(name string) (string, error) {
	if err := p.Sync(); err != nil {
		p.File.Close()
		return "", err
	}
	p.File.Close()
	return saveAs(p.path, p.dir, name)
}

func (p *dirPart) Remove() error {
	p.File.Close()
	return os.Remove(p.path)
}
