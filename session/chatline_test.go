package session

import (
	"strings"
	"testing"
)

func TestCheckChatLine(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"hello", "hello", true},
		{"  spaced \t", "spaced", true},
		{"tab\tinside", "tab\tinside", true},
		{"héllo wörld", "héllo wörld", true},
		{strings.Repeat("a", MaxChat), strings.Repeat("a", MaxChat), true},
		{"", "", false},
		{"   ", "", false},
		{strings.Repeat("a", MaxChat+1), "", false},
		{"two\nlines", "", false},
		{"line\u2028separator", "", false},
		{"para\u2029separator", "", false},
		{"bell\a", "", false},
		{"esc\x1b[31m", "", false},
		{"bidi\u202eoverride", "", false},
		{"isolate\u2066x", "", false},
		{"replacement\ufffd", "", false},
		{"bad\xffutf8", "", false},
	} {
		got, err := CheckChatLine(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CheckChatLine(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
