package mailer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assist-project/assist/mailer"
)

func TestLoadSettings(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\r\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, data string
		mode       os.FileMode
		want       mailer.SMTP
		err        string
	}{
		{name: "missing"},
		{name: "full", mode: 0o644,
			data: `{"host":"smtp.example.com","port":465,"security":"tls","user":"g@example.com","from":"g2@example.com","password_file":"` + pwFile + `"}`,
			want: mailer.SMTP{Host: "smtp.example.com", Port: 465, Security: mailer.ImplicitTLS, Username: "g@example.com", From: "g2@example.com", Password: "from-file"}},
		{name: "password in a private file", mode: 0o600, data: `{"host":"h","password":"pw"}`,
			want: mailer.SMTP{Host: "h", Password: "pw"}},
		{name: "password in a file others read", mode: 0o644, data: `{"host":"h","password":"pw"}`, err: "chmod 600"},
		{name: "typo", mode: 0o600, data: `{"hots":"h"}`, err: "unknown field"},
		{name: "bad security", mode: 0o600, data: `{"security":"maybe"}`, err: "starttls"},
		{name: "bad port", mode: 0o600, data: `{"port":99999}`, err: "port"},
		{name: "trailing data", mode: 0o600, data: `{} {}`, err: "after the JSON"},
		{name: "empty password file", mode: 0o600, data: `{"password_file":"` + filepath.Join(dir, "empty") + `"}`, err: "password file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), mailer.SettingsFile)
			if tt.data != "" {
				if err := os.WriteFile(path, []byte(tt.data), tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			s, err := mailer.LoadSettings(path)
			var got *mailer.SMTP
			if err == nil {
				got, err = s.SMTP()
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

// FuzzParseSettings: any input is refused or gives settings whose port
// and security are usable.
func FuzzParseSettings(f *testing.F) {
	for _, s := range []string{`{}`, `{"host":"h","port":587,"security":"starttls"}`, `{"port":-1}`, `{"security":"TLS"}`, `[]`, `{"password":"x"} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := mailer.ParseSettings(data)
		if err != nil {
			return
		}
		if s.Port < 0 || s.Port > 65535 {
			t.Fatalf("port %d accepted", s.Port)
		}
		if _, err := mailer.ParseSecurity(s.Security); err != nil {
			t.Fatalf("security %q accepted", s.Security)
		}
	})
}
