// Package proc reads the CPU time a process has used, from Linux's /proc.
package proc

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of the times in /proc/PID/stat. Linux reports them in
// USER_HZ, which is 100 on every architecture regardless of the kernel's
// internal tick rate.
const userHZ = 100

// CPUTime returns the user plus system CPU time used so far by all
// threads of process pid.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("proc: cpu time of %d: %w", pid, err)
	}
	d, err := parseStat(b)
	if err != nil {
		return 0, fmt.Errorf("proc: cpu time of %d: %w", pid, err)
	}
	return d, nil
}

// parseStat extracts utime+stime from the contents of /proc/PID/stat.
// The command name (field 2) is in parentheses and may itself contain
// spaces and parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in stat")
	}
	// After ')': field 3 (state) onwards; utime and stime are fields 14
	// and 15, so the 12th and 13th after the name.
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat has %d fields after the name, want at least 13", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bad cpu time %q: %w", s, err)
		}
		ticks += v
	}
	if ticks > uint64(math.MaxInt64/time.Second) {
		return 0, fmt.Errorf("cpu time %d ticks out of range", ticks)
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
