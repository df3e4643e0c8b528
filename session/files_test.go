package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/filetransfer"
)

// TestConsentFilesQuestion: the files right is asked, answered, toggled
// and cleared exactly like the clipboard right, and independently of it.
func TestConsentFilesQuestion(t *testing.T) {
	type step struct {
		name    string
		do      func(*Consent) error
		invalid bool
		act     Action
		rights  Rights
		asked   bool
	}
	req := (*Consent).RequestFiles
	allow := (*Consent).AllowFiles
	deny := (*Consent).DenyFiles
	set := func(on bool) func(*Consent) error { return func(c *Consent) error { return c.SetFiles(on) } }
	tests := []struct {
		name  string
		start State
		steps []step
	}{
		{"allow", Viewing, []step{
			{"answer before asked", allow, true, "", RightView, false},
			{"request", req, false, ActRequestFiles, RightView, true},
			{"request again", req, true, "", RightView, true},
			{"allow", allow, false, ActAllowFiles, RightView | RightFiles, false},
			{"answer twice", deny, true, "", RightView | RightFiles, false},
			{"clipboard is separate", (*Consent).RequestClipboard, false, ActRequestClipboard, RightView | RightFiles, true},
			{"revoke", set(false), false, ActFiles, RightView, true},
			{"request after revoke", req, false, ActRequestFiles, RightView, true},
			{"deny", deny, false, ActDenyFiles, RightView, true},
		}},
		{"toggle settles the question", ControlAsked, []step{
			{"request", req, false, ActRequestFiles, RightView, true},
			{"toggle on", set(true), false, ActFiles, RightView | RightFiles, false},
			{"late answer", deny, true, "", RightView | RightFiles, false},
		}},
		{"end clears", Viewing, []step{
			{"request", req, false, ActRequestFiles, RightView, true},
			{"end", func(c *Consent) error { return c.End("bye") }, false, ActEnd, 0, false},
			{"answer after end", allow, true, "", 0, false},
			{"toggle after end", set(true), true, "", 0, false},
		}},
		{"not before viewing", Asking, []step{
			{"request", req, true, "", 0, false},
			{"toggle: held, not effective", set(true), false, ActFiles, 0, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			c := NewConsent(Config{Audit: rec.audit})
			reach(t, c, tt.start)
			for _, s := range tt.steps {
				n := len(rec.events())
				err := s.do(c)
				if got := errors.Is(err, ErrInvalidTransition); got != s.invalid || (err != nil && !s.invalid) {
					t.Fatalf("%s: err %v, want invalid=%v", s.name, err, s.invalid)
				}
				evs := rec.events()[n:]
				switch {
				case s.act == "" && len(evs) != 0:
					t.Fatalf("%s: recorded %+v", s.name, evs)
				case s.act != "" && (len(evs) != 1 || evs[0].Action != s.act || evs[0].Rights != s.rights):
					t.Fatalf("%s: recorded %+v, want one %s with rights %s", s.name, evs, s.act, s.rights)
				}
				// "asked" here: either question pending (the clipboard
				// step leaves one).
				if asked := c.FilesAsked() || c.ClipboardAsked(); c.Rights() != s.rights || asked != s.asked {
					t.Fatalf("%s: rights %s asked %v, want %s %v", s.name, c.Rights(), asked, s.rights, s.asked)
				}
			}
		})
	}
}

func TestRightsTextFiles(t *testing.T) {
	for _, r := range []Rights{RightFiles, RightView | RightFiles, RightView | RightControl | RightClipboard | RightFiles} {
		b, err := r.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Rights
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Fatalf("%s: %v %s", b, err, back)
		}
	}
	q := Question{Right: RightFiles, Expert: "Ada"}
	if !strings.HasSuffix(q.Text(), "\nAda asks to exchange files with you (files sent to you are saved in your download folder). Allow? [y/N]") {
		t.Fatalf("Text() = %q", q.Text())
	}
}

// filesPair is a session whose novice has allowed viewing, with a folder
// for files on each side.
func filesPair(t *testing.T) (nov *Novice, exp *Expert, novDir, expDir string) {
	t.Helper()
	a, b := net.Pipe()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	novDir, expDir = t.TempDir(), t.TempDir()
	exp = StartExpertConfig(b, log, ExpertConfig{FilesDir: expDir})
	nov, err := StartNovice(context.Background(), a, "Dana", NoviceConfig{
		Policy: PolicyView, Logger: log, FilesDir: novDir, AnswerTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nov.End("test over")
		for range nov.Events() {
		}
		<-nov.Done()
		exp.Leave("test over")
		for range exp.Events() {
		}
		<-exp.Done()
	})
	waitExpertRights(t, exp, RightView)
	return nov, exp, novDir, expDir
}

func waitExpertRights(t *testing.T, exp *Expert, want Rights) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for exp.Rights() != want {
		select {
		case _, ok := <-exp.Events():
			if !ok {
				t.Fatalf("session over; rights %s, want %s", exp.Rights(), want)
			}
		case <-timeout:
			t.Fatalf("rights %s, want %s", exp.Rights(), want)
		}
	}
}

func waitFile(t *testing.T, events <-chan filetransfer.Event, id filetransfer.ID, incoming bool) filetransfer.Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.ID == id && ev.Incoming == incoming && ev.State != filetransfer.Offered && ev.State != filetransfer.Transferring {
				return ev
			}
		case <-timeout:
			t.Fatal("no end of the transfer")
		}
	}
}

// TestFilesRight: without the files right nothing crosses either way
// (the expert's send is refused by the novice's side even when the
// expert's own check is skipped); after a no, still nothing; after a yes,
// a file crosses each way (the expert accepting the novice's); and once
// the novice revokes the right, nothing crosses again.
func TestFilesRight(t *testing.T) {
	nov, exp, novDir, expDir := filesPair(t)
	src := t.TempDir()
	p := filepath.Join(src, "notes.txt")
	data := bytes.Repeat([]byte("assist "), 100000)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	refusedBoth := func(stage string) {
		t.Helper()
		if _, err := exp.SendFile(ctx, p); err == nil {
			t.Fatalf("%s: the expert sent a file", stage)
		}
		if _, err := nov.SendFile(p); !errors.Is(err, ErrNoFiles) {
			t.Fatalf("%s: the novice sent a file: %v", stage, err)
		}
		// The novice's side refuses even an expert that does not check:
		// the expert's own check lifted by faking its rights.
		exp.mu.Lock()
		real := exp.rights
		exp.rights |= RightFiles
		exp.mu.Unlock()
		id, err := exp.SendFile(ctx, p)
		exp.mu.Lock()
		exp.rights = real
		exp.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if ev := waitFile(t, exp.FileEvents(), id, false); ev.State != filetransfer.Refused {
			t.Fatalf("%s: the novice's side answered %+v", stage, ev)
		}
		if ev := waitFile(t, nov.FileEvents(), id, true); ev.State != filetransfer.Refused {
			t.Fatalf("%s: the novice's side says %+v", stage, ev)
		}
		if es, _ := os.ReadDir(novDir); len(es) != 0 {
			t.Fatalf("%s: files on the novice's side: %v", stage, es)
		}
	}
	refusedBoth("before asking")

	if err := exp.RequestFiles(ctx); err != nil {
		t.Fatal(err)
	}
	q := nextQuestion(t, nov)
	if q.Right != RightFiles {
		t.Fatalf("asked for %s", q.Right)
	}
	if err := q.Answer(false); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, nov, ActDenyFiles)
	refusedBoth("after a no")

	if err := exp.RequestFiles(ctx); err != nil {
		t.Fatal(err)
	}
	if err := nextQuestion(t, nov).Answer(true); err != nil {
		t.Fatal(err)
	}
	waitExpertRights(t, exp, RightView|RightFiles)

	// Expert to novice: saved in the novice's folder without a question.
	id, err := exp.SendFile(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if ev := waitFile(t, exp.FileEvents(), id, false); ev.State != filetransfer.Completed {
		t.Fatalf("expert: %+v", ev)
	}
	in := waitFile(t, nov.FileEvents(), id, true)
	if in.State != filetransfer.Completed || in.Path != filepath.Join(novDir, "notes.txt") {
		t.Fatalf("novice: %+v", in)
	}
	// Novice to expert: the expert accepts.
	id, err = nov.SendFile(p)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-exp.FileOffers():
		if o.Name != "notes.txt" || o.Size != uint64(len(data)) {
			t.Fatalf("offer %+v", o)
		}
		o.Accept()
	case <-time.After(30 * time.Second):
		t.Fatal("no offer")
	}
	if ev := waitFile(t, nov.FileEvents(), id, false); ev.State != filetransfer.Completed {
		t.Fatalf("novice: %+v", ev)
	}
	got, err := os.ReadFile(filepath.Join(expDir, "notes.txt"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("expert's copy: %v", err)
	}

	if err := nov.SetFiles(false); err != nil {
		t.Fatal(err)
	}
	waitExpertRights(t, exp, RightView)
	os.Remove(filepath.Join(novDir, "notes.txt"))
	refusedBoth("after the novice revoked")
}

// TestUnansweredFilesQuestionIsDeny: no answer is a no.
func TestUnansweredFilesQuestionIsDeny(t *testing.T) {
	nov, exp, _ := askPair(t, PolicyView, 100*time.Millisecond)
	if err := exp.RequestFiles(context.Background()); err != nil {
		t.Fatal(err)
	}
	if q := nextQuestion(t, nov); q.Right != RightFiles {
		t.Fatalf("asked for %v", q.Right)
	}
	ev := waitEvent(t, nov, ActDenyFiles)
	if !ev.Auto || ev.Rights.Has(RightFiles) || nov.Files() {
		t.Errorf("event %+v, want an automatic deny-files", ev)
	}
}
