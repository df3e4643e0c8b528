package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
)

// TestUploadRoundTrip: what a device sends after the server's last entry
// is what the server stores, and the stored chain verifies to the head.
func TestUploadRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openSQL(t)
	l, key := openLog(t)
	session(t, l)
	var sent uint64
	for range 2 {
		es, head, err := l.Since(sent)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := WriteUpload(&b, es, head); err != nil {
			t.Fatal(err)
		}
		got, h, err := ReadUpload(&b)
		if err != nil || len(got) != len(es) || (h == nil) != (head == nil) {
			t.Fatalf("read %d entries, head %v, %v", len(got), h, err)
		}
		if err := s.Upload(ctx, got, h); err != nil {
			t.Fatal(err)
		}
		sent = es[len(es)-1].Seq
		session(t, l)
	}
	rep, err := s.VerifyChain(ctx, key.Public().(ed25519.PublicKey))
	if err != nil || rep.Last != 14 || !rep.HeadChecked {
		t.Fatalf("%+v, %v", rep, err)
	}
}

func FuzzReadUpload(f *testing.F) {
	l, _ := OpenFile(f.TempDir(), newKey(f, 1))
	r := NewRecorder(l, PartyNovice, nil)
	r.Start("Nova", "Dana", "pc", "direct")
	r.End("over")
	es, head, _ := l.Since(0)
	var b bytes.Buffer
	WriteUpload(&b, es, head)
	f.Add(b.Bytes())
	f.Add([]byte(`{"head":{}}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, head, err := ReadUpload(bytes.NewReader(b))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteUpload(&out, es, head); err != nil {
			t.Fatal(err)
		}
		es2, _, err := ReadUpload(&out)
		if err != nil || len(es2) != len(es) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
