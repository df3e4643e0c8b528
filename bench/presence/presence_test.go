package main

import (
	"os"
	"slices"
	"testing"
	"time"
)

// TestContactsRing: the ring makes contacts mutual, K each, never
// oneself, as seed writes them.
func TestContactsRing(t *testing.T) {
	const n, k = 7, 4
	for i := 0; i < n; i++ {
		cs := contactsOf(i, n, k)
		if len(cs) != k || slices.Contains(cs, i) {
			t.Errorf("contactsOf(%d) = %v", i, cs)
		}
		for _, c := range cs {
			if !slices.Contains(contactsOf(c, n, k), i) {
				t.Errorf("%d has %d, not the other way round", i, c)
			}
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	in := []byte("Name:\tassist\nVmHWM:\t  2048 kB\nVmRSS:\t   1024 kB\n")
	if got, err := parseStatusKB(in, "VmRSS"); err != nil || got != 1 {
		t.Errorf("VmRSS = %v, %v", got, err)
	}
	if got, err := parseStatusKB(in, "VmHWM"); err != nil || got != 2 {
		t.Errorf("VmHWM = %v, %v", got, err)
	}
	for _, bad := range []string{"VmRSS:\t 5 MB\n", "VmRSS:\t x kB\n", "Name: x\n"} {
		if _, err := parseStatusKB([]byte(bad), "VmRSS"); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestParseStatCPU: utime + stime in USER_HZ ticks, counted from the
// last ")" since the command name may hold spaces and parentheses.
func TestParseStatCPU(t *testing.T) {
	rest := " S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 8 0 100 1000 200"
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"42 (assist)" + rest, 2 * time.Second, true},
		{"42 (a) b) (c)" + rest, 2 * time.Second, true},
		{"42 (assist) S 1 2", 0, false},
		{"42 assist" + rest, 0, false},
		{"42 (assist) S 1 2 3 4 5 6 7 8 9 10 x 50 0", 0, false},
		{"42 (assist) S 1 2 3 4 5 6 7 8 9 10 -1 50 0", 0, false},
	} {
		got, err := parseStatCPU([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	// This process's own line parses.
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Errorf("own /proc/PID/stat: %v", err)
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if q := quantile(d, 0.5); q != 51 {
		t.Errorf("p50 = %v", q)
	}
	if q := quantile(d, 0.99); q != 100 {
		t.Errorf("p99 = %v", q)
	}
	if q := quantile(nil, 0.5); q != 0 {
		t.Errorf("p50 of nothing = %v", q)
	}
}
