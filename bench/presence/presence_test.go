package main

import (
	"slices"
	"testing"
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
