package main

import (
	"testing"
	"time"
)

func TestPlainUntil(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	now := time.Date(2026, 12, 6, 16, 30, 0, 0, time.UTC) // 17:30 local
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Hour, "until 6:30PM, in 60 minutes"},
		{30 * time.Second, "until 5:30PM, in less than a minute"},
		{time.Minute, "until 5:31PM, in 1 minute"},
		{90 * time.Minute, "until 7:00PM, in 90 minutes"},
		{3 * time.Hour, "until 8:30PM, in 3 hours"},
		{7 * time.Hour, "until Mon 7 Dec 12:30AM, in 7 hours"},
		{72 * time.Hour, "until Wed 9 Dec 5:30PM, in 3 days"},
	}
	for _, tt := range tests {
		// Local time, not UTC: 17:30 here, 16:30 in UTC.
		if got := plainUntilIn(now, now.Add(tt.d), loc); got != tt.want {
			t.Errorf("plainUntil(+%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
