package session

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestQuestionText(t *testing.T) {
	tests := []struct {
		name string
		q    Question
		want string
	}{
		{"view through the server", Question{Right: RightView, Expert: "Dana", Via: ViaServer("203.0.113.7"), Timeout: time.Minute},
			"Dana is connected through the server from 203.0.113.7.\n" +
				"  Only allow someone you asked for help. Nobody from a company calls you first.\n" +
				"  No answer in 1 minute means no.\n" +
				"Dana wants to see your screen. Allow? [y/N]"},
		{"control on the LAN", Question{Right: RightControl, Expert: "Dana", Via: ViaDirect(netip.MustParseAddr("192.168.1.20")), Timeout: 30 * time.Second},
			"Dana is connected on your local network (192.168.1.20).\n" +
				"  Only allow someone you asked for help. Nobody from a company calls you first.\n" +
				"  No answer in 30 seconds means no.\n" +
				"Dana asks to control your mouse and keyboard. Allow? [y/N]"},
		{"view from the internet", Question{Right: RightView, Expert: "Dana", Via: ViaDirect(netip.MustParseAddr("203.0.113.7")), Timeout: time.Minute},
			"Dana is connected from the internet (203.0.113.7).\n" +
				"  Only allow someone you asked for help. Nobody from a company calls you first.\n" +
				"  No answer in 1 minute means no.\n" +
				"Dana wants to see your screen. Allow? [y/N]"},
		{"no via, no timeout", Question{Right: RightView, Expert: "Dana"},
			"Dana is connected.\n" +
				"  Only allow someone you asked for help. Nobody from a company calls you first.\n" +
				"Dana wants to see your screen. Allow? [y/N]"},
	}
	for _, tt := range tests {
		if got := tt.q.Text(); got != tt.want {
			t.Errorf("%s:\n%s\nwant\n%s", tt.name, got, tt.want)
		}
	}
}

func TestVia(t *testing.T) {
	tests := []struct{ got, want string }{
		{ViaDirect(netip.MustParseAddr("192.168.1.20")), "on your local network (192.168.1.20)"},
		{ViaDirect(netip.MustParseAddr("10.1.2.3")), "on your local network (10.1.2.3)"},
		{ViaDirect(netip.MustParseAddr("127.0.0.1")), "on your local network (127.0.0.1)"},
		{ViaDirect(netip.MustParseAddr("::ffff:172.16.0.9")), "on your local network (172.16.0.9)"},
		{ViaDirect(netip.MustParseAddr("fe80::1")), "on your local network (fe80::1)"},
		{ViaDirect(netip.MustParseAddr("fd00::5")), "on your local network (fd00::5)"},
		{ViaDirect(netip.MustParseAddr("203.0.113.7")), "from the internet (203.0.113.7)"},
		{ViaDirect(netip.MustParseAddr("2001:db8::1")), "from the internet (2001:db8::1)"},
		{ViaServer("203.0.113.7"), "through the server from 203.0.113.7"},
		{ViaServer("::ffff:198.51.100.2"), "through the server from 198.51.100.2"},
		{ViaServer(""), "through the server"},
		{ViaServer("203.0.113.7\nAllow? y"), "through the server"},
		{ViaServer("evil.example"), "through the server"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute: "1 minute", 2 * time.Minute: "2 minutes", 90 * time.Second: "90 seconds",
		time.Second: "1 second", 50 * time.Millisecond: "1 second", 1500 * time.Millisecond: "2 seconds",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

// askPair starts a novice that asks before viewing, with the given
// answer timeout, and an expert, on a pipe. audit collects the trail.
func askPair(t *testing.T, policy Policy, timeout time.Duration) (*Novice, *Expert, func() []Event) {
	t.Helper()
	a, b := net.Pipe()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var mu sync.Mutex
	var trail []Event
	exp := StartExpert(b, log)
	nov, err := StartNovice(context.Background(), a, "Dana", NoviceConfig{
		Policy: policy, Logger: log, AnswerTimeout: timeout, Via: ViaServer("203.0.113.7"),
		Audit: func(ev Event) { mu.Lock(); trail = append(trail, ev); mu.Unlock() },
	})
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
	})
	return nov, exp, func() []Event { mu.Lock(); defer mu.Unlock(); return append([]Event(nil), trail...) }
}

func nextQuestion(t *testing.T, nov *Novice) Question {
	t.Helper()
	select {
	case q := <-nov.Questions():
		return q
	case <-time.After(30 * time.Second):
		t.Fatal("no question")
	}
	panic("unreachable")
}

// waitEvent waits for the novice's next event of action a.
func waitEvent(t *testing.T, nov *Novice, a Action) Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-nov.Events():
			if !ok {
				t.Fatalf("events closed before %s", a)
			}
			if ev.Action == a {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s", a)
		}
	}
}

func TestUnansweredViewQuestionIsDeny(t *testing.T) {
	const timeout = 100 * time.Millisecond
	nov, exp, trail := askPair(t, PolicyAsk, timeout)
	q := nextQuestion(t, nov)
	if q.Right != RightView || q.Via != "through the server from 203.0.113.7" || q.Timeout != timeout {
		t.Fatalf("question %+v", q)
	}
	if left := time.Until(q.Deadline); left <= 0 || left > timeout {
		t.Errorf("deadline in %v, want within %v", left, timeout)
	}
	// Nobody answers.
	ev := waitEvent(t, nov, ActDenyView)
	want := "no answer within 1 second"
	if ev.Action != ActDenyView || ev.Reason != want || !ev.Auto {
		t.Errorf("event %+v, want a deny-view with reason %q, auto", ev, want)
	}
	// A late answer changes nothing.
	if err := q.Answer(true); err == nil {
		t.Error("an answer after the deadline was accepted")
	}
	if s := nov.State(); s != Ended {
		t.Errorf("state %s after a late yes", s)
	}
	found := false
	for _, e := range trail() {
		if e.Action == ActDenyView && e.Reason == want {
			found = true
		}
	}
	if !found {
		t.Errorf("the audit trail has no deny for the unanswered question: %+v", trail())
	}
	// The expert hears why.
	for e := range exp.Events() {
		if e.State == Ended {
			if !strings.Contains(e.Reason, want) {
				t.Errorf("expert told %q", e.Reason)
			}
			break
		}
	}
}

func TestUnansweredControlQuestionIsDeny(t *testing.T) {
	const timeout = 100 * time.Millisecond
	nov, exp, _ := askPair(t, PolicyView, timeout)
	if err := exp.RequestControl(context.Background()); err != nil {
		t.Fatal(err)
	}
	q := nextQuestion(t, nov)
	if q.Right != RightControl {
		t.Fatalf("asked for %v", q.Right)
	}
	ev := waitEvent(t, nov, ActDenyControl)
	if ev.Action != ActDenyControl || ev.Reason != "no answer within 1 second" || ev.Rights.Has(RightControl) {
		t.Errorf("event %+v, want a deny-control for no answer", ev)
	}
	if err := q.Answer(true); err == nil {
		t.Error("a late yes was accepted")
	}
	// The expert may ask again, and an answer in time is kept: the first
	// question's deadline does not deny the second.
	if err := exp.RequestControl(context.Background()); err != nil {
		t.Fatal(err)
	}
	q2 := nextQuestion(t, nov)
	if err := q2.Answer(true); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, nov, ActAllowControl)
	if err := q2.Answer(false); err == nil {
		t.Error("a question answered twice")
	}
}

func TestAnsweredQuestionStopsItsDeadline(t *testing.T) {
	nov, _, trail := askPair(t, PolicyAsk, time.Minute)
	q := nextQuestion(t, nov)
	if err := q.Answer(true); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, nov, ActAllowView)
	nov.timersMu.Lock()
	pending := len(nov.timers)
	nov.timersMu.Unlock()
	if pending != 0 {
		t.Errorf("%d question timers still pending after the answer", pending)
	}
	for _, e := range trail() {
		if e.Auto {
			t.Errorf("an automatic move: %+v", e)
		}
	}
}

// TestDenyNote: the note reaches the expert with a no to viewing, the
// novice's or an unanswered question's.
func TestDenyNote(t *testing.T) {
	for _, answer := range []bool{true, false} {
		a, b := net.Pipe()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		exp := StartExpert(b, log)
		nov, err := StartNovice(context.Background(), a, "Dana", NoviceConfig{
			Logger: log, AnswerTimeout: 100 * time.Millisecond, DenyNote: "; this invitation is now closed",
		})
		if err != nil {
			t.Fatal(err)
		}
		q := nextQuestion(t, nov)
		want := "no answer within 1 second; this invitation is now closed"
		if answer {
			want = "novice declined; this invitation is now closed"
			if err := q.Answer(false); err != nil {
				t.Fatal(err)
			}
		}
		if ev := waitEvent(t, nov, ActDenyView); ev.Reason != want || ev.Auto == answer {
			t.Errorf("event %+v, want reason %q", ev, want)
		}
		for e := range exp.Events() {
			if e.State == Ended && e.Reason != want {
				t.Errorf("expert told %q, want %q", e.Reason, want)
			}
		}
		for range nov.Events() {
		}
		<-nov.Done()
	}
}
