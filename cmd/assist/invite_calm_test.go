package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/novicepage"
	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/session"
	"github.com/chromedp/chromedp"
)

// TestNoviceUIUnansweredQuestion: a question nobody answers, on the
// terminal or the page, is a no after the answer timeout. Both front ends
// show how the expert came, the warning and the deadline, and the novice
// UI records the no (which rests the invitation).
func TestNoviceUIUnansweredQuestion(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ui, out, pageURL := startTestUI(t, ctx, novicepage.Status{Code: "ABCD-EFGH", State: session.Waiting})
	pg := dialNovicePage(t, pageURL)
	pg.waitStatus(t, "the first status", func(s novicepage.Status) bool { return s.Code == "ABCD-EFGH" })

	const timeout = 300 * time.Millisecond
	nc, ec := net.Pipe()
	nov, err := session.StartNovice(ctx, nc, expertName, session.NoviceConfig{
		Input: nopInjector{}, Logger: log, AnswerTimeout: timeout, Via: session.ViaServer("203.0.113.7"),
	})
	if err != nil {
		t.Fatal(err)
	}
	exp := session.StartExpert(ec, log)
	defer exp.Leave("test over")
	ui.status.Expert = expertName
	quit := make(chan bool, 1)
	go func() { quit <- ui.runSession(nov, expertName, nil) }()

	st := pg.waitStatus(t, "the view question", func(s novicepage.Status) bool { return s.Question != nil })
	q := st.Question
	if q.Via != "through the server from 203.0.113.7" || q.Warning != session.Warning || q.Deadline.IsZero() {
		t.Errorf("the page's question %+v lacks the path, the warning or the deadline", q)
	}
	out.wait(t, expertName+" is connected through the server from 203.0.113.7.")
	out.wait(t, "Nobody from a company calls you first.")
	out.wait(t, "No answer in 1 second means no.")

	// Nobody answers.
	pg.waitStatus(t, "the question gone, the session ended", func(s novicepage.Status) bool {
		return s.Question == nil && s.State == session.Ended
	})
	if st := pg.status; !strings.Contains(st.Reason, "no answer within 1 second") {
		t.Errorf("the page says %q, want the reason for the no", st.Reason)
	}
	out.wait(t, "state: ended (no answer within 1 second)")
	waitExpertState(t, exp, session.Ended)
	select {
	case <-quit:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end")
	}
	if !ui.deniedView {
		t.Error("the unanswered question was not recorded as a no")
	}
}

// TestInviteDenials runs the real assist invite and assist join over the
// direct path: a no rests the invitation (the next expert is refused in
// plain words, at no attempt's cost), a question left unanswered is a no,
// and the third no closes the invitation.
func TestInviteDenials(t *testing.T) {
	e2e(t)
	t.Parallel()
	d := newConsentDesktop(t)
	const cooldown = 3 * time.Second
	nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap",
		"--deny-cooldown", cooldown.String(), "--answer-timeout", "2s")
	pg := dialNovicePage(t, lineWithPrefix(t, nov.LineProc, "page: "))

	ask := func() *lab.LineProc {
		t.Helper()
		exp := startJoin(t, nil, nov.File, nov.PasswordFile)
		nov.WaitLines(t, lineTimeout,
			`^`+expertName+` is connected on your local network \(127\.0\.0\.1\)\.$`,
			`^  Only allow someone you asked for help\. Nobody from a company calls you first\.$`,
			`^  No answer in 2 seconds means no\.$`,
			`^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`)
		return exp
	}
	// denied waits for the end of the session the novice said no to, and
	// returns when the cooldown ends.
	denied := func(exp *lab.LineProc, reason string, n int) time.Time {
		t.Helper()
		exp.WaitLine(t, `^state: ended \(`+reason+`\)$`, lineTimeout)
		if code := exp.WaitExit(t, lineTimeout); code != 0 {
			t.Errorf("assist join exited with %d after the novice said no, want 0", code)
		}
		nov.WaitLine(t, fmt.Sprintf(`^you said no: for 3 seconds nobody can ask again \(the invitation closes at the third no; this was no %d\)$`, n), lineTimeout)
		return time.Now().Add(cooldown)
	}

	exp := ask()
	nov.Send(t, "n")
	until := denied(exp, "novice declined", 1)

	// Asking again at once is refused, in words, and costs no attempt.
	msg := joinFails(t, nil, nov.File, nov.PasswordFile)
	if !regexp.MustCompile(`^assist join: The person you are helping said no\. You can ask again in about [1-3] seconds?\.$`).MatchString(msg) {
		t.Errorf("refused expert told %q", msg)
	}
	// The novice writes the refusal to the expert, then logs it.
	if line := nov.WaitStderr(t, `.*outcome=refused_novice_said_no.*`, lineTimeout); !strings.Contains(line, "attempts_left=5") {
		t.Errorf("the refusal is not logged as one that costs no attempt: %s", line)
	}

	// The cooldown is time, so the test waits it out.
	time.Sleep(time.Until(until))
	exp = ask()
	nov.Send(t, "n")
	until = denied(exp, "novice declined", 2)

	// The third time nobody answers: that is a no too, and it closes the
	// invitation.
	time.Sleep(time.Until(until))
	exp = ask()
	q := pg.waitStatus(t, "the third question", func(s novicepage.Status) bool { return s.Question != nil })
	if q.Question.Via != "on your local network (127.0.0.1)" || q.Question.Warning == "" || time.Until(q.Question.Deadline) > 2*time.Second {
		t.Errorf("the page's question %+v", q.Question)
	}
	exp.WaitLine(t, `^state: ended \(no answer within 2 seconds; this invitation is now closed\)$`, lineTimeout)
	st := pg.waitStatus(t, "the invitation closed", func(s novicepage.Status) bool { return s.Stopped })
	if want := "You said no three times, so this invitation is closed. Make a new one when you want help."; st.Reason != want {
		t.Errorf("the page says %q, want %q", st.Reason, want)
	}
	if code := nov.WaitExit(t, lineTimeout); code != 1 {
		t.Errorf("assist invite exited with %d after the third no, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(nov.Stderr()), "\n")
	if last, want := lines[len(lines)-1], "assist invite: You said no three times, so this invitation is closed. Make a new one when you want help."; last != want {
		t.Errorf("assist invite's last words: %q, want %q", last, want)
	}
}

// TestNovicePageQuestion shows a pending question on the novice's page in
// Chromium: what the expert asks, how they came, the warning, and the
// countdown to the automatic no. With ASSIST_E2E_ARTIFACTS set, the page is
// saved as a screenshot for a person to judge.
func TestNovicePageQuestion(t *testing.T) {
	e2e(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ui, _, pageURL := startTestUI(t, ctx, novicepage.Status{Code: "4821-orbit-velvet", State: session.Waiting,
		Server: "https://assist.example.org", Expires: time.Now().Add(time.Hour)})
	b := newPageBrowser(t, pageURL)
	b.wait(t, `s.state === "waiting"`)

	nc, ec := net.Pipe()
	nov, err := session.StartNovice(ctx, nc, "Dana", session.NoviceConfig{
		Input: nopInjector{}, Logger: log, Via: session.ViaServer("203.0.113.7"),
	})
	if err != nil {
		t.Fatal(err)
	}
	exp := session.StartExpert(ec, log)
	defer exp.Leave("test over")
	ui.status.Expert = "Dana"
	ui.status.Path, ui.status.Detail = "through the Assist server", serverPathDetail("relay-udp")
	quit := make(chan bool, 1)
	go func() { quit <- ui.runSession(nov, "Dana", nil) }()

	b.wait(t, `s.question > 0 && /^Closing in (59|60) s\./.test(s.countdown)`)
	for id, want := range map[string]string{
		"question-text":    "Dana wants to see your screen.",
		"question-via":     "Connected through the server from 203.0.113.7.",
		"question-warning": session.Warning,
	} {
		if got := b.text(t, id); got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
	b.wait(t, `/^Closing in 5[0-8] s\./.test(s.countdown)`) // it ticks
	saveShot(t, b.ctx, "novice-page-question")

	b.click(t, "deny")
	b.wait(t, `s.question === 0 && s.countdown === ""`)
	waitExpertState(t, exp, session.Ended)
	select {
	case <-quit:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end")
	}
}

// saveShot saves the tab as NAME.png in $ASSIST_E2E_ARTIFACTS, if set.
func saveShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("ASSIST_E2E_ARTIFACTS")
	if dir == "" {
		return
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".png"), shot, 0o644)
	}
	if err != nil {
		t.Logf("screenshot: %v", err)
	}
}

// TestRendezvousCalm: through the server, a pairing whose expert stays
// silent is dropped after a few seconds (not the 15 s of a signalling
// request) and logged, and a join while the invitation rests after a no is
// refused in the novice's words, at no attempt's cost.
func TestRendezvousCalm(t *testing.T) {
	e2e(t)
	t.Parallel()
	d := newDesktop(t)
	srv := startServe(t, t.TempDir())
	nov := startBrowserNovice(t, d.Display, srv, "--deny-cooldown", "1m")
	serverFlags := []string{"--server", srv.URL, "--server-fingerprint", srv.Fingerprint}

	// A silent expert: pairs, then sends nothing.
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Second) // under the old 15 s
	defer cancel()
	c, err := server.DialSignal(ctx, srv.URL, srv.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Join(ctx, strconv.Itoa(nov.Lookup)); err != nil {
		t.Fatalf("join: %v", err)
	}
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("the silent pairing was not dropped: %v\nnovice:\n%s", err, nov.Output())
		}
		if m.Type == server.TypeBye || m.Type == server.TypePeerLeft {
			break
		}
	}
	waitStderr(t, nov.LineProc, "the expert sent nothing; pairing dropped", 1)
	c.Close()

	// A real expert, whom the novice turns down.
	p := lab.StartLines(t, nil, lab.AssistBinary(t), append([]string{"join", "--no-browser", "--name", expertName}, append(serverFlags, nov.Code)...)...)
	nov.WaitLine(t, `^`+expertName+` is connected through the server`, lineTimeout)
	nov.WaitLine(t, `^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "n")
	p.WaitLine(t, `^state: ended \(novice declined\)$`, lineTimeout)
	if code := p.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist join exited with %d after the novice said no, want 0", code)
	}
	nov.WaitLine(t, `^you said no: for 1 minute nobody can ask again`, lineTimeout)

	msg := joinCodeFails(t, nil, append(serverFlags, nov.Code)...)
	if want := "assist join: The person you are helping said no. You can ask again in about 1 minute."; msg != want {
		t.Errorf("refused through the server: %q, want %q", msg, want)
	}
	if strings.Contains(nov.Stderr(), "rendezvous: wrong password") {
		t.Errorf("the refusal cost an attempt:\n%s", nov.Stderr())
	}
}
