// Package stats summarises benchmark samples.
package stats

import (
	"math"
	"slices"
	"time"
)

// Summary describes a set of durations.
type Summary struct {
	N                int
	Min, Median, P95 time.Duration
	Max, Mean        time.Duration
}

// Summarize returns the summary of samples (which it does not modify).
// An empty input gives the zero Summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{
		N:      len(s),
		Min:    s[0],
		Median: Percentile(s, 50),
		P95:    Percentile(s, 95),
		Max:    s[len(s)-1],
		Mean:   sum / time.Duration(len(s)),
	}
}

// Percentile returns the p-th percentile (0..100) of sorted, linearly
// interpolated between the two nearest ranks (the method most tools,
// numpy's default among them, use). sorted must be in ascending order.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	switch n := len(sorted); {
	case n == 0:
		return 0
	case n == 1 || p <= 0:
		return sorted[0]
	case p >= 100:
		return sorted[n-1]
	}
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	frac := pos - float64(lo)
	if lo+1 >= len(sorted) {
		return sorted[lo]
	}
	return sorted[lo] + time.Duration(math.Round(frac*float64(sorted[lo+1]-sorted[lo])))
}
