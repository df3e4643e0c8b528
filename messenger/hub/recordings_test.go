package hub_test

// Session recordings on the server: only a machine of an organisation
// that records uploads, in chunks, within the size cap; only that
// organisation's admins list and download them, byte for byte.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
)

func TestRecordingUploadListGet(t *testing.T) {
	dir := t.TempDir()
	w := newOrgWorld(t, func(c *hub.Config) {
		c.RecordingsDir = dir
		c.MaxRecordingBytes = 100 << 10
	})
	ctx := ctxT(t)
	start := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	rec := make([]byte, 70<<10) // three chunks
	rand.Read(rec)

	// acme does not record (yet): its machines upload nothing; nor do
	// people, whatever their role.
	for _, u := range []*user{w.pc1, w.ann, w.dana, w.mel, w.olga} {
		_, err := u.UploadRecording(ctx, bytes.NewReader(rec), "dana", start)
		isCode(t, err, messenger.CodeUnauthorized)
	}
	p := hub.DefaultPolicy()
	p.Record = true
	if err := w.th.Store.SetPolicy(ctx, "acme", p); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*user{w.ann, w.dana, w.mel, w.olga} {
		_, err := u.UploadRecording(ctx, bytes.NewReader(rec), "dana", start)
		isCode(t, err, messenger.CodeUnauthorized)
	}
	id, err := w.pc1.UploadRecording(ctx, bytes.NewReader(rec), "dana", start)
	if err != nil {
		t.Fatalf("pc-1 uploads: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "acme", id+".age"))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != int64(len(rec)) {
		t.Fatalf("stored file: %v, %v", fi, err)
	}
	if _, err := w.gx1.UploadRecording(ctx, bytes.NewReader(rec[:10]), "gus", start); err != nil {
		t.Fatalf("gx-1 uploads: %v", err)
	}
	// Over the cap: refused, and nothing of it stays.
	big := make([]byte, 150<<10)
	if _, err := w.pc2.UploadRecording(ctx, bytes.NewReader(big), "dana", start); !messenger.IsCode(err, messenger.CodeInvalid) {
		t.Fatalf("over the cap: %v", err)
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "acme")); len(es) != 2 {
		t.Fatalf("after a refused upload the folder holds %d files, want pc-1's two", len(es))
	}

	// Only acme's admin lists and downloads acme's recordings.
	for _, c := range []struct {
		who *user
		org string
	}{{w.dana, "acme"}, {w.mel, "acme"}, {w.gus, "acme"}, {w.olga, "acme"}, {w.pc1, "acme"}, {w.ann, "globex"}, {w.ann, "nope"}, {w.gus, "globex"}} {
		_, err := c.who.Recordings(ctx, c.org)
		isCode(t, err, messenger.CodeUnauthorized)
		_, err = c.who.GetRecording(ctx, c.org, id, &bytes.Buffer{})
		isCode(t, err, messenger.CodeUnauthorized)
	}
	list, err := w.ann.Recordings(ctx, "acme")
	if err != nil || len(list) != 1 {
		t.Fatalf("ann lists: %+v, %v", list, err)
	}
	if r := list[0]; r.ID != id || r.Machine != "pc-1" || r.User != "dana" || !r.Start.Equal(start) || r.Size != int64(len(rec)) {
		t.Fatalf("listed: %+v", r)
	}
	var got bytes.Buffer
	if n, err := w.ann.GetRecording(ctx, "acme", id, &got); err != nil || n != int64(len(rec)) || !bytes.Equal(got.Bytes(), rec) {
		t.Fatalf("ann downloads %d bytes: %v (equal: %v)", n, err, bytes.Equal(got.Bytes(), rec))
	}
	_, err = w.ann.GetRecording(ctx, "acme", "0123456789abcdef0123456789abcdef", &got)
	isCode(t, err, messenger.CodeNotFound)
}

// TestRecordingBoundToAuditLog: on a server with an audit trail, a
// recording is kept only if the machine's uploaded audit log names its
// SHA-256.
func TestRecordingBoundToAuditLog(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	w := newOrgWorld(t, func(c *hub.Config) {
		c.AuditKey = key
		c.RecordingsDir = t.TempDir()
	})
	ctx := ctxT(t)
	start := time.Now().Add(-time.Minute)
	rec := []byte("an encrypted recording")
	if _, err := w.gx1.UploadRecording(ctx, bytes.NewReader(rec), "gus", start); !messenger.IsCode(err, messenger.CodeInvalid) {
		t.Fatalf("a recording the audit log does not name: %v", err)
	}
	l, err := audit.OpenFile(t.TempDir(), w.gx1.key)
	if err != nil {
		t.Fatal(err)
	}
	r := audit.NewRecorder(l, audit.PartyNovice, nil)
	r.Start("Gil", "gus", "gx-1", "relay-udp")
	r.Recorded(audit.File{Name: "x.rec", Size: uint64(len(rec)), SHA256: sha256.Sum256(rec), Result: "recorded"})
	r.End("over")
	if _, err := upload(t, w.gx1, l); err != nil {
		t.Fatal(err)
	}
	if _, err := w.gx1.UploadRecording(ctx, bytes.NewReader(append(rec, '!')), "gus", start); !messenger.IsCode(err, messenger.CodeInvalid) {
		t.Fatalf("another file than the log names: %v", err)
	}
	if _, err := w.gx1.UploadRecording(ctx, bytes.NewReader(rec), "gus", start); err != nil {
		t.Fatalf("the recording the log names: %v", err)
	}
}

// TestRecordingPaced: a recording of more chunks than the server's
// message burst goes up and down whole: the client paces its chunks
// under the server's message rate, which closes a connection beyond it.
func TestRecordingPaced(t *testing.T) {
	w := newOrgWorld(t, func(c *hub.Config) {
		c.RecordingsDir = t.TempDir()
		c.MessageRate, c.MessageBurst = 20, 3
	})
	ctx := ctxT(t)
	rec := make([]byte, 8*messenger.RecordingChunk)
	rand.Read(rec)
	if err := w.th.Store.SetRole(ctx, "globex", "ann", messenger.OrgAdmin); err != nil {
		t.Fatal(err)
	}
	id, err := w.gx1.UploadRecording(ctx, bytes.NewReader(rec), "gus", time.Now())
	if err != nil {
		t.Fatalf("upload of 9 chunks: %v", err)
	}
	var got bytes.Buffer
	if _, err := w.ann.GetRecording(ctx, "globex", id, &got); err != nil || !bytes.Equal(got.Bytes(), rec) {
		t.Fatalf("download of 8 chunks: %v", err)
	}
}
