package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/transport/rtc/auth"
)

func TestParseCode(t *testing.T) {
	tests := []struct {
		in, lookup, password string
	}{
		{"7-crayon-harbor", "7", "crayon-harbor"},
		{"  7 Crayon HARBOR\n", "7", "crayon-harbor"},
		{"https://assist.example.org/#7-crayon-harbor", "7", "crayon-harbor"},
		{"https://127.0.0.1:8443/#0042%20crayon%20harbor", "42", "crayon-harbor"},
		{"#9999-crayon-harbor", "9999", "crayon-harbor"},
	}
	for _, tt := range tests {
		id, pw, err := parseCode(tt.in)
		if err != nil || id != tt.lookup || pw != tt.password {
			t.Errorf("parseCode(%q) = %q, %q, %v; want %q, %q", tt.in, id, pw, err, tt.lookup, tt.password)
		}
	}
	for _, in := range []string{"", "   ", "https://assist.example.org/", "https://assist.example.org/#", "7-crayon",
		"0-crayon-harbor", "7-crayon-harbour", "7-crayon-harbor-extra", "%zz", strings.Repeat("7", maxCodeInput+1)} {
		_, _, err := parseCode(in)
		if !errors.Is(err, invitation.ErrBadCode) {
			t.Errorf("parseCode(%q): %v, want ErrBadCode", in, err)
		}
		if err != nil && len(in) > 3 && strings.Contains(err.Error(), in) {
			t.Errorf("parseCode(%q): the error repeats the input: %v", in, err)
		}
	}
}

func FuzzParseCode(f *testing.F) {
	f.Add("7-crayon-harbor")
	f.Add("https://x/#7 crayon harbor")
	f.Add("#%")
	f.Fuzz(func(t *testing.T, s string) {
		id, pw, err := parseCode(s)
		if err != nil {
			if !errors.Is(err, invitation.ErrBadCode) {
				t.Fatalf("error does not wrap ErrBadCode: %v", err)
			}
			return
		}
		// What parses is a canonical code and parses again the same.
		id2, pw2, err := parseCode(id + "-" + pw)
		if err != nil || id2 != id || pw2 != pw {
			t.Fatalf("%q -> %q %q -> %q %q %v", s, id, pw, id2, pw2, err)
		}
	})
}

func TestErrorKind(t *testing.T) {
	_, _, badCode := parseCode("7")
	tests := []struct {
		err  error
		want string
	}{
		{badCode, kindBadCode},
		{&auth.HandshakeError{Kind: auth.ErrWrongPassword, Stage: "verdict"}, kindWrongPassword},
		{&auth.HandshakeError{Kind: auth.ErrUnknownInvitation}, kindUnknownInvitation},
		{&auth.HandshakeError{Kind: auth.ErrVersion}, kindVersion},
		{&auth.HandshakeError{Kind: auth.ErrNotAssist}, kindNotAssist},
		{&auth.HandshakeError{Kind: auth.ErrUnreachable}, kindUnreachable},
		{fmt.Errorf("local: %w", errBadDescription), kindNotAssist},
		{errors.New("something else"), kindFailed},
	}
	for _, tt := range tests {
		if got := errorKind(tt.err); got != tt.want {
			t.Errorf("errorKind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
