package relay

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCredentials(t *testing.T) {
	// Expected passwords computed independently (Python hmac/base64).
	tests := []struct {
		secret, session string
		ttl             time.Duration
		now             time.Time
		user, pass      string
	}{
		{"north", "alice", 100 * time.Second, time.Unix(1699999900, 0), "1700000000:alice", "Cd/49soE35ICqcJF/bCTn8Z4OyE="},
		{string(testSecret), "sess:with:colons", time.Minute, time.Unix(1700000000, 999e6), "1700000060:sess:with:colons", "O26WOqtW/jDe/24wXj+rotSLtP4="},
	}
	for _, tt := range tests {
		user, pass := Credentials([]byte(tt.secret), tt.session, tt.ttl, tt.now)
		if user != tt.user || pass != tt.pass {
			t.Errorf("Credentials(%q, %q) = %q, %q; want %q, %q", tt.secret, tt.session, user, pass, tt.user, tt.pass)
		}
	}
}

func TestCheckUsername(t *testing.T) {
	now := time.Unix(1700000000, 0)
	validUser, validPass := Credentials(testSecret, "s", time.Minute, now)
	tests := []struct {
		name     string
		username string
		at       time.Time
		wantErr  error
	}{
		{"valid", validUser, now, nil},
		{"valid at expiry", validUser, now.Add(time.Minute), nil},
		{"expired", validUser, now.Add(time.Minute + time.Second), errExpired},
		{"bare timestamp", "1700000060", now, nil},
		{"empty", "", now, errBadUsername},
		{"no timestamp", "alice", now, errBadUsername},
		{"empty timestamp", ":alice", now, errBadUsername},
		{"signed", "+1700000060:s", now, errBadUsername},
		{"negative", "-1700000060:s", now, errBadUsername},
		{"overflow", "99999999999999999999:s", now, errBadUsername},
		{"too long", "1700000060:" + strings.Repeat("x", maxUsernameLen), now, errBadUsername},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pass, err := checkUsername(testSecret, tt.username, tt.at)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("checkUsername(%q) error %v, want %v", tt.username, err, tt.wantErr)
			}
			if tt.username == validUser && err == nil && pass != validPass {
				t.Fatalf("password %q, want %q", pass, validPass)
			}
		})
	}
}

// FuzzCheckUsername feeds network usernames to the REST parser: it must
// never panic, and whatever it accepts must be a credential Credentials
// could have produced for that username.
func FuzzCheckUsername(f *testing.F) {
	for _, s := range []string{"1700000060:s", "1700000060", "", ":", "-1:x", "9999999999999999999999:x", "1:\xff"} {
		f.Add(s)
	}
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, username string) {
		pass, err := checkUsername(testSecret, username, now)
		if err != nil {
			return
		}
		expiry, err := parseExpiry(username)
		if err != nil || expiry.Before(now) {
			t.Fatalf("accepted %q with expiry %v, %v", username, expiry, err)
		}
		if pass != restPassword(testSecret, username) {
			t.Fatalf("password mismatch for %q", username)
		}
	})
}
