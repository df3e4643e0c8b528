package main

import (
	"context"
	"fmt"
	"image"
	"io"
	"time"

	"github.com/assist-project/assist/bench/proc"
	"github.com/assist-project/assist/bench/stats"
	"github.com/assist-project/assist/bench/workload"
	"github.com/assist-project/assist/screen"
)

// Result is one row of the report: one server under one workload.
type Result struct {
	// Link names the emulated link (see -links); empty on loopback.
	Link     string `json:"link,omitempty"`
	Server   string `json:"server"`
	Workload string `json:"workload"`
	// Path is the path a session took, as assist join reports it.
	Path string `json:"path,omitempty"`
	// Round is the measurement's round (1..-repeat); 0 in a row of
	// medians.
	Round   int     `json:"round,omitempty"`
	Seconds float64 `json:"seconds"`

	// Latency from the X server having executed a change to the viewer
	// having decoded an update that shows it (or a later change).
	LatencyMedianMS float64 `json:"latency_median_ms"`
	LatencyP95MS    float64 `json:"latency_p95_ms"`
	LatencyMaxMS    float64 `json:"latency_max_ms"`
	// DisplayLagP95MS is the 95th percentile, over the measured time, of
	// how long the viewer's picture had been out of date: at each moment,
	// the age of the oldest drawn change it did not show yet (0 when it
	// showed the latest).
	DisplayLagP95MS float64 `json:"display_lag_p95_ms"`

	// ProbeMedianMS and ProbeP95MS are the latency of a small change
	// made while the workload runs (a second marker, changed 5 times a
	// second between the workload's changes: workload.Probe), ProbeShown
	// how many of ProbeDrawn the viewer showed. Measured with -probe.
	ProbeMedianMS float64 `json:"probe_latency_median_ms,omitempty"`
	ProbeP95MS    float64 `json:"probe_latency_p95_ms,omitempty"`
	ProbeDrawn    int     `json:"probe_drawn,omitempty"`
	ProbeShown    int     `json:"probe_shown,omitempty"`

	// Drawn changes, how many of them the viewer saw as such (the others
	// were skipped: the first update to show them showed a later one
	// too), and how many it never caught up with.
	Drawn int `json:"frames_drawn"`
	// Scheduled is how many changes the workload's rate asked for; far
	// more than Drawn means the drawing itself fell behind (a busy
	// machine) and the row is not comparable.
	Scheduled int `json:"frames_scheduled"`
	Shown     int `json:"frames_shown"`
	Lost      int `json:"frames_lost"`

	Updates       int     `json:"updates"`
	UpdatesPerSec float64 `json:"updates_per_s"`
	Bytes         int64   `json:"bytes"`
	KBPerSec      float64 `json:"kb_per_s"`

	// LinkBytes is what crossed the emulated link from the novice's side
	// to the viewer's in the measured time: the RFB bytes plus every
	// layer below (TLS, the session's multiplexer, WebRTC, TURN, TCP/IP).
	LinkBytes    int64   `json:"link_bytes,omitempty"`
	LinkKBPerSec float64 `json:"link_kb_per_s,omitempty"`

	// LosslessMS is the time from the last change to the viewer's
	// picture being pixel-exact (the cursor left out) once the screen
	// stays still: -1 when it was not within the time allowed (see
	// -lossless), 0 when not measured.
	LosslessMS float64 `json:"lossless_ms,omitempty"`
	// PSNRdB is the video workload's picture quality at the viewer: every
	// fourth update that shows a change, compared with the frame of that
	// change (below the marker's rows), in dB over all colour values.
	PSNRdB float64 `json:"psnr_db,omitempty"`

	// StepLagP95MS is, with -step, the display lag's p95 in each second
	// after the link's rate changed.
	StepLagP95MS []float64 `json:"step_lag_p95_ms,omitempty"`

	CPUMSPerUpdate float64 `json:"cpu_ms_per_update"`
	CPUPercent     float64 `json:"cpu_percent"`
	// XCPUPercent is the X server's CPU over the same time: the drawing
	// itself plus whatever the VNC server makes it do (GetImage, DAMAGE).
	XCPUPercent float64 `json:"x_cpu_percent"`
	// ExpertCPUPercent is assist join's CPU on the session paths.
	ExpertCPUPercent float64 `json:"expert_cpu_percent,omitempty"`
}

// change is one drawn change: its number and when the X server had
// executed it.
type change struct {
	N  uint64
	T0 time.Time
}

// run is everything needed to measure one server.
type run struct {
	desk      *workload.Desktop
	view      *viewer
	serverPID int
	xPID      int
	// expertPID is assist join's process on the session paths, else 0.
	expertPID int
	// linkBytes, when set, counts the bytes the emulated link delivered
	// towards the viewer so far.
	linkBytes func() uint64
	// lossless is how long to wait for a still screen to become exact at
	// the viewer after each workload; 0 skips it.
	lossless time.Duration
	warmup   time.Duration
	duration time.Duration
	// probe, when set, makes a small change of its own 5 times a second
	// while each workload runs (see Result.ProbeMedianMS).
	probe bool
	// trace, when set, gets every drawn change and received update of
	// the measured time as CSV lines (see writeTrace).
	trace io.Writer
	name  string // the server's, for the trace
	// step, when set, is done at its time into the measured time of each
	// workload (see -step).
	step *step
}

// step is something done once during a measurement.
type step struct {
	at time.Duration
	do func() error
}

// measure runs workload w: draws the scene and waits for the viewer to
// show it, warms up, then draws for the measured duration and computes
// the result.
func (r *run) measure(ctx context.Context, w workload.Workload) (Result, error) {
	res := Result{Workload: w.Name()}
	r.view.drawn.Store(0)
	r.view.watch(w.Marker())
	if err := w.Setup(r.desk); err != nil {
		return res, err
	}
	r.desk.Marker(w.Marker(), 0)
	if err := r.desk.Sync(); err != nil {
		return res, err
	}
	if err := r.view.waitFor(0, 20*time.Second); err != nil {
		return res, fmt.Errorf("%s: scene: %w", w.Name(), err)
	}
	noteDrawn := func(n uint64, _ time.Time) { r.view.drawn.Store(n) }
	next, err := workload.Run(ctx, r.desk, w, 1, r.warmup, noteDrawn)
	if err != nil {
		return res, err
	}

	if v, ok := w.(*workload.Video); ok {
		r.view.compare(func(n uint64) (*screen.Image, image.Rectangle) {
			f := v.Frame(n)
			area := f.Rect
			area.Min.Y += 48 // the marker's rows and a margin
			return f, area
		})
		defer r.view.compare(nil)
	}
	var changes, probes []change
	var probe *workload.Probe
	if r.probe {
		r.view.probeDrawn.Store(0)
		probe = &workload.Probe{At: workload.ProbeAt(r.desk.Size()), Rate: probeRate, Drawn: func(n uint64, t0 time.Time) {
			r.view.probeDrawn.Store(n)
			probes = append(probes, change{n, t0})
		}}
		// The probe's marker starts at 0, drawn and shown before the
		// measured time, so its first change is a change.
		r.desk.Marker(probe.At, 0)
		if err := r.desk.Sync(); err != nil {
			return res, err
		}
		r.view.watchProbe(probe.At)
		defer r.view.watchProbe(image.Pt(-1, -1))
	}
	start := time.Now()
	cpu0, err0 := proc.CPUTime(r.serverPID)
	x0, errx0 := proc.CPUTime(r.xPID)
	var e0, e1 time.Duration
	var erre0, erre1 error
	if r.expertPID != 0 {
		e0, erre0 = proc.CPUTime(r.expertPID)
	}
	var link0, link1 uint64
	if r.linkBytes != nil {
		link0 = r.linkBytes()
	}
	var stepTimer *time.Timer
	stepErr := make(chan error, 1)
	if r.step != nil {
		stepTimer = time.AfterFunc(r.step.at, func() { stepErr <- r.step.do() })
	}
	_, err = workload.RunProbed(ctx, r.desk, w, next, r.duration, func(n uint64, t0 time.Time) {
		r.view.drawn.Store(n)
		changes = append(changes, change{n, t0})
	}, probe)
	if stepTimer != nil {
		// Stopped before it fired, or waited for: nothing of the step
		// outlives the measurement.
		if stepTimer.Stop() {
			if err == nil {
				err = fmt.Errorf("the step at %v came after the measured %v: give -step a time within -duration", r.step.at, r.duration)
			}
		} else if serr := <-stepErr; serr != nil && err == nil {
			err = fmt.Errorf("the link's step: %w", serr)
		}
	}
	if err != nil {
		return res, err
	}
	end := time.Now()
	cpu1, err1 := proc.CPUTime(r.serverPID)
	x1, errx1 := proc.CPUTime(r.xPID)
	if r.expertPID != 0 {
		e1, erre1 = proc.CPUTime(r.expertPID)
	}
	if r.linkBytes != nil {
		link1 = r.linkBytes()
	}
	for _, err := range []error{err0, errx0, err1, errx1, erre0, erre1} {
		if err != nil {
			return res, fmt.Errorf("%s: %w", w.Name(), err)
		}
	}
	if len(changes) > 0 {
		// Let the viewer catch up with the last change; if it never
		// does, those changes count as lost.
		r.view.waitFor(changes[len(changes)-1].N, 5*time.Second)
	}
	updates, verr := r.view.snapshot()
	if verr != nil {
		return res, verr
	}
	res = summarize(w.Name(), changes, updates, start, end, cpu1-cpu0, x1-x0)
	if r.step != nil {
		res.StepLagP95MS = lagBySecond(changes, updates, start.Add(r.step.at), end)
	}
	if len(probes) > 0 {
		res.ProbeDrawn = len(probes)
		res.ProbeMedianMS, res.ProbeP95MS, res.ProbeShown = probeLatency(probes, updates)
	}
	if secs := res.Seconds; secs > 0 {
		res.ExpertCPUPercent = 100 * (e1 - e0).Seconds() / secs
		res.LinkBytes = int64(link1 - link0)
		res.LinkKBPerSec = float64(res.LinkBytes) / 1024 / secs
	}
	if r.lossless > 0 && len(changes) > 0 {
		ms, err := r.timeToLossless(changes[len(changes)-1].T0)
		if err != nil {
			return res, fmt.Errorf("%s: %w", w.Name(), err)
		}
		res.LosslessMS = ms
	}
	if r.trace != nil {
		if err := writeTrace(r.trace, r.name, w.Name(), start, changes, probes, updates); err != nil {
			return res, err
		}
	}
	res.Scheduled = int(w.Rate() * r.duration.Seconds())
	res.PSNRdB = r.view.psnr()
	return res, nil
}

// probeRate is how many times a second the probe changes.
const probeRate = 5

// probeLatency is the latency (median, p95, in ms) of the probe's changes
// and how many of them the viewer showed, from the probe's marker in
// updates.
func probeLatency(probes []change, updates []update) (p50, p95 float64, shown int) {
	pu := make([]update, len(updates))
	for i, u := range updates {
		pu[i] = update{At: u.At, Seq: u.ProbeSeq, Valid: u.ProbeValid}
	}
	lat, _ := latencies(probes, pu)
	s := stats.Summarize(lat)
	return ms(s.Median), ms(s.P95), len(lat)
}

// timeToLossless grabs the still screen and waits for the viewer's
// picture to match it: it returns the milliseconds from the last change
// (drawn at last) to the update that made the picture exact, or -1 when
// none did within r.lossless.
func (r *run) timeToLossless(last time.Time) (float64, error) {
	want, err := r.desk.Grab(image.Rectangle{Max: r.desk.Size()})
	if err != nil {
		return 0, err
	}
	p, err := r.desk.Pointer()
	if err != nil {
		return 0, err
	}
	// Servers that draw the cursor into the picture draw it around the
	// pointer; no cursor is larger than this.
	mask := image.Rectangle{Min: p.Sub(image.Pt(64, 64)), Max: p.Add(image.Pt(64, 64))}
	at, ok, err := r.view.waitExact(want, mask, r.lossless)
	if err != nil {
		return 0, err
	}
	if !ok {
		return -1, nil
	}
	return max(0, ms(at.Sub(last))), nil
}

// displayLagP95 samples, every millisecond of [start, end), how long the
// viewer's picture had been out of date (the age of the oldest change
// drawn but not yet shown, 0 when none) and returns the 95th percentile.
// changes are in drawing order, updates in arrival order.
func displayLagP95(changes []change, updates []update, start, end time.Time) time.Duration {
	var lags []time.Duration
	var shown uint64 // the latest change the viewer showed
	shownAny := false
	ui, ci := 0, 0
	for t := start; t.Before(end); t = t.Add(time.Millisecond) {
		for ; ui < len(updates) && !updates[ui].At.After(t); ui++ {
			if u := updates[ui]; u.Valid && (!shownAny || u.Seq > shown) {
				shown, shownAny = u.Seq, true
			}
		}
		// The oldest change drawn by t and not shown.
		for ci < len(changes) && shownAny && changes[ci].N <= shown {
			ci++
		}
		lag := time.Duration(0)
		if ci < len(changes) && !changes[ci].T0.After(t) {
			lag = t.Sub(changes[ci].T0)
		}
		lags = append(lags, lag)
	}
	return stats.Summarize(lags).P95
}

// lagBySecond is the display lag's p95 in each whole second from from to
// end, in ms: how long the picture stays behind after the link slows.
func lagBySecond(changes []change, updates []update, from, end time.Time) []float64 {
	var out []float64
	for t := from; !t.Add(time.Second).After(end); t = t.Add(time.Second) {
		out = append(out, ms(displayLagP95(changes, updates, t, t.Add(time.Second))))
	}
	return out
}

// summarize computes a Result from the changes drawn in [start, end),
// every update the viewer recorded since the scene was drawn, and the
// CPU time the VNC server and the X server used in [start, end).
func summarize(name string, changes []change, updates []update, start, end time.Time, cpu, xcpu time.Duration) Result {
	res := Result{Workload: name, Seconds: end.Sub(start).Seconds(), Drawn: len(changes)}
	if len(changes) > 0 {
		lat, shown := latencies(changes, updates)
		res.Shown = shown
		res.Lost = len(changes) - len(lat)
		s := stats.Summarize(lat)
		res.LatencyMedianMS = ms(s.Median)
		res.LatencyP95MS = ms(s.P95)
		res.LatencyMaxMS = ms(s.Max)
		res.DisplayLagP95MS = ms(displayLagP95(changes, updates, start, end))
	}
	for _, u := range updates {
		if u.At.Before(start) || !u.At.Before(end) {
			continue
		}
		res.Bytes += int64(u.Bytes)
		if u.Real {
			res.Updates++
		}
	}
	if secs := res.Seconds; secs > 0 {
		res.UpdatesPerSec = float64(res.Updates) / secs
		res.KBPerSec = float64(res.Bytes) / 1024 / secs
		res.CPUPercent = 100 * cpu.Seconds() / secs
		res.XCPUPercent = 100 * xcpu.Seconds() / secs
	}
	if res.Updates > 0 {
		res.CPUMSPerUpdate = ms(cpu) / float64(res.Updates)
	}
	return res
}

// latencies matches changes (in drawing order) with updates (in arrival
// order): a change is shown by the first update whose marker holds its
// number or a later one, since every change supersedes or adds to the
// ones before it. It returns one latency per change that was shown, and
// how many distinct changes the viewer saw as such. A latency below zero
// (the viewer can see a change a hair before the X server's reply says
// it is done) counts as zero.
func latencies(changes []change, updates []update) ([]time.Duration, int) {
	lat := make([]time.Duration, 0, len(changes))
	first, last := changes[0].N, changes[len(changes)-1].N
	seen := make(map[uint64]bool)
	i := 0
	for _, u := range updates {
		if !u.Valid {
			continue
		}
		if u.Seq >= first && u.Seq <= last {
			seen[u.Seq] = true
		}
		for ; i < len(changes) && changes[i].N <= u.Seq; i++ {
			lat = append(lat, max(0, u.At.Sub(changes[i].T0)))
		}
	}
	return lat, len(seen)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeTrace writes the changes and updates of one measurement as CSV
// lines "server,workload,kind,ms,seq,bytes,pixels", ms counted from start:
// kind "drawn" is a change the X server had executed (seq is its
// number), kind "update" an update the viewer had decoded (seq is the
// change its marker showed, or -1). With -probe, kind "probe" is a probe
// change the X server had executed and kind "probe-shown" the update that
// first showed it (seq is the probe's number), and a first line of kind
// "start" gives start as Unix time in microseconds (in seq), so that the
// trace lines up with the servers' own.
func writeTrace(w io.Writer, server, workload string, start time.Time, changes, probes []change, updates []update) error {
	at := func(t time.Time) float64 { return ms(t.Sub(start)) }
	var b []byte
	if len(probes) > 0 {
		b = fmt.Appendf(b, "%s,%s,start,0.000,%d,0,0\n", server, workload, start.UnixMicro())
	}
	for _, c := range changes {
		b = fmt.Appendf(b, "%s,%s,drawn,%.3f,%d,0,0\n", server, workload, at(c.T0), c.N)
	}
	for _, c := range probes {
		b = fmt.Appendf(b, "%s,%s,probe,%.3f,%d,0,0\n", server, workload, at(c.T0), c.N)
	}
	shown := uint64(0)
	for _, u := range updates {
		seq := int64(-1)
		if u.Valid {
			seq = int64(u.Seq)
		}
		b = fmt.Appendf(b, "%s,%s,update,%.3f,%d,%d,%d\n", server, workload, at(u.At), seq, u.Bytes, u.Pixels)
		if len(probes) > 0 && u.ProbeValid && u.ProbeSeq > shown {
			shown = u.ProbeSeq
			b = fmt.Appendf(b, "%s,%s,probe-shown,%.3f,%d,%d,%d\n", server, workload, at(u.At), shown, u.Bytes, u.Pixels)
		}
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	return nil
}
