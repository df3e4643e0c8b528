package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// result is one figure of one probe: a line of the report and an entry of
// the JSON output.
type result struct {
	Probe  string `json:"probe"`  // the probe's name, e.g. "idle-flood"
	Title  string `json:"title"`  // what is measured
	Figure string `json:"figure"` // what was measured
	Target string `json:"target"` // what a hardened server should give
	// Skipped, if set, says why the probe did not run; Figure is empty.
	Skipped string `json:"skipped,omitempty"`
	// Details are further lines for people: tallies of answers, timings.
	Details []string `json:"details,omitempty"`
	// Values are the figures as numbers, for scripts.
	Values map[string]any `json:"values,omitempty"`
}

// line is the result's one-line form: "TITLE: FIGURE (target: TARGET)".
func (r result) line() string {
	if r.Skipped != "" {
		return fmt.Sprintf("%s: skipped: %s", r.Title, r.Skipped)
	}
	return fmt.Sprintf("%s: %s (target: %s)", r.Title, r.Figure, r.Target)
}

// report prints results as they come and keeps them for the JSON output.
type report struct {
	w       io.Writer
	results []result
}

func (r *report) add(res result) {
	r.results = append(r.results, res)
	fmt.Fprintln(r.w, res.line())
	for _, d := range res.Details {
		fmt.Fprintln(r.w, "  "+d)
	}
}

// writeJSON writes every result, with the settings they were measured
// with, to path.
func (r *report) writeJSON(path string, settings map[string]any) error {
	b, err := json.MarshalIndent(struct {
		Time     string         `json:"time"`
		Settings map[string]any `json:"settings"`
		Results  []result       `json:"results"`
	}{time.Now().UTC().Format(time.RFC3339), settings, r.results}, "", "  ")
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}

// tally counts outcomes by name; safe for concurrent use.
type tally struct {
	mu sync.Mutex
	n  map[string]int
}

func (t *tally) add(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n = make(map[string]int)
	}
	t.n[name]++
}

func (t *tally) get(name string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[name]
}

// snapshot returns a copy of the counts.
func (t *tally) snapshot() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.n)
}

// String lists the counts, largest first: "error:unknown 9812, paired 20".
func (t *tally) String() string { return formatCounts(t.snapshot()) }

// formatCounts lists counts, largest first and then by name, as
// "name N, name N"; "none" when empty.
func formatCounts(n map[string]int) string {
	if len(n) == 0 {
		return "none"
	}
	names := slices.Collect(maps.Keys(n))
	slices.SortFunc(names, func(a, b string) int {
		if n[a] != n[b] {
			return n[b] - n[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = name + " " + strconv.Itoa(n[name])
	}
	return strings.Join(parts, ", ")
}

// rssBytes reads the resident set size of process pid from Linux's
// /proc/PID/status.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss of %d: %w", pid, err)
	}
	n, err := parseVmRSS(b)
	if err != nil {
		return 0, fmt.Errorf("rss of %d: %w", pid, err)
	}
	return n, nil
}

// parseVmRSS extracts VmRSS from the contents of /proc/PID/status, in
// bytes: the line reads "VmRSS:\t  123456 kB".
func parseVmRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want \"VmRSS: N kB\"", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, fmt.Errorf("VmRSS line %q: bad number", bytes.TrimSpace(line))
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS line (a kernel thread, or a process that has exited)")
}

// mb formats bytes as megabytes.
func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

// seconds formats a duration in seconds with one decimal.
func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// median of ds; 0 if empty. ds is sorted in place.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// plural formats n with the singular or plural noun: "1 try", "3 tries".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
