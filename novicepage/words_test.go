package novicepage

import (
	"regexp"
	"testing"
)

// internalWords are the program's words the novice must not read.
var internalWords = regexp.MustCompile(`(?i)\b(rendezvous|punched|relay-(udp|tcp|tls)|novice|expert|session id)\b`)

func TestReason(t *testing.T) {
	tests := []struct{ reason, helper, want string }{
		{"novice allowed viewing", "Max", "you said yes"},
		{"novice declined", "Max", "you said no"},
		{"novice declined; this invitation is now closed", "Max", "you said no; this invitation is now closed"},
		{"novice refused control", "Max", "you said no to control"},
		{"novice took control back", "Max", "you took control back"},
		{"expert Max authenticated", "Max", "Max typed the right code"},
		{"expert asked for control", "Max", "Max asks for control"},
		{"the expert left the session", "Max", "Max left the session"},
		{"the expert left the session", "", "your helper left the session"},
		{"the novice ended the session", "Max", "you ended the session"},
		{"the novice stopped sharing", "Max", "you stopped sharing"},
		{"the connection to the expert was lost", "Max", "the connection to Max was lost"},
		{"the expert's program broke the protocol", "Max", "Max's program sent something it must not, so the session stopped"},
		{"no answer within 1 minute", "Max", "no answer within 1 minute"},
		{`nobody answered "Still sharing with Max?" within 1 minute`, "Max", `nobody answered "Still sharing with Max?" within 1 minute`},
		{"allowed in advance (--allow view)", "Max", "allowed in advance (--allow view)"},
		// Words of a newer version: replaced word by word.
		{"the expert's cat sat on the novice's keyboard", "Max", "Max's cat sat on your keyboard"},
		{"Expert paused; novice resumed", "Max", "Max paused; you resumed"},
		{"", "Max", ""},
	}
	for _, tt := range tests {
		got := Reason(tt.reason, tt.helper)
		if got != tt.want {
			t.Errorf("Reason(%q, %q) = %q, want %q", tt.reason, tt.helper, got, tt.want)
		}
		if w := internalWords.FindString(got); w != "" {
			t.Errorf("Reason(%q) = %q: says %q", tt.reason, got, w)
		}
	}
	for r := range reasonWords {
		if w := internalWords.FindString(Reason(r, "Max")); w != "" {
			t.Errorf("Reason(%q) says %q", r, w)
		}
	}
}
