package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestConsentClipboardQuestion walks the clipboard right through its
// transitions: asked, answered, revoked, granted again, ended.
func TestConsentClipboardQuestion(t *testing.T) {
	type step struct {
		name    string
		do      func(*Consent) error
		invalid bool
		act     Action // the action recorded, "" for none
		rights  Rights // the rights afterwards
		asked   bool
	}
	req := (*Consent).RequestClipboard
	allow := (*Consent).AllowClipboard
	deny := (*Consent).DenyClipboard
	set := func(on bool) func(*Consent) error { return func(c *Consent) error { return c.SetClipboard(on) } }
	tests := []struct {
		name  string
		start State
		steps []step
	}{
		{"allow", Viewing, []step{
			{"answer before asked", allow, true, "", RightView, false},
			{"request", req, false, ActRequestClipboard, RightView, true},
			{"request again", req, true, "", RightView, true},
			{"allow", allow, false, ActAllowClipboard, RightView | RightClipboard, false},
			{"answer twice", deny, true, "", RightView | RightClipboard, false},
			{"request while held", req, true, "", RightView | RightClipboard, false},
			{"revoke", set(false), false, ActClipboard, RightView, false},
			{"request after revoke", req, false, ActRequestClipboard, RightView, true},
			{"deny", deny, false, ActDenyClipboard, RightView, false},
		}},
		{"while controlling", Controlling, []step{
			{"request", req, false, ActRequestClipboard, RightView | RightControl, true},
			{"allow", allow, false, ActAllowClipboard, RightView | RightControl | RightClipboard, false},
			{"take back keeps it", (*Consent).TakeBackControl, false, ActTakeBack, RightView | RightClipboard, false},
		}},
		{"toggle settles the question", ControlAsked, []step{
			{"request", req, false, ActRequestClipboard, RightView, true},
			{"toggle on", set(true), false, ActClipboard, RightView | RightClipboard, false},
			{"late answer", deny, true, "", RightView | RightClipboard, false},
		}},
		{"end clears", Viewing, []step{
			{"request", req, false, ActRequestClipboard, RightView, true},
			{"end", func(c *Consent) error { return c.End("bye") }, false, ActEnd, 0, false},
			{"answer after end", allow, true, "", 0, false},
			{"request after end", req, true, "", 0, false},
		}},
		{"not before viewing", Asking, []step{
			{"request", req, true, "", 0, false},
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
				if c.Rights() != s.rights || c.ClipboardAsked() != s.asked {
					t.Fatalf("%s: rights %s asked %v, want %s %v", s.name, c.Rights(), c.ClipboardAsked(), s.rights, s.asked)
				}
			}
		})
	}
}

// TestConsentClipboardOut: only text copied while the right is held, and
// held without a break since, may leave.
func TestConsentClipboardOut(t *testing.T) {
	c := NewConsent(Config{})
	reach(t, c, Viewing)
	before := time.Now()
	if c.ClipboardOut(before) {
		t.Fatal("clipboard out without the right")
	}
	if err := c.RequestClipboard(); err != nil {
		t.Fatal(err)
	}
	if err := c.AllowClipboard(); err != nil {
		t.Fatal(err)
	}
	if c.ClipboardOut(before) {
		t.Fatal("text copied before the grant may leave")
	}
	after := time.Now()
	if !c.ClipboardOut(after) {
		t.Fatal("text copied after the grant may not leave")
	}
	if err := c.SetClipboard(false); err != nil {
		t.Fatal(err)
	}
	if c.ClipboardOut(after) || c.ClipboardOut(time.Now()) {
		t.Fatal("clipboard out after revoking")
	}
	between := time.Now()
	if err := c.SetClipboard(true); err != nil {
		t.Fatal(err)
	}
	if c.ClipboardOut(between) || c.ClipboardOut(after) {
		t.Fatal("text copied while revoked may leave once granted again")
	}
	if !c.ClipboardOut(time.Now()) {
		t.Fatal("text copied after granting again may not leave")
	}
	c.End("bye")
	if c.ClipboardOut(time.Now()) {
		t.Fatal("clipboard out after the end")
	}
}

// TestConsentClipboardBeforeView: the right granted in advance counts
// from the moment the expert can view.
func TestConsentClipboardBeforeView(t *testing.T) {
	c := NewConsent(Config{Clipboard: true})
	reach(t, c, Asking)
	early := time.Now()
	if err := c.AllowView(); err != nil {
		t.Fatal(err)
	}
	if c.ClipboardOut(early) || !c.ClipboardOut(time.Now()) {
		t.Fatal("the right must count from the moment viewing was allowed")
	}
}

func TestQuestionTextClipboard(t *testing.T) {
	q := Question{Right: RightClipboard, Expert: "Ada"}
	want := "\nAda asks to share clipboards (copy and paste between your computers). Allow? [y/N]"
	if !strings.HasSuffix(q.Text(), want) {
		t.Fatalf("Text() = %q, want it to end in %q", q.Text(), want)
	}
}

// TestUnansweredClipboardQuestionIsDeny: the expert's clipboard question
// left unanswered is a no, audited as such, like view and control.
func TestUnansweredClipboardQuestionIsDeny(t *testing.T) {
	const timeout = 100 * time.Millisecond
	nov, exp, _ := askPair(t, PolicyView, timeout)
	if err := exp.RequestClipboard(context.Background()); err != nil {
		t.Fatal(err)
	}
	q := nextQuestion(t, nov)
	if q.Right != RightClipboard {
		t.Fatalf("asked for %v", q.Right)
	}
	ev := waitEvent(t, nov, ActDenyClipboard)
	if ev.Reason != "no answer within 1 second" || !ev.Auto || ev.Rights.Has(RightClipboard) {
		t.Errorf("event %+v, want an automatic deny-clipboard for no answer", ev)
	}
	if err := q.Answer(true); err == nil || nov.Clipboard() {
		t.Error("a late yes was accepted")
	}
	// The expert may ask again, and a yes in time shares the clipboard.
	if err := exp.RequestClipboard(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := nextQuestion(t, nov).Answer(true); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, nov, ActAllowClipboard); !ev.Rights.Has(RightClipboard) {
		t.Errorf("event %+v, want the clipboard right", ev)
	}
}
