package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
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
}

// writeJSON writes the run's configuration and results to path.
func writeJSON(path string, cfg config, results []Result) error {
	b, err := json.MarshalIndent(report{Config: cfg, Results: results}, "", "  ")
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}
