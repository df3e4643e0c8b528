package session

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type action struct {
	name Action
	do   func(*Consent) error
}

var actions = []action{
	{ActAuthenticated, func(c *Consent) error { return c.ExpertAuthenticated("Ada") }},
	{ActAllowView, (*Consent).AllowView},
	{ActDenyView, (*Consent).DenyView},
	{ActRequestControl, (*Consent).RequestControl},
	{ActAllowControl, (*Consent).AllowControl},
	{ActDenyControl, (*Consent).DenyControl},
	{ActTakeBack, (*Consent).TakeBackControl},
	{ActGiveBack, (*Consent).GiveBackControl},
	{ActEnd, func(c *Consent) error { return c.End("bye") }},
}

// reach drives a fresh PolicyAsk consent to s.
func reach(t *testing.T, c *Consent, s State) {
	t.Helper()
	var steps []func() error
	switch s {
	case Waiting:
	case Asking:
		steps = []func() error{func() error { return c.ExpertAuthenticated("Ada") }}
	case Viewing, ControlAsked, Controlling:
		steps = []func() error{func() error { return c.ExpertAuthenticated("Ada") }, c.AllowView}
		if s >= ControlAsked {
			steps = append(steps, c.RequestControl)
		}
		if s == Controlling {
			steps = append(steps, c.AllowControl)
		}
	case Ended:
		steps = []func() error{func() error { return c.End("setup") }}
	}
	for _, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("reaching %s: %v", s, err)
		}
	}
	if got := c.State(); got != s {
		t.Fatalf("reached %s, want %s", got, s)
	}
}

type recorder struct {
	mu  sync.Mutex
	evs []Event
}

func (r *recorder) audit(ev Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.evs...)
}

func TestConsentTransitions(t *testing.T) {
	// valid[state][action] = next state; absent means invalid.
	valid := map[State]map[Action]State{
		Waiting:      {ActAuthenticated: Asking, ActEnd: Ended},
		Asking:       {ActAllowView: Viewing, ActDenyView: Ended, ActEnd: Ended},
		Viewing:      {ActRequestControl: ControlAsked, ActEnd: Ended},
		ControlAsked: {ActAllowControl: Controlling, ActDenyControl: Viewing, ActEnd: Ended},
		Controlling:  {ActTakeBack: Viewing, ActGiveBack: Viewing, ActEnd: Ended},
		Ended:        {},
	}
	for from := Waiting; from <= Ended; from++ {
		for _, a := range actions {
			t.Run(from.String()+"/"+string(a.name), func(t *testing.T) {
				rec := &recorder{}
				c := NewConsent(Config{Audit: rec.audit})
				reach(t, c, from)
				before := len(rec.events())
				rightsBefore := c.Rights()
				err := a.do(c)
				evs := rec.events()[before:]
				to, ok := valid[from][a.name]
				if !ok {
					if !errors.Is(err, ErrInvalidTransition) {
						t.Fatalf("err = %v, want ErrInvalidTransition", err)
					}
					if c.State() != from || c.Rights() != rightsBefore || len(evs) != 0 {
						t.Fatalf("invalid action changed things: state %s rights %s events %v", c.State(), c.Rights(), evs)
					}
					return
				}
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if c.State() != to {
					t.Fatalf("state = %s, want %s", c.State(), to)
				}
				if len(evs) != 1 || evs[0].From != from || evs[0].To != to || evs[0].Action != a.name || evs[0].Auto {
					t.Fatalf("events = %+v", evs)
				}
				if evs[0].Rights != c.Rights() || c.Rights() != rightsOf(to, false) {
					t.Fatalf("rights = %s, event %s", c.Rights(), evs[0].Rights)
				}
			})
		}
	}
}

func TestConsentRightsByState(t *testing.T) {
	tests := []struct {
		s    State
		clip bool
		want Rights
	}{
		{Waiting, true, 0},
		{Asking, true, 0},
		{Viewing, false, RightView},
		{Viewing, true, RightView | RightClipboard},
		{ControlAsked, false, RightView},
		{Controlling, false, RightView | RightControl},
		{Controlling, true, RightView | RightControl | RightClipboard},
		{Ended, true, 0},
	}
	for _, tt := range tests {
		c := NewConsent(Config{Clipboard: tt.clip})
		reach(t, c, tt.s)
		if got := c.Rights(); got != tt.want {
			t.Errorf("%s clipboard=%v: rights %s, want %s", tt.s, tt.clip, got, tt.want)
		}
	}
}

func TestConsentClipboard(t *testing.T) {
	rec := &recorder{}
	c := NewConsent(Config{Audit: rec.audit})
	reach(t, c, Viewing)
	n := len(rec.events())
	if err := c.SetClipboard(false); err != nil || len(rec.events()) != n {
		t.Fatalf("no-op revoke: err %v, events %d -> %d", err, n, len(rec.events()))
	}
	if err := c.SetClipboard(true); err != nil {
		t.Fatal(err)
	}
	evs := rec.events()[n:]
	if len(evs) != 1 || evs[0].Action != ActClipboard || evs[0].From != Viewing || evs[0].To != Viewing ||
		!evs[0].Rights.Has(RightClipboard) {
		t.Fatalf("events %+v", evs)
	}
	if err := c.End("done"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetClipboard(true); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("clipboard after end: %v", err)
	}
	if c.Rights() != 0 {
		t.Fatalf("rights after end: %s", c.Rights())
	}
}

func TestConsentPolicy(t *testing.T) {
	type step struct {
		do   func(*Consent) error
		want State
		evs  []Action // actions recorded by this step
		auto []bool
	}
	auth := func(c *Consent) error { return c.ExpertAuthenticated("Ada") }
	tests := []struct {
		policy Policy
		steps  []step
	}{
		{PolicyAsk, []step{
			{auth, Asking, []Action{ActAuthenticated}, []bool{false}},
		}},
		{PolicyView, []step{
			{auth, Viewing, []Action{ActAuthenticated, ActAllowView}, []bool{false, true}},
			{(*Consent).RequestControl, ControlAsked, []Action{ActRequestControl}, []bool{false}},
		}},
		{PolicyControl, []step{
			{auth, Viewing, []Action{ActAuthenticated, ActAllowView}, []bool{false, true}},
			{(*Consent).RequestControl, Controlling, []Action{ActRequestControl, ActAllowControl}, []bool{false, true}},
			{(*Consent).TakeBackControl, Viewing, []Action{ActTakeBack}, []bool{false}},
			// After Esc, the policy no longer answers for the novice.
			{(*Consent).RequestControl, ControlAsked, []Action{ActRequestControl}, []bool{false}},
			{(*Consent).AllowControl, Controlling, []Action{ActAllowControl}, []bool{false}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			rec := &recorder{}
			c := NewConsent(Config{Policy: tt.policy, Audit: rec.audit})
			for i, s := range tt.steps {
				n := len(rec.events())
				if err := s.do(c); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if c.State() != s.want {
					t.Fatalf("step %d: state %s, want %s", i, c.State(), s.want)
				}
				evs := rec.events()[n:]
				if len(evs) != len(s.evs) {
					t.Fatalf("step %d: events %+v", i, evs)
				}
				for j, ev := range evs {
					if ev.Action != s.evs[j] || ev.Auto != s.auto[j] {
						t.Fatalf("step %d: event %d = %+v, want %s auto=%v", i, j, ev, s.evs[j], s.auto[j])
					}
				}
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	for _, p := range []Policy{PolicyAsk, PolicyView, PolicyControl} {
		got, err := ParsePolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p, got, err)
		}
	}
	for _, s := range []string{"", "Ask", "all", "view "} {
		if _, err := ParsePolicy(s); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", s)
		}
	}
}

func TestConsentExpertName(t *testing.T) {
	for _, name := range []string{"", strings.Repeat("a", MaxExpertName+1), "a\nb", "evil\x1b[2J", "\u202eoops", "\xff"} {
		c := NewConsent(Config{})
		if err := c.ExpertAuthenticated(name); err == nil || c.State() != Waiting {
			t.Errorf("name %q accepted", name)
		}
	}
	c := NewConsent(Config{})
	if err := c.ExpertAuthenticated("Zoë Ångström"); err != nil {
		t.Fatal(err)
	}
	if c.Expert() != "Zoë Ångström" {
		t.Fatalf("expert %q", c.Expert())
	}
}

func TestConsentEndReasonSanitized(t *testing.T) {
	rec := &recorder{}
	c := NewConsent(Config{Audit: rec.audit})
	if err := c.End("line1\nline2\x1b" + strings.Repeat("é", MaxReason)); err != nil {
		t.Fatal(err)
	}
	r := rec.events()[0].Reason
	if len(r) > MaxReason || strings.ContainsAny(r, "\n\x1b") || checkText(r, MaxReason, false) != nil {
		t.Fatalf("reason %q", r)
	}
}

// checkChain verifies the audit trail is one consistent walk: consecutive
// sequence numbers, each event starting where the last one ended, and
// Controlling only ever entered by an AllowControl out of ControlAsked.
func checkChain(t *testing.T, evs []Event) {
	t.Helper()
	prev := Waiting
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
		if ev.From != prev {
			t.Fatalf("event %d from %s, previous ended in %s", i, ev.From, prev)
		}
		if ev.To == Controlling && ev.From != Controlling && (ev.Action != ActAllowControl || ev.From != ControlAsked) {
			t.Fatalf("event %d entered controlling by %s from %s", i, ev.Action, ev.From)
		}
		if ev.Rights.Has(RightControl) != (ev.To == Controlling) {
			t.Fatalf("event %d: rights %s in %s", i, ev.Rights, ev.To)
		}
		prev = ev.To
	}
}

// TestConsentRandomSequences is the property test: whatever the events,
// the expert never holds control unless an AllowControl came after the
// last RequestControl and the last TakeBack.
func TestConsentRandomSequences(t *testing.T) {
	all := append(actions, action{ActClipboard, func(c *Consent) error { return c.SetClipboard(rand.IntN(2) == 0) }})
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 7))
		policy := Policy(r.IntN(3))
		rec := &recorder{}
		c := NewConsent(Config{Policy: policy, Audit: rec.audit})
		var since []Action // actions since the last RequestControl or TakeBack
		for range 40 {
			a := all[r.IntN(len(all))]
			if a.name == ActEnd && r.IntN(4) != 0 {
				continue // keep sequences long
			}
			state := c.State()
			if err := a.do(c); err != nil {
				if !errors.Is(err, ErrInvalidTransition) {
					t.Fatalf("seed %d: %s: %v", seed, a.name, err)
				}
				if c.State() != state {
					t.Fatalf("seed %d: failed %s changed state", seed, a.name)
				}
				continue
			}
			switch a.name {
			case ActRequestControl, ActTakeBack:
				since = since[:0]
			}
			since = append(since, a.name)
			if c.Rights().Has(RightControl) != (c.State() == Controlling) {
				t.Fatalf("seed %d: rights %s in %s", seed, c.Rights(), c.State())
			}
			if c.State() == Controlling {
				granted := false
				for _, s := range since {
					granted = granted || s == ActAllowControl
				}
				autoOK := policy == PolicyControl && len(since) > 0 && since[0] == ActRequestControl
				if !granted && !autoOK {
					t.Fatalf("seed %d: controlling after %v without AllowControl", seed, since)
				}
			}
		}
		checkChain(t, rec.events())
	}
}

func TestConsentConcurrent(t *testing.T) {
	rec := &recorder{}
	c := NewConsent(Config{Policy: PolicyView, Audit: rec.audit})
	events, cancel := c.Subscribe()
	defer cancel()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 2000 {
				a := actions[r.IntN(len(actions)-1)] // never End
				_ = a.do(c)
				_ = c.Rights()
			}
		})
	}
	wg.Wait()
	if err := c.End("test over"); err != nil {
		t.Fatal(err)
	}
	evs := rec.events()
	checkChain(t, evs)
	var got []Event
	for ev := range events {
		got = append(got, ev)
	}
	if len(got) != len(evs) {
		t.Fatalf("subscriber got %d events, audit %d", len(got), len(evs))
	}
	for i := range got {
		if got[i] != evs[i] {
			t.Fatalf("subscriber event %d = %+v, audit %+v", i, got[i], evs[i])
		}
	}
}

func TestConsentSubscribe(t *testing.T) {
	c := NewConsent(Config{})
	ch, cancel := c.Subscribe()
	defer cancel()
	stale, cancelStale := c.Subscribe() // never read: must not block anyone
	reach(t, c, Controlling)
	if err := c.TakeBackControl(); err != nil {
		t.Fatal(err)
	}
	cancelStale()
	cancelStale()
	for range stale {
	}
	if err := c.End("bye"); err != nil {
		t.Fatal(err)
	}
	var got []State
	for ev := range ch {
		got = append(got, ev.To)
	}
	want := []State{Asking, Viewing, ControlAsked, Controlling, Viewing, Ended}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	late, cancelLate := c.Subscribe()
	defer cancelLate()
	if _, ok := <-late; ok {
		t.Fatal("subscription after end delivered an event")
	}
}

func TestStateText(t *testing.T) {
	for s := Waiting; s <= Ended; s++ {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got State
		if err := got.UnmarshalText(b); err != nil || got != s {
			t.Fatalf("%s: %v %v", s, got, err)
		}
	}
	if _, err := State(99).MarshalText(); err == nil {
		t.Fatal("bad state marshalled")
	}
	var s State
	if err := s.UnmarshalText([]byte("Viewing")); err == nil {
		t.Fatal("case-insensitive state accepted")
	}
}
