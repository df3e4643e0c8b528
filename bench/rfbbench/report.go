package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
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
	if behind := behindSchedule(results); len(behind) > 0 {
		fmt.Fprintf(&b, "\nWarning: the drawing fell behind its schedule in %s: the machine was too busy, so these rows are not comparable.\n",
			strings.Join(behind, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeLinkTable writes the results of a run across links as a Markdown
// table. lossless is how long the run waited for a still screen to
// become exact, for the "never" note.
func writeLinkTable(w io.Writer, results []Result, lossless time.Duration) error {
	var b strings.Builder
	b.WriteString("| link | server | workload | latency p50 ms | display lag p95 ms | markers shown | small change during p50 / p95 ms (goal) | link KB/s | viewer KB/s | novice CPU % | expert CPU % | time to lossless |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		server := r.Server
		if r.Path != "" {
			server += " (" + r.Path + ")"
		}
		shown := fmt.Sprintf("%d of %d", r.Shown, r.Drawn)
		if r.Lost > 0 {
			shown += fmt.Sprintf(" (%d lost)", r.Lost)
		}
		expert := "-"
		if r.Path != "" {
			expert = fmt.Sprintf("%.1f", r.ExpertCPUPercent)
		}
		probe := "-"
		if r.ProbeDrawn > 0 {
			probe = fmt.Sprintf("%.0f / %.0f", r.ProbeMedianMS, r.ProbeP95MS)
			if r.ProbeShown < r.ProbeDrawn {
				probe += fmt.Sprintf(" (%d of %d)", r.ProbeShown, r.ProbeDrawn)
			}
			if goal, ok := probeGoal(r.Link); ok {
				probe += fmt.Sprintf(" (%.0f)", goal)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.0f | %s | %s | %.0f | %.0f | %.1f | %s | %s |\n",
			r.Link, server, r.Workload, r.LatencyMedianMS, r.DisplayLagP95MS, shown, probe,
			r.LinkKBPerSec, r.KBPerSec, r.CPUPercent, expert, losslessText(r.LosslessMS))
	}
	if stepped := slices.ContainsFunc(results, func(r Result) bool { return len(r.StepLagP95MS) > 0 }); stepped {
		b.WriteString("\nDisplay lag p95 in each second after the link's rate changed, ms:\n\n")
		for _, r := range results {
			if len(r.StepLagP95MS) == 0 {
				continue
			}
			secs := make([]string, len(r.StepLagP95MS))
			for i, v := range r.StepLagP95MS {
				secs[i] = fmt.Sprintf("%.0f", v)
			}
			fmt.Fprintf(&b, "- %s, %s, %s: %s\n", r.Link, r.Server, r.Workload, strings.Join(secs, ", "))
		}
	}
	if lossless > 0 {
		fmt.Fprintf(&b, "\nTime to lossless: from the last change until the viewer's picture equals the still screen pixel for pixel (the cursor left out); \"never\" means not within %v.\n", lossless)
	}
	behind := behindSchedule(results)
	if len(behind) > 0 {
		fmt.Fprintf(&b, "\nWarning: the drawing fell behind its schedule in %s: the machine was too busy, so these rows are not comparable.\n",
			strings.Join(behind, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// probeGoal is issue 13's goal for a small change on the link named
// name (linkSpec.String): 1.2 times the link's one-way delay plus the
// time to send it (a full packet, 1500 bytes, is more than the probe's
// update takes), in ms.
func probeGoal(name string) (float64, bool) {
	var rate float64
	var rtt int
	if _, err := fmt.Sscanf(name, "%g Mbit/s %d ms", &rate, &rtt); err != nil || rate <= 0 {
		return 0, false
	}
	send := 1500 * 8 / (rate * 1e6) * 1000
	return 1.2 * (float64(rtt)/2 + send), true
}

// losslessText formats Result.LosslessMS.
func losslessText(ms float64) string {
	switch {
	case ms < 0:
		return "never"
	case ms == 0:
		return "-"
	}
	return fmt.Sprintf("%.0f ms", ms)
}

// behindSchedule names the rows whose drawing fell behind.
func behindSchedule(results []Result) []string {
	var behind []string
	for _, r := range results {
		if r.Scheduled > 0 && float64(r.Drawn) < 0.9*float64(r.Scheduled) {
			name := r.Server + "/" + r.Workload
			if r.Link != "" {
				name = r.Link + " " + name
			}
			behind = append(behind, fmt.Sprintf("%s (%d of %d)", name, r.Drawn, r.Scheduled))
		}
	}
	return behind
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
	type key struct{ link, server, workload string }
	groups := make(map[key][]Result)
	var order []key
	for _, r := range results {
		k := key{r.Link, r.Server, r.Workload}
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
		// "Never" is slower than any time: it sorts last.
		lossless := f(func(r Result) float64 {
			if r.LosslessMS < 0 {
				return math.Inf(1)
			}
			return r.LosslessMS
		})
		if math.IsInf(lossless, 1) {
			lossless = -1
		}
		out = append(out, Result{
			Link: k.link, Server: k.server, Workload: k.workload, Path: rs[0].Path,
			DisplayLagP95MS:  f(func(r Result) float64 { return r.DisplayLagP95MS }),
			LinkBytes:        int64(f(func(r Result) float64 { return float64(r.LinkBytes) }) + 0.5),
			LinkKBPerSec:     f(func(r Result) float64 { return r.LinkKBPerSec }),
			ExpertCPUPercent: f(func(r Result) float64 { return r.ExpertCPUPercent }),
			LosslessMS:       lossless,
			Seconds:          f(func(r Result) float64 { return r.Seconds }),
			LatencyMedianMS:  f(func(r Result) float64 { return r.LatencyMedianMS }),
			LatencyP95MS:     f(func(r Result) float64 { return r.LatencyP95MS }),
			LatencyMaxMS:     f(func(r Result) float64 { return r.LatencyMaxMS }),
			Drawn:            i(func(r Result) int { return r.Drawn }),
			Scheduled:        i(func(r Result) int { return r.Scheduled }),
			Shown:            i(func(r Result) int { return r.Shown }),
			Lost:             i(func(r Result) int { return r.Lost }),
			Updates:          i(func(r Result) int { return r.Updates }),
			UpdatesPerSec:    f(func(r Result) float64 { return r.UpdatesPerSec }),
			Bytes:            int64(f(func(r Result) float64 { return float64(r.Bytes) }) + 0.5),
			KBPerSec:         f(func(r Result) float64 { return r.KBPerSec }),
			CPUMSPerUpdate:   f(func(r Result) float64 { return r.CPUMSPerUpdate }),
			CPUPercent:       f(func(r Result) float64 { return r.CPUPercent }),
			XCPUPercent:      f(func(r Result) float64 { return r.XCPUPercent }),
			ProbeMedianMS:    f(func(r Result) float64 { return r.ProbeMedianMS }),
			ProbeP95MS:       f(func(r Result) float64 { return r.ProbeP95MS }),
			ProbeDrawn:       i(func(r Result) int { return r.ProbeDrawn }),
			ProbeShown:       i(func(r Result) int { return r.ProbeShown }),
			StepLagP95MS:     medianBySecond(rs),
		})
	}
	return out
}

// medianBySecond is the median of each second of StepLagP95MS, over the
// rounds that have that second.
func medianBySecond(rs []Result) []float64 {
	var out []float64
	for s := 0; ; s++ {
		var v []float64
		for _, r := range rs {
			if s < len(r.StepLagP95MS) {
				v = append(v, r.StepLagP95MS[s])
			}
		}
		if len(v) == 0 {
			return out
		}
		out = append(out, median(v))
	}
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
