package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/internal/logfile"
)

// auditUser is one side's own config (device key) and state (audit log)
// directories.
type auditUser struct{ config, state string }

func newAuditUser(t *testing.T) auditUser {
	return auditUser{config: t.TempDir(), state: t.TempDir()}
}

func (u auditUser) env() []string {
	return []string{identity.EnvConfigDir + "=" + u.config, logfile.EnvStateDir + "=" + u.state}
}

// prefix runs a command with the user's directories.
func (u auditUser) prefix() []string { return append([]string{"env"}, u.env()...) }

// log reads and verifies the user's audit log against their device key
// and signed head, and returns its entries.
func (u auditUser) log(t *testing.T) []audit.Entry {
	t.Helper()
	path := filepath.Join(u.state, audit.LogName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.Open(u.config)
	if err != nil {
		t.Fatal(err)
	}
	key, err := id.DeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	head, err := audit.ReadHead(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.VerifyReader(bytes.NewReader(data), audit.VerifyOptions{Key: key.Public().(ed25519.PublicKey), Head: &head}); err != nil {
		t.Fatalf("%s does not verify: %v\n%s", path, err, data)
	}
	es, err := audit.ReadAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// rightsSeen is the sequence of the expert's rights an audit log records
// (consent entries on the novice's side, reported states on the
// expert's), without repeats.
func rightsSeen(es []audit.Entry) []string {
	var out []string
	for _, e := range es {
		if e.Kind != audit.KindConsent && e.Kind != audit.KindRights {
			continue
		}
		if len(out) == 0 || out[len(out)-1] != e.Rights {
			out = append(out, e.Rights)
		}
	}
	return out
}

func ofKind(es []audit.Entry, k audit.Kind) []audit.Entry {
	var out []audit.Entry
	for _, e := range es {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// TestAuditSession runs a real assist invite and assist join, each with
// its own device key and state directory: view and control are granted,
// control is taken back, files are allowed and a file is sent, the novice
// ends. Both audit logs verify against their device keys and heads and
// agree on the rights, the file (size and SHA-256) and the end; assist
// audit tells the story in words and exports CSV; an edited entry is found
// by assist audit verify, which names it and exits 1.
func TestAuditSession(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, 320, 240)
	novU, expU := newAuditUser(t), newAuditUser(t)
	novDir, expDir := t.TempDir(), t.TempDir()
	data := make([]byte, 300<<10+7)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}

	x.ShowImage(t, lab.TestPattern(320, 240))
	auditKey, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	if err := os.WriteFile(keyFile, []byte(auditKey.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	recDir := t.TempDir()

	nov := startInvite(t, novU.prefix(), x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page",
		"--allow", "ask", "--files-dir", novDir, "--record-to", auditKey.Recipient().String(), "--record-dir", recDir)
	exp := connected(t, startJoin(t, expU.prefix(), nov.File, nov.PasswordFile, "--request-control", "--files-dir", expDir))
	nov.WaitLine(t, `^recording: this session's screen is recorded`, lineTimeout)
	nov.WaitLine(t, `wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "y")
	nov.WaitLine(t, `asks to control your mouse and keyboard\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "y")
	nov.WaitLine(t, `^state: controlling`, lineTimeout)
	exp.WaitLine(t, `^state: controlling`, lineTimeout)
	nov.Send(t, "esc")
	nov.WaitLine(t, `^state: viewing`, lineTimeout)
	exp.WaitLine(t, `^state: viewing`, lineTimeout)

	// What the expert sees.
	seen, _, err := lab.DialRFB(t, exp.RFB).Screen()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(seen.Pix, seen.Pix[:4]) == len(seen.Pix)/4 {
		t.Fatal("the expert sees a blank screen: the comparison below would prove nothing")
	}

	exp.Send(t, "files")
	nov.WaitLine(t, `asks to exchange files with you`, lineTimeout)
	nov.Send(t, "y")
	exp.WaitLine(t, `^files: `+noviceName+` allowed files both ways`, lineTimeout)
	exp.Send(t, "send "+src)
	nov.WaitLine(t, `^file saved: `+regexp.QuoteMeta(filepath.Join(novDir, "report.txt"))+`$`, lineTimeout)
	exp.WaitLine(t, `^file sent: report\.txt reached `+noviceName+`$`, lineTimeout)
	nov.Send(t, "end")
	exp.WaitLine(t, `^state: ended`, lineTimeout)
	if code := exp.WaitExit(t, lineTimeout); code != 0 {
		t.Fatalf("assist join exited with %d\n%s", code, exp.Output())
	}
	if code := nov.WaitExit(t, lineTimeout); code != 0 {
		t.Fatalf("assist invite exited with %d\n%s", code, nov.Output())
	}

	novLog, expLog := novU.log(t), expU.log(t)
	want := []string{"none", "view", "view+control", "view", "view+files", "none"}
	for side, es := range map[string][]audit.Entry{"novice": novLog, "expert": expLog} {
		if got := rightsSeen(es); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("the %s's log records the rights %q, want %q", side, got, want)
		}
		starts := ofKind(es, audit.KindStart)
		if len(starts) != 1 || starts[0].Novice != noviceName || starts[0].Expert != expertName || !strings.Contains(starts[0].Path, "127.0.0.1:") {
			t.Errorf("the %s's start: %+v", side, starts)
		}
		files := ofKind(es, audit.KindFile)
		if len(files) != 1 || files[0].File.SHA256 != sha256.Sum256(data) || files[0].File.Size != uint64(len(data)) ||
			files[0].File.Direction != audit.ToNovice || files[0].File.Result != "completed" || files[0].File.Name != "report.txt" {
			t.Errorf("the %s's files: %+v", side, files)
		}
		if ends := ofKind(es, audit.KindEnd); len(ends) != 1 || es[len(es)-1].Kind != audit.KindEnd {
			t.Errorf("the %s's log does not end with the session's end: %+v", side, ends)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if n, e := ofKind(novLog, audit.KindEnd)[0].Reason, ofKind(expLog, audit.KindEnd)[0].Reason; n != e {
		t.Errorf("the novice's log says the session ended %q, the expert's %q", n, e)
	}
	if host, _ := os.Hostname(); ofKind(novLog, audit.KindStart)[0].Machine != host {
		t.Errorf("the novice's start names the machine %q, want %q", ofKind(novLog, audit.KindStart)[0].Machine, host)
	}

	// The recording is in the novice's log, bound by its hash, and plays
	// back to the very picture the expert saw.
	recs, _ := filepath.Glob(filepath.Join(recDir, "*.rec"))
	recorded := ofKind(novLog, audit.KindRecording)
	if len(recs) != 1 || len(recorded) != 1 {
		t.Fatalf("recordings %q, log %+v", recs, recorded)
	}
	if b, err := os.ReadFile(recs[0]); err != nil || sha256.Sum256(b) != recorded[0].File.SHA256 || filepath.Base(recs[0]) != recorded[0].File.Name {
		t.Fatalf("the recording does not match its entry in the log: %v", err)
	}
	play := lab.StartLines(t, nil, lab.AssistBinary(t), "replay", recs[0], "--identity", keyFile)
	addr := play.WaitLine(t, `^listening on (\S+)$`, lineTimeout)[1]
	play.WaitLine(t, `^end of the recording`, 2*lineTimeout)
	replayed, _, err := lab.DialRFB(t, addr).Screen()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(replayed.Pix, seen.Pix) || replayed.Rect != seen.Rect {
		t.Errorf("the replayed picture differs from what the expert saw")
	}
	play.Send(t, "quit")
	if code := play.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist replay exited with %d\n%s", code, play.Output())
	}
	// Another key opens nothing.
	other, _ := age.GenerateX25519Identity()
	otherFile := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(otherFile, []byte(other.String()+"\n"), 0o600)
	if code, _, stderr := runAssistEnv(t, nil, "replay", recs[0], "--identity", otherFile); code != 1 || !strings.Contains(stderr, "this key cannot open the recording") {
		t.Errorf("replay with another key: exit %d, %q", code, stderr)
	}

	// The story in words, and the exports.
	code, stdout, stderr := runAssistEnv(t, novU.env(), "audit")
	if code != 0 {
		t.Fatalf("assist audit: %d %s", code, stderr)
	}
	for _, w := range []string{expertName + " started helping " + noviceName, noviceName + " allowed viewing",
		noviceName + " allowed control", noviceName + " took control back", `file "report.txt"`, "the session ended: "} {
		if !strings.Contains(stdout, w) {
			t.Errorf("assist audit does not say %q:\n%s", w, stdout)
		}
	}
	if code, stdout, _ := runAssistEnv(t, expU.env(), "audit", "--csv"); code != 0 || !strings.HasPrefix(stdout, "seq,time,kind") || !strings.Contains(stdout, "report.txt") {
		t.Errorf("assist audit --csv: %d\n%s", code, stdout)
	}
	if code, stdout, stderr := runAssistEnv(t, novU.env(), "audit", "verify"); code != 0 || !strings.HasPrefix(stdout, "ok: ") || !strings.Contains(stdout, "up to its signed head") {
		t.Fatalf("assist audit verify: %d\n%s%s", code, stdout, stderr)
	}

	// Someone shrinks the file they sent in the novice's log.
	path := filepath.Join(novU.state, audit.LogName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	file := ofKind(novLog, audit.KindFile)[0]
	edited := bytes.Replace(b, []byte(`"size":`+utoa(file.File.Size)), []byte(`"size":12`), 1)
	if bytes.Equal(edited, b) {
		t.Fatal("the test did not edit the log")
	}
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runAssistEnv(t, novU.env(), "audit", "verify")
	if wantErr := "entry " + utoa(file.Seq) + " (line " + utoa(file.Seq) + "): its signature does not verify"; code != 1 || !strings.Contains(stderr, wantErr) {
		t.Fatalf("assist audit verify of an edited log: exit %d, stderr %q; want 1 and %q", code, stderr, wantErr)
	}
}

func utoa(n uint64) string { return strconv.FormatUint(n, 10) }
