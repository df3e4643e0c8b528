package main

import "testing"

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		line, prompting string
		interactive     bool
		id              string
		accept, ok      bool
	}{
		{"accept abc", "", false, "abc", true, true},
		{"decline abc", "", false, "abc", false, true},
		{"  accept   abc ", "", false, "abc", true, true},
		{"accept", "", false, "", false, false},
		{"accept a b", "", false, "", false, false},
		{"yes", "", false, "", false, false},
		{"y", "", false, "", false, false}, // not on a terminal: ids only
		{"y", "req", true, "req", true, true},
		{"YES", "req", true, "req", true, true},
		{"", "req", true, "req", false, true}, // Enter: the default, no
		{"n", "req", true, "req", false, true},
		{"maybe", "req", true, "", false, false},
		{"accept other", "req", true, "other", true, true},
		{"y", "", true, "", false, false}, // nothing asked
	} {
		id, accept, ok := parseAnswer(tc.line, tc.prompting, tc.interactive)
		if id != tc.id || accept != tc.accept || ok != tc.ok {
			t.Errorf("parseAnswer(%q, %q, %v) = %q %v %v; want %q %v %v", tc.line, tc.prompting, tc.interactive, id, accept, ok, tc.id, tc.accept, tc.ok)
		}
	}
}
