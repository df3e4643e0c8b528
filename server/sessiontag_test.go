package server

import (
	"regexp"
	"strings"
	"testing"
)

// TestSessionTag: the tag is short, stable, tells ids apart, and does not
// contain the id or a prefix of it.
func TestSessionTag(t *testing.T) {
	ids := []string{"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdee", "x"}
	seen := map[string]string{}
	for _, id := range ids {
		tag := SessionTag(id)
		if !regexp.MustCompile(`^[0-9a-f]{4}$`).MatchString(tag) {
			t.Errorf("SessionTag(%q) = %q, want 4 hex digits", id, tag)
		}
		if tag != SessionTag(id) {
			t.Errorf("SessionTag(%q) is not stable", id)
		}
		if len(id) >= 4 && strings.HasPrefix(id, tag) {
			t.Errorf("SessionTag(%q) = %q reveals the id's start", id, tag)
		}
		if other, ok := seen[tag]; ok {
			t.Errorf("SessionTag(%q) = SessionTag(%q) = %q", id, other, tag)
		}
		seen[tag] = id
	}
}
