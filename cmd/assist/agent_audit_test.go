package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/assist-project/assist/audit"
)

// TestAgentUploadsPendingAudit: a machine whose last session's entries
// did not reach its organisation's server (the server went away before
// the session ended, and so did the retry) uploads them as soon as its
// agent is online again, not only after the next session.
func TestAgentUploadsPendingAudit(t *testing.T) {
	e2e(t)
	d := newDesktop(t)
	o := newOrgSetup(t)
	pc := newCLIUser(t, "pc-1")
	if out := pc.run(t, "agent", "enroll", o.srv.URL, o.token(t, "1"), "--id", "pc-1", "--name", "Front desk", "--user", "Mel M"); !strings.Contains(out, "enrolled: pc-1 on ") {
		t.Fatalf("enroll printed %q", out)
	}
	// A session recorded on the machine and never uploaded.
	log, err := openAgentAuditLog(filepath.Join(pc.dir, "agent"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []audit.Entry{
		{Kind: audit.KindStart, Party: audit.PartyNovice, Session: "s1", Novice: "Mel M", Expert: "Dana (ACME IT)", Machine: "pc-1", Path: "through the server"},
		{Kind: audit.KindConsent, Party: audit.PartyNovice, Session: "s1", Novice: "Mel M", Expert: "Dana (ACME IT)", Machine: "pc-1", Action: "allow-view", Reason: "novice allowed viewing"},
	} {
		if _, err := log.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	agent := startProc(t, "pc-1: assist agent", pc.cmd(t, "agent", "--display", d.Display, "--no-page", "--notify", "off"))
	agent.expect(`^agent: pc-1 online$`)
	if m := agent.expect(`^audit: uploaded to entry (\d+)$`); m[1] != "2" {
		t.Errorf("uploaded to entry %s, want 2", m[1])
	}
	o.org(t, "add", "acme", "dana", "--role", "admin")
	trail := o.dana.run(t, "audit", "--org", "acme")
	if !regexp.MustCompile(`\[novice \S+ #2\]`).MatchString(trail) {
		t.Errorf("the trail lacks the machine's two entries:\n%s", trail)
	}
	if ok := o.dana.run(t, "audit", "verify", "--org", "acme"); !strings.Contains(ok, "ok: pc-1 (") {
		t.Errorf("verify --org:\n%s", ok)
	}
}
