package hub_test

// Session recordings on the server: only a machine of an organisation
// that records uploads, in chunks, within the size cap; only that
// organisation's admins list and download them, byte for byte.

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

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
