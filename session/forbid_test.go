package session

import (
	"errors"
	"testing"
)

// TestConsentForbid: a right the organisation's policy forbids is refused
// at once, audited as an automatic no, and neither the novice's toggles,
// --allow control nor Config.Clipboard grant it; allowed rights are
// asked as usual.
func TestConsentForbid(t *testing.T) {
	var events []Event
	c := NewConsent(Config{Policy: PolicyControl, Clipboard: true, Forbid: RightControl | RightClipboard | RightFiles,
		Audit: func(e Event) { events = append(events, e) }})
	if err := c.ExpertAuthenticated("Ada"); err != nil || c.State() != Viewing {
		t.Fatalf("--allow control views at once: %v, %s", err, c.State())
	}
	for _, r := range []struct {
		name string
		req  func() error
		deny Action
	}{
		{"control", c.RequestControl, ActDenyControl},
		{"clipboard", c.RequestClipboard, ActDenyClipboard},
		{"files", c.RequestFiles, ActDenyFiles},
	} {
		if err := r.req(); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		last := events[len(events)-1]
		if last.Action != r.deny || !last.Auto || last.Reason != ForbiddenReason {
			t.Errorf("%s: last event %+v, want an automatic %s", r.name, last, r.deny)
		}
	}
	if c.State() != Viewing || c.Rights() != RightView || c.ClipboardAsked() || c.FilesAsked() {
		t.Fatalf("after forbidden requests: %s %v", c.State(), c.Rights())
	}
	if err := c.AllowControl(); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("AllowControl after the refusal: %v", err)
	}
	if err := c.SetClipboard(true); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("the novice's clipboard toggle: %v", err)
	}
	if err := c.SetFiles(true); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("the novice's files toggle: %v", err)
	}
	if c.Rights() != RightView {
		t.Errorf("rights %v, want view only", c.Rights())
	}

	// Control allowed, clipboard forbidden: control is asked as usual.
	c = NewConsent(Config{Forbid: RightClipboard})
	reach(t, c, Controlling)
	if err := c.SetFiles(true); err != nil {
		t.Errorf("files not forbidden: %v", err)
	}
}
