package main

import (
	"testing"
	"time"
)

func TestParseSinceAndRetention(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.Local)
	for _, c := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"7d", now.AddDate(0, 0, -7), false},
		{"12h", now.Add(-12 * time.Hour), false},
		{"2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, time.Local), false},
		{"yesterday", time.Time{}, true},
		{"-3d", time.Time{}, true},
	} {
		got, err := parseSince(c.in, now)
		if (err != nil) != c.bad || !got.Equal(c.want) {
			t.Errorf("parseSince(%q) = %v, %v", c.in, got, err)
		}
	}
	for _, c := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"90d", 90 * 24 * time.Hour, false},
		{"forever", 0, false},
		{"0d", 0, true},
		{"90", 0, true},
		{"2160h", 0, true},
	} {
		got, err := parseRetention(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("parseRetention(%q) = %v, %v", c.in, got, err)
		}
	}
}
