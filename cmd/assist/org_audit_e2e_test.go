package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assist-project/assist/internal/lab"
)

// TestOrgAudit: an enrolled agent's session with a helper ends with both
// sides' audit logs uploaded; the organisation's admin lists the session
// from the agent's, the helper's and the server's chains (a member
// cannot), all verify, and a row tampered in the server's database is
// named by assist audit verify --org.
func TestOrgAudit(t *testing.T) {
	e2e(t)
	d1 := newDesktop(t)
	o := newOrgSetup(t)
	if out := o.org(t, "policy", "acme", "--retention", "90d"); !strings.Contains(out, "\nretention: acme 90d\n") {
		t.Fatalf("org policy --retention printed %q", out)
	}
	a1 := o.enrol(t, o.token(t, "1"), "pc-1", "Front desk", "Mel M", d1.Display, "")

	offer := o.dana.start(t, "offer", "pc-1", "--no-browser")
	offer.expect(`^offered: pc-1$`)
	a1.expect(`^offer: \S+ from dana$`)
	a1.send("y")
	offer.expect(`^accepted by Mel M$`)
	a1.expect(`wants to see your screen\. Allow\? \[y/N\]`)
	a1.send("y")
	// The first picture proves the yes was read before the helper leaves:
	// the trail must hold "allowed viewing".
	helper := lab.DialRFB(t, offer.expect(`^rfb on (\S+)$`)[1])
	lab.WaitMatch(t, d1.X, helper.Screen, 0, matchTimeout)
	offer.interrupt()
	a1.expect(`^audit: uploaded to entry \d+$`)
	a1.expect(`^session ended: \S+$`)
	offer.expect(`^audit: uploaded to entry \d+$`)
	offer.wait()

	if out, err := o.mel.try(t, "audit", "--org", "acme"); err == nil || !strings.Contains(out, "not an admin of acme") {
		t.Fatalf("a member reads the trail: %v %q", err, out)
	}
	if out, err := o.dana.try(t, "audit", "--org", "acme"); err == nil || !strings.Contains(out, "not an admin of acme") {
		t.Fatalf("a helper reads the trail: %v %q", err, out)
	}
	o.org(t, "add", "acme", "dana", "--role", "admin")
	trail := o.dana.run(t, "audit", "--org", "acme")
	for _, want := range []string{
		`[server `, `server: dana offered help to Mel M on pc-1`, `server: Mel M on pc-1 accepted dana's offer`,
		`dana started helping Mel M on pc-1 (paired by the server)`,
		`[novice `, `[expert `, `allowed viewing`,
	} {
		if !strings.Contains(trail, want) {
			t.Errorf("assist audit --org acme lacks %q:\n%s", want, trail)
		}
	}
	if csv := o.dana.run(t, "audit", "--org", "acme", "--csv", "--text", "pc-1"); !strings.HasPrefix(csv, "seq,time,kind,party") || !strings.Contains(csv, ",server,") {
		t.Errorf("CSV export:\n%s", csv)
	}
	ok := o.dana.run(t, "audit", "verify", "--org", "acme")
	for _, want := range []string{"ok: the server (", "ok: pc-1 (", "ok: dana ("} {
		if !strings.Contains(ok, want) {
			t.Errorf("verify --org lacks %q:\n%s", want, ok)
		}
	}

	// The server's entry 2 (the acceptance) is edited in its database.
	o.tamperServerEntry(t, 2)
	out, err := o.dana.try(t, "audit", "verify", "--org", "acme")
	if err == nil || !strings.Contains(out, "bad: the server (") || !strings.Contains(out, "entry 2") || !strings.Contains(out, "ok: pc-1 (") {
		t.Fatalf("verify after tampering: %v\n%s", err, out)
	}
}

// tamperServerEntry edits the server's audit entry seq in its database:
// the helper dana becomes eve.
func (o *orgSetup) tamperServerEntry(t *testing.T, seq int) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(o.data, "messenger.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE audit_entries SET line = replace(line, '"expert":"dana"', '"expert":"eve"') WHERE seq = ? AND line LIKE '%"party":"server"%'`, seq)
	if err != nil {
		t.Fatalf("tampering: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tampering: %d rows", n)
	}
}
