package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/desktopnotify/notifytest"
	"github.com/assist-project/assist/indicator"
	"github.com/assist-project/assist/internal/lab"
)

// orgSetup is an organisation on a real assist serve: acme ("ACME IT")
// with helper dana, member mel, and a policy whose timeout is 5 s.
type orgSetup struct {
	srv       *servedProc
	data      string
	op        *cliUser
	dana, mel *cliUser
}

func newOrgSetup(t *testing.T) *orgSetup {
	t.Helper()
	o := &orgSetup{data: t.TempDir()}
	o.srv = startServe(t, o.data)
	o.op = newCLIUser(t, "operator")
	if out := o.org(t, "create", "acme", "--display-name", "ACME IT"); out != "created: acme\n" {
		t.Fatalf("org create printed %q", out)
	}
	if out := o.org(t, "policy", "acme", "--timeout", "5s", "--rights", "view,control"); out != "policy: acme rights=view,control record=false timeout=5s\n" {
		t.Fatalf("org policy printed %q", out)
	}
	o.dana = o.addUser(t, "dana", "Dana", "helper")
	o.mel = o.addUser(t, "mel", "Mel", "member")
	return o
}

// addUser logs a new user in to the server and adds them to acme with role.
func (o *orgSetup) addUser(t *testing.T, name, displayName, role string) *cliUser {
	t.Helper()
	u := newCLIUser(t, name)
	u.login(t, o.srv, "--display-name", displayName)
	o.org(t, "add", "acme", name, "--role", role)
	return u
}

// TestOrgTokenRemote: an admin makes a token from their own machine; a
// helper cannot.
func TestOrgTokenRemote(t *testing.T) {
	o := newOrgSetup(t)
	if out, err := o.dana.try(t, "org", "token", "acme", "--remote"); err == nil || !strings.Contains(out, "not an admin of acme") {
		t.Fatalf("a helper made a token: %v %q", err, out)
	}
	o.org(t, "add", "acme", "dana", "--role", "admin")
	m := regexp.MustCompile(`(?m)^token: (\S+)$`).FindStringSubmatch(o.dana.run(t, "org", "token", "acme", "--remote", "--uses", "1"))
	if m == nil {
		t.Fatal("no token printed")
	}
	if out := newCLIUser(t, "pc-r").run(t, "agent", "enroll", o.srv.URL, m[1], "--id", "pc-r"); !strings.Contains(out, "enrolled: pc-r on ") {
		t.Errorf("enroll with the admin's token printed %q", out)
	}
}

// org runs assist org ... --data on the server's database.
func (o *orgSetup) org(t *testing.T, args ...string) string {
	t.Helper()
	return o.op.run(t, append([]string{"org"}, append(args, "--data", o.data)...)...)
}

// token makes an enrolment token.
func (o *orgSetup) token(t *testing.T, uses string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^token: (\S+)$`).FindStringSubmatch(o.org(t, "token", "acme", "--uses", uses))
	if m == nil {
		t.Fatal("assist org token printed no token")
	}
	return m[1]
}

// enrol enrols a machine (its own config dir) and starts its agent on
// display, with desktop notifications on the session bus at bus ("": off)
// and the agent's further args.
func (o *orgSetup) enrol(t *testing.T, token, id, name, user, display, bus string, args ...string) *proc {
	t.Helper()
	m := newCLIUser(t, id)
	out := m.run(t, "agent", "enroll", o.srv.URL, token, "--id", id, "--name", name, "--user", user)
	if !strings.Contains(out, "enrolled: "+id+" on "+o.srv.URL+"\n") {
		t.Fatalf("enroll printed %q", out)
	}
	cmd := m.cmd(t, append([]string{"agent", "--display", display, "--no-page", "--notify", "off"}, args...)...)
	if bus != "" {
		cmd = m.cmd(t, append([]string{"agent", "--display", display, "--no-page"}, args...)...)
		cmd.Env = append(cmd.Env, "DBUS_SESSION_BUS_ADDRESS="+bus)
	}
	a := startProc(t, id+": assist agent", cmd)
	a.expect(`^agent: ` + regexp.QuoteMeta(id) + ` online$`)
	return a
}

// TestOrgOffer: an organisation with a helper and two enrolled agents on
// their own Xvfb desktops. The helper lists them, offers help: accepted
// (the helper's RFB port shows that desktop pixel-exactly, with no
// password anywhere), declined, and left to time out (a decline after the
// policy's 5 s). A member cannot offer.
func TestOrgOffer(t *testing.T) {
	e2e(t)
	d1, d2 := newDesktop(t), newDesktop(t)
	o := newOrgSetup(t)
	tok := o.token(t, "2")
	a1 := o.enrol(t, tok, "pc-1", "Front desk", "Mel M", d1.Display, "")
	a2 := o.enrol(t, tok, "pc-2", "<img src=x onerror=alert(1)>", "Mo", d2.Display, "")
	// The token had two uses.
	if out, err := newCLIUser(t, "pc-3").try(t, "agent", "enroll", o.srv.URL, tok, "--id", "pc-3"); err == nil || !strings.Contains(out, "unknown, used up or expired") {
		t.Fatalf("a third enrolment with a two-use token: %v %q", err, out)
	}

	list := o.dana.run(t, "offer", "--list")
	for _, want := range []string{`pc-1 acme online "Front desk" "Mel M"`, `pc-2 acme online "<img src=x onerror=alert(1)>" "Mo"`} {
		if !strings.Contains(list, want+"\n") {
			t.Errorf("offer --list printed %q, want a line %q", list, want)
		}
	}
	if out, err := o.mel.try(t, "offer", "--list"); err == nil || !strings.Contains(out, "you help no organisation") {
		t.Errorf("a member lists machines: %v %q", err, out)
	}
	if out, err := o.mel.try(t, "offer", "pc-1", "--no-browser"); err == nil || strings.Contains(out, "offered:") {
		t.Errorf("a member offers: %v %q", err, out)
	}

	// Accepted.
	offer := o.dana.start(t, "offer", "pc-1", "--no-browser")
	offer.expect(`^offered: pc-1$`)
	a1.expect(`^offer: \S+ from dana$`)
	a1.expect(`^question: Dana from ACME IT offers to help you\. Accept\?$`)
	a1.send("y")
	offer.expect(`^accepted by Mel M$`)
	a1.expect(`Dana \(ACME IT\) wants to see your screen\. Allow\? \[y/N\]`)
	a1.send("y")
	offer.expect(`^path: \S+$`)
	rfbAddr := offer.expect(`^rfb on (\S+)$`)[1]
	lab.WaitMatch(t, d1.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)
	if strings.Contains(offer.stderr.String()+a1.stderr.String(), "password") {
		t.Errorf("a password was asked for: %s %s", offer.stderr, a1.stderr)
	}
	offer.interrupt()
	a1.expect(`^session ended: \S+$`)

	// Declined.
	offer = o.dana.start(t, "offer", "pc-2", "--no-browser")
	offer.expect(`^offered: pc-2$`)
	a2.expect(`^offer: \S+ from dana$`)
	a2.send("n")
	offer.expect(`^declined by Mo$`)
	if err := offer.wait(); err != nil {
		t.Errorf("offer after a decline: %v", err)
	}

	// Left to time out: the agent declines after the policy's 5 s. The
	// policy now records sessions: the user is told before answering.
	o.org(t, "policy", "acme", "--record", "yes")
	start := time.Now()
	offer = o.dana.start(t, "offer", "pc-2", "--no-browser")
	offer.expect(`^offered: pc-2$`)
	a2.expect(`^question: Dana from ACME IT offers to help you\. Accept\? This session will be recorded\.$`)
	a2.expect(`^declined: \S+ \(no answer within 5s\)$`)
	offer.expect(`^declined by Mo$`)
	if time.Since(start) < 5*time.Second {
		t.Errorf("declined after %v, before the policy's timeout", time.Since(start))
	}

	// The first agent is still there for the next offer.
	if list := o.dana.run(t, "offer", "--list"); !strings.Contains(list, "pc-1 acme online") {
		t.Errorf("after its session pc-1 is %q", list)
	}
}

// TestOrgOfferNotification: where a notification service runs on the
// session bus (a real dbus-daemon, a service the test registers), the
// agent asks there too, and the Accept button starts the session; a
// Decline button declines.
func TestOrgOfferNotification(t *testing.T) {
	e2e(t)
	d := newDesktop(t)
	bus := notifytest.SessionBus(t)
	svc := notifytest.StartService(t, bus, "actions", "body")
	o := newOrgSetup(t)
	a := o.enrol(t, o.token(t, "1"), "pc-1", "Front desk", "Mel M", d.Display, bus)

	offer := o.dana.start(t, "offer", "pc-1", "--no-browser")
	offer.expect(`^offered: pc-1$`)
	note := shown(t, svc, a)
	if note.Summary != "Dana from ACME IT offers to help you. Accept?" || note.Body != "" {
		t.Fatalf("the notification: %+v", note)
	}
	svc.Press(t, note.ID, "decline")
	offer.expect(`^declined by Mel M$`)
	a.expect(`^declined: \S+$`)

	// The policy now allows viewing only: the helper's request for
	// control is refused by the agent's own consent, and its user is
	// never asked.
	o.org(t, "policy", "acme", "--rights", "view")
	offer = o.dana.start(t, "offer", "pc-1", "--no-browser", "--request-control")
	offer.expect(`^offered: pc-1$`)
	svc.Press(t, shown(t, svc, a).ID, "accept")
	offer.expect(`^accepted by Mel M$`)
	a.expect(`wants to see your screen\. Allow\? \[y/N\]`)
	a.send("y")
	rfbAddr := offer.expect(`^rfb on (\S+)$`)[1]
	lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)
	offer.expect(`^state: viewing \(the organisation's policy does not allow this\)$`)
	if strings.Contains(strings.Join(a.all, "\n"), "control") {
		t.Errorf("the agent's user was asked about control: %q", a.all)
	}
}

// shown waits for the agent's next notification.
func shown(t *testing.T, svc *notifytest.Service, agent *proc) notifytest.Note {
	t.Helper()
	select {
	case n := <-svc.Shown:
		return n
	case <-time.After(20 * time.Second):
		t.Fatalf("the agent showed no notification; stderr: %s", agent.stderr)
		return notifytest.Note{}
	}
}

// TestOrgOfferPageIndicator: the agent asks an offer on its own page and
// on the indicator's bar as well as in the terminal. Accept on the page
// starts the session; Decline on the bar declines; and with no answer
// anywhere the page's question goes at the policy's timeout.
func TestOrgOfferPageIndicator(t *testing.T) {
	e2e(t)
	d := newDesktop(t)
	o := newOrgSetup(t)
	m := newCLIUser(t, "pc-1")
	if out := m.run(t, "agent", "enroll", o.srv.URL, o.token(t, "1"), "--id", "pc-1", "--name", "Front desk", "--user", "Mel M"); !strings.Contains(out, "enrolled: pc-1") {
		t.Fatalf("enroll printed %q", out)
	}
	cmd := m.cmd(t, "agent", "--display", d.Display, "--notify", "off")
	// The harness turns the indicator off; this test is about it.
	cmd.Env = append(cmd.Env, "ASSIST_INDICATOR=on")
	a := startProc(t, "pc-1: assist agent", cmd)
	pageURL := a.expect(`^page: (\S+)$`)[1]
	a.expect(`^agent: pc-1 online$`)
	b := newPageBrowser(t, pageURL)
	// The socket opens before the first status is drawn.
	b.wait(t, `s.socket === 'open' && s.state === 'waiting'`)
	if !jsValue[bool](t, b, `document.querySelector('[data-testid="invitation-box"]').hidden`) {
		t.Error("the agent's page shows an invitation")
	}
	if !jsValue[bool](t, b, `document.querySelector('[data-testid="history-box"]').hidden`) {
		t.Error("the agent's page shows a history before any session")
	}
	bar := indicator.State{Mode: indicator.Offer, Expert: "Dana", Org: "ACME IT"}

	// Accepted on the page.
	offer := o.dana.start(t, "offer", "pc-1", "--no-browser")
	offer.expect(`^offered: pc-1$`)
	a.expect(`^question: Dana from ACME IT offers to help you\. Accept\?$`)
	b.wait(t, `s.question > 0`)
	if got := b.text(t, "question-text"); got != "Dana from ACME IT offers to help you. Accept?" {
		t.Errorf("the page asks %q", got)
	}
	if got := b.text(t, "allow"); got != "Accept" {
		t.Errorf("the page's yes button says %q, want Accept", got)
	}
	shotAt(t, b, "agent-offer", "question-text")
	d.FindWindow(t, "^Assist: "+regexpQuote(indicator.Text(bar))+"$")
	b.click(t, "allow")
	offer.expect(`^accepted by Mel M$`)
	a.expect(`^answered on the page: true$`)
	a.expect(`Dana \(ACME IT\) wants to see your screen\. Allow\? \[y/N\]`)
	// The session's questions follow on the same page, which shows no
	// invitation.
	b.wait(t, `s.question > 0 && s.state === 'asking'`)
	if got := b.text(t, "allow"); got != "Allow" {
		t.Errorf("the view question's yes button says %q, want Allow", got)
	}
	if !jsValue[bool](t, b, `document.querySelector('[data-testid="invitation-box"]').hidden`) {
		t.Error("the agent's page shows an invitation during the session")
	}
	offer.interrupt()
	a.expect(`^session ended: \S+$`)
	b.wait(t, `s.question === 0 && s.state === 'waiting'`)
	// The machine's history, from its own audit log, on its page: who
	// helped, what they were allowed, how it ended.
	b.wait(t, `!document.querySelector('[data-testid="history-box"]').hidden && document.querySelector('[data-testid="history"]').textContent.includes('Dana')`)
	shotAt(t, b, "agent-history", "history-box")

	// Declined on the bar.
	offer = o.dana.start(t, "offer", "pc-1", "--no-browser")
	offer.expect(`^offered: pc-1$`)
	b.wait(t, `s.question > 0`)
	d.FindWindow(t, "^Assist: "+regexpQuote(indicator.Text(bar))+"$")
	r, ok := indicator.Button(bar, desktopSize, indicator.Decline)
	if !ok {
		t.Fatal("the offer's bar has no Decline")
	}
	p := r.Min.Add(r.Size().Div(2))
	d.Click(t, p.X, p.Y)
	a.expect(`^answered on the bar: decline$`)
	offer.expect(`^declined by Mel M$`)
	b.wait(t, `s.question === 0`)

	// Declined on the page.
	offer = o.dana.start(t, "offer", "pc-1", "--no-browser")
	offer.expect(`^offered: pc-1$`)
	b.wait(t, `s.question > 0`)
	b.click(t, "deny")
	offer.expect(`^declined by Mel M$`)
	b.wait(t, `s.question === 0`)
}

// TestOrgRecordByPolicy: with record=yes and an audit key in the
// organisation's policy, the agent records the accepted session by
// itself, encrypted to that key (its own --record-to plays no part), and
// the recording replays to the desktop the helper saw.
func TestOrgRecordByPolicy(t *testing.T) {
	e2e(t)
	d := newDesktop(t)
	o := newOrgSetup(t)
	keyFile, key := auditKey(t, o.op)
	if out, err := o.op.try(t, "org", "policy", "acme", "--audit-key", "age1notakey", "--data", o.data); err == nil {
		t.Errorf("a malformed audit key was taken: %q", out)
	}
	if out := o.org(t, "policy", "acme", "--record", "yes", "--audit-key", key); !strings.Contains(out, "record=true timeout=5s audit-key="+key+"\n") {
		t.Fatalf("org policy printed %q", out)
	}
	m := newCLIUser(t, "pc-1")
	m.run(t, "agent", "enroll", o.srv.URL, o.token(t, "1"), "--id", "pc-1", "--name", "Front desk", "--user", "Mel M")
	recDir := t.TempDir()
	cmd := m.cmd(t, "agent", "--display", d.Display, "--no-page", "--notify", "off", "--record-dir", recDir)
	// No frame: the desktop without the session is then what the helper
	// saw, and what the recording must show.
	cmd.Env = append(cmd.Env, "ASSIST_INDICATOR=off")
	a := startProc(t, "pc-1: assist agent", cmd)
	a.expect(`^agent: pc-1 online$`)

	offer := o.dana.start(t, "offer", "pc-1", "--no-browser")
	a.expect(`^question: Dana from ACME IT offers to help you\. Accept\? This session will be recorded\.$`)
	a.send("y")
	offer.expect(`^accepted by Mel M$`)
	a.expect(`^recording: this session's screen is recorded`)
	a.expect(`wants to see your screen\. Allow\? \[y/N\]`)
	a.send("y")
	rfbAddr := offer.expect(`^rfb on (\S+)$`)[1]
	lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)
	offer.interrupt()
	id := a.expect(`^recording: uploaded as (\S+)$`)[1]
	a.expect(`^session ended: \S+$`)

	local, err := os.ReadFile(oneRecording(t, recDir))
	if err != nil {
		t.Fatal(err)
	}
	// On the server: only the organisation's admins list and download it.
	for _, u := range []*cliUser{o.dana, o.mel} {
		if out, err := u.try(t, "recordings", "--org", "acme"); err == nil || !strings.Contains(out, "not an admin of acme") {
			t.Errorf("a helper or member lists the recordings: %q, %v", out, err)
		}
	}
	o.org(t, "add", "acme", "dana", "--role", "admin")
	list := o.dana.run(t, "recordings", "--org", "acme")
	if !regexp.MustCompile(`^` + id + ` pc-1 dana \S+ ` + strconv.Itoa(len(local)) + `\n$`).MatchString(list) {
		t.Fatalf("assist recordings printed %q, want the one of %d bytes", list, len(local))
	}
	got := filepath.Join(t.TempDir(), "got.age")
	o.dana.run(t, "recordings", "--org", "acme", "get", id, "--out", got)
	if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, local) {
		t.Fatalf("the downloaded recording differs from the machine's (%v)", err)
	}
	replayed(t, got, keyFile, func(addr string) {
		lab.WaitMatch(t, d.X, lab.DialRFB(t, addr).Screen, 0, matchTimeout)
	})
}

// auditKey makes an audit key pair with assist audit keygen and returns
// the identity's file and the public key.
func auditKey(t *testing.T, u *cliUser) (file, key string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "audit.key")
	m := regexp.MustCompile(`(?m)^audit key: (\S+)$`).FindStringSubmatch(u.run(t, "audit", "keygen", file))
	if m == nil {
		t.Fatal("assist audit keygen printed no key")
	}
	return file, m[1]
}

// oneRecording returns the one recording in recDir.
func oneRecording(t *testing.T, recDir string) string {
	t.Helper()
	recs, _ := filepath.Glob(filepath.Join(recDir, "*.rec"))
	if len(recs) != 1 {
		t.Fatalf("recordings %q, want one", recs)
	}
	return recs[0]
}

// replayed plays the recording file with assist replay to its end, calls
// check with the replay's RFB address, and quits the replay.
func replayed(t *testing.T, file, keyFile string, check func(addr string)) {
	t.Helper()
	play := lab.StartLines(t, nil, lab.AssistBinary(t), "replay", file, "--identity", keyFile)
	addr := play.WaitLine(t, `^listening on (\S+)$`, lineTimeout)[1]
	play.WaitLine(t, `^end of the recording`, 2*lineTimeout)
	check(addr)
	play.Send(t, "quit")
	play.WaitExit(t, lineTimeout)
}
