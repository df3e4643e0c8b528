package session

import (
	"context"
	"testing"
	"time"
)

// TestGiveBackControl: the expert's "Give back control" reaches the
// novice's consent as the expert's own transition (audited as such), the
// expert hears it as viewing, and asking again works.
func TestGiveBackControl(t *testing.T) {
	nov, exp, trail := askPair(t, PolicyView, time.Minute)
	ctx := context.Background()
	if err := exp.RequestControl(ctx); err != nil {
		t.Fatal(err)
	}
	if err := nextQuestion(t, nov).Answer(true); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, nov, ActAllowControl)
	waitExpertState(t, exp, Controlling)

	if err := exp.GiveBackControl(ctx); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, nov, ActGiveBack)
	if ev.From != Controlling || ev.To != Viewing || ev.Rights.Has(RightControl) || ev.Auto {
		t.Errorf("event %+v, want the expert's give-back from controlling to viewing", ev)
	}
	if r := nov.consent.Rights(); r.Has(RightControl) || !r.Has(RightView) {
		t.Errorf("rights %s after giving back, want view only", r)
	}
	if got := waitExpertState(t, exp, Viewing); got != "the expert gave control back" {
		t.Errorf("the expert is told %q", got)
	}
	audited := false
	for _, e := range trail() {
		audited = audited || e.Action == ActGiveBack
	}
	if !audited {
		t.Errorf("no give-back in the audit trail: %+v", trail())
	}
	// Giving back what one does not hold changes nothing and ends nothing.
	if err := exp.GiveBackControl(ctx); err != nil {
		t.Fatal(err)
	}
	if err := exp.RequestControl(ctx); err != nil {
		t.Fatal(err)
	}
	if q := nextQuestion(t, nov); q.Right != RightControl {
		t.Fatalf("asked for %v after giving back", q.Right)
	}
	if s := nov.State(); s != ControlAsked {
		t.Errorf("state %s, want control-asked", s)
	}
}

// waitExpertState waits for the expert's view of the session to reach s
// and returns the reason it was given.
func waitExpertState(t *testing.T, exp *Expert, s State) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-exp.Events():
			if !ok {
				t.Fatalf("expert's events closed before %s", s)
			}
			if !ev.IsChat && ev.State == s {
				return ev.Reason
			}
		case <-timeout:
			t.Fatalf("the expert never saw %s", s)
		}
	}
}
