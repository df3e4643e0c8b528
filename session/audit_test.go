package session

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/filetransfer"
)

// hookLog collects what the audit hooks receive.
type hookLog[T any] struct {
	mu  sync.Mutex
	evs []T
}

func (h *hookLog[T]) add(ev T) {
	h.mu.Lock()
	h.evs = append(h.evs, ev)
	h.mu.Unlock()
}

func (h *hookLog[T]) all() []T {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]T(nil), h.evs...)
}

// TestAuditHooks: the expert's Audit hook gets every state the novice
// reports and the end, once; FileAudit on both ends gets the completed
// file with its SHA-256, and nothing of its progress.
func TestAuditHooks(t *testing.T) {
	a, b := net.Pipe()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var states hookLog[ExpertEvent]
	var novFiles, expFiles hookLog[filetransfer.Event]
	exp := StartExpertConfig(b, log, ExpertConfig{FilesDir: t.TempDir(), Audit: states.add, FileAudit: expFiles.add})
	nov, err := StartNovice(context.Background(), a, "Dana", NoviceConfig{
		Policy: PolicyView, Logger: log, FilesDir: t.TempDir(), AnswerTimeout: 10 * time.Second, FileAudit: novFiles.add})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		nov.End("test over")
		for range nov.Events() {
		}
		<-nov.Done()
		exp.Leave("test over")
		for range exp.Events() {
		}
		<-exp.Done()
	}()
	waitExpertRights(t, exp, RightView)
	ctx := context.Background()
	if err := exp.RequestFiles(ctx); err != nil {
		t.Fatal(err)
	}
	if err := nextQuestion(t, nov).Answer(true); err != nil {
		t.Fatal(err)
	}
	waitExpertRights(t, exp, RightView|RightFiles)
	data := bytes.Repeat([]byte("audit "), 50000)
	p := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := exp.SendFile(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	waitFile(t, exp.FileEvents(), id, false)
	waitFile(t, nov.FileEvents(), id, true)
	want := sha256.Sum256(data)
	for side, got := range map[string][]filetransfer.Event{"novice": novFiles.all(), "expert": expFiles.all()} {
		if len(got) != 1 || got[0].State != filetransfer.Completed || got[0].SHA256 != want || got[0].Size != uint64(len(data)) {
			t.Fatalf("%s's file audit: %+v", side, got)
		}
	}
	nov.End("the novice ended the session")
	<-exp.Done()
	got := states.all()
	var rights []Rights
	for _, ev := range got {
		rights = append(rights, ev.Rights)
	}
	last := got[len(got)-1]
	if last.State != Ended || last.Reason != "the novice ended the session" {
		t.Fatalf("last audited state %+v", last)
	}
	ends := 0
	for _, ev := range got {
		if ev.State == Ended {
			ends++
		}
	}
	if ends != 1 || !containsRights(rights, RightView|RightFiles) {
		t.Fatalf("audited states %+v", got)
	}
}

func containsRights(rs []Rights, want Rights) bool {
	for _, r := range rs {
		if r == want {
			return true
		}
	}
	return false
}

// TestLeaveWhileConnectionDrops: the expert leaving while the connection
// drops under it must not send on the closed events channel (a panic
// once an audit hook made finish slower: assist join exited with 2 on
// SIGTERM).
func TestLeaveWhileConnectionDrops(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for range 200 {
		a, b := net.Pipe()
		drained := make(chan struct{})
		go func() { io.Copy(io.Discard, a); close(drained) }()
		exp := StartExpertConfig(b, log, ExpertConfig{Audit: func(ev ExpertEvent) {
			if ev.State == Ended {
				a.Close() // the novice's side goes while Leave records the end
			}
		}})
		exp.Leave("the expert left")
		<-exp.Done()
		a.Close()
		<-drained
	}
}

// TestNoviceConnectionLost: when the connection dies, the novice is told
// it was lost, whichever of the session's readers notices first (the
// control channel's reader used to say "failed" when it won the race).
func TestNoviceConnectionLost(t *testing.T) {
	for i := range 20 {
		a, b := net.Pipe()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		exp := StartExpertConfig(b, log, ExpertConfig{FilesDir: t.TempDir()})
		nov, err := StartNovice(context.Background(), a, "Dana", NoviceConfig{
			Policy: PolicyView, Logger: log, FilesDir: t.TempDir(), AnswerTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		waitExpertRights(t, exp, RightView)
		b.Close() // the connection dies under both
		var last Event
		for ev := range nov.Events() {
			last = ev
		}
		<-nov.Done()
		for range exp.Events() {
		}
		<-exp.Done()
		if last.To != Ended || last.Reason != "the connection to the expert was lost" {
			t.Fatalf("round %d: the novice's last event %+v, want Ended, the connection lost", i, last)
		}
	}
}
