package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
)

// TestOrgHelpDesk is issue 11's scenario in one run: an organisation with
// two helpers and three enrolled agents, each on its own Xvfb desktop,
// whose policy records sessions to an audit key. Helper 1's offer to
// machine 1 is accepted (the helper sees the desktop pixel-exactly and
// the agent records the session), helper 2's offer to machine 2 is
// declined, and helper 1's offer to machine 3 is left to time out. The
// agent's, the helper's and the server's audit entries of the session
// agree and verify, an entry tampered in the server's database is named,
// and the recording replays to the picture the helper saw.
func TestOrgHelpDesk(t *testing.T) {
	e2e(t)
	d1, d2, d3 := newDesktop(t), newDesktop(t), newDesktop(t)
	o := newOrgSetup(t)
	hal := o.addUser(t, "hal", "Hal", "helper")
	keyFile, key := auditKey(t, o.op)
	o.org(t, "policy", "acme", "--record", "yes", "--audit-key", key)
	tok := o.token(t, "3")
	recDir := t.TempDir()
	// No indicator: the desktop without the session's frame is what the
	// helper sees and what the recording must show.
	a1 := o.enrol(t, tok, "pc-1", "Front desk", "Mel M", d1.Display, "", "--no-indicator", "--record-dir", recDir)
	a2 := o.enrol(t, tok, "pc-2", "Back office", "Mo", d2.Display, "", "--no-indicator")
	a3 := o.enrol(t, tok, "pc-3", "Stock room", "Sam", d3.Display, "", "--no-indicator")
	const asked = `^question: %s from ACME IT offers to help you\. Accept\? This session will be recorded\.$`

	// Accepted: helper 1 sees machine 1 pixel-exactly; it is recorded.
	offer := o.dana.start(t, "offer", "pc-1", "--no-browser")
	offer.expect(`^offered: pc-1$`)
	a1.expect(strings.Replace(asked, "%s", "Dana", 1))
	a1.send("y")
	offer.expect(`^accepted by Mel M$`)
	a1.expect(`^recording: this session's screen is recorded`)
	a1.expect(`Dana \(ACME IT\) wants to see your screen\. Allow\? \[y/N\]`)
	a1.send("y")
	helper := lab.DialRFB(t, offer.expect(`^rfb on (\S+)$`)[1])
	lab.WaitMatch(t, d1.X, helper.Screen, 0, matchTimeout)
	saw := screen.NewImage(helper.Framebuffer().Rect)
	copy(saw.Pix, helper.Framebuffer().Pix)
	offer.interrupt()
	a1.expect(`^audit: uploaded to entry \d+$`)
	a1.expect(`^session ended: \S+$`)
	offer.expect(`^audit: uploaded to entry \d+$`)
	offer.wait()

	// Left to time out: helper 1 offers machine 3, whose user does not
	// answer; meanwhile helper 2's offer to machine 2 is declined.
	start := time.Now()
	late := o.dana.start(t, "offer", "pc-3", "--no-browser")
	late.expect(`^offered: pc-3$`)
	a3.expect(strings.Replace(asked, "%s", "Dana", 1))
	offer = hal.start(t, "offer", "pc-2", "--no-browser")
	offer.expect(`^offered: pc-2$`)
	a2.expect(strings.Replace(asked, "%s", "Hal", 1))
	a2.send("n")
	offer.expect(`^declined by Mo$`)
	if err := offer.wait(); err != nil {
		t.Errorf("offer after a decline: %v", err)
	}
	a3.expect(`^declined: \S+ \(no answer within 5s\)$`)
	late.expect(`^declined by Sam$`)
	if time.Since(start) < 5*time.Second {
		t.Errorf("declined after %v, before the policy's timeout", time.Since(start))
	}

	// The three parties' entries of the session agree.
	o.org(t, "add", "acme", "dana", "--role", "admin")
	var trail []struct {
		Kind, Party, Novice, Expert, Machine, Rights, Reason, Action string
	}
	out := o.dana.run(t, "audit", "--org", "acme", "--json")
	if err := json.Unmarshal([]byte(out), &trail); err != nil {
		t.Fatalf("assist audit --org --json: %v\n%s", err, out)
	}
	chains := map[string][]audit.Entry{}
	for _, e := range trail {
		chains[e.Party] = append(chains[e.Party], audit.Entry{Kind: audit.Kind(e.Kind), Party: audit.Party(e.Party),
			Novice: e.Novice, Expert: e.Expert, Machine: e.Machine, Rights: e.Rights, Reason: e.Reason, Action: e.Action})
	}
	nov, exp := chains[string(audit.PartyNovice)], chains[string(audit.PartyExpert)]
	if r := rightsSeen(nov); len(r) == 0 || !slices.Equal(r, rightsSeen(exp)) {
		t.Errorf("the rights: agent %q, helper %q", r, rightsSeen(exp))
	}
	// Both ends saw the expert leave (each in its own words).
	nEnd, eEnd := ofKind(nov, audit.KindEnd), ofKind(exp, audit.KindEnd)
	if len(nEnd) != 1 || len(eEnd) != 1 || !strings.Contains(nEnd[0].Reason, "the expert left") || !strings.Contains(eEnd[0].Reason, "the expert left") {
		t.Errorf("the ends: agent %+v, helper %+v", nEnd, eEnd)
	}
	// The server paired dana with Mel M on pc-1; the helper's chain names
	// pc-1, the agent's Dana, pc-1 and Mel M.
	var server []string
	for _, e := range chains[string(audit.PartyServer)] {
		if e.Machine == "pc-1" {
			server = append(server, string(e.Kind)+" "+e.Action+" "+e.Expert+" "+e.Novice)
		}
	}
	if want := []string{"consent offered dana Mel M", "consent accepted dana Mel M", "session-start  dana Mel M"}; !slices.Equal(server, want) {
		t.Errorf("the server's entries of pc-1: %q, want %q", server, want)
	}
	if len(exp) == 0 || exp[0].Machine != "pc-1" || len(nov) == 0 || !strings.HasPrefix(nov[0].Expert, "Dana") {
		t.Errorf("the helper's and the agent's chains do not name pc-1 and Dana: %+v %+v", exp, nov)
	}
	// The agent names the enrolled machine and its user, as the server
	// does, not the OS account and the hostname.
	if len(nov) == 0 || nov[0].Machine != "pc-1" || nov[0].Novice != "Mel M" {
		t.Errorf("the agent's chain names machine %q and user %q, want pc-1 and Mel M", nov[0].Machine, nov[0].Novice)
	}
	if t.Failed() {
		t.Fatalf("the trail:\n%s", out)
	}
	ok := o.dana.run(t, "audit", "verify", "--org", "acme")
	for _, want := range []string{"ok: the server (", "ok: pc-1 (", "ok: dana ("} {
		if !strings.Contains(ok, want) {
			t.Errorf("verify --org lacks %q:\n%s", want, ok)
		}
	}

	// A tampered entry (the acceptance) is named.
	o.tamperServerEntry(t, 2)
	if out, err := o.dana.try(t, "audit", "verify", "--org", "acme"); err == nil || !strings.Contains(out, "bad: the server (") || !strings.Contains(out, "entry 2") || !strings.Contains(out, "ok: pc-1 (") {
		t.Fatalf("verify after tampering: %v\n%s", err, out)
	}

	// The recording replays to what the helper saw.
	replayed(t, oneRecording(t, recDir), keyFile, func(addr string) {
		// A replay's viewer draws its updates as they come: wait for
		// the whole picture.
		lab.WaitShows(t, saw, lab.DialRFB(t, addr).Screen, 0, matchTimeout)
	})
}
