package filetransfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assist-project/assist/internal/lab"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder collects an endpoint's events and wakes waiters.
type recorder struct {
	mu     sync.Mutex
	events []Event
	wake   chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) add(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// wait returns the first event (after those already returned by wait
// for the same id) that matches ok.
func (r *recorder) wait(t *testing.T, ok func(Event) bool) Event {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if ok(ev) {
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("no such event; got %+v", r.all())
		}
	}
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

func final(id ID) func(Event) bool {
	return func(ev Event) bool {
		return ev.ID == id && ev.State != Offered && ev.State != Transferring
	}
}

type side struct {
	ep  *Endpoint
	rec *recorder
	dir string
}

// pair starts two endpoints over a and b: A is the sender in most
// tests, B the receiver; each gets its own folder and recorder.
func pair(t *testing.T, a, b net.Conn, ca, cb Config) (*side, *side) {
	t.Helper()
	mk := func(c net.Conn, cfg Config) *side {
		s := &side{rec: newRecorder()}
		if cfg.Dir == "" {
			s.dir = t.TempDir()
			cfg.Dir = s.dir
		} else {
			s.dir = cfg.Dir
		}
		cfg.OnEvent = s.rec.add
		s.ep = New(c, cfg)
		t.Cleanup(func() { s.ep.Close() })
		return s
	}
	return mk(a, ca), mk(b, cb)
}

func writeFile(t *testing.T, dir, name string, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d sent", path, len(got), len(want))
	}
}

// listDir lists the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestBothWays sends files of awkward sizes both ways at once over one
// connection; each arrives whole, under its name, in the receiver's
// folder, and nothing else is left there.
func TestBothWays(t *testing.T) {
	a, b := lab.TCPPair(t)
	A, B := pair(t, a, b, Config{}, Config{})
	src := t.TempDir()
	sizes := []int{0, 1, Chunk - 1, Chunk, Chunk + 1, 3<<20 + 7}
	type sent struct {
		id   ID
		data []byte
		to   *side
		from *side
	}
	var all []sent
	for i, n := range sizes {
		from, to := A, B
		if i%2 == 1 {
			from, to = B, A
		}
		p, data := writeFile(t, src, "f"+string(rune('a'+i))+".bin", n)
		id, err := from.ep.Send(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, sent{id, data, to, from})
	}
	for _, s := range all {
		out := s.from.rec.wait(t, final(s.id))
		if out.State != Completed {
			t.Fatalf("sender: %+v", out)
		}
		in := s.to.rec.wait(t, final(s.id))
		if in.State != Completed || !in.Incoming {
			t.Fatalf("receiver: %+v", in)
		}
		if filepath.Dir(in.Path) != s.to.dir {
			t.Fatalf("saved outside the folder: %s", in.Path)
		}
		sameFile(t, in.Path, s.data)
		// Both ends report the file's hash for the audit trail.
		if want := sha256.Sum256(s.data); in.SHA256 != want || out.SHA256 != want {
			t.Fatalf("hashes reported: receiver %x, sender %x, want %x", in.SHA256, out.SHA256, want)
		}
	}
	for _, s := range []*side{A, B} {
		for _, n := range listDir(t, s.dir) {
			if strings.HasPrefix(n, ".") {
				t.Errorf("left behind: %s", n)
			}
		}
	}
}

// TestRefused: a receiver who says no gets nothing, and the sender hears
// the reason; one who is not allowed (the session's files right) refuses
// every offer without asking, and a right revoked mid-transfer stops it
// and leaves nothing behind.
func TestRefused(t *testing.T) {
	src := t.TempDir()
	p, _ := writeFile(t, src, "report.pdf", 1<<20)

	t.Run("asked", func(t *testing.T) {
		a, b := lab.TCPPair(t)
		asked := make(chan Offer, 1)
		A, B := pair(t, a, b, Config{}, Config{Ask: func(o Offer) { asked <- o }})
		id, err := A.ep.Send(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		o := <-asked
		if o.Name != "report.pdf" || o.Size != 1<<20 {
			t.Fatalf("offer %+v", o)
		}
		o.Refuse("no thanks")
		ev := A.rec.wait(t, final(id))
		if ev.State != Refused || ev.Reason != "no thanks" {
			t.Fatalf("sender: %+v", ev)
		}
		if n := listDir(t, B.dir); len(n) != 0 {
			t.Fatalf("receiver's folder: %v", n)
		}
	})

	t.Run("not allowed", func(t *testing.T) {
		a, b := lab.TCPPair(t)
		no := func() error { return errors.New("Grandma has not allowed files") }
		A, B := pair(t, a, b, Config{}, Config{Allowed: no, Ask: func(Offer) { t.Error("asked") }})
		id, err := A.ep.Send(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		ev := A.rec.wait(t, final(id))
		if ev.State != Refused || ev.Reason != "Grandma has not allowed files" {
			t.Fatalf("sender: %+v", ev)
		}
		if n := listDir(t, B.dir); len(n) != 0 {
			t.Fatalf("receiver's folder: %v", n)
		}
		// The sender's own side refuses to send as well.
		if _, err := B.ep.Send(context.Background(), p); err == nil {
			t.Fatal("a side without the right sent a file")
		}
	})

	t.Run("revoked", func(t *testing.T) {
		a, b := lab.TCPPair(t)
		var allowed atomic.Bool
		allowed.Store(true)
		gate := func() error {
			if !allowed.Load() {
				return errors.New("file transfers were stopped")
			}
			return nil
		}
		big, _ := writeFile(t, src, "big.bin", 64<<20)
		A, B := pair(t, a, b, Config{}, Config{Allowed: gate})
		id, err := A.ep.Send(context.Background(), big)
		if err != nil {
			t.Fatal(err)
		}
		B.rec.wait(t, func(ev Event) bool { return ev.ID == id && ev.State == Transferring && ev.Done > 0 })
		allowed.Store(false)
		ev := A.rec.wait(t, final(id))
		if ev.State != Cancelled || !strings.Contains(ev.Reason, "file transfers were stopped") {
			t.Fatalf("sender: %+v", ev)
		}
		in := B.rec.wait(t, final(id))
		if in.State != Cancelled {
			t.Fatalf("receiver: %+v", in)
		}
		if n := listDir(t, B.dir); len(n) != 0 {
			t.Fatalf("receiver's folder: %v", n)
		}
	})
}

// TestHostileNames: whatever name the peer offers, the file lands in the
// receiver's folder, under a name with no path, no control or bidi
// characters and no leading dot, and an existing file is never
// overwritten.
func TestHostileNames(t *testing.T) {
	for _, tc := range []struct{ offered, saved string }{
		{"../../.bashrc", "bashrc"},
		{"/etc/passwd", "passwd"},
		{`..\..\Windows\System32\evil.dll`, "evil.dll"},
		{"..", "file"},
		{".", "file"},
		{"a\x00b\nc\x1b[31m.txt", "abc[31m.txt"},
		{"invoice\u202egpj.exe", "invoicegpj.exe"},
		{"CON.txt", "_CON.txt"},
		{"what?.txt ...", "what_.txt"},
		{"\xff\xfe.txt", "_.txt"},
		{strings.Repeat("a", 1000) + ".pdf", strings.Repeat("a", 196) + ".pdf"},
	} {
		if got := SanitizeName(tc.offered); got != tc.saved {
			t.Errorf("SanitizeName(%q) = %q, want %q", tc.offered, got, tc.saved)
		}
	}

	// Over the wire: the name as a hostile sender writes it in the offer.
	a, b := lab.TCPPair(t)
	defer a.Close()
	rdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(rdir, "passwd"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ep := New(b, Config{Dir: rdir, OnEvent: rec.add})
	defer ep.Close()
	for i, name := range []string{"/etc/passwd", "../passwd", "passwd", "passwd"} {
		id := ID{byte(i + 1)}
		rawSend(t, a, id, name, []byte("theirs"))
		ev := rec.wait(t, final(id))
		want := filepath.Join(rdir, []string{"passwd (2)", "passwd (3)", "passwd (4)", "passwd (5)"}[i])
		if ev.State != Completed || ev.Path != want {
			t.Fatalf("%q: %+v, want saved as %s", name, ev, want)
		}
		sameFile(t, want, []byte("theirs"))
	}
	sameFile(t, filepath.Join(rdir, "passwd"), []byte("mine"))
	if _, err := os.Stat(filepath.Join(filepath.Dir(rdir), "passwd")); err == nil {
		t.Fatal("a file was written outside the folder")
	}
}

// rawSend is a sender written by hand: offer, wait for the accept, data,
// done, result.
func rawSend(t *testing.T, c net.Conn, id ID, name string, data []byte) {
	t.Helper()
	put := func(f frame) {
		b, err := appendFrame(nil, &f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	get := func() frame {
		var f frame
		if _, err := readFrame(c, nil, &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	put(frame{Kind: kindOffer, ID: id, Size: uint64(len(data)), Name: name})
	if f := get(); f.Kind != kindAccept || f.Offset != 0 {
		t.Fatalf("answer %+v", f)
	}
	put(frame{Kind: kindData, ID: id, Data: data})
	d := frame{Kind: kindDone, ID: id, Hash: sha256.Sum256(data)}
	put(d)
	if f := get(); f.Kind != kindResult || !f.OK {
		t.Fatalf("result %+v", f)
	}
}
