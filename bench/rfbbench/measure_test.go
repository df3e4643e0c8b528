package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/rfb"
)

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func at(msec int) time.Time { return epoch.Add(time.Duration(msec) * time.Millisecond) }

func TestLatencies(t *testing.T) {
	changes := []change{{10, at(0)}, {11, at(100)}, {12, at(200)}, {13, at(300)}}
	tests := []struct {
		name    string
		updates []update
		want    []time.Duration
		shown   int
	}{
		{
			name: "every change shown",
			updates: []update{
				{At: at(20), Seq: 10, Valid: true},
				{At: at(130), Seq: 11, Valid: true},
				{At: at(210), Seq: 12, Valid: true},
				{At: at(340), Seq: 13, Valid: true},
			},
			want:  []time.Duration{20, 30, 10, 40},
			shown: 4,
		},
		{
			name: "skipped frame counts when a later one arrives",
			updates: []update{
				{At: at(20), Seq: 10, Valid: true},
				{At: at(250), Seq: 12, Valid: true},
				{At: at(305), Seq: 13, Valid: true},
			},
			want:  []time.Duration{20, 150, 50, 5},
			shown: 3,
		},
		{
			name: "warm-up, unreadable markers and repeats are ignored",
			updates: []update{
				{At: at(-50), Seq: 9, Valid: true},
				{At: at(10), Valid: false},
				{At: at(15), Seq: 10, Valid: true},
				{At: at(50), Seq: 10, Valid: true},
				{At: at(120), Seq: 11, Valid: true},
			},
			want:  []time.Duration{15, 20},
			shown: 2,
		},
		{
			name:    "shown before t0 counts as zero",
			updates: []update{{At: at(-1), Seq: 10, Valid: true}},
			want:    []time.Duration{0},
			shown:   1,
		},
		{
			name:    "nothing shown",
			updates: nil,
			want:    []time.Duration{},
			shown:   0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, shown := latencies(changes, tt.updates)
			want := make([]time.Duration, len(tt.want))
			for i, w := range tt.want {
				want[i] = w * time.Millisecond
			}
			if !slices.Equal(got, want) || shown != tt.shown {
				t.Errorf("latencies = %v, %d shown; want %v, %d", got, shown, want, tt.shown)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	changes := []change{{1, at(0)}, {2, at(500)}, {3, at(1000)}, {4, at(1500)}}
	updates := []update{
		{At: at(-100), Bytes: 1000, Real: true, Seq: 0, Valid: true}, // before the window
		{At: at(10), Bytes: 100, Real: true, Seq: 1, Valid: true},
		{At: at(520), Bytes: 100, Real: true, Seq: 2, Valid: true},
		{At: at(600), Bytes: 20, Real: false}, // empty update: bytes count, update does not
		{At: at(1540), Bytes: 100, Real: true, Seq: 4, Valid: true},
		{At: at(2500), Bytes: 5000, Real: true}, // after the window
	}
	got := summarize("typing", changes, updates, at(0), at(2000), 40*time.Millisecond, time.Second)
	want := Result{
		Workload: "typing", Seconds: 2,
		LatencyMedianMS: 30, LatencyP95MS: 465, LatencyMaxMS: 540, // 10, 20, 540 (change 3 skipped), 40
		// Out of date 0-9 ms after change 1, 0-19 after change 2, and
		// 0-539 ms from change 3 to the update showing 4; up to date the
		// other 1,430 of the 2,000 ms. The 95th percentile of those
		// samples is 100 ms below the top: 439, interpolated 439.05.
		DisplayLagP95MS: 439.05,
		Drawn:           4, Shown: 3, Lost: 0,
		Updates: 3, UpdatesPerSec: 1.5, Bytes: 320, KBPerSec: 320.0 / 1024 / 2,
		CPUMSPerUpdate: 40.0 / 3, CPUPercent: 2, XCPUPercent: 50,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summarize =\n%+v\nwant\n%+v", got, want)
	}

	lost := summarize("video", changes, updates[:3], at(0), at(2000), 0, 0)
	if lost.Lost != 2 || lost.Shown != 2 {
		t.Errorf("with the last changes never shown: %d lost, %d shown; want 2, 2", lost.Lost, lost.Shown)
	}
	none := summarize("video", nil, nil, at(0), at(0), 0, 0)
	if none.Drawn != 0 || none.UpdatesPerSec != 0 || none.CPUMSPerUpdate != 0 {
		t.Errorf("empty run = %+v", none)
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	rs := []Result{
		{Server: "assist", Workload: "video", LatencyMedianMS: 12.34, LatencyP95MS: 20, UpdatesPerSec: 59.9,
			KBPerSec: 2048, Drawn: 600, Scheduled: 600, Shown: 590, Lost: 1, CPUMSPerUpdate: 1.234, CPUPercent: 7.5, XCPUPercent: 3},
		{Server: "assist", Workload: "typing", Drawn: 500, Scheduled: 600, Shown: 500},
	}
	if err := writeTable(&b, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 6 || !strings.Contains(lines[5], "assist/typing (500 of 600)") {
		t.Fatalf("table has %d lines, want 6:\n%s", len(lines), b.String())
	}
	want := "| assist | video | 12.3 | 20.0 | 59.9 | 2048 | 590/600 (1 lost) | 1.23 | 7.5 | 3.0 |"
	if !strings.HasPrefix(lines[3], "| assist | typing |") {
		t.Errorf("second row = %q", lines[3])
	}
	if lines[2] != want {
		t.Errorf("row = %q\nwant  %q", lines[2], want)
	}
	for _, l := range lines[:4] {
		if strings.Count(l, "|") != 11 {
			t.Errorf("line %q does not have 10 columns", l)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	rs := []Result{{Server: "x11vnc", Workload: "typing", Drawn: 3}}
	if err := writeJSON(path, config{Duration: "10s", Repeat: 1}, rs, rs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Config.Duration != "10s" || len(got.Results) != 1 || !reflect.DeepEqual(got.Results[0], rs[0]) || got.Medians != nil {
		t.Errorf("read back %+v", got)
	}
}

func TestMedians(t *testing.T) {
	rs := []Result{
		{Server: "assist", Workload: "video", Round: 1, LatencyMedianMS: 5, CPUPercent: 30, Updates: 100, Shown: 600, StepLagP95MS: []float64{100, 20}},
		{Server: "tigervnc", Workload: "video", Round: 1, LatencyMedianMS: 13},
		{Server: "assist", Workload: "video", Round: 2, LatencyMedianMS: 9, CPUPercent: 10, Updates: 90, Shown: 601, StepLagP95MS: []float64{200, 10, 5}},
		{Server: "assist", Workload: "video", Round: 3, LatencyMedianMS: 6, CPUPercent: 20, Updates: 95, Shown: 599, StepLagP95MS: []float64{150}},
		{Server: "tigervnc", Workload: "video", Round: 2, LatencyMedianMS: 15},
	}
	got := medians(rs)
	want := []Result{
		// Each figure's own median, not one round's row.
		// Each second after a step: the median of the rounds that have it.
		{Server: "assist", Workload: "video", LatencyMedianMS: 6, CPUPercent: 20, Updates: 95, Shown: 600, StepLagP95MS: []float64{150, 15, 5}},
		// An even count gives the mean of the middle two.
		{Server: "tigervnc", Workload: "video", LatencyMedianMS: 14},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("medians =\n%+v\nwant\n%+v", got, want)
	}
}

// The display lag after a step, second by second: a picture 300 ms behind
// in the first second, caught up in the second, and the part second at
// the end left out.
func TestLagBySecond(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	changes := []change{{1, at(0)}, {2, at(1000)}, {3, at(2000)}}
	updates := []update{
		{At: at(300), Seq: 1, Valid: true},
		{At: at(1010), Seq: 2, Valid: true},
		{At: at(2010), Seq: 3, Valid: true},
	}
	got := lagBySecond(changes, updates, t0, at(2500))
	if len(got) != 2 || got[0] < 240 || got[0] > 300 || got[1] != 0 {
		t.Errorf("lag by second %v, want two seconds: about 250-300 ms (behind 300 ms from the start), then 0 (the p95 of 10 ms behind in 1,000)", got)
	}
}

func TestWriteTrace(t *testing.T) {
	start := time.Unix(100, 0)
	changes := []change{{N: 7, T0: start.Add(1500 * time.Microsecond)}}
	updates := []update{
		{At: start.Add(2 * time.Millisecond), Bytes: 300, Pixels: 64, Seq: 7, Valid: true},
		{At: start.Add(3 * time.Millisecond), Bytes: 20},
	}
	var b bytes.Buffer
	if err := writeTrace(&b, "assist", "video", start, changes, nil, updates); err != nil {
		t.Fatal(err)
	}
	want := "assist,video,drawn,1.500,7,0,0\n" +
		"assist,video,update,2.000,7,300,64\n" +
		"assist,video,update,3.000,-1,20,0\n"
	if b.String() != want {
		t.Errorf("trace =\n%s\nwant\n%s", b.String(), want)
	}
	// With the probe: its changes, and the first update to show each.
	probes := []change{{N: 1, T0: start.Add(time.Millisecond)}}
	updates[1].ProbeSeq, updates[1].ProbeValid = 1, true
	b.Reset()
	if err := writeTrace(&b, "assist", "video", start, changes, probes, updates); err != nil {
		t.Fatal(err)
	}
	want = "assist,video,start,0.000,100000000,0,0\n" +
		"assist,video,drawn,1.500,7,0,0\n" +
		"assist,video,probe,1.000,1,0,0\n" +
		"assist,video,update,2.000,7,300,64\n" +
		"assist,video,update,3.000,-1,20,0\n" +
		"assist,video,probe-shown,3.000,1,20,0\n"
	if b.String() != want {
		t.Errorf("probed trace =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestEncodings(t *testing.T) {
	got := viewerOptions{Quality: 8, Compress: 2}.encodings()
	want := []int32{rfb.EncTight, rfb.EncCopyRect, rfb.EncJPEGQuality0 + 8, rfb.EncCompressLevel0 + 2, rfb.EncLastRect, rfb.EncDesktopSize}
	if !slices.Equal(got, want) {
		t.Errorf("encodings = %v, want %v", got, want)
	}
	lossless := viewerOptions{Quality: -1, Compress: 9, Continuous: true}.encodings()
	if slices.ContainsFunc(lossless, func(e int32) bool { return e >= rfb.EncJPEGQuality0 && e <= rfb.EncJPEGQuality9 }) {
		t.Errorf("quality -1 still asks for JPEG: %v", lossless)
	}
	if !slices.Contains(lossless, rfb.EncContinuousUpdates) || !slices.Contains(lossless, rfb.EncFence) {
		t.Errorf("continuous mode does not announce continuous updates and fences: %v", lossless)
	}
}

// The probe's latency comes from its own marker, not the workload's.
func TestProbeLatency(t *testing.T) {
	probes := []change{{1, at(0)}, {2, at(200)}, {3, at(400)}}
	updates := []update{
		{At: at(10), Seq: 50, Valid: true},                                   // the workload only
		{At: at(30), Seq: 51, Valid: true, ProbeSeq: 1, ProbeValid: true},    // probe 1: 30 ms
		{At: at(260), Seq: 60, Valid: true, ProbeSeq: 2, ProbeValid: true},   // probe 2: 60 ms
		{At: at(300), Seq: 61, Valid: true, ProbeSeq: 99, ProbeValid: false}, // unreadable
		{At: at(500), Seq: 70, Valid: false, ProbeSeq: 3, ProbeValid: true},  // probe 3: 100 ms
	}
	p50, p95, shown := probeLatency(probes, updates)
	if p50 != 60 || p95 < 90 || p95 > 100 || shown != 3 {
		t.Errorf("probeLatency = %v, %v, %d; want 60, 90..100, 3", p50, p95, shown)
	}
	if goal, ok := probeGoal(linkSpec{Rate: 5e6, RTT: 60 * time.Millisecond}.String()); !ok || goal < 38.8 || goal > 39 {
		t.Errorf("probeGoal(5 Mbit/s 60 ms) = %v, %v; want 1.2 × (30 + 2.4) ms", goal, ok)
	}
}
