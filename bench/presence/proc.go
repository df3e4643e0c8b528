package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
// every Linux architecture Go supports (the kernel fixes it for user
// space whatever its own HZ).
const clockTicks = 100

// rssMiB reads a "kB" line (VmRSS, VmHWM) of /proc/PID/status.
func rssMiB(pid int, field string) (float64, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, field)
}

func parseStatusKB(b []byte, field string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s line %q", field, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("%s line %q", field, sc.Text())
		}
		return float64(kb) / 1024, nil
	}
	return 0, fmt.Errorf("no %s line", field)
}

// cpuTime reads the CPU time (user + system) process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/PID/stat line. The command name (field 2) is in parentheses and
// may hold spaces and parentheses itself, so fields count from the last
// ")".
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, f[11].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the name", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("stat: CPU time %q", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// nodeStats is one server process's figures.
type nodeStats struct {
	URL            string  `json:"url"`
	PID            int     `json:"pid"`
	Clients        int     `json:"clients"`
	RSSConnected   float64 `json:"rss_connected_mib"`
	RSSEnd         float64 `json:"rss_end_mib"`
	RSSPeak        float64 `json:"rss_peak_mib"`
	CPUConnectSecs float64 `json:"cpu_connect_seconds"`
	// CPUPercent is the CPU the node used during the changes, in percent
	// of one core.
	CPUPercent float64 `json:"cpu_changes_percent"`
	cpuStart   time.Duration
	cpuChanges time.Duration
}
