package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assist-project/assist/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.M(m)) }

func newKey(t testing.TB, b byte) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32))
}

// session writes one whole session to l and returns the log's lines.
func session(t *testing.T, l *FileLog) {
	t.Helper()
	r := NewRecorder(l, PartyNovice, nil)
	r.Start("Nova", "Dana", "nova-pc", "direct 192.0.2.7:4000")
	r.Consent("expert-authenticated", "waiting", "asking", "none", "", false)
	r.Consent("allow-view", "asking", "viewing", "view", "", false)
	r.Consent("allow-control", "control-asked", "controlling", "view+control", "", false)
	r.Consent("take-back-control", "controlling", "viewing", "view", "the novice pressed Esc", false)
	r.File(File{Direction: ToNovice, Name: "report.pdf", Size: 3, SHA256: sha256.Sum256([]byte("abc")), Result: "completed"}, "")
	r.End("the expert left the session")
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

func openLog(t *testing.T) (*FileLog, ed25519.PrivateKey) {
	t.Helper()
	key := newKey(t, 1)
	l, err := OpenFile(t.TempDir(), key)
	if err != nil {
		t.Fatal(err)
	}
	return l, key
}

func lines(t *testing.T, l *FileLog) [][]byte {
	t.Helper()
	b, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	ls := bytes.SplitAfter(b, []byte("\n"))
	return ls[:len(ls)-1] // after the last newline
}

func verifyFile(t *testing.T, l *FileLog, pub ed25519.PublicKey) (Report, error) {
	t.Helper()
	f, err := os.Open(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := ReadHead(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	return VerifyReader(f, VerifyOptions{Key: pub, Head: &h})
}

func TestChainVerifies(t *testing.T) {
	l, key := openLog(t)
	session(t, l)
	rep, err := verifyFile(t, l, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 7 || rep.First != 1 || rep.Last != 7 || !rep.HeadChecked {
		t.Fatalf("report %+v", rep)
	}
	for _, p := range []string{l.Path(), HeadPath(l.Path())} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v", p, fi.Mode(), err)
		}
	}
	es, err := l.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if es[5].File.Name != "report.pdf" || es[6].Reason != "the expert left the session" || es[0].Machine != "nova-pc" {
		t.Fatalf("entries %+v", es)
	}
}

// TestTamper: every way of changing a log is found, at the right entry.
func TestTamper(t *testing.T) {
	other := newKey(t, 2)
	tests := []struct {
		name   string
		change func(t *testing.T, ls [][]byte, head *Head) [][]byte
		line   int // the bad entry's line; 0 for the end or the head
		want   string
	}{
		{"edit a name", func(t *testing.T, ls [][]byte, _ *Head) [][]byte {
			ls[2] = bytes.Replace(ls[2], []byte(`"Dana"`), []byte(`"Eve"`), 1)
			return ls
		}, 3, "signature does not verify"},
		{"edit a time", func(t *testing.T, ls [][]byte, _ *Head) [][]byte {
			e, err := Parse(bytes.TrimSuffix(ls[4], []byte("\n")))
			if err != nil {
				t.Fatal(err)
			}
			e.Time = e.Time.Add(-time.Hour)
			ls[4] = append(e.Marshal(), '\n')
			return ls
		}, 5, "signature does not verify"},
		{"delete an entry", func(t *testing.T, ls [][]byte, _ *Head) [][]byte {
			return append(ls[:3:3], ls[4:]...)
		}, 4, "follows entry 3: entries were deleted or reordered"},
		{"swap two entries", func(t *testing.T, ls [][]byte, _ *Head) [][]byte {
			ls[2], ls[3] = ls[3], ls[2]
			return ls
		}, 3, "follows entry 2"},
		{"delete the first entries", func(t *testing.T, ls [][]byte, _ *Head) [][]byte {
			return ls[2:]
		}, 1, "no signed cut"},
		{"truncate at the end", func(t *testing.T, ls [][]byte, _ *Head) [][]byte {
			return ls[:5]
		}, 0, "ends at entry 5 but its signed head names entry 7"},
		{"cut the last line in half", func(t *testing.T, ls [][]byte, _ *Head) [][]byte {
			ls[6] = ls[6][:40]
			return ls
		}, 7, "incomplete"},
		{"re-sign an edited entry with another key", func(t *testing.T, ls [][]byte, _ *Head) [][]byte {
			e, err := Parse(bytes.TrimSuffix(ls[5], []byte("\n")))
			if err != nil {
				t.Fatal(err)
			}
			e.File.Name = "innocent.txt"
			e.sign(other)
			ls[5] = append(e.Marshal(), '\n')
			return ls
		}, 6, "signed by another key"},
		{"re-sign the whole log with another key", func(t *testing.T, ls [][]byte, head *Head) [][]byte {
			var prev [32]byte
			for i, l := range ls {
				e, err := Parse(bytes.TrimSuffix(l, []byte("\n")))
				if err != nil {
					t.Fatal(err)
				}
				e.Prev = prev
				e.sign(other)
				prev = e.Hash()
				ls[i] = append(e.Marshal(), '\n')
			}
			return ls
		}, 1, "signed by another key"},
		{"replace an entry with a valid one of another chain", func(t *testing.T, ls [][]byte, _ *Head) [][]byte {
			l2, err := OpenFile(t.TempDir(), newKey(t, 1))
			if err != nil {
				t.Fatal(err)
			}
			for range 4 {
				if _, err := l2.Append(Entry{Kind: KindEnd, Party: PartyNovice, Reason: "x"}); err != nil {
					t.Fatal(err)
				}
			}
			ls[3] = lines(t, l2)[3]
			return ls
		}, 4, "does not name the entry before it"},
		{"rewrite the head", func(t *testing.T, ls [][]byte, head *Head) [][]byte {
			head.Seq = 5
			return ls
		}, 0, "not signed by the log's key"},
		{"a line that is not canonical", func(t *testing.T, ls [][]byte, _ *Head) [][]byte {
			ls[1] = bytes.Replace(ls[1], []byte(`{"seq":2,`), []byte(`{"seq": 2,`), 1)
			return ls
		}, 2, "not in canonical form"},
		{"a duplicate field", func(t *testing.T, ls [][]byte, _ *Head) [][]byte {
			ls[1] = bytes.Replace(ls[1], []byte(`{"seq":2,`), []byte(`{"seq":9,"seq":2,`), 1)
			return ls
		}, 2, "not in canonical form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, key := openLog(t)
			session(t, l)
			head, err := ReadHead(l.Path())
			if err != nil {
				t.Fatal(err)
			}
			ls := tt.change(t, lines(t, l), &head)
			_, err = VerifyReader(bytes.NewReader(bytes.Join(ls, nil)), VerifyOptions{Key: key.Public().(ed25519.PublicKey), Head: &head})
			var bad *BadEntry
			if !errors.As(err, &bad) {
				t.Fatalf("tampered log verified: %v", err)
			}
			if bad.Line != tt.line || !strings.Contains(bad.Reason, tt.want) {
				t.Fatalf("verdict %v (line %d), want line %d and %q", bad, bad.Line, tt.line, tt.want)
			}
		})
	}
}

// TestPrune: retention removes old entries and what is left verifies;
// removing more than retention did still shows.
func TestPrune(t *testing.T) {
	l, key := openLog(t)
	pub := key.Public().(ed25519.PublicKey)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	session(t, l) // entries 1-7 at noon
	now = now.Add(48 * time.Hour)
	session(t, l) // 8-14 two days later
	n, err := l.Prune(now.Add(-24 * time.Hour))
	if err != nil || n != 7 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	rep, err := verifyFile(t, l, pub)
	if err != nil {
		t.Fatal(err)
	}
	if rep.First != 8 || rep.Last != 15 || rep.Pruned != 7 {
		t.Fatalf("after pruning: %+v", rep)
	}
	// More entries, a second pruning of everything: the cut alone stays.
	session(t, l) // 16-22
	now = now.Add(time.Hour)
	if n, err := l.Prune(now); err != nil || n != 15 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if rep, err := verifyFile(t, l, pub); err != nil || rep.Entries != 1 || rep.First != 23 {
		t.Fatalf("after pruning all: %+v, %v", rep, err)
	}
	session(t, l)
	if _, err := verifyFile(t, l, pub); err != nil {
		t.Fatal(err)
	}

	// Deleting the first kept entry after a cut is not retention.
	ls := lines(t, l)
	head, _ := ReadHead(l.Path())
	_, err = VerifyReader(bytes.NewReader(bytes.Join(ls[1:], nil)), VerifyOptions{Key: pub, Head: &head})
	if err == nil || !strings.Contains(err.Error(), "no signed cut") {
		t.Fatalf("deleting the cut: %v", err)
	}
}

// TestPruneRefusesDamaged: a log that does not verify keeps its evidence.
func TestPruneRefusesDamaged(t *testing.T) {
	l, _ := openLog(t)
	session(t, l)
	ls := lines(t, l)
	ls[2] = bytes.Replace(ls[2], []byte(`"Dana"`), []byte(`"Eve"`), 1)
	if err := os.WriteFile(l.Path(), bytes.Join(ls, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Prune(time.Now().Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("pruning a damaged log: %v", err)
	}
}

// TestConcurrentAppenders: two processes' worth of FileLogs on one file
// keep one chain.
func TestConcurrentAppenders(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t, 1)
	var wg sync.WaitGroup
	for range 4 {
		l, err := OpenFile(dir, key)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range 25 {
				if _, err := l.Append(Entry{Kind: KindPath, Party: PartyExpert, Path: "relay-udp"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	l, _ := OpenFile(dir, key)
	rep, err := verifyFile(t, l, key.Public().(ed25519.PublicKey))
	if err != nil || rep.Entries != 100 {
		t.Fatalf("%+v, %v", rep, err)
	}
}

// TestTornLineRepaired: a crash mid-write leaves a partial line, never in
// the head; the next append cuts it off and the chain verifies.
func TestTornLineRepaired(t *testing.T) {
	l, key := openLog(t)
	session(t, l)
	f, err := os.OpenFile(l.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":8,"prev":"ab`)
	f.Close()
	if _, err := verifyFile(t, l, key.Public().(ed25519.PublicKey)); err == nil {
		t.Fatal("a torn line verified")
	}
	if _, err := l.Append(Entry{Kind: KindEnd, Party: PartyNovice}); err != nil {
		t.Fatal(err)
	}
	if rep, err := verifyFile(t, l, key.Public().(ed25519.PublicKey)); err != nil || rep.Last != 8 {
		t.Fatalf("%+v, %v", rep, err)
	}
}

// TestAppendAnotherKey: a log of another device key is not continued.
func TestAppendAnotherKey(t *testing.T) {
	l, _ := openLog(t)
	session(t, l)
	l2, _ := OpenFile(filepath.Dir(l.Path()), newKey(t, 3))
	if _, err := l2.Append(Entry{Kind: KindEnd, Party: PartyNovice}); err == nil || !strings.Contains(err.Error(), "another device key") {
		t.Fatalf("appended with another key: %v", err)
	}
}

// TestCleanOnWrite: what a peer names (an expert calling themselves with
// terminal escapes or bidi overrides) is recorded harmless.
func TestCleanOnWrite(t *testing.T) {
	l, _ := openLog(t)
	r := NewRecorder(l, PartyNovice, nil)
	r.Start("Nova", "Dana\x1b[2J\u202eevil", "pc", "direct")
	es, err := l.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if es[0].Expert != "Dana?[2J?evil" {
		t.Fatalf("expert recorded as %q", es[0].Expert)
	}
}

func TestCSVInjection(t *testing.T) {
	l, _ := openLog(t)
	r := NewRecorder(l, PartyNovice, nil)
	r.Start("=HYPERLINK(\"http://x\")", "+1", "@SUM(A1)", "-2")
	r.File(File{Direction: ToExpert, Name: "=cmd|'/c calc'!A1", Size: 1, Result: "completed"}, "\tx")
	es, _ := l.Entries()
	var b bytes.Buffer
	if err := WriteCSV(&b, es); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		for _, c := range row {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("cell %q would be evaluated", c)
			}
		}
	}
	if rows[1][5] != `'=HYPERLINK("http://x")` || rows[2][16] != `'=cmd|'/c calc'!A1` {
		t.Fatalf("rows %q", rows)
	}
	var js []map[string]any
	b.Reset()
	if err := WriteJSON(&b, es); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Bytes(), &js); err != nil || len(js) != 2 || js[0]["hash"] == "" {
		t.Fatalf("json %s, %v", b.Bytes(), err)
	}
}

// TestCanonicalFields: no two different entries share a signed encoding,
// even when one field's text looks like the start of the next.
func TestCanonicalFields(t *testing.T) {
	a := Entry{Seq: 1, Time: time.Unix(1e9, 0), Kind: KindStart, Party: PartyNovice, Novice: "ab", Expert: "c"}
	b := a
	b.Novice, b.Expert = "a", "bc"
	c := a
	c.File = &File{}
	if bytes.Equal(a.signed(), b.signed()) || bytes.Equal(a.signed(), c.signed()) {
		t.Fatal("two entries share an encoding")
	}
}

func FuzzParse(f *testing.F) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	for _, e := range []Entry{
		{Seq: 1, Time: time.Unix(1.7e9, 5), Kind: KindStart, Party: PartyNovice, Novice: "Nova", Expert: "Dana <x>", Machine: "pc", Path: "direct"},
		{Seq: 2, Time: time.Unix(1.7e9, 0), Kind: KindFile, Party: PartyExpert, File: &File{Direction: ToNovice, Name: "a\"b", Size: 9, Result: "completed"}},
		{Seq: 3, Time: time.Unix(1.7e9, 0), Kind: KindCut, Party: PartyServer, Cut: &Cut{Through: 2}},
	} {
		e.sign(key)
		f.Add(e.Marshal())
	}
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`{"seq":1,"seq":2}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := Parse(line)
		if err != nil {
			return
		}
		// Whatever parses is well formed and has exactly this one line.
		if err := e.check(); err != nil {
			t.Fatalf("parsed a malformed entry: %v", err)
		}
		if !bytes.Equal(e.Marshal(), line) {
			t.Fatalf("parsed %q, which marshals as %q", line, e.Marshal())
		}
		e2, err := Parse(e.Marshal())
		if err != nil || e2.Hash() != e.Hash() {
			t.Fatalf("round trip: %v", err)
		}
		_ = e.Words()
	})
}

func FuzzVerify(f *testing.F) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	var log bytes.Buffer
	var prev [32]byte
	for i := range 3 {
		e := Entry{Seq: uint64(i + 1), Prev: prev, Time: time.Unix(1.7e9, 0), Kind: KindEnd, Party: PartyNovice}
		e.sign(key)
		prev = e.Hash()
		log.Write(e.Marshal())
		log.WriteByte('\n')
	}
	f.Add(log.Bytes())
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := VerifyReader(bytes.NewReader(b), VerifyOptions{})
		if err == nil && rep.Entries > 0 && rep.Key == nil {
			t.Fatal("verified without a key")
		}
	})
}
