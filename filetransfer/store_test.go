package filetransfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/assist-project/assist/internal/lab"
)

// memStore keeps parts in memory, as a program without a disk does.
type memStore struct {
	mu    sync.Mutex
	limit uint64
	parts map[ID]*memPart
	saved map[string][]byte
}

func newMemStore(limit uint64) *memStore {
	return &memStore{limit: limit, parts: make(map[ID]*memPart), saved: make(map[string][]byte)}
}

func (s *memStore) Has(id ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts[id] != nil
}

func (s *memStore) Open(id ID) (Part, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[id]
	if p == nil {
		p = &memPart{s: s, id: id}
		s.parts[id] = p
	}
	p.r = 0
	return p, nil
}

func (s *memStore) FreeSpace() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var used uint64
	for _, p := range s.parts {
		used += uint64(len(p.data))
	}
	return s.limit - min(used, s.limit), nil
}

type memPart struct {
	s    *memStore
	id   ID
	data []byte
	r    int
}

func (p *memPart) Read(b []byte) (int, error) {
	if p.r >= len(p.data) {
		return 0, io.EOF
	}
	n := copy(b, p.data[p.r:])
	p.r += n
	return n, nil
}

func (p *memPart) WriteAt(b []byte, off int64) (int, error) {
	if off != int64(len(p.data)) {
		return 0, errors.New("not sequential")
	}
	p.data = append(p.data, b...)
	return len(b), nil
}

func (p *memPart) Truncate(n int64) error { p.data = p.data[:n]; return nil }
func (p *memPart) Close() error           { return nil }

func (p *memPart) Save(name string) (string, error) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	delete(p.s.parts, p.id)
	p.s.saved[name] = p.data
	return name, nil
}

func (p *memPart) Remove() error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	delete(p.s.parts, p.id)
	return nil
}

// TestStoreAndSource: a file that is no path (SendSource) reaches a
// receiver that keeps files in a Store of its own, whole and under its
// sanitised name; one bigger than the Store's room is refused before any
// byte moves.
func TestStoreAndSource(t *testing.T) {
	a, b := lab.TCPPair(t)
	store := newMemStore(4 << 20)
	A, B := pair(t, a, b, Config{}, Config{Store: store})
	data := make([]byte, 3<<20+5)
	rand.Read(data)
	id, err := A.ep.SendSource(context.Background(), Source{Name: "../../etc/notes\u202e.txt", Size: uint64(len(data)),
		Key: "1700000000", Data: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if out := A.rec.wait(t, final(id)); out.State != Completed {
		t.Fatalf("sender: %+v", out)
	}
	in := B.rec.wait(t, final(id))
	if in.State != Completed || in.Name != "notes.txt" || in.Path != "notes.txt" {
		t.Fatalf("receiver: %+v", in)
	}
	store.mu.Lock()
	got := store.saved["notes.txt"]
	store.mu.Unlock()
	if !bytes.Equal(got, data) {
		t.Fatalf("saved %d bytes, not the %d sent", len(got), len(data))
	}
	if names := listDir(t, B.dir); len(names) != 0 {
		t.Errorf("the receiver's folder holds %v though it has a Store", names)
	}

	big := make([]byte, 5<<20)
	id, err = A.ep.SendSource(context.Background(), Source{Name: "big.bin", Size: uint64(len(big)), Data: bytes.NewReader(big)})
	if err != nil {
		t.Fatal(err)
	}
	if out := A.rec.wait(t, final(id)); out.State != Refused {
		t.Fatalf("a file bigger than the store: %+v", out)
	}
	if store.Has(id) {
		t.Error("a refused file left a part")
	}
}
