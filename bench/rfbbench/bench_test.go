package main

import (
	"context"
	"image"
	"os/exec"
	"testing"
	"time"

	"github.com/assist-project/assist/bench/workload"
)

// TestBenchServerSmoke runs the typing workload briefly against each
// reference server that is installed, end to end: Xvfb, the server, the
// viewer and the marker matching. It checks only that changes were
// drawn and seen, not how fast.
func TestBenchServerSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Xvfb and VNC servers")
	}
	if _, err := exec.LookPath("Xvfb"); err != nil {
		t.Skip("Xvfb not installed")
	}
	x, err := workload.StartXvfb(image.Pt(1280, 800))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	desk, err := openDesktop(x.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(desk.Close)
	wls := []workload.Workload{workload.NewTyping(desk.Size())}

	for _, spec := range specs("assist") {
		if spec.Name == "assist" {
			continue // needs the binary built; scripts/bench.sh covers it
		}
		t.Run(spec.Name, func(t *testing.T) {
			if _, err := exec.LookPath(spec.Binary); err != nil {
				t.Skipf("%s not installed", spec.Binary)
			}
			// Generous warm-up and duration: CI runs this next to other
			// packages' tests, and a loaded x11vnc answers in seconds.
			set := settings{viewer: viewerOptions{Quality: 8, Compress: 2}, warmup: 2 * time.Second, duration: 5 * time.Second}
			rs, err := benchServer(context.Background(), spec, x, desk, wls, set)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 {
				t.Fatalf("got %d results, want 1", len(rs))
			}
			r := rs[0]
			if r.Server != spec.Name || r.Workload != "typing" || r.Drawn == 0 || r.Shown == 0 || r.Updates == 0 {
				t.Errorf("result %+v: want changes drawn, shown and updates received", r)
			}
		})
	}
}
