package mailer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/mailer"
)

// newInvitation makes a valid invitation for name, through server if not "".
func newInvitation(t testing.TB, name, server string) *invitation.Invitation {
	t.Helper()
	inv, err := invitation.New(name, time.Hour, []string{"192.0.2.7:5820"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	inv.Server = server
	if err := inv.Validate(time.Now()); err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestCompose(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	tests := []struct {
		name, novice, server, note string
		want, not                  []string
	}{
		{name: "direct", novice: "Grandma",
			want: []string{"Grandma is asking for your help", `open the attached file "Invitation from Grandma.assist"`,
				`assist join "Invitation from Grandma.assist"`, "Call Grandma when you are ready", "(UTC+01:00)"},
			not: []string{"web browser", "https://"}},
		{name: "server", novice: "Grandma", server: "https://help.example.org:8443",
			want: []string{"open https://help.example.org:8443/ in your web browser", "type the code Grandma reads out"},
			not:  []string{"#"}},
		{name: "note", novice: "Ann", note: "Hi Bob,\r\nthe printer again!\x1b[31m",
			want: []string{"Hi Bob,\nthe printer again![31m\n\nAnn is asking"},
			not:  []string{"\x1b", "\r"}},
		{name: "odd name", novice: "Ann/../../x",
			want: []string{`"Invitation from Ann.x.assist"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := newInvitation(t, tt.novice, tt.server)
			l, err := mailer.Compose(inv, mailer.Options{Note: tt.note, Location: paris})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(l.Body, inv.URL()) {
				t.Errorf("the body lacks the link %s:\n%s", inv.URL(), l.Body)
			}
			for _, w := range tt.want {
				if !strings.Contains(l.Body, w) {
					t.Errorf("the body lacks %q:\n%s", w, l.Body)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(l.Body, n) {
					t.Errorf("the body has %q:\n%s", n, l.Body)
				}
			}
			if !strings.Contains(l.Subject, tt.novice) {
				t.Errorf("subject %q lacks the name", l.Subject)
			}
			got, err := invitation.Parse(l.File)
			if err != nil || got.ID != inv.ID || got.Server != inv.Server {
				t.Fatalf("the attached file is not the invitation: %+v, %v", got, err)
			}
		})
	}
}

func TestComposeNil(t *testing.T) {
	if _, err := mailer.Compose(nil, mailer.Options{}); err == nil {
		t.Fatal("no error for no invitation")
	}
}

func TestFileName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Grandma", "Invitation from Grandma.assist"},
		{"Jean-Pierre Müller", "Invitation from Jean-Pierre Müller.assist"},
		{"../../etc/passwd", "Invitation from etcpasswd.assist"},
		{"..", "invitation.assist"},
		{"", "invitation.assist"},
		{"a\x00b\nc:d*e?\"f<g>|h\\i", "Invitation from abcdefghi.assist"},
		{".hidden", "Invitation from hidden.assist"},
		{"  spaced   out  ", "Invitation from spaced out.assist"},
	} {
		if got := mailer.FileName(tt.in); got != tt.want {
			t.Errorf("FileName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzFileName checks that no name makes a file name that leaves its
// directory, hides itself or loses the extension.
func FuzzFileName(f *testing.F) {
	for _, s := range []string{"Grandma", "../..", "a/b\\c", ".", " . ", "Ünïcødé 名前", "x\u202ey"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n := mailer.FileName(name)
		if strings.ContainsAny(n, "/\\\x00\r\n:*?\"<>|") || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, invitation.FileExtension) {
			t.Fatalf("FileName(%q) = %q", name, n)
		}
		if len([]rune(n)) > len("Invitation from ")+invitation.MaxNameRunes+len(invitation.FileExtension) {
			t.Fatalf("FileName(%q) is %d characters", name, len([]rune(n)))
		}
	})
}
