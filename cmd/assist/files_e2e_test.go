package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/assist-project/assist/internal/lab"
)

// TestFilesBothWays runs the real assist invite and assist join on one
// desktop and moves files both ways with their terminal commands: the
// expert's --send waits for the files right, a no leaves the novice's
// folder empty, a yes brings the file in under a name that overwrites
// nothing ("report (2).pdf"); the novice's file is offered to the expert,
// who refuses it once (nothing saved) and accepts it the second time; once
// the novice stops files, the expert's send is refused again.
func TestFilesBothWays(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, 320, 240)
	novDir, expDir, src := t.TempDir(), t.TempDir(), t.TempDir()
	mine := []byte("the novice's own report")
	if err := os.WriteFile(filepath.Join(novDir, "report.pdf"), mine, 0o600); err != nil {
		t.Fatal(err)
	}
	report := make([]byte, 5<<20+3)
	rand.Read(report)
	reportPath := filepath.Join(src, "report.pdf")
	photo := make([]byte, 700<<10)
	rand.Read(photo)
	photoPath := filepath.Join(src, "photo.jpg")
	for p, b := range map[string][]byte{reportPath: report, photoPath: photo} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page",
		"--allow", "view", "--files-dir", novDir)
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile, "--files-dir", expDir, "--send", reportPath))
	exp.WaitLine(t, `^state: viewing`, lineTimeout)

	// --send asks for files; the novice says no.
	nov.WaitLine(t, `^`+expertName+` asks to exchange files with you \(files sent to you are saved in your download folder\)\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "n")
	nov.WaitLine(t, `^files: not allowed: press f to allow them$`, lineTimeout)
	if es, _ := os.ReadDir(novDir); len(es) != 1 {
		t.Fatalf("after a no, the novice's folder holds %d files", len(es))
	}

	// The expert asks again; yes; the queued file goes.
	exp.Send(t, "files")
	nov.WaitLine(t, `asks to exchange files with you`, lineTimeout)
	nov.Send(t, "y")
	exp.WaitLine(t, `^files: `+noviceName+` allowed files both ways`, lineTimeout)
	saved := filepath.Join(novDir, "report (2).pdf")
	nov.WaitLine(t, `^file saved: `+regexp.QuoteMeta(saved)+`$`, lineTimeout)
	exp.WaitLine(t, `^file: report\.pdf 100% \(5\.2 MB of 5\.2 MB\)$`, lineTimeout)
	exp.WaitLine(t, `^file sent: report\.pdf reached `+noviceName+`$`, lineTimeout)
	same(t, saved, report)
	same(t, filepath.Join(novDir, "report.pdf"), mine)

	// The novice sends a photo: refused once, then accepted.
	nov.Send(t, "send "+photoPath)
	exp.WaitLine(t, `^file: `+noviceName+` wants to send you photo\.jpg \(716\.8 kB\): type accept or refuse$`, lineTimeout)
	exp.Send(t, "refuse")
	nov.WaitLine(t, `^file not sent: `+expertName+` refused photo\.jpg: the expert refused it$`, lineTimeout)
	if es, _ := os.ReadDir(expDir); len(es) != 0 {
		t.Fatalf("after a refusal, the expert's folder holds %d files", len(es))
	}
	nov.Send(t, "send "+photoPath)
	exp.WaitLine(t, `wants to send you photo\.jpg`, lineTimeout)
	exp.Send(t, "accept")
	exp.WaitLine(t, `^file saved: `+regexp.QuoteMeta(filepath.Join(expDir, "photo.jpg"))+`$`, lineTimeout)
	nov.WaitLine(t, `^file sent: photo\.jpg reached `+expertName+`$`, lineTimeout)
	same(t, filepath.Join(expDir, "photo.jpg"), photo)

	// The novice stops files: the expert's next send is not sent but
	// asks again.
	nov.Send(t, "f")
	nov.WaitLine(t, `^files: not allowed: press f to allow them$`, lineTimeout)
	exp.WaitLine(t, `^files: `+noviceName+` has not allowed files`, lineTimeout)
	exp.Send(t, "send "+photoPath)
	exp.WaitLine(t, `^files: `+noviceName+` has not allowed files yet: asking`, lineTimeout)
	nov.WaitLine(t, `asks to exchange files with you`, lineTimeout)
	nov.Send(t, "n")
	nov.Send(t, "end")
	nov.WaitExit(t, lineTimeout)
	if es, _ := os.ReadDir(novDir); len(es) != 2 {
		t.Fatalf("the novice's folder holds %d files, want 2", len(es))
	}
}

func same(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not the %d sent", path, len(got), len(want))
	}
}
