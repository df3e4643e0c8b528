package main

import (
	"testing"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/session"
)

// TestAgentPolicy: the rights an organisation's policy leaves out are the
// ones the agent's consent refuses, and the question says when the session
// is recorded; text from the server loses control and bidi characters.
func TestAgentPolicy(t *testing.T) {
	for _, c := range []struct {
		rights []string
		want   session.Rights
	}{
		{[]string{"view"}, session.RightControl | session.RightClipboard | session.RightFiles},
		{[]string{"view", "control"}, session.RightClipboard | session.RightFiles},
		{[]string{"view", "control", "clipboard", "files"}, 0},
		{[]string{"files", "view"}, session.RightControl | session.RightClipboard},
	} {
		if got := forbidden(messenger.Policy{Rights: c.rights, Timeout: 60}); got != c.want {
			t.Errorf("forbidden(%v) = %v, want %v", c.rights, got, c.want)
		}
	}
	r := messenger.Message{Display: "Dana\u202e\x07", Org: &messenger.Org{Display: "ACME IT", Policy: messenger.Policy{Record: true}}}
	if got := offerText(r); got != "Dana from ACME IT offers to help you. Accept? This session will be recorded." {
		t.Errorf("offerText = %q", got)
	}
	for host, want := range map[string]string{"Dana-PC.local": "dana-pc.local", "-x": "x", "ÜÜ": "machine", "": "machine"} {
		if got := machineID(host); got != want {
			t.Errorf("machineID(%q) = %q, want %q", host, got, want)
		}
	}
}
