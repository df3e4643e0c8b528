package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/invitation"
)

// TestEmailForApp checks the app's words when e-mail cannot go out: no
// mail program, a bad address.
func TestEmailForApp(t *testing.T) {
	inv, err := invitation.New("Grandma", time.Hour, []string{"192.0.2.7:5820"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv(identity.EnvConfigDir, filepath.Join(home, "assist"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	t.Setenv("PATH", t.TempDir()) // no xdg-email
	for _, tt := range []struct{ to, want string }{
		{"", "no mail program set up. Click Save as file"},
		{"bob", "not an e-mail address"},
	} {
		if got := emailForApp(context.Background(), inv, tt.to); !strings.Contains(got, tt.want) {
			t.Errorf("emailForApp(%q) = %q, want %q", tt.to, got, tt.want)
		}
	}
}
