package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// writeTable writes results as a Markdown table.
func writeTable(w io.Writer, results []Result) error {
	var b strings.Builder
	b.WriteString("| server | workload | median ms | p95 ms | updates/s | KB/s | frames shown/drawn | CPU ms/update | CPU % | Xvfb CPU % |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		shown := fmt.Sprintf("%d/%d", r.Shown, r.Drawn)
		if r.Lost > 0 {
			shown += fmt.Sprintf(" (%d lost)", r.Lost)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f | %.0f | %s | %.2f | %.1f | %.1f |\n",
			r.Server, r.Workload, r.LatencyMedianMS, r.LatencyP95MS, r.UpdatesPerSec, r.KBPerSec,
			shown, r.CPUMSPerUpdate, r.CPUPercent, r.XCPUPercent)
	}
	var behind []string
	for _, r := range results {
		if r.Scheduled > 0 && float64(r.Drawn) < 0.9*float64(r.Scheduled) {
			behind = append(behind, fmt.Sprintf("%s/%s (%d of %d)", r.Server, r.Workload, r.Drawn, r.Scheduled))
		}
	}
	if len(behind) > 0 {
		fmt.Fprintf(&b, "\nWarning: the drawing fell behind its schedule in %s: the machine was too busy, so these rows are not comparable.\n",
			strings.Join(behind, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// report is the JSON form of a benchmark run.
type report struct {
	Config  config   `json:"config"`
	Results []Result `json:"results"`
	// Medians has one row per server and workload with the median of
	// each figure over the rounds, when there was more than one.
	Medians []Result `json:"medians,omitempty"`
}

// writeJSON writes the run's configuration, results and, when there were
// several rounds, their medians to path.
func writeJSON(path string, cfg config, results, medians []Result) error {
	rep := report{Config: cfg, Results: results}
	if cfg.Repeat > 1 {
		rep.Medians = medians
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}

// medians returns one row per server and workload, in the order they
// first appear, holding the median of each figure over that pair's rows.
// Each figure's median is taken on its own, so a row of medians need not
// be any one round's row.
func medians(results []Result) []Result {
	type key struct{ server, workload string }
	groups := make(map[key][]Result)
	var order []key
	for _, r := range results {
		k := key{r.Server, r.Workload}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Result, 0, len(order))
	for _, k := range order {
		rs := groups[k]
		f := func(get func(Result) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = get(r)
			}
			return median(v)
		}
		i := func(get func(Result) int) int {
			return int(f(func(r Result) float64 { return float64(get(r)) }) + 0.5)
		}
		out = append(out, Result{
			Server: k.server, Workload: k.workload,
			Seconds:         f(func(r Result) float64 { return r.Seconds }),
			LatencyMedianMS: f(func(r Result) float64 { return r.LatencyMedianMS }),
			LatencyP95MS:    f(func(r Result) float64 { return r.LatencyP95MS }),
			LatencyMaxMS:    f(func(r Result) float64 { return r.LatencyMaxMS }),
			Drawn:           i(func(r Result) int { return r.Drawn }),
			Scheduled:       i(func(r Result) int { return r.Scheduled }),
			Shown:           i(func(r Result) int { return r.Shown }),
			Lost:            i(func(r Result) int { return r.Lost }),
			Updates:         i(func(r Result) int { return r.Updates }),
			UpdatesPerSec:   f(func(r Result) float64 { return r.UpdatesPerSec }),
			Bytes:           int64(f(func(r Result) float64 { return float64(r.Bytes) }) + 0.5),
			KBPerSec:        f(func(r Result) float64 { return r.KBPerSec }),
			CPUMSPerUpdate:  f(func(r Result) float64 { return r.CPUMSPerUpdate }),
			CPUPercent:      f(func(r Result) float64 { return r.CPUPercent }),
			XCPUPercent:     f(func(r Result) float64 { return r.XCPUPercent }),
		})
	}
	return out
}

// median returns the median of v (the mean of the middle two when their
// number is even), sorting v.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
