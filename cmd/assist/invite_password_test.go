package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/assist-project/assist/internal/lab"
)

// TestInvitePasswordLine: `assist invite` prints a generated password
// (the novice reads it out to the expert) but not one the novice gave
// with --password-file, which it names by its file instead; the password
// appears nowhere in the output then.
func TestInvitePasswordLine(t *testing.T) {
	e2e(t)
	t.Parallel()
	x := lab.StartXvfb(t, 320, 240)
	const secret = "my-own-password-1234"
	pwFile := writePassword(t, secret)
	for _, tc := range []struct {
		name string
		args []string
		line string // the password line, a regular expression
	}{
		{"from file", []string{"--password-file", pwFile}, `^password: \(from ` + regexp.QuoteMeta(pwFile) + `\)$`},
		// Generated: 8 letters and digits in two groups (invitation.NewPassword).
		{"generated", nil, `^password: [0-9A-Z]{4}-[0-9A-Z]{4}$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := append([]string{"invite", "--display", x.Display, "--name", noviceName,
				"--listen", "127.0.0.1:0", "--no-portmap", "--no-page"}, tc.args...)
			p := lab.StartLines(t, nil, lab.AssistBinary(t), argv...)
			p.WaitLine(t, `^code: \S+$`, lineTimeout)
			if m := p.WaitLine(t, `^password: .*$`, lineTimeout); !regexp.MustCompile(tc.line).MatchString(m[0]) {
				t.Errorf("password line %q, want %s", m[0], tc.line)
			}
			p.WaitLine(t, `^waiting for your helper`, lineTimeout)
			stop(t, p, "assist invite")
			if out := p.Output(); strings.Contains(out, secret) {
				t.Errorf("the password from --password-file appears in the output:\n%s", out)
			}
		})
	}
}
