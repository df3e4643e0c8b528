package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/novicepage"
	"github.com/assist-project/assist/session"
)

// TestNoviceUIUnansweredQuestion: a question nobody answers, on the
// terminal or the page, is a no after the answer timeout. Both front ends
// show how the expert came, the warning and the deadline, and the novice
// UI records the no (which rests the invitation).
func TestNoviceUIUnansweredQuestion(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	out := new(lockedLines)
	ui := &noviceUI{
		con:    &console{keys: make(chan key, 16), restore: func() {}, out: out},
		out:    out,
		status: novicepage.Status{Code: "ABCD-EFGH", State: session.Waiting},
	}
	pageURL, err := ui.startPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ui.closePage(nil) })
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
