package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/audit"
)

// TestSessionHistory: the agent's page sums each session up in the
// page's words, newest first, with what the helper could do and how it
// ended, and none of the auditors' words ("expert", "may do nothing").
func TestSessionHistory(t *testing.T) {
	at := time.Date(2026, 12, 6, 22, 40, 0, 0, time.Local)
	entries := []audit.Entry{
		{Session: "a", Time: at, Kind: audit.KindStart, Expert: "Dana (ACME IT)", Novice: "Mel"},
		{Session: "a", Time: at, Kind: audit.KindConsent, Expert: "Dana (ACME IT)", From: "asking", To: "viewing"},
		{Session: "a", Time: at, Kind: audit.KindConsent, Expert: "Dana (ACME IT)", From: "control-asked", To: "controlling"},
		{Session: "a", Time: at, Kind: audit.KindFile, Expert: "Dana (ACME IT)", File: &audit.File{Direction: audit.ToNovice}},
		{Session: "a", Time: at, Kind: audit.KindEnd, Expert: "Dana (ACME IT)", Reason: "the novice ended the session"},
		{Session: "b", Time: at.Add(time.Hour), Kind: audit.KindStart, Expert: "Hal"},
		{Session: "b", Time: at.Add(time.Hour), Kind: audit.KindEnd, Expert: "Hal", Reason: "the expert left the session"},
	}
	got := sessionHistory(entries, 10)
	want := []string{
		"Sun 6 Dec 2026 23:40: Hal connected but saw nothing. Hal left the session.",
		"Sun 6 Dec 2026 22:40: Dana (ACME IT) saw your screen and used your mouse and keyboard. Files: 1 received, 0 sent. You ended the session.",
	}
	if !slices.Equal(got, want) {
		t.Errorf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := sessionHistory(entries, 1); len(got) != 1 || !strings.HasPrefix(got[0], "Sun 6 Dec 2026 23:40") {
		t.Errorf("limited to one: %q", got)
	}
}
