package session

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeHotKey stands in for x11.Display.WatchHotKey.
type fakeHotKey struct {
	mu         sync.Mutex
	armed      bool
	arms       int
	stops      int
	fail       error
	isInjected func() bool
	onPress    func()
}

func (f *fakeHotKey) watch(isInjected func() bool, onPress func()) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	if f.armed {
		panic("hot key armed twice")
	}
	f.armed, f.isInjected, f.onPress = true, isInjected, onPress
	f.arms++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.armed = false
		f.stops++
	}, nil
}

func (f *fakeHotKey) status() (armed bool, arms, stops int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.armed, f.arms, f.stops
}

// novicePair starts a novice (PolicyView) and an expert on a pipe.
func novicePair(t *testing.T, cfg NoviceConfig) (*Novice, *Expert) {
	t.Helper()
	a, b := net.Pipe()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	exp := StartExpert(b, log)
	cfg.Policy, cfg.Logger = PolicyView, log
	nov, err := StartNovice(context.Background(), a, "Expert", cfg)
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
	return nov, exp
}

// grantControl has the expert ask for control and the novice allow it.
func grantControl(t *testing.T, nov *Novice, exp *Expert) {
	t.Helper()
	if err := exp.RequestControl(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case q := <-nov.Questions():
		if q.Right != RightControl {
			t.Fatalf("asked for %v", q.Right)
		}
		if err := q.Answer(true); err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the novice was never asked for control")
	}
}

func TestNoviceHotKeyFollowsControl(t *testing.T) {
	hk := &fakeHotKey{}
	d := newDesk(t)
	nov, exp := novicePair(t, NoviceConfig{Input: d, HotKey: hk.watch})

	if armed, _, _ := hk.status(); armed {
		t.Fatal("hot key armed while only viewing")
	}
	grantControl(t, nov, exp)
	// Armed by the time AllowControl returned.
	if armed, arms, _ := hk.status(); !armed || arms != 1 {
		t.Fatalf("after control was granted: armed %v after %d arms", armed, arms)
	}

	// The expert taps Esc faster than the desktop reports the press:
	// still the expert's. Then the novice's press is not.
	g := nov.gate
	g.Key(xkEscape, true)
	g.Key(xkEscape, false)
	if !hk.isInjected() {
		t.Error("the expert's quick Esc was taken for the novice's")
	}
	if hk.isInjected() {
		t.Error("the novice's Esc was taken for the expert's")
	}
	// Keys other than Esc are not recorded.
	g.Key('a', true)
	g.Key('a', false)
	if hk.isInjected() {
		t.Error("another key made Esc look injected")
	}

	hk.onPress()
	if st := nov.State(); st != Viewing {
		t.Fatalf("after the hot key: state %v", st)
	}
	if armed, _, stops := hk.status(); armed || stops != 1 {
		t.Fatalf("after take-back: armed %v, %d stops", armed, stops)
	}
	hk.onPress() // a second press is harmless
	if st := nov.State(); st != Viewing {
		t.Fatalf("after a second press: state %v", st)
	}

	// Control again (asked again: the take-back disarmed no policy here),
	// then the end of the session disarms too.
	grantControl(t, nov, exp)
	if armed, arms, _ := hk.status(); !armed || arms != 2 {
		t.Fatalf("after control was granted again: armed %v after %d arms", armed, arms)
	}
	nov.End("done")
	if armed, _, stops := hk.status(); armed || stops != 2 {
		t.Fatalf("after the end: armed %v, %d stops", armed, stops)
	}
}

func TestNoviceHotKeyUnavailable(t *testing.T) {
	hk := &fakeHotKey{fail: errors.New("Esc grabbed by another program")}
	nov, exp := novicePair(t, NoviceConfig{Input: newDesk(t), HotKey: hk.watch})
	grantControl(t, nov, exp)
	if st := nov.State(); st != Controlling {
		t.Fatalf("state %v: a hot key failure must not refuse control", st)
	}
	if err := nov.TakeBack(); err != nil {
		t.Fatal(err)
	}
}

func TestInjectedPresses(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewConsent(Config{Now: func() time.Time { return now }})
	g := NewGate(c, newDesk(t), nil, nil)
	c.ExpertAuthenticated("Expert")
	c.AllowView()
	c.RequestControl()
	c.AllowControl()
	isInjected := g.InjectedPresses(xkEscape)
	if again := g.InjectedPresses(xkEscape); again == nil {
		t.Fatal("nil question")
	}

	// Presses are accounted for one by one, auto-repeat included.
	g.Key(xkEscape, true)
	g.Key(xkEscape, true)
	g.Key(xkEscape, false)
	for i, want := range []bool{true, true, false} {
		if got := isInjected(); got != want {
			t.Errorf("question %d: %v, want %v", i, got, want)
		}
	}

	// A press the desktop never reported expires.
	g.Key(xkEscape, true)
	g.Key(xkEscape, false)
	now = now.Add(injectedPressTTL + time.Millisecond)
	if isInjected() {
		t.Error("an expired press still counted")
	}

	// Dropped presses (no control) are not recorded.
	c.TakeBackControl()
	g.Key(xkEscape, true)
	if isInjected() {
		t.Error("a press the gate dropped counted")
	}

	// A flood is bounded.
	c.RequestControl()
	c.AllowControl()
	for range 10 * maxPressLog {
		g.Key(xkEscape, true)
	}
	n := 0
	for isInjected() {
		n++
	}
	if n != maxPressLog {
		t.Errorf("%d presses recorded, want the bound %d", n, maxPressLog)
	}
}
