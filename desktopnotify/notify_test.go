package desktopnotify_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/desktopnotify"
	"github.com/assist-project/assist/desktopnotify/notifytest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestAsk: the question reaches a service on a real bus as plain summary
// text with Accept and Decline and no body, and each button press answers
// its own question once; a withdrawn question is closed and never answered.
func TestAsk(t *testing.T) {
	addr := notifytest.SessionBus(t)
	f := notifytest.StartService(t, addr, "actions", "body")
	// The context of Open bounds Open only, not the connection.
	octx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	n, err := desktopnotify.Open(octx, addr)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	answers := make(chan bool, 4)
	text := "<b>Dana</b> from ACME IT offers to help you. Accept?"
	for _, key := range []string{desktopnotify.ActionAccept, desktopnotify.ActionDecline} {
		if _, err := n.Ask(ctxT(t), text, func(a bool) { answers <- a }); err != nil {
			t.Fatal(err)
		}
		note := <-f.Shown
		if note.Summary != text || note.Body != "" || strings.Join(note.Actions, ",") != "accept,Accept,decline,Decline" {
			t.Errorf("service showed %+v", note)
		}
		f.Press(t, note.ID, key)
		f.Press(t, note.ID, desktopnotify.ActionAccept) // a second press is no second answer
		select {
		case a := <-answers:
			if a != (key == desktopnotify.ActionAccept) {
				t.Errorf("pressed %s, got %v", key, a)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no answer after pressing %s", key)
		}
	}
	withdraw, err := n.Ask(ctxT(t), text, func(a bool) { answers <- a })
	if err != nil {
		t.Fatal(err)
	}
	id := (<-f.Shown).ID
	withdraw()
	f.Press(t, id, desktopnotify.ActionAccept)
	// The signals come in order: the next question's answer comes after
	// the late press, which answered nothing.
	if _, err := n.Ask(ctxT(t), "next", func(a bool) { answers <- a }); err != nil {
		t.Fatal(err)
	}
	f.Press(t, (<-f.Shown).ID, desktopnotify.ActionDecline)
	if a := <-answers; a {
		t.Error("the withdrawn question was answered")
	}
	if c := f.Closed(); !slices.Equal(c, []uint32{id}) {
		t.Errorf("closed %v, want [%d]", c, id)
	}
}

// TestUnavailable: no bus, no service, or a service without buttons.
func TestUnavailable(t *testing.T) {
	if _, err := desktopnotify.Open(ctxT(t), ""); !errors.Is(err, desktopnotify.ErrUnavailable) {
		t.Errorf("no bus: %v", err)
	}
	addr := notifytest.SessionBus(t)
	if _, err := desktopnotify.Open(ctxT(t), addr); !errors.Is(err, desktopnotify.ErrUnavailable) {
		t.Errorf("no service: %v", err)
	}
	notifytest.StartService(t, addr, "body")
	if _, err := desktopnotify.Open(ctxT(t), addr); !errors.Is(err, desktopnotify.ErrUnavailable) {
		t.Errorf("a service without actions: %v", err)
	}
}

func TestEscape(t *testing.T) {
	if got := desktopnotify.Escape(`<img src=x onerror="a">&`); got != "&lt;img src=x onerror=&quot;a&quot;&gt;&amp;" {
		t.Errorf("Escape = %q", got)
	}
}
